"""Training of the trit-plane context modules (CRR and CDR) on a frozen base model.

    python -m neuralcodec.codecs.tritplane_train --data DIR [DIR ...] -o trit-plane.safetensors \
        [--steps 3000] [--batch 8] [--crop 256] [--device cuda] [--base-weights FILE]

CRR: cross-entropy (bits) of the true trits of every plane under the refined probabilities,
on the elements where the Gaussian is not already certain (the ones CRR is run on).
CDR: image MSE after the (frozen) synthesis of the refined partial latent, relative to the
image MSE without CDR, per training state: a
random plane (mostly one of the last three) and a random fraction of it decoded in priority
order. The base model stays frozen; only the small modules are written.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from neuralcodec.codecs import tritplane as TP
from neuralcodec.entropy import tritplane as T
from neuralcodec.entropy.exact import to_fixed


class LatentSampler:
    """Random crops of training images -> base latents and entropy parameters."""

    def __init__(self, model: TP.TritPlaneCodec, dirs: list[str], crop: int, seed: int,
                 max_images: int | None = None):
        from neuralcodec.train.data import find_images, fit_to_crop, load_image

        files = find_images(dirs)
        rng = np.random.default_rng(seed)
        if max_images:
            files = [files[i] for i in sorted(rng.permutation(len(files))[:max_images])]
        self.images = [im for im in (fit_to_crop(load_image(f), crop, "pad") for f in files) if im is not None]
        self.crop, self.rng, self.model = crop, rng, model

    @torch.no_grad()
    def batch(self, n: int) -> list[dict]:
        base = self.model.base
        device = self.model._device()
        crops = []
        for _ in range(n):
            im = self.images[self.rng.integers(len(self.images))]
            r = self.rng.integers(im.shape[0] - self.crop + 1)
            c = self.rng.integers(im.shape[1] - self.crop + 1)
            crops.append(im[r:r + self.crop, c:c + self.crop])
        x = torch.from_numpy(np.stack(crops)).to(device).permute(0, 3, 1, 2).float() / 255
        q = float(self.model.config["quality"])
        y = base.analyse(x, q)
        _, z_hat = base.z_prior.quantize(base.h_a(y))        # as z_prior.compress
        mu, k, sigma = self.model._params(base.h_s.exact(to_fixed(z_hat)))
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


def train(model: TP.TritPlaneCodec, sampler: LatentSampler, steps: int, batch: int, lr: float = 1e-3,
          log_every: int = 50, log=print, minutes: float | None = None) -> dict:
    """Train CRR (learning rate 5 lr) and CDR (lr) jointly: separate losses, one optimiser,
    lr / 10 for the last 20% of the steps (or minutes); returns final metrics."""
    device = model._device()
    model.train()
    model.base.requires_grad_(False)
    opt = torch.optim.Adam([{"params": model.crr.parameters(), "base_lr": 5 * lr},
                            {"params": model.cdr.parameters(), "base_lr": lr}], lr=lr)
    rng = np.random.default_rng(1)
    hist = {"crr_bits": [], "gauss_bits": [], "cdr_mse": [], "plain_mse": []}
    t0 = time.time()
    pool = ThreadPoolExecutor(max(1, min(batch, (os.cpu_count() or 1))))
    for step in range(steps):
        elapsed = (time.time() - t0) / 60
        if minutes and elapsed > minutes:
            log(f"time limit: stopping after {step} steps")
            break
        late = step >= 0.8 * steps or (minutes and elapsed > 0.8 * minutes)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * (0.1 if late else 1.0)
        items = sampler.batch(batch)
        seeds = rng.integers(1 << 62, size=len(items))
        prepared = list(pool.map(lambda a: (crr_examples(a[0], np.random.default_rng(a[1])),
                                            partial_state(model, a[0], np.random.default_rng(a[1] + 1))),
                                 zip(items, seeds)))
        loss = torch.zeros((), device=device)
        ex = [e for e, _ in prepared if e is not None]
        if ex:
            f, g, t = (torch.from_numpy(np.concatenate(v)).to(device) for v in zip(*ex))
            gl = g.float() / T.ONE
            delta = TP.crr_apply(model.crr, f, exact=False)
            crr_bits = _bits(gl + delta, t).mean()
            hist["crr_bits"].append(float(crr_bits.detach()))
            hist["gauss_bits"].append(float(_bits(gl, t).mean()))
            loss = loss + crr_bits
        lo_t, span_t = (torch.from_numpy(np.stack(v)).double().to(device)
                        for v in zip(*(state for _, state in prepared)))
        mu, sigma, x = (torch.cat([it[key] for it in items]) for key in ("mu", "sigma", "x"))
        y_rec = mu + TP._interval_mean(lo_t, span_t, sigma)
        delta = model.cdr(model.cdr_input(y_rec, span_t, sigma))
        gate = torch.minimum((span_t - 1) / 2, 2 * sigma).float()
        q = float(model.config["quality"])
        with torch.no_grad():
            plain_i = ((model.base.synthesise(y_rec.float(), q).clamp(0, 1) - x) ** 2).mean((1, 2, 3))
        x_hat = model.base.synthesise(y_rec.float() + delta * gate, q).clamp(0, 1)
        mse_i = ((x_hat - x) ** 2).mean((1, 2, 3))
        mse, plain = 255 ** 2 * mse_i.mean(), 255 ** 2 * float(plain_i.mean())
        hist["cdr_mse"].append(float(mse.detach()))
        hist["plain_mse"].append(plain)
        loss = loss + (mse_i / plain_i.clamp_min(1e-12)).mean()   # relative error per state
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            w = slice(-log_every, None)
            m = {key: float(np.mean(v[w])) if v[w] else float("nan") for key, v in hist.items()}
            log(f"step {step + 1}/{steps}  CRR {m['crr_bits']:.4f} bits/trit (Gaussian "
                f"{m['gauss_bits']:.4f})  CDR mse {m['cdr_mse']:.4f} (plain {m['plain_mse']:.4f})  "
                f"{time.time() - t0:.0f} s")
    model.eval()
    model.update()
    tail = max(1, len(hist["cdr_mse"]) // 5)
    return {"steps_run": len(hist["cdr_mse"]),
            **{key: float(np.mean(v[-tail:])) if v else None for key, v in hist.items()}}


def main(argv=None) -> int:
    from neuralcodec.codecs.registry import load_model, shipped_weights
    from neuralcodec.codecs.weights import save_weights

    ap = argparse.ArgumentParser(prog="python -m neuralcodec.codecs.tritplane_train",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", required=True, help="training image folders")
    ap.add_argument("-o", "--output", required=True, help="weights file to write (.safetensors)")
    ap.add_argument("--base-weights", default=None, help="base hyperprior weights (default: shipped)")
    ap.add_argument("--init", default=None,
                    help="start from these trit-plane weights (context modules only; any base)")
    ap.add_argument("--quality", type=float, default=8.0)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=None, help="stop (and save) after this long")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    base_path = args.base_weights or shipped_weights("hyperprior")
    base = load_model("hyperprior", base_path, args.device)
    model = TP.TritPlaneCodec(base_sha256=base.weights_hash.hex(), quality=args.quality,
                              m=base.config["m"]).to(args.device)
    model.set_base(base)
    if args.init:
        from safetensors.torch import load_file
        model.load_state_dict({k: v.float() for k, v in load_file(args.init).items()})
    sampler = LatentSampler(model, args.data, args.crop, args.seed, args.max_images)
    print(f"{len(sampler.images)} images, base {base_path} ({base.weights_hash.hex()[:12]}), "
          f"device {args.device}")
    metrics = train(model, sampler, args.steps, args.batch, args.lr, args.log_every,
                    minutes=args.minutes)
    info = {"base_codec": "hyperprior", "base_sha256": base.weights_hash.hex(), "steps": args.steps,
            "init": args.init, "batch": args.batch, "crop": args.crop, "data": args.data, "final": metrics}
    save_weights(model.cpu(), args.output, info=info)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
