#!/usr/bin/env python3
"""Record measured Kodak RD points (and training facts) in a weights file's metadata, which
`neuralcodec models` prints. The tensors are rewritten unchanged.

    python scripts/set_weights_info.py WEIGHTS.safetensors --results OUT/results/<codec>.json \
        [--set key=value ...]
"""
import argparse
import json

from safetensors import safe_open
from safetensors.torch import load_file, save_file


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--results", help="CompressAI-format results JSON of `neuralcodec eval`")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    with safe_open(args.weights, framework="pt") as f:
        meta = dict(f.metadata())
    info = json.loads(meta.get("info", "{}"))
    if args.results:
        with open(args.results) as f:
            res = json.load(f)["results"]
        qualities = res.get("quality", list(range(1, len(res["bpp"]) + 1)))
        info["kodak"] = [{"quality": q, "bpp": round(b, 4), "psnr": round(p, 3)}
                         for q, b, p in zip(qualities, res["bpp"], res["psnr-rgb"])]
    for item in args.set:
        key, _, value = item.partition("=")
        info[key] = value
    meta["info"] = json.dumps(info)
    save_file(load_file(args.weights), args.weights, metadata=meta)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
