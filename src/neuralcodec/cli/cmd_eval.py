"""`neuralcodec eval images|videos`: RD curves, BD-rates and an HTML report."""
from __future__ import annotations

import argparse
import shlex
import sys

_IMAGE_CODECS = ("jpeg, webp, avif, jpeg2000, jpegxl and neuralcodec's codecs "
                 "(factorized, hyperprior, ...; 'neuralcodec' = all of them; NAME=FILE.safetensors = "
                 "a weights file, e.g. an imported model, under a name)")
_VIDEO_CODECS = "x264, x265, svtav1, vp9"


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _common(p: argparse.ArgumentParser, codec_help: str) -> None:
    p.add_argument("--codecs", type=_csv, required=True, help=f"comma-separated: {codec_help}")
    p.add_argument("--out", required=True, help="output folder (created; reused to resume)")
    p.add_argument("--metrics", type=_csv, default=["psnr", "ms-ssim"],
                   help="comma-separated subset of psnr,ms-ssim (default both)")
    p.add_argument("--anchor", help="codec (or included curve) for BD-rates; default the first codec")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--include-results", nargs="+", default=[], metavar="FILE",
                   help="CompressAI-format results JSON files to add as extra curves")
    p.add_argument("--qualities", action="append", default=[], metavar="CODEC=Q1,Q2,...",
                   help="override a codec's quality sweep (repeatable)")


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="rate-distortion evaluation against other codecs",
                              description="Encode inputs with several codecs at a sweep of "
                              "qualities; write results.json (CompressAI format), a CSV, RD plots "
                              "and a self-contained report.html with BD-rates.")
    sub = p.add_subparsers(dest="eval_kind", metavar="KIND", required=True)
    pi = sub.add_parser("images", help="evaluate image codecs on image files or folders")
    pi.add_argument("inputs", nargs="+", metavar="DIR_OR_FILES")
    _common(pi, _IMAGE_CODECS)
    pi.add_argument("--device", default="cpu", help="device for neuralcodec codecs (default cpu)")
    pi.add_argument("--crop-image", help="image shown in the side-by-side crops (default the first)")
    pi.set_defaults(func=run)
    pv = sub.add_parser("videos", help="evaluate video codecs on video files or PNG-frame folders")
    pv.add_argument("inputs", nargs="+", metavar="VIDEO_OR_FRAME_DIR")
    _common(pv, _VIDEO_CODECS)
    pv.add_argument("--max-frames", type=int, default=0, help="use at most N frames (0: all)")
    pv.add_argument("--fps", type=float, help="frame rate of PNG-frame folders (default 30; "
                    "overrides a file's rate)")
    pv.set_defaults(func=run)


def run(args) -> int:
    from neuralcodec.eval.pipeline import EvalOptions, parse_qualities, run_eval

    opt = EvalOptions(kind=args.eval_kind, inputs=args.inputs, codecs=args.codecs, out=args.out,
                      metrics=args.metrics, anchor=args.anchor, workers=args.workers,
                      include=args.include_results, qualities=parse_qualities(args.qualities),
                      device=getattr(args, "device", "cpu"),
                      crop_image=getattr(args, "crop_image", None),
                      max_frames=getattr(args, "max_frames", 0) or 0,
                      fps=getattr(args, "fps", None),
                      command=" ".join(["neuralcodec"] + [shlex.quote(a) for a in sys.argv[1:]]))
    run_eval(opt)
    return 0
