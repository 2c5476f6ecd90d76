"""Training of the trit-plane context modules (CRR and CDR) on a frozen base model.

    python -m neuralcodec.codecs.tritplane_train --data DIR [DIR ...] -o trit-plane.safetensors \
        [--steps 3000] [--batch 8] [--crop 256] [--device cuda] [--base-weights FILE]

CRR: cross-entropy (bits) of the true trits of every plane under the refined probabilities,
on the elements where the Gaussian is not already certain (the ones CRR is run on).
CDR: MSE of the refined partial latent against the true latent (scaled like the synthesis
input, by the base's inverse gains), at a random plane and a random fraction of it decoded
in priority order. The base model stays frozen; only the small modules are written.
"""
from __future__ import annotations

import argparse
import json
import math
import time

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
            si = s[i].cpu().numpy().astype(np.int64)
            out.append({"s": si, "k": k[i].cpu().numpy(), "mu": mu[i:i + 1], "sigma": sigma[i:i + 1],
                        "y": y[i:i + 1], "inv_gain": inv_gain[i:i + 1],
                        "planes": TP.planes_needed(si)})
        return out


def crr_examples(item: dict):
    """(features, gaussian logits, trits) of the active elements of every plane."""
    s, k, planes = item["s"], item["k"], item["planes"]
    feats, gs, ts = [], [], []
    for p in range(planes, 0, -1):
        lo, sub = TP.plane_start(s, planes, p), 3 ** (p - 1)
        masses = T.trit_masses(lo.reshape(-1), sub, k.reshape(-1))
        active = np.flatnonzero(T.normalize_freqs(masses + 1).max(1) < TP.CERTAIN)
        if not active.size:
            continue
        g = T.gauss_logits(masses)
        feats.append(TP.crr_features(lo, sub, k, g)[active])
        gs.append(g[active])
        ts.append(((s - lo) // sub).reshape(-1)[active])
    if not feats:
        return None
    return np.concatenate(feats), np.concatenate(gs), np.concatenate(ts)


def partial_state(model: TP.TritPlaneCodec, item: dict, rng) -> tuple[np.ndarray, np.ndarray]:
    """Intervals after a random number of planes and a random fraction of the next one."""
    s, k, planes = item["s"], item["k"], item["planes"]
    p = int(rng.integers(1, planes + 1))
    lo, sub = TP.plane_start(s, planes, p), 3 ** (p - 1)
    span = np.full(s.shape, 3 * sub, np.int64)
    masses = T.trit_masses(lo.reshape(-1), sub, k.reshape(-1))
    order = T.priority_order(T.normalize_freqs(masses + 1))
    n = int(rng.integers(0, len(order) + 1))
    idx = order[:n]
    trits = ((s - lo) // sub).reshape(-1)[idx]
    lo.reshape(-1)[idx] += trits * sub
    span.reshape(-1)[idx] = sub
    return lo, span


def _bits(logits: torch.Tensor, trits: torch.Tensor) -> torch.Tensor:
    return -torch.log_softmax(logits * math.log(2.0), 1).gather(1, trits[:, None])[:, 0] / math.log(2.0)


def train(model: TP.TritPlaneCodec, sampler: LatentSampler, steps: int, batch: int, lr: float = 1e-3,
          log_every: int = 50, log=print) -> dict:
    """Train CRR and CDR jointly (separate losses, one optimiser); returns final metrics."""
    device = model._device()
    model.train()
    opt = torch.optim.Adam(list(model.crr.parameters()) + list(model.cdr.parameters()), lr=lr)
    rng = np.random.default_rng(1)
    hist = {"crr_bits": [], "gauss_bits": [], "cdr_mse": [], "plain_mse": []}
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * (0.1 if step >= 0.8 * steps else 1.0)
        items = sampler.batch(batch)
        loss = torch.zeros((), device=device)
        ex = [e for e in (crr_examples(it) for it in items) if e is not None]
        if ex:
            f, g, t = (torch.from_numpy(np.concatenate(v)).to(device) for v in zip(*ex))
            gl = g.float() / T.ONE
            delta = model.crr((f.float() / T.ONE)[:, :, None, None])[:, :, 0, 0]
            crr_bits = _bits(gl + delta, t).mean()
            hist["crr_bits"].append(float(crr_bits.detach()))
            hist["gauss_bits"].append(float(_bits(gl, t).mean()))
            loss = loss + crr_bits
        mse, plain = 0.0, 0.0
        for it in items:
            lo, span = partial_state(model, it, rng)
            lo_t, span_t = (torch.from_numpy(v)[None].double().to(device) for v in (lo, span))
            y_rec = it["mu"] + TP._interval_mean(lo_t, span_t, it["sigma"])
            delta = model.cdr(model.cdr_input(y_rec, span_t, it["sigma"]))
            gate = torch.minimum((span_t - 1) / 2, 2 * it["sigma"]).float()
            err = ((y_rec.float() + delta * gate - it["y"]) * it["inv_gain"]) ** 2
            mse = mse + err.mean() / len(items)
            plain += float((((y_rec.float() - it["y"]) * it["inv_gain"]) ** 2).mean()) / len(items)
        hist["cdr_mse"].append(float(mse.detach()))
        hist["plain_mse"].append(plain)
        loss = loss + mse / max(plain, 1e-9)          # relative, so both losses have unit scale
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
    tail = max(1, steps // 5)
    return {key: float(np.mean(v[-tail:])) if v else None for key, v in hist.items()}


def main(argv=None) -> int:
    from neuralcodec.codecs.registry import load_model, save_weights, shipped_weights

    ap = argparse.ArgumentParser(prog="python -m neuralcodec.codecs.tritplane_train",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", required=True, help="training image folders")
    ap.add_argument("-o", "--output", required=True, help="weights file to write (.safetensors)")
    ap.add_argument("--base-weights", default=None, help="base hyperprior weights (default: shipped)")
    ap.add_argument("--quality", type=float, default=8.0)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    base_path = args.base_weights or shipped_weights("hyperprior")
    base = load_model("hyperprior", base_path, args.device)
    model = TP.TritPlaneCodec(base_sha256=base.weights_hash.hex(), quality=args.quality,
                              m=base.config["m"]).to(args.device)
    model.set_base(base)
    sampler = LatentSampler(model, args.data, args.crop, args.seed, args.max_images)
    print(f"{len(sampler.images)} images, base {base_path} ({base.weights_hash.hex()[:12]}), "
          f"device {args.device}")
    metrics = train(model, sampler, args.steps, args.batch, args.lr)
    info = {"base_codec": "hyperprior", "base_sha256": base.weights_hash.hex(), "steps": args.steps,
            "batch": args.batch, "crop": args.crop, "data": args.data, "final": metrics}
    save_weights(model.cpu(), args.output, info=info)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
