"""`neuralcodec decode`: .ncb bitstream -> image."""
from __future__ import annotations

import math
import time

from neuralcodec.cli.io_utils import add_output_options
from neuralcodec.cli.runtime import add_backend_options, add_runtime_options
from neuralcodec.limits import DEFAULT_MAX_PIXELS


def register(sub) -> None:
    p = sub.add_parser("decode", help="decompress a .ncb image bitstream or a .ncv video bitstream",
                       description="Decode a bitstream; the codec and weights are read from it. An "
                                   "image goes to the format of -o's extension, a video to .y4m, "
                                   ".mkv, .mp4 or a folder of PNG frames.")
    p.add_argument("input", help="bitstream: .ncb (image) or .ncv (video)")
    p.add_argument("-o", "--output", required=True,
                   help="image: .png .bmp .tif .webp .jpg .ppm; video: .y4m .mkv .mp4 or a folder")
    prefix = p.add_mutually_exclusive_group()
    prefix.add_argument("--bytes", type=int, default=None, metavar="N",
                        help="progressive codecs: decode the best stream of at most N bytes")
    prefix.add_argument("--fraction", type=float, default=None, metavar="F",
                        help="progressive codecs: decode the first fraction F (0..1] of the file")
    prefix.add_argument("--target-bpp", type=float, default=None, metavar="B",
                        help="progressive codecs: decode a prefix of at most B bits per pixel")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse a stream that declares a picture (or video frame) of more than N "
                        f"pixels, before decoding it (default {DEFAULT_MAX_PIXELS} = 16384x16384)")
    p.add_argument("--all-or-nothing", action="store_true",
                   help="video: on a damaged or cut file write no output (default: write the "
                        "complete frames before the error, say how many, exit 1)")
    add_output_options(p)
    add_runtime_options(p)
    add_backend_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from neuralcodec.cli import checks
    from neuralcodec.cli.video import decode_if_video

    checks.check_runtime(args)
    checks.check_positive("--max-pixels", args.max_pixels)
    if (done := decode_if_video(args)) is not None:    # kind="video" bitstream
        return done
    from pathlib import Path

    from neuralcodec.io.image_files import image_format
    from neuralcodec.io.outputs import check_output_path
    from neuralcodec.cli.io_utils import read_input_bytes, read_input_header
    from neuralcodec.codecs.catalog import PROGRESSIVE_CODECS
    from neuralcodec.errors import InputError
    from neuralcodec.limits import check_picture_size

    # arguments and files first: no torch import for a mistake
    path = Path(args.input)
    output = check_output_path(args.output, args.input, overwrite=args.overwrite)
    header = read_input_header(path)         # the header record only: nothing large is read yet
    image_format(output)
    check_picture_size(header.width, header.height, args.max_pixels)
    pixels_count = header.width * header.height
    size = path.stat().st_size
    max_bytes = prefix_bytes(args, size, pixels_count)
    progressive = header.codec in PROGRESSIVE_CODECS
    if max_bytes is not None and not progressive:
        raise InputError(f"--bytes/--fraction/--target-bpp need a progressive codec "
                         f"({', '.join(PROGRESSIVE_CODECS)}); this stream is {header.codec}")

    from neuralcodec.cli.image_rows import write_image_rows
    from neuralcodec.io.image_files import write_image
    from neuralcodec.cli.runtime import apply_backend, apply_runtime
    from neuralcodec.codecs.api import get_model
    from neuralcodec.codecs.image_decoder import ImageDecoder
    from neuralcodec.container import truncate_container

    device = apply_runtime(args)
    model = get_model(header.codec, args.weights, device)
    model, device = apply_backend(args, model, device)
    start = time.perf_counter()
    if progressive:
        data = read_input_bytes(path)
        stream = data if max_bytes is None else truncate_container(data, max_bytes)
        pixels = model.decode_image(stream, device, max_pixels=args.max_pixels)
        write_image(output, pixels, overwrite=args.overwrite)
        used = f"{len(stream)} of {len(data)} bytes, {8 * len(stream) / pixels_count:.4f} bpp"
    else:                                    # rows of tiles go to the file as they are decoded
        decoder = ImageDecoder(model, path, max_pixels=args.max_pixels)
        write_image_rows(output, header.width, header.height, decoder.rows(),
                         overwrite=args.overwrite)
        used = f"quality {header.quality:.3f}"
    elapsed = time.perf_counter() - start
    print(f"{output}: {header.width}x{header.height}, codec {header.codec}, {used}, "
          f"{elapsed:.2f} s on {device}")
    return 0


def prefix_bytes(args, size: int, pixels: int) -> int | None:
    """Byte budget of --bytes / --fraction / --target-bpp (None: the whole stream)."""
    from neuralcodec.errors import InputError

    if args.bytes is not None:
        if args.bytes < 1:
            raise InputError("--bytes must be positive")
        return args.bytes
    if args.fraction is not None:
        if not 0 < args.fraction <= 1:
            raise InputError("--fraction must be in (0, 1]")
        return int(args.fraction * size)
    if args.target_bpp is not None:
        if not 0 < args.target_bpp < math.inf:
            raise InputError("--target-bpp must be a positive finite number")
        budget = args.target_bpp * pixels / 8          # a float: may pass the file size
        return size if budget >= size else int(budget)
    return None
