"""`neuralcodec decode`: .ncb bitstream -> image."""
from __future__ import annotations

import time

from neuralcodec.cli.runtime import add_backend_options, add_runtime_options, apply_backend, apply_runtime


def register(sub) -> None:
    p = sub.add_parser("decode", help="decompress a .ncb file to an image (format from the extension)")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
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
    from neuralcodec.video.cli import decode_if_video
    if (done := decode_if_video(args)) is not None:    # kind="video" bitstream
        return done
    from pathlib import Path

    from neuralcodec.cli.images import write_image
    from neuralcodec.cli.io_utils import check_output_path, read_input_bytes
    from neuralcodec.codecs.api import decode_with_model, get_model
    from neuralcodec.codecs.registry import CODECS
    from neuralcodec.container import read_header
    from neuralcodec.errors import InputError

    device = apply_runtime(args)
    output = check_output_path(args.output, args.input)
    path = Path(args.input)
    data = read_input_bytes(path)
    header = read_header(data)
    max_bytes = _prefix_bytes(args, len(data), header.width * header.height)
    if max_bytes is not None and not hasattr(CODECS.get(header.codec), "decode_image"):
        raise InputError(f"--bytes/--fraction/--target-bpp need a progressive codec (trit-plane); "
                         f"this stream is {header.codec}")
    model = get_model(header.codec, args.weights, device)
    model, device = apply_backend(args, model, device)
    start = time.perf_counter()
    if max_bytes is None:
        pixels = decode_with_model(model, data, device)
    else:
        pixels = model.decode_image(data, device, max_bytes=max_bytes)
    elapsed = time.perf_counter() - start
    write_image(output, pixels)
    print(f"{output}: {header.width}x{header.height}, codec {header.codec}, "
          f"quality {header.quality:.3f}, {elapsed:.2f} s on {device}")
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
