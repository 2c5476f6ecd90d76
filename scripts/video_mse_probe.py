#!/usr/bin/env python3
"""Capacity probe of video-rt's P-frame transforms: train them with MSE alone (latent not
quantised, no rate term) on DAVIS training pairs and follow the P-frame ceiling
(neuralcodec.video.ceiling) on held-out BasketballPass pairs. A structure whose unquantised
ceiling rises fast is one that can carry detail; one that stalls is limited by its transforms.

    python scripts/video_mse_probe.py --minutes 5 [--shipped | --config '{"m": 192}'] [--lr 3e-4]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from neuralcodec.video.ceiling import frame_pairs, mean_ceiling  # noqa: E402
from neuralcodec.video.io import iter_frames  # noqa: E402
from neuralcodec.video.pack import HELD_OUT_DAVIS  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "video"


def training_frames(frames_per_clip: int = 12, size=(427, 240)) -> list[list[np.ndarray]]:
    """The first frames of every DAVIS training clip (held-out ones left out), Lanczos-resized."""
    clips = [c for c in sorted((VIDEO / "davis2016_480p").iterdir()) if c.name not in HELD_OUT_DAVIS]
    return [[np.asarray(Image.open(f).convert("RGB").resize(size, Image.LANCZOS))
             for f in sorted(c.glob("*.jpg"))[:frames_per_clip]] for c in clips]


def batch(data, n: int, crop: int):
    """n random (reference, target) crops of consecutive frames, as float tensors."""
    refs, targets = [], []
    for _ in range(n):
        clip = random.choice(data)
        k = random.randrange(len(clip) - 1)
        h, w = clip[k].shape[:2]
        y, x = random.randrange(h - crop + 1), random.randrange(w - crop + 1)
        refs.append(clip[k][y:y + crop, x:x + crop])
        targets.append(clip[k + 1][y:y + crop, x:x + crop])
    as_t = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    return as_t(refs), as_t(targets)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--shipped", action="store_true", help="start from the shipped weights")
    ap.add_argument("--config", default="{}", help="model options of a fresh model (JSON)")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--quality", type=float, default=8.0)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from neuralcodec.video import weights as W
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    shipped = W.load()
    intra = shipped.intra.eval()
    model = shipped if args.shipped else W.create(intra_model=intra, **json.loads(args.config))
    held = list(iter_frames(VIDEO / "hevc_classD_BasketballPass", max_frames=16))
    pairs = frame_pairs(held, 4)

    def ceiling() -> dict:
        mean = mean_ceiling(model, pairs, args.quality)
        return {k: round(mean[k], 2) for k in ("i_frame", "copy", "rounded", "unquantised")}

    print("start", ceiling(), flush=True)
    data = training_frames()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    q = torch.full((args.batch_size,), args.quality)
    t0, step = time.time(), 0
    model.train()
    while time.time() - t0 < 60 * args.minutes:
        ref, x = batch(data, args.batch_size, args.crop)
        with torch.no_grad():
            ref_hat = intra(ref, q)["x_hat"].clamp(0, 1)
        ctx = model.context_from_frame(ref_hat)
        x_hat, _ = model.synthesise(model.analyse(x, ref_hat, ctx, args.quality), ref_hat, ctx, args.quality)
        loss = ((x_hat - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 400 == 0:
            print(f"step {step} ({time.time() - t0:.0f} s): {ceiling()}", flush=True)
    print(f"end after {step} steps: {ceiling()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
