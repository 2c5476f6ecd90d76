#!/usr/bin/env python3
"""How close video-rt's rate control gets to its target: encode clips at target rates and
compare the achieved rate (whole .ncv file, header included) with the target.

    python bench/video_rate.py [--weights W] [--intra-weights H] [--clips PATH ...] [--frames 30]
                               [--kbps 100 200 400] [--bpp ...] [--fps 25] [--intra-period 32]
                               [--device cpu|cuda] [--out results.json]

Clips: frame folders (PNG, or WebP/JPEG frames read with Pillow) or video files (default:
BasketballPass and a DAVIS clip from ../shared/data/video). For each clip and target:
achieved kbit/s (at ``--fps``) and its error, the range of frame qualities, the retries, the
mean PSNR-RGB of the decoded frames. ``--intra-weights`` pairs the P-frame weights
with another I-frame codec file than the installed one (weights trained with older
hyperprior weights).
"""
import argparse
import io
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from neuralcodec.eval.metrics import psnr  # noqa: E402
from neuralcodec.video.codec import decode_frames, encode_frames  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "video"
DEFAULT = [DATA / "hevc_classD_BasketballPass", DATA / "davis2016_480p" / "cows"]


def read_clip(path: Path, n: int) -> list[np.ndarray]:
    """The first ``n`` frames of a frame folder (any image format) or a video file, as RGB."""
    if path.is_dir():
        from PIL import Image
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".webp", ".jpg", ".jpeg"))[:n]
        return [np.asarray(Image.open(f).convert("RGB")) for f in files]
    from neuralcodec.video.io import iter_frames
    return list(iter_frames(path, n))


def run_target(model, frames, fps, target_bits, period, device, half):
    h, w = frames[0].shape[:2]
    buf, stats = io.BytesIO(), {}
    t0 = time.perf_counter()
    encode_frames(model, frames, buf, w, h, (fps, 1), 4.0, period, device, half, target_bits=target_bits,
                  rate_stats=stats, rate_frames=len(frames))      # as the CLI does for a frame folder
    seconds = time.perf_counter() - t0
    buf.seek(0)
    scores = [psnr(a, b) for a, b in zip(frames, decode_frames(model, buf, device, half))]
    n = len(frames)
    return {"target_kbps": target_bits * fps / 1000, "achieved_kbps": 8 * len(buf.getvalue()) * fps / n / 1000,
            "bpp": 8 * len(buf.getvalue()) / (n * w * h), "psnr": float(np.mean(scores)),
            "encode_fps": n / seconds, **{k: stats[k] for k in ("quality_min", "quality_max", "quality_mean",
                                                                  "retries")}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--intra-weights", default=None, help="hyperprior weights file to pair the video weights with")
    ap.add_argument("--clips", nargs="*", default=None)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--kbps", type=float, nargs="*", default=None, help="target rates (kbit/s at --fps)")
    ap.add_argument("--bpp", type=float, nargs="*", default=None, help="target rates in bits per pixel")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--intra-period", type=int, default=32)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    half = device.type == "cuda"
    from neuralcodec.video.weights import load
    model = load(None, args.weights, device, intra_weights=args.intra_weights)
    results = {}
    for clip in [Path(c) for c in (args.clips or DEFAULT)]:
        frames = read_clip(clip, args.frames)
        h, w = frames[0].shape[:2]
        targets = [k * 1000 / args.fps for k in (args.kbps or [])] + [b * w * h for b in (args.bpp or [])]
        if not targets:                 # 0.05, 0.1 and 0.2 bpp
            targets = [b * w * h for b in (0.05, 0.1, 0.2)]
        rows = []
        for bits in targets:
            row = run_target(model, frames, args.fps, bits, args.intra_period, device, half)
            err = 100 * (row["achieved_kbps"] / row["target_kbps"] - 1)
            row["error_percent"] = err
            rows.append(row)
            print(f"{clip.name} {w}x{h} {len(frames)} frames: target {row['target_kbps']:.1f} kbit/s -> "
                  f"{row['achieved_kbps']:.1f} ({err:+.1f}%), {row['bpp']:.4f} bpp, {row['psnr']:.2f} dB, "
                  f"q {row['quality_min']:.2f}..{row['quality_max']:.2f} (mean {row['quality_mean']:.2f}), "
                  f"{row['retries']} retries, {row['encode_fps']:.2f} fps", flush=True)
        results[clip.name] = {"size": [w, h], "frames": len(frames), "fps": args.fps, "rows": rows}
    errors = [abs(r["error_percent"]) for v in results.values() for r in v["rows"]]
    print(f"mean |error| {np.mean(errors):.1f}%, max {np.max(errors):.1f}% over {len(errors)} encodes")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
