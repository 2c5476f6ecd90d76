"""`neuralcodec truncate`: cut a progressive .ncb stream to a smaller valid stream."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("truncate", help="cut a progressive (trit-plane) .ncb file to a shorter valid file")
    p.add_argument("input", help="progressive bitstream (.ncb, e.g. from --model trit-plane)")
    p.add_argument("-o", "--output", required=True, help="shorter bitstream to write (.ncb)")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--bytes", type=int, default=None, metavar="N", help="at most N bytes")
    size.add_argument("--fraction", type=float, default=None, metavar="F",
                      help="at most the fraction F (0..1] of the input size")
    size.add_argument("--target-bpp", type=float, default=None, metavar="B",
                      help="at most B bits per pixel")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from neuralcodec.cli.cmd_decode import _prefix_bytes
    from neuralcodec.cli.io_utils import check_output_path, read_input_bytes, write_bytes_atomic
    from neuralcodec.container import read_header, truncate_container, unpack
    from neuralcodec.errors import InputError

    output = check_output_path(args.output, args.input)
    path = Path(args.input)
    data = read_input_bytes(path)
    header = read_header(data)
    _, subs = unpack(data, allow_truncated=True)
    if not any(s.truncatable for s in subs):
        raise InputError(f"{path} ({header.codec}) is not a progressive stream; it cannot be truncated")
    out = truncate_container(data, _prefix_bytes(args, len(data), header.width * header.height))
    write_bytes_atomic(output, out)
    print(f"{output}: {len(out)} bytes ({8 * len(out) / (header.width * header.height):.4f} bpp) "
          f"of {len(data)}, codec {header.codec}")
    return 0
