"""`neuralcodec truncate`: cut a progressive .ncb stream to a smaller valid stream."""
from __future__ import annotations

from neuralcodec.cli.io_utils import add_output_options


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
    add_output_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from neuralcodec.cli.cmd_decode import prefix_bytes
    from neuralcodec.io.outputs import check_output_path, write_bytes_atomic
    from neuralcodec.cli.io_utils import read_input_bytes, read_input_header
    from neuralcodec.container import ContainerReader, truncate_container
    from neuralcodec.errors import InputError

    output = check_output_path(args.output, args.input, overwrite=args.overwrite)
    path = Path(args.input)
    header = read_input_header(path)        # the header record only: a foreign file stops here
    with ContainerReader(path, allow_truncated=True, skip_data=True) as reader:
        progressive = any([s.truncatable for s in reader])   # checks the file, keeps no data
    if not progressive:
        raise InputError(f"{path} ({header.codec}) is not a progressive stream; it cannot be truncated")
    data = read_input_bytes(path)
    out = truncate_container(data, prefix_bytes(args, len(data), header.width * header.height))
    write_bytes_atomic(output, out, overwrite=args.overwrite)
    print(f"{output}: {len(out)} bytes ({8 * len(out) / (header.width * header.height):.4f} bpp) "
          f"of {len(data)}, codec {header.codec}")
    return 0
