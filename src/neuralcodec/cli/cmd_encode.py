"""`neuralcodec encode`: image -> .ncb bitstream."""
from __future__ import annotations

import time

from neuralcodec.cli.runtime import add_backend_options, add_runtime_options, apply_backend, apply_runtime


def register(sub) -> None:
    p = sub.add_parser("encode", help="compress an image (PNG/JPEG/WebP/TIFF/BMP) to .ncb, or a video (mp4/mkv/mov/webm/y4m, PNG folder) to .ncv")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--model", default=None, help="codec name (default: the default codec)")
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
    p.add_argument("--frames", type=int, default=None, metavar="N", help="video: encode at most N frames")
    add_runtime_options(p)
    add_backend_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from neuralcodec.video.cli import encode_if_video
    if (done := encode_if_video(args)) is not None:    # video input: folder or video file
        return done
    from neuralcodec.cli.images import read_image
    from neuralcodec.cli.io_utils import check_output_path, write_bytes_atomic
    from neuralcodec.codecs.api import get_model
    from neuralcodec.codecs.quality_search import choose_quality
    from neuralcodec.codecs.registry import DEFAULT_CODEC
    from neuralcodec.container import read_header

    if args.target_kbps is not None:
        from neuralcodec.errors import InputError
        raise InputError("--target-kbps is for video inputs; use --target-bpp for an image")
    device = apply_runtime(args)
    output = check_output_path(args.output, args.input)
    pixels = read_image(args.input)
    model = get_model(args.model or (None if args.weights else DEFAULT_CODEC), args.weights, device)
    model, device = apply_backend(args, model, device)
    start = time.perf_counter()
    _, data = choose_quality(model, pixels, args.quality, args.target_bpp, args.target_psnr, device)
    elapsed = time.perf_counter() - start
    write_bytes_atomic(output, data)
    h, w = pixels.shape[:2]
    quality = read_header(data).quality     # what the stream holds (progressive codecs fix it)
    print(f"{output}: {len(data)} bytes, {8 * len(data) / (h * w):.4f} bpp, {w}x{h}, "
          f"codec {model.name}, quality {quality:.3f}, {elapsed:.2f} s on {device}")
    return 0
