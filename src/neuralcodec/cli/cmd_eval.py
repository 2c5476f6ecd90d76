"""`neuralcodec eval images|videos`: RD curves, BD-rates and an HTML report."""
from __future__ import annotations

import argparse
import shlex
import sys

from neuralcodec.codecs.catalog import IMAGE_CODECS, VIDEO_CODECS
from neuralcodec.limits import DEFAULT_MAX_PIXELS

_IMAGE_CODECS = (f"jpeg, webp, avif, jpeg2000, jpegxl and neuralcodec's codecs "
                 f"({', '.join(IMAGE_CODECS)}; 'neuralcodec' = all with shipped weights; NAME=FILE.safetensors = "
                 "a weights file, e.g. an imported model, under a name)")
_VIDEO_CODECS = f"x264, x265, svtav1, vp9 and neuralcodec's {', '.join(VIDEO_CODECS)}"


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
    p.add_argument("--weights", action="append", default=[], metavar="CODEC=FILE",
                   help="evaluate these weights (safetensors) for one of neuralcodec's codecs "
                        "instead of the shipped ones (repeatable)")


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="rate-distortion evaluation against other codecs",
                              description="Encode inputs with several codecs at a sweep of "
                              "qualities; write results.json (CompressAI format), a CSV, RD plots "
                              "and a self-contained report.html with BD-rates.")
    sub = p.add_subparsers(dest="eval_kind", metavar="KIND", required=True)
    pi = sub.add_parser("images", help="evaluate image codecs on image files or folders")
    pi.add_argument("inputs", nargs="+", metavar="DIR_OR_FILES",
                    help="image files, or folders of them (not recursive)")
    _common(pi, _IMAGE_CODECS)
    pi.add_argument("--device", default="cpu", help="device for neuralcodec codecs (default cpu)")
    pi.add_argument("--refine", action="append", default=[], metavar="CODEC=STEPS",
                    help="encode CODEC (one of neuralcodec's) with encoder-side latent refinement of "
                         "STEPS steps (see `encode --refine`; repeatable)")
    pi.add_argument("--crop-image", help="image shown in the side-by-side crops (default the first)")
    pi.add_argument("--avif-subsampling", choices=["4:4:4", "4:2:0"], default="4:4:4",
                    help="AVIF chroma subsampling (default 4:4:4: the metrics are on RGB; 4:2:0 is "
                         "the web setting and favours every codec compared with it)")
    pi.add_argument("--avif-speed", type=int, default=6, metavar="S",
                    help="libaom speed 0 (slowest, best) .. 10 (default 6)")
    pi.add_argument("--no-published", dest="published", action="store_false",
                    help="leave out the published Kodak curves (CompressAI's models, VTM, AV1) that "
                         "are added when the inputs are the 24 Kodak images")
    pi.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                    help=f"skip larger images (width x height; default {DEFAULT_MAX_PIXELS} = 16384x16384)")
    pi.set_defaults(func=run)
    pv = sub.add_parser("videos", help="evaluate video codecs on video files or PNG-frame folders")
    pv.add_argument("inputs", nargs="+", metavar="VIDEO_OR_FRAME_DIR",
                    help="video files or folders of PNG frames (a folder without frames is "
                         "searched one level down)")
    _common(pv, _VIDEO_CODECS)
    pv.add_argument("--max-frames", type=int, default=0, help="use at most N frames (0: all)")
    pv.add_argument("--fps", type=float, help="frame rate of PNG-frame folders (default 30; "
                    "overrides a file's rate)")
    pv.add_argument("--device", default="cpu", help="device for neuralcodec's video codec (default cpu)")
    pv.add_argument("--intra-period", type=int, default=32, metavar="N",
                    help="video-rt: I-frame every N frames (0: first only; default 32)")
    pv.add_argument("--adaptive-intra", action="store_true",
                    help="video-rt: the encoder codes any frame as an I-frame where that costs less "
                         "(as encode --adaptive-intra)")
    pv.set_defaults(func=run)


def run(args) -> int:
    from neuralcodec.errors import InputError
    from neuralcodec.eval.pipeline import EvalOptions, parse_qualities, parse_refine, parse_weights, run_eval

    options = parse_refine(getattr(args, "refine", []), parse_weights(args.weights))
    if args.eval_kind == "images":
        options["avif"] = {"subsampling": args.avif_subsampling, "speed": args.avif_speed}
    else:
        if args.intra_period < 0:
            raise InputError("--intra-period must be >= 0")
        if args.max_frames < 0:
            raise InputError("--max-frames must be >= 0 (0: all frames)")
        for name in VIDEO_CODECS:
            options.setdefault(name, {})["intra_period"] = args.intra_period
            if args.adaptive_intra:
                options[name]["adaptive_intra"] = True
    opt = EvalOptions(kind=args.eval_kind, inputs=args.inputs, codecs=args.codecs, out=args.out,
                      metrics=args.metrics, anchor=args.anchor, workers=args.workers,
                      include=args.include_results, qualities=parse_qualities(args.qualities),
                      device=args.device, crop_image=getattr(args, "crop_image", None),
                      max_frames=getattr(args, "max_frames", 0) or 0,
                      fps=getattr(args, "fps", None), codec_options=options,
                      published=getattr(args, "published", True),
                      max_pixels=getattr(args, "max_pixels", DEFAULT_MAX_PIXELS),
                      command=" ".join(["neuralcodec"] + [shlex.quote(a) for a in sys.argv[1:]]))
    run_eval(opt)
    return 0
