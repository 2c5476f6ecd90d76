"""`neuralcodec encode`: image -> .ncb bitstream (videos: see neuralcodec.cli.video)."""
from __future__ import annotations

import contextlib
import sys
import time

from neuralcodec.cli.io_utils import add_output_options
from neuralcodec.cli.runtime import add_backend_options, add_runtime_options, apply_backend, apply_runtime
from neuralcodec.codecs.catalog import MAX_REFINE_STEPS, model_help
from neuralcodec.limits import DEFAULT_MAX_PIXELS


def register(sub) -> None:
    p = sub.add_parser("encode", help="compress an image (PNG/JPEG/WebP/TIFF/BMP) to .ncb, or a video (mp4/mkv/mov/webm/y4m, PNG folder) to .ncv")
    p.add_argument("input", help="image file, video file, or folder of PNG frames (a video)")
    p.add_argument("-o", "--output", required=True,
                   help="bitstream to write: .ncb for an image, .ncv for a video")
    p.add_argument("--model", default=None, help=model_help())
    target = p.add_mutually_exclusive_group()
    target.add_argument("--quality", type=float, default=None, help="real number in [1, 8] (default 4)")
    target.add_argument("--target-bpp", type=float, default=None, metavar="X",
                        help="highest quality whose size is at most X bits per pixel")
    target.add_argument("--target-psnr", type=float, default=None, metavar="Y",
                        help="lowest quality whose PSNR is at least Y dB")
    target.add_argument("--target-kbps", type=float, default=None, metavar="R",
                        help="video: hold R kbit/s over the sequence (per-frame qualities; with --target-bpp "
                             "for video the same, in bits per pixel)")
    p.add_argument("--intra-period", type=int, default=None, metavar="N",
                   help="video: frames per GOP (I-frame every N frames; 0 = first only; default 32)")
    p.add_argument("--adaptive-intra", action="store_true",
                   help="video: code any frame as an I-frame where that costs less than a P-frame "
                        "(rate + lambda x distortion; 4-5x the encode time on a CPU)")
    p.add_argument("--frames", type=int, default=None, metavar="N",
                   help="video: encode the first N frames (N >= 1; default: all)")
    p.add_argument("--refine", type=int, default=0, metavar="STEPS",
                   help="image: optimise the latent for this picture in STEPS steps before coding it "
                        "(encoder only: same decoder and format; e.g. 50: about 7-8 %% fewer bits, 30-80 s "
                        "per Kodak image on a 2-core CPU; default 0, off)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse larger input pictures (width x height; default {DEFAULT_MAX_PIXELS}"
                        f" = 16384x16384)")
    add_output_options(p)
    add_runtime_options(p)
    add_backend_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from neuralcodec.cli import checks
    from neuralcodec.cli.video import encode_if_video

    checks.check_runtime(args)
    checks.check_positive("--max-pixels", args.max_pixels)
    if (done := encode_if_video(args)) is not None:    # video input: folder or video file
        return done
    from neuralcodec.io.image_files import read_image
    from neuralcodec.io.outputs import check_output_path
    from neuralcodec.codecs.catalog import DEFAULT_CODEC, check_quality
    from neuralcodec.errors import InputError

    # everything that can be wrong with the arguments and files, before torch is imported
    if args.target_kbps is not None:
        raise InputError("--target-kbps is for video inputs; use --target-bpp for an image")
    name = checks.image_model(args.model) or (None if args.weights else DEFAULT_CODEC)
    if args.quality is not None:
        check_quality(args.quality)
    checks.check_positive("--target-bpp", args.target_bpp)
    checks.check_positive("--target-psnr", args.target_psnr)
    if not 0 <= args.refine <= MAX_REFINE_STEPS:
        raise InputError(f"--refine must be a number of steps in [0, {MAX_REFINE_STEPS}], got {args.refine}")
    checks.check_suffix(args.output, "image")
    output = check_output_path(args.output, args.input, overwrite=args.overwrite)
    pixels = read_image(args.input, args.max_pixels)

    from neuralcodec.io.outputs import write_bytes_atomic
    from neuralcodec.codecs.api import get_model
    from neuralcodec.codecs.quality_search import choose_quality
    from neuralcodec.container import read_header

    device = apply_runtime(args)
    model = get_model(name, args.weights, device)
    model, device = apply_backend(args, model, device)
    refine = on_refine_step = None
    if args.refine:
        from neuralcodec.codecs.refine import Refinement
        refine = Refinement(steps=args.refine)
    start = time.perf_counter()
    with _search_progress(args.target_bpp is not None or args.target_psnr is not None) as on_step, \
            _refine_progress(args.refine) as on_refine_step:
        choice = choose_quality(model, pixels, args.quality, args.target_bpp, args.target_psnr, device,
                                on_step=on_step, refine=refine, on_refine_step=on_refine_step)
    elapsed = time.perf_counter() - start
    write_bytes_atomic(output, choice.data, overwrite=args.overwrite)
    h, w = pixels.shape[:2]
    quality = read_header(choice.data).quality     # what the stream holds (progressive codecs fix it)
    reached = f", PSNR {choice.psnr:.2f} dB" if choice.psnr is not None else ""
    reached += f", latent refined in {args.refine} steps" if args.refine else ""
    print(f"{output}: {len(choice.data)} bytes, {choice.bpp:.4f} bpp, {w}x{h}, "
          f"codec {model.name}, quality {quality:.3f}{reached}, {elapsed:.2f} s on {device}")
    if not choice.reached:
        target = (f"--target-bpp {args.target_bpp:g}" if args.target_bpp is not None
                  else f"--target-psnr {args.target_psnr:g}")
        achieved = (f"{choice.bpp:.4f} bpp" if args.target_bpp is not None else f"{choice.psnr:.2f} dB")
        end = "lowest" if args.target_bpp is not None else "highest"
        print(f"neuralcodec: warning: {target} is not reachable with {model.name}: its {end} quality "
              f"({quality:g}) gives {achieved}; wrote that stream", file=sys.stderr)
    return 0


def _bar(total: int, desc: str, unit: str):
    """A transient tqdm bar on stderr, shown on terminals only."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False,
                dynamic_ncols=True)


@contextlib.contextmanager
def _search_progress(active: bool):
    """A progress bar (stderr, terminals only) over the encodes of a --target-* search; yields
    the per-encode callback (None without a target)."""
    if not active:
        yield None
        return
    from neuralcodec.codecs.quality_search import MAX_ENCODES

    bar = _bar(MAX_ENCODES, "quality search", "encode")

    def step(quality: float, bpp: float, psnr: float | None) -> None:
        bar.update(1)
        bar.set_postfix_str(f"q {quality:.3f}: {bpp:.4f} bpp" + (f", {psnr:.2f} dB" if psnr is not None else ""))

    try:
        yield step
    finally:
        bar.close()


@contextlib.contextmanager
def _refine_progress(steps: int):
    """A progress bar (stderr, terminals only) over the steps of latent refinement (one bar
    per encode: several tiles or a quality search run several); yields the per-step callback."""
    if not steps:
        yield None
        return
    bar = _bar(steps, "refining latent", "step")

    def step(i: int) -> None:
        if i == 0:
            bar.reset(total=steps)
        bar.update(1)

    try:
        yield step
    finally:
        bar.close()
