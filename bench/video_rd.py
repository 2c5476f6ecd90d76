#!/usr/bin/env python3
"""video-rt rate-distortion on held-out clips: BD-rate (PSNR-RGB) against x264 and x265
`medium`, and the cost of a P-frame relative to an I-frame of the same content.

    python bench/video_rd.py [--weights W] [--intra-weights H] [--clips PATH ...] [--frames 30]
                             [--qualities 2 3.5 5 6.5 8] [--intra-period 32] [--device cpu|cuda]
                             [--codecs x264 x265] [--crf 22 27 32 37 42 47 51] [--no-intra]
                             [--adaptive-intra] [--out results.json]

Clips: frame folders or video files; default the clean held-out clips of the shared data
(BasketballPass, vid4 walk: never in a training part, see neuralcodec.video.pack); the
held-out DAVIS clips are .carry/val-video-NN/davis_* (lossless WebP frames are converted to a
temporary PNG folder, which the classical codecs' reader needs). Every codec sees the same
first ``--frames`` frames: RGB references as the eval reads them (4:2:0 sources converted with
BT.709 limited range, PNG frames as they are; odd sizes cropped to even). Our rate is the
whole .ncv file (header included); x264's and x265's the sum of their packets (CRF sweep,
preset medium, through PyAV, ``neuralcodec.eval.video_codecs``). PSNR-RGB is the mean of
per-frame PSNRs; BD-rates use pchip (``neuralcodec.eval.bdrate``). The P-frame cost
(``neuralcodec.video.rd.p_frame_cost``) compares the P-frames' (bpp, PSNR) with all-intra
coding of the same frames at the same qualities (``--no-intra`` skips it); target <= 0.5.
``--adaptive-intra`` lets the encoder code any frame as an I-frame where that costs less
(rate + lambda * distortion; ``encode --adaptive-intra``); the P-frame cost is then of the
P-frames it kept.
"""
import argparse
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from neuralcodec.eval.bdrate import BDError, bd_rate  # noqa: E402
from neuralcodec.eval.video_codecs import encode_and_score, get_video_codec  # noqa: E402
from neuralcodec.io.frames import iter_source_frames  # noqa: E402
from neuralcodec.video.pack import HELD_OUT_CLIPS  # noqa: E402
from neuralcodec.video.rd import clip_rd, code_clip  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "video"


def png_clip(path: Path, frames: int, tmp: Path) -> str:
    """``path`` itself, or a PNG copy of the first frames of a folder of other image frames."""
    if not path.is_dir() or any(f.suffix.lower() == ".png" for f in path.iterdir()):
        return str(path)
    from PIL import Image
    out = tmp / path.name
    out.mkdir()
    files = sorted(f for f in path.iterdir() if f.suffix.lower() in (".webp", ".jpg", ".jpeg"))[:frames]
    for i, f in enumerate(files):
        Image.open(f).convert("RGB").save(out / f"f{i + 1:03d}.png")
    return str(out)


def bd(anchor, rows):
    try:
        return bd_rate([r["bpp"] for r in anchor], [r["psnr"] for r in anchor],
                       [r["bpp"] for r in rows], [r["psnr"] for r in rows])
    except BDError as exc:
        print(f"  BD-rate not computable: {exc}")
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--intra-weights", default=None,
                    help="I-frame (hyperprior) weights file the video weights were trained with, if not the installed one")
    ap.add_argument("--clips", nargs="*", default=None)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--qualities", type=float, nargs="*", default=[2.0, 3.5, 5.0, 6.5, 8.0])
    ap.add_argument("--intra-period", type=int, default=32)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--codecs", nargs="*", default=["x264", "x265"], help="classical anchors (none: skip)")
    ap.add_argument("--crf", type=int, nargs="*", default=None,
                    help="CRF values (default: the eval's 22 27 32 37; add higher ones for an overlap)")
    ap.add_argument("--no-intra", action="store_true", help="skip the all-intra run (no P-frame cost)")
    ap.add_argument("--adaptive-intra", action="store_true",
                    help="the encoder chooses I or P for every frame by RD cost")
    args = ap.parse_args()
    from neuralcodec.video.weights import load
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = load(None, args.weights, device, intra_weights=args.intra_weights)
    half = device.type == "cuda"
    clips = [Path(c) for c in args.clips] if args.clips else [DATA / name for name in HELD_OUT_CLIPS]
    anchors = [get_video_codec(name) for name in args.codecs]
    results, summary = {}, {name: [] for name in ["p_frame_cost"] + args.codecs}
    tmp = Path(tempfile.mkdtemp(prefix="video_rd."))
    try:
        for clip in clips:
            source = png_clip(clip, args.frames, tmp)
            frames = [rgb for rgb, _ in iter_source_frames(source, args.frames)]
            h, w = frames[0].shape[:2]
            if args.no_intra:
                rows = [code_clip(model, frames, q, args.intra_period, device, half, args.adaptive_intra)
                        for q in args.qualities]
                entry = {"size": [w, h], "frames": len(frames), "rows": rows}
            else:
                entry = clip_rd(model, frames, args.qualities, args.intra_period, device, half,
                                adaptive_intra=args.adaptive_intra)
            for r in entry["rows"]:
                print(f"{clip.name} video-rt q{r['quality']:g}: {r['bpp']:.4f} bpp {r['psnr']:.2f} dB {r['kinds']} "
                      f"(enc {r['encode_fps']:.2f} fps, dec {r['decode_fps']:.2f} fps on {device})", flush=True)
            if not args.no_intra:
                cost = entry["p_frame_cost"]
                text = f"{cost['ratio']:.3f}" if cost["ratio"] is not None else cost["note"]
                print(f"{clip.name}: P-frame bits / I-frame bits at equal PSNR: {text}", flush=True)
                if cost["ratio"] is not None:
                    summary["p_frame_cost"].append(cost["ratio"])
            for codec in anchors:
                ref = []
                for crf in args.crf or codec.qualities:
                    row = encode_and_score(codec, crf, source, 25.0, args.frames, ("psnr",))
                    ref.append({"crf": crf, "bpp": row["bpp"], "psnr": row["psnr-rgb"]})
                    print(f"{clip.name} {codec.name} crf{crf}: {row['bpp']:.4f} bpp {row['psnr-rgb']:.2f} dB", flush=True)
                entry[codec.name] = ref
                value = bd(ref, entry["rows"])
                entry[f"bd_rate_vs_{codec.name}"] = value
                if value is not None:
                    summary[codec.name].append(value)
                    print(f"{clip.name}: BD-rate (PSNR-RGB) vs {codec.name} medium: {value:+.1f}%", flush=True)
            results[clip.name] = entry
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, values in summary.items():
        if values and name == "p_frame_cost":
            print(f"mean P-frame cost ratio over {len(values)} clips: {float(np.mean(values)):.3f}")
        elif values:
            print(f"mean BD-rate vs {name} medium over {len(values)} clips: {float(np.mean(values)):+.1f}%")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
