#!/usr/bin/env python3
"""video-rt rate-distortion on video clips and BD-rate (PSNR-RGB) against x265 `medium`.

    python bench/video_rd.py [--weights W] [--clips PATH ...] [--frames 32]
                             [--qualities 2 3.5 5 6.5 8] [--intra-period 32] [--device cpu|cuda]
                             [--crf 22 27 32 37 42 47 51]
                             [--out results.json]

Clips: frame folders or video files (default: the clips in ../shared/data/video). Both codecs
see the same first ``--frames`` frames: RGB references as the eval reads them (4:2:0 sources
converted with BT.709 limited range, PNG frames as they are; odd sizes cropped to even for
x265). Our rate is the whole .ncv file (header included); x265's is the sum of its packets
(CRF 22/27/32/37, preset medium, through PyAV, `neuralcodec.eval.video_codecs`). PSNR-RGB is
the mean of per-frame PSNRs; BD-rate uses pchip (`neuralcodec.eval.bdrate`).
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

from neuralcodec.eval.bdrate import bd_rate  # noqa: E402
from neuralcodec.eval.metrics import psnr  # noqa: E402
from neuralcodec.eval.video_codecs import encode_and_score, get_video_codec, iter_source_frames  # noqa: E402
from neuralcodec.video.codec import decode_frames, encode_frames  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "video"


def ours(model, frames, quality, period, device, half):
    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    t0 = time.perf_counter()
    encode_frames(model, frames, buf, w, h, (25, 1), quality, period, device, half)
    t1 = time.perf_counter()
    buf.seek(0)
    scores = [psnr(ref, rec) for ref, rec in zip(frames, decode_frames(model, buf, device, half))]
    t2 = time.perf_counter()
    n = len(frames)
    return {"quality": quality, "bpp": 8 * len(buf.getvalue()) / (n * w * h), "psnr-rgb": float(np.mean(scores)),
            "encode_fps": n / (t1 - t0), "decode_fps": n / (t2 - t1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--clips", nargs="*", default=None)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--qualities", type=float, nargs="*", default=[2.0, 3.5, 5.0, 6.5, 8.0])
    ap.add_argument("--intra-period", type=int, default=32)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-x265", action="store_true")
    ap.add_argument("--crf", type=int, nargs="*", default=None,
                    help="x265 CRF values (default: the eval's 22 27 32 37; add higher ones for an overlap)")
    args = ap.parse_args()
    from neuralcodec.video.weights import load
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = load(None, args.weights, device)
    half = device.type == "cuda"
    clips = args.clips or sorted(str(p) for p in DEFAULT.iterdir())
    x265 = None if args.no_x265 else get_video_codec("x265")
    results, bds = {}, []
    for clip in clips:
        frames = [rgb for rgb, _ in iter_source_frames(clip, args.frames)]
        name = Path(clip).name
        h, w = frames[0].shape[:2]
        rows = [ours(model, frames, q, args.intra_period, device, half) for q in args.qualities]
        entry = {"size": [w, h], "frames": len(frames), "video-rt": rows}
        for r in rows:
            print(f"{name} video-rt q{r['quality']:g}: {r['bpp']:.4f} bpp {r['psnr-rgb']:.2f} dB "
                  f"(enc {r['encode_fps']:.2f} fps, dec {r['decode_fps']:.2f} fps on {device})", flush=True)
        if x265 is not None:
            ref = []
            for crf in args.crf or x265.qualities:
                row = encode_and_score(x265, crf, clip, 25.0, args.frames, ("psnr",))
                ref.append({"crf": crf, "bpp": row["bpp"], "psnr-rgb": row["psnr-rgb"]})
                print(f"{name} x265 crf{crf}: {row['bpp']:.4f} bpp {row['psnr-rgb']:.2f} dB", flush=True)
            entry["x265"] = ref
            try:
                bd = bd_rate([r["bpp"] for r in ref], [r["psnr-rgb"] for r in ref],
                             [r["bpp"] for r in rows], [r["psnr-rgb"] for r in rows])
            except Exception as exc:     # no overlap etc.
                bd = None
                print(f"{name}: BD-rate not computable: {exc}")
            entry["bd_rate_vs_x265"] = bd
            if bd is not None:
                bds.append(bd)
                print(f"{name}: BD-rate (PSNR-RGB) vs x265 medium: {bd:+.1f}%", flush=True)
        results[name] = entry
    if bds:
        print(f"mean BD-rate over {len(bds)} clips: {float(np.mean(bds)):+.1f}%")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
