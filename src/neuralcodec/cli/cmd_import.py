"""`neuralcodec import compressai`: CompressAI checkpoints -> a neuralcodec weights file."""
from __future__ import annotations

import sys


def register(sub) -> None:
    p = sub.add_parser("import", help="import weights trained with another library (CompressAI)")
    sources = p.add_subparsers(dest="source", metavar="SOURCE", required=True)
    c = sources.add_parser(
        "compressai", help="CompressAI zoo files or examples/train.py checkpoints (docs/import.md)",
        description="Map CompressAI checkpoints (read with torch.load(weights_only=True)) onto "
                    "neuralcodec's bit-exact codecs; write one safetensors file with a model card. "
                    "Several checkpoints of one architecture become one codec whose --quality "
                    "picks among them.")
    c.add_argument("--arch", required=True, metavar="NAME",
                   help="bmshj2018-factorized, bmshj2018-hyperprior, mbt2018-mean, elic2022-official, "
                        "elic2022-chandelier or cheng2020-anchor-checkerboard")
    c.add_argument("--checkpoint", action="append", required=True, metavar="FILE",
                   help="a zoo *.pth.tar or a training checkpoint (repeat for several qualities)")
    c.add_argument("-o", "--output", required=True, metavar="OUT.safetensors")
    c.add_argument("--quality-label", action="append", type=float, default=None, metavar="Q",
                   help="the quality (1..8) of each checkpoint, in order (default: from zoo file "
                        "names, else 1, 2, ...)")
    c.add_argument("--lmbda", action="append", type=float, default=None, metavar="L",
                   help="the lambda each checkpoint was trained with, for the model card "
                        "(zoo files: known from the name)")
    c.set_defaults(func=run)


def run(args) -> int:
    from neuralcodec.io.outputs import atomic_path, check_output_path
    from neuralcodec.codecs.weights import save_weights
    from neuralcodec.container import weights_hash
    from neuralcodec.importers.compressai import import_compressai

    output = check_output_path(args.output, *args.checkpoint)
    codec = import_compressai(args.arch, args.checkpoint, args.quality_label, args.lmbda)
    card = codec.weights_info
    with atomic_path(output) as tmp:
        save_weights(codec, tmp, dtype="fp32", info=card)
    for level in card["levels"]:
        if level.get("zoo_hash_ok") is False:
            print(f"neuralcodec: warning: {level['checkpoint']}: its SHA-256 does not start with the "
                  "hash in its zoo file name (a damaged or renamed download?)", file=sys.stderr)
        lmbda = "" if level["lambda"] is None else f", lambda {level['lambda']:g}"
        print(f"  quality {level['label']:g}: {level['checkpoint']} ({level['format']}, N={level['n']}, "
              f"M={level['m']}{lmbda}, entropy tables {level['entropy_tables']})")
    print(f"{output}: codec {codec.name}, {len(card['levels'])} "
          f"qualit{'y' if len(card['levels']) == 1 else 'ies'}, weights {weights_hash(output).hex()[:12]}, "
          f"{output.stat().st_size / 2 ** 20:.1f} MiB")
    return 0
