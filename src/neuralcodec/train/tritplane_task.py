"""Trit-plane training, the engine's trit-plane task: the context modules (CRR and CDR) of
``TritPlaneCodec`` on a frozen hyperprior base (``neuralcodec train-tritplane``).

CRR: cross-entropy (bits) of the true trits of every plane under the refined probabilities,
on the elements where the Gaussian is not already certain (the ones CRR is run on).
CDR: image MSE after the (frozen) synthesis of the refined partial latent, relative to the
image MSE without CDR, per training state: a random plane (mostly one of the last three) and
a random fraction of it decoded in priority order. One Adam optimiser (CRR at 5 lr, CDR at
lr), lr / 10 for the last 20 % of the steps (or of ``--minutes``). The base model stays
frozen; only the small modules are written. Each step draws from generators seeded by
(seed, step), so a resumed run continues exactly.
"""
from __future__ import annotations

import json
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from neuralcodec.codecs import tritplane as TP
from neuralcodec.entropy import tritplane as T
from neuralcodec.entropy.exact import to_fixed
from neuralcodec.train import distributed as D
from neuralcodec.train import engine
from neuralcodec.train.configs import TritPlaneTrainConfig
from neuralcodec.train.data import find_images, fit_to_crop, load_image

METRICS = ("crr_bits", "gauss_bits", "cdr_mse", "plain_mse")


class LatentSampler:
    """Random crops of training images -> base latents and entropy parameters."""

    def __init__(self, model: TP.TritPlaneCodec, dirs: list[str], crop: int, seed: int,
                 max_images: int | None = None):
        files = find_images(dirs)
        if max_images:
            rng = np.random.default_rng(seed)
            files = [files[i] for i in sorted(rng.permutation(len(files))[:max_images])]
        self.images = [im for im in (fit_to_crop(load_image(f), crop, "pad") for f in files) if im is not None]
        self.crop, self.model = crop, model

    @torch.no_grad()
    def batch(self, n: int, rng: np.random.Generator) -> list[dict]:
        base = self.model.base
        device = self.model.device
        crops = []
        for _ in range(n):
            im = self.images[rng.integers(len(self.images))]
            r = rng.integers(im.shape[0] - self.crop + 1)
            c = rng.integers(im.shape[1] - self.crop + 1)
            crops.append(im[r:r + self.crop, c:c + self.crop])
        x = torch.from_numpy(np.stack(crops)).to(device).permute(0, 3, 1, 2).float() / 255
        q = float(self.model.config["quality"])
        y = base.analyse(x, q)
        _, z_hat = base.z_prior.quantize(base.h_a(y))        # as z_prior.compress
        mu, k, sigma = self.model.gaussian_params(base.h_s.exact(to_fixed(z_hat)))
        s = torch.round(y - mu.float())
        inv_gain = base.inv_gain(torch.full((n,), q, device=device))
        out = []
        for i in range(n):
            si = np.ascontiguousarray(s[i].cpu().numpy(), dtype=np.int64)   # may be channels-last
            out.append({"s": si, "k": k[i].cpu().numpy(), "mu": mu[i:i + 1], "sigma": sigma[i:i + 1],
                        "y": y[i:i + 1], "inv_gain": inv_gain[i:i + 1], "x": x[i:i + 1],
                        "counts": TP.channel_planes(si)})
        return out


def crr_examples(item: dict, rng, planes_per_image: int = 2):
    """(features, gaussian logits, trits) of the active elements of a few random planes."""
    s, k, counts = item["s"], item["k"], item["counts"]
    feats, gs, ts = [], [], []
    chosen = rng.permutation(np.arange(1, int(counts.max()) + 1))[:planes_per_image]
    for p in sorted(chosen, reverse=True):
        sel = counts >= p                            # the channels coded in plane p
        lo, sub = TP.plane_start(s[sel], p, p), 3 ** (p - 1)
        masses, active, _ = T.gauss_plane(lo, sub, k[sel], TP.CERTAIN)
        active, g, f = TP.crr_inputs(lo, sub, k[sel], masses, active, len(s))
        if not active.size:
            continue
        feats.append(f)
        gs.append(g)
        ts.append(((s[sel] - lo) // sub).reshape(-1)[active])
    if not feats:
        return None
    return np.concatenate(feats), np.concatenate(gs), np.concatenate(ts)


def partial_state(model: TP.TritPlaneCodec, item: dict, rng) -> tuple[np.ndarray, np.ndarray]:
    """Intervals after a random number of planes and a random fraction of the next one."""
    s, k, counts = item["s"], item["k"], item["counts"]
    planes = int(counts.max())
    if not planes:
        return np.zeros_like(s), np.ones_like(s)
    # mostly the last planes, where the useful rates are; sometimes any plane
    p = int(rng.integers(1, min(3, planes) + 1) if rng.random() < 0.8 else rng.integers(1, planes + 1))
    sel, sub = counts >= p, 3 ** (p - 1)
    span = np.broadcast_to(3 ** np.minimum(counts, p)[:, None, None], s.shape).copy()
    lo = -((span - 1) // 2)
    lo[sel] = TP.plane_start(s[sel], p, p)
    _, _, order = T.gauss_plane(lo[sel], sub, k[sel], TP.CERTAIN)
    n = int(rng.integers(0, len(order) + 1))
    idx = np.flatnonzero(np.repeat(sel, s[0].size))[order[:n]]
    trits = ((s - lo) // sub).reshape(-1)[idx]
    lo.reshape(-1)[idx] += trits * sub
    span.reshape(-1)[idx] = sub
    return lo, span


def _bits(logits: torch.Tensor, trits: torch.Tensor) -> torch.Tensor:
    return -torch.log_softmax(logits * math.log(2.0), 1).gather(1, trits[:, None])[:, 0] / math.log(2.0)


class TritPlaneTask(engine.Task):
    """CRR and CDR of a ``TritPlaneCodec`` over a frozen base (see the module docstring)."""

    FIXED = TritPlaneTrainConfig.FIXED

    def wall_limit_minutes(self) -> float:
        return 0.0

    def budget_minutes(self) -> float:
        return self.cfg.minutes

    def check(self) -> None:
        if self.cfg.steps < 1 or self.cfg.batch < 1 or self.cfg.crop < 16:
            from neuralcodec.errors import InputError
            raise InputError("--steps and --batch must be >= 1 and --crop >= 16")
        for d in self.cfg.data:
            find_images([d])  # missing or empty folders fail here, before any work

    def build_model(self, device, info, log):
        from neuralcodec.codecs.registry import load_model, shipped_weights
        cfg = self.cfg
        self.base_path = cfg.base_weights or shipped_weights("hyperprior")
        base = load_model("hyperprior", self.base_path, device)
        model = TP.TritPlaneCodec(base_sha256=base.weights_hash.hex(), quality=cfg.quality,
                                  m=base.config["m"]).to(device)
        model.set_base(base)
        if cfg.init and not self.resuming:
            from neuralcodec.codecs.weights import load_state
            model.load_state_dict({k: v.float() for k, v in load_state(cfg.init).items()})
        return model

    def setup(self, device, info, warn) -> None:
        model, lr = self.model, self.cfg.lr
        model.train()
        model.base.requires_grad_(False)
        self.opt = torch.optim.Adam([{"params": model.crr.parameters(), "base_lr": 5 * lr},
                                     {"params": model.cdr.parameters(), "base_lr": lr}], lr=lr)

    def optimizers(self):
        return {"main": self.opt}

    def load_data(self, device, info, log) -> None:
        cfg = self.cfg
        self.sampler = LatentSampler(self.model, cfg.data, cfg.crop, cfg.seed, cfg.max_images or None)
        self.pool = ThreadPoolExecutor(max(1, min(cfg.batch, (os.cpu_count() or 1))))
        log(f"{len(self.sampler.images)} images, base {self.base_path} "
            f"({self.model.base.weights_hash.hex()[:12]}), device {device}")

    def lr(self, step, progress) -> float:
        late = (step / self.cfg.steps if progress is None else progress) >= 0.8
        self.factor = 0.1 if late else 1.0
        return self.cfg.lr * self.factor

    def step(self, step, lr, info):
        model, device = self.model, self.model.device
        for g in self.opt.param_groups:
            g["lr"] = g["base_lr"] * self.factor
        rng = np.random.default_rng([self.cfg.seed, step])
        items = self.sampler.batch(self.cfg.batch, rng)
        seeds = rng.integers(1 << 62, size=len(items))
        prepared = list(self.pool.map(lambda a: (crr_examples(a[0], np.random.default_rng(a[1])),
                                                 partial_state(model, a[0], np.random.default_rng(a[1] + 1))),
                                      zip(items, seeds)))
        zero = torch.zeros((), device=device)
        crr_bits, gauss_bits = zero, zero        # 0 for a batch without active elements
        ex = [e for e, _ in prepared if e is not None]
        if ex:
            f, g, t = (torch.from_numpy(np.concatenate(v)).to(device) for v in zip(*ex))
            gl = g.float() / T.ONE
            delta = TP.crr_apply(model.crr, f, exact=False)
            crr_bits = _bits(gl + delta, t).mean()
            gauss_bits = _bits(gl, t).mean().detach()
        lo_t, span_t = (torch.from_numpy(np.stack(v)).double().to(device)
                        for v in zip(*(state for _, state in prepared)))
        mu, sigma, x = (torch.cat([it[key] for it in items]) for key in ("mu", "sigma", "x"))
        y_rec = mu + TP.interval_mean(lo_t, span_t, sigma)
        delta = model.cdr(model.cdr_input(y_rec, span_t, sigma))
        gate = torch.minimum((span_t - 1) / 2, 2 * sigma).float()
        q = float(model.config["quality"])
        with torch.no_grad():
            plain_i = ((model.base.synthesise(y_rec.float(), q).clamp(0, 1) - x) ** 2).mean((1, 2, 3))
        x_hat = model.base.synthesise(y_rec.float() + delta * gate, q).clamp(0, 1)
        mse_i = ((x_hat - x) ** 2).mean((1, 2, 3))
        loss = crr_bits + (mse_i / plain_i.clamp_min(1e-12)).mean()   # relative error per state
        self.opt.zero_grad()
        loss.backward()
        D.average_grads(info, [p for g in self.opt.param_groups for p in g["params"]])
        self.opt.step()
        return {"loss": loss.detach(), "crr_bits": crr_bits.detach(), "gauss_bits": gauss_bits,
                "cdr_mse": 255 ** 2 * mse_i.detach().mean(), "plain_mse": 255 ** 2 * plain_i.mean()}

    def log_line(self, step, values) -> str:
        return (f"step {step}/{self.cfg.steps}  CRR {values['crr_bits']:.4f} bits/trit (Gaussian "
                f"{values['gauss_bits']:.4f})  CDR mse {values['cdr_mse']:.4f} (plain {values['plain_mse']:.4f})  "
                f"{values['minutes'] * 60:.0f} s")

    def final_metrics(self, log) -> dict:
        """The means of the logged metrics over the last 20 % of the logged rows."""
        rows = [r for r in log.rows() if "train/loss" in r]
        tail = rows[-max(1, len(rows) // 5):]
        return {"steps_run": rows[-1]["step"] if rows else 0,
                **{k: float(np.mean([r[f"train/{k}"] for r in tail])) if tail else None for k in METRICS}}

    def export(self, step, log) -> None:
        from neuralcodec.codecs.weights import save_weights
        cfg, model = self.cfg, self.model
        model.eval()
        model.update()
        base = model.base
        info = {"base_codec": "hyperprior", "base_sha256": base.weights_hash.hex(), "steps": cfg.steps,
                "init": cfg.init or None, "batch": cfg.batch, "crop": cfg.crop, "data": cfg.data,
                "final": self.final_metrics(log)}
        save_weights(model, cfg.export, info=info)
        model.train()
        log.info(json.dumps(info), file=sys.stdout)


def run(cfg: TritPlaneTrainConfig, stop_after: int | None = None) -> dict:
    """Train (or continue) through the engine; without ``cfg.out`` in a temporary run folder
    (no resume), as the trainer before the engine did."""
    if cfg.out:
        return engine.run(TritPlaneTask(cfg), stop_after=stop_after)
    if cfg.resume:
        from neuralcodec.errors import InputError
        raise InputError("--resume needs --out RUN_DIR")
    import tempfile
    from dataclasses import replace
    with tempfile.TemporaryDirectory(prefix="tritplane-run-") as tmp:
        return engine.run(TritPlaneTask(replace(cfg, out=tmp)), stop_after=stop_after)
