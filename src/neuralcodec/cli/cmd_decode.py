"""`neuralcodec decode`: .ncb bitstream -> image."""
from __future__ import annotations

import time

from neuralcodec.cli.runtime import add_backend_options, add_runtime_options, apply_backend, apply_runtime


def register(sub) -> None:
    p = sub.add_parser("decode", help="decompress a .ncb file to an image (format from the extension)")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    add_runtime_options(p)
    add_backend_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from neuralcodec.cli.images import write_image
    from neuralcodec.cli.io_utils import check_output_path
    from neuralcodec.codecs.api import decode_with_model, get_model
    from neuralcodec.container import read_header
    from neuralcodec.errors import InputError

    device = apply_runtime(args)
    output = check_output_path(args.output, args.input)
    path = Path(args.input)
    if not path.is_file():
        raise InputError(f"input {path} not found")
    data = path.read_bytes()
    header = read_header(data)
    model = get_model(header.codec, args.weights, device)
    model, device = apply_backend(args, model, device)
    start = time.perf_counter()
    pixels = decode_with_model(model, data, device)
    elapsed = time.perf_counter() - start
    write_image(output, pixels)
    print(f"{output}: {header.width}x{header.height}, codec {header.codec}, "
          f"quality {header.quality:.3f}, {elapsed:.2f} s on {device}")
    return 0
