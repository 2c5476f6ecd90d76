#!/usr/bin/env python3
"""Capacity probe of video-rt's P-frame transforms: train them with MSE alone (latent not
quantised, no rate term) on pairs of consecutive training frames and follow the P-frame ceiling
(neuralcodec.video.ceiling) on held-out BasketballPass pairs. A structure whose unquantised
ceiling rises fast is one that can carry detail; one that stalls is limited by its transforms.

Several variants train side by side on the same batches (each with its own Adam), so that
they see equal data: ``--config`` may be given more than once; ``shipped`` starts from the
shipped weights, a JSON object is a fresh model's options (a ``"lr"`` key overrides ``--lr``,
``"clip"`` clips the gradient norm; ``"shipped": true`` starts from the shipped weights, e.g.
``{"shipped": true, "lr": 1e-4}`` at another rate, ``{"shipped": true, "blocks": 2}`` with new
modules added at their no-op start: options go on top of the shipped weights' configuration).

    python scripts/video_mse_probe.py --minutes 5 [--shipped | --config '{"m": 192}'] [--lr 3e-4]
    python scripts/video_mse_probe.py --device cuda --minutes 5 --batch-size 16 --crop 256 \\
        --size 640 360 --frames /tmp/video/video-probe/* --held /tmp/val/val-probe/BasketballPass \\
        --config shipped --config '{}' --config '{"n": 128, "f": 96}' --out probe.json
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
from neuralcodec.video.model import STRIDE  # noqa: E402
from neuralcodec.video.pack import HELD_OUT_DAVIS  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "video"
SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")

# the ceiling's figures followed (the region split says which half of the frame a variant helps)
ROW_KEYS = ("i_frame", "copy", "rounded", "unquantised", "unquantised_still", "unquantised_moving",
            "aligned_still", "aligned_moving")


def davis_training_clips() -> list[Path]:
    """The DAVIS clips of the shared data that are not held out."""
    return [c for c in sorted((VIDEO / "davis2016_480p").iterdir()) if c.is_dir() and c.name not in HELD_OUT_DAVIS]


def training_frames(clips, size=(427, 240), frames_per_clip: int = 12, device="cpu") -> list[torch.Tensor]:
    """The first frames of each clip folder, Lanczos-resized: one uint8 (T, 3, H, W) tensor per clip."""
    out = []
    for clip in clips:
        files = sorted(f for f in Path(clip).iterdir() if f.suffix.lower() in SUFFIXES)[:frames_per_clip]
        if len(files) < 2:
            continue
        rgb = np.stack([np.asarray(Image.open(f).convert("RGB").resize(size, Image.LANCZOS)) for f in files])
        out.append(torch.from_numpy(rgb).permute(0, 3, 1, 2).contiguous().to(device))
    if not out:
        raise SystemExit("error: no clip with two frames or more in --frames")
    return out


def batch(data: list[torch.Tensor], n: int, crop: int):
    """n random (reference, target) crops of consecutive frames, as float tensors."""
    refs, targets = [], []
    for _ in range(n):
        clip = random.choice(data)
        k = random.randrange(clip.shape[0] - 1)
        h, w = clip.shape[-2:]
        y, x = random.randrange(h - crop + 1), random.randrange(w - crop + 1)
        refs.append(clip[k, :, y:y + crop, x:x + crop])
        targets.append(clip[k + 1, :, y:y + crop, x:x + crop])
    return torch.stack(refs).float() / 255, torch.stack(targets).float() / 255


class Variant:
    """One structure under test: its model, optimiser and ceiling history."""

    def __init__(self, spec: str, intra, lr: float, device):
        from neuralcodec.codecs.weights import read_metadata
        from neuralcodec.video.train import build_model
        from neuralcodec.video.weights import shipped_weights
        self.spec = spec
        config = {"shipped": True} if spec == "shipped" else json.loads(spec)
        self.lr = float(config.pop("lr", lr))
        self.clip = float(config.pop("clip", 0))    # gradient-norm clipping (0: none)
        init = str(shipped_weights()) if config.pop("shipped", False) else ""
        if init and config:     # options on top of the shipped weights' own configuration
            config = {**json.loads(read_metadata(init)["config"]), **config}
        # the shipped weights as they are, or (with options) loaded into the options' model
        # wherever names and shapes fit, the new modules left at their no-op start
        self.model = build_model(init, bool(init and config), config, device, intra=intra,
                                 log=lambda *a, **k: None)
        self.params_list = [p for p in self.model.parameters() if p.requires_grad]
        self.params = sum(p.numel() for p in self.params_list)
        self.opt = torch.optim.Adam(self.params_list, lr=self.lr)
        self.history: list[dict] = []

    def step(self, x, ref_hat, quality: float) -> None:
        m = self.model
        ctx = m.context_from_frame(ref_hat)
        x_hat, _ = m.synthesise(m.analyse(x, ref_hat, ctx, quality), ref_hat, ctx, quality)
        loss = ((x_hat - x) ** 2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.params_list, self.clip)
        self.opt.step()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--shipped", action="store_true", help="a variant from the shipped weights (= --config shipped)")
    ap.add_argument("--config", action="append", default=[], help="'shipped' or a fresh model's options (JSON); repeatable")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--quality", type=float, default=8.0)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--size", type=int, nargs=2, default=(427, 240), metavar=("W", "H"), help="training frames are resized to this")
    ap.add_argument("--frames", nargs="+", help="training clip folders (default: the shared DAVIS training clips)")
    ap.add_argument("--frames-per-clip", type=int, default=12)
    ap.add_argument("--held", default=str(VIDEO / "hevc_classD_BasketballPass"), help="held-out clip for the ceiling")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--eval-every", type=float, default=0, help="seconds between ceilings (0: every 400 steps)")
    ap.add_argument("--out", help="write the variants' ceiling histories here (JSON)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    specs = (["shipped"] if args.shipped else []) + args.config or ["{}"]
    if args.crop % STRIDE:
        raise SystemExit(f"error: --crop must be a multiple of {STRIDE}")
    if args.crop > min(args.size):
        raise SystemExit(f"error: --crop {args.crop} is larger than the frames ({args.size[0]}x{args.size[1]})")
    from neuralcodec.video import weights as W
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = dev.type == "cuda"
    intra = W.intra_codec("hyperprior", dev).eval()
    for p in intra.parameters():
        p.requires_grad_(False)
    variants = [Variant(s, intra, args.lr, dev) for s in specs]
    pairs = frame_pairs(list(iter_frames(args.held, max_frames=16)), 4)
    data = training_frames(args.frames or davis_training_clips(), tuple(args.size), args.frames_per_clip, dev)
    q = torch.full((args.batch_size,), args.quality, device=dev)
    t0, step = time.time(), 0
    last_eval = t0

    def evaluate(tag: str) -> None:
        for v in variants:
            mean = mean_ceiling(v.model, pairs, args.quality, dev)
            row = {"step": step, "seconds": round(time.time() - t0, 1),
                   **{k: round(mean[k], 2) for k in ROW_KEYS}}
            v.history.append(row)
            print(f"{tag} {v.spec} ({v.params / 1e6:.2f} M): {row}", flush=True)
        if args.out:
            tmp = Path(args.out).with_suffix(".tmp")
            tmp.write_text(json.dumps({"args": vars(args), "variants": [
                {"spec": v.spec, "lr": v.lr, "params": v.params, "history": v.history} for v in variants]}, indent=1))
            tmp.replace(args.out)

    evaluate("start")
    for v in variants:
        v.model.train()
    train_start = time.time()      # --minutes of training, not counting the first ceilings
    while time.time() - train_start < 60 * args.minutes:
        ref, x = batch(data, args.batch_size, args.crop)
        with torch.no_grad():
            ref_hat = intra(ref, q)["x_hat"].clamp(0, 1)
        for v in variants:
            v.step(x, ref_hat, args.quality)
        step += 1
        due = (time.time() - last_eval >= args.eval_every) if args.eval_every else step % 400 == 0
        if due:
            last_eval = time.time()
            evaluate(f"step {step} ({last_eval - t0:.0f} s)")
            for v in variants:
                v.model.train()
    evaluate(f"end after {step} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
