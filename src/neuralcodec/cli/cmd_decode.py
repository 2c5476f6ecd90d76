"""`neuralcodec decode`: .ncb bitstream -> image."""
from __future__ import annotations

import time

from neuralcodec.cli.runtime import add_backend_options, add_runtime_options


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
    add_runtime_options(p)
    add_backend_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from neuralcodec.cli import checks
    from neuralcodec.video.cli import decode_if_video

    checks.check_runtime(args)
    if (done := decode_if_video(args)) is not None:    # kind="video" bitstream
        return done
    from pathlib import Path

    from neuralcodec.cli.images import image_format, write_image
    from neuralcodec.cli.io_utils import check_output_path, read_input_bytes
    from neuralcodec.codecs.catalog import PROGRESSIVE_CODECS
    from neuralcodec.container import read_header, truncate_container
    from neuralcodec.errors import InputError

    # arguments and files first: no torch import for a mistake
    output = check_output_path(args.output, args.input)
    image_format(output)
    path = Path(args.input)
    data = read_input_bytes(path)
    header = read_header(data)
    pixels_count = header.width * header.height
    max_bytes = _prefix_bytes(args, len(data), pixels_count)
    progressive = header.codec in PROGRESSIVE_CODECS
    if max_bytes is not None and not progressive:
        raise InputError(f"--bytes/--fraction/--target-bpp need a progressive codec "
                         f"({', '.join(PROGRESSIVE_CODECS)}); this stream is {header.codec}")
    stream = data if max_bytes is None else truncate_container(data, max_bytes)

    from neuralcodec.cli.runtime import apply_backend, apply_runtime
    from neuralcodec.codecs.api import decode_with_model, get_model

    device = apply_runtime(args)
    model = get_model(header.codec, args.weights, device)
    model, device = apply_backend(args, model, device)
    start = time.perf_counter()
    pixels = decode_with_model(model, stream, device)
    elapsed = time.perf_counter() - start
    write_image(output, pixels)
    used = (f"{len(stream)} of {len(data)} bytes, {8 * len(stream) / pixels_count:.4f} bpp" if progressive
            else f"quality {header.quality:.3f}")
    print(f"{output}: {header.width}x{header.height}, codec {header.codec}, {used}, "
          f"{elapsed:.2f} s on {device}")
    return 0


def _prefix_bytes(args, size: int, pixels: int) -> int | None:
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
        if not args.target_bpp > 0:
            raise InputError("--target-bpp must be positive")
        return int(args.target_bpp * pixels / 8)
    return None
