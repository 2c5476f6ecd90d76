"""`neuralcodec models`: codecs, their weights, size and measured Kodak RD."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("models", help="list codecs with their weights, parameter count and Kodak RD")
    p.set_defaults(func=run)


def kodak_points(weights_path) -> list[tuple[float, float, float]]:
    """(quality, bpp, PSNR-RGB) measured on Kodak: the `neuralcodec eval` results file shipped
    beside the weights (``<name>.kodak.json``, CompressAI's results format), if any."""
    import json
    from pathlib import Path

    path = Path(weights_path).with_suffix(".kodak.json")
    if not path.is_file():
        return []
    res = json.loads(path.read_text())["results"]
    return list(zip(res["quality"], res["bpp"], res["psnr-rgb"]))


def run(args) -> int:
    from neuralcodec.codecs.registry import (CODECS, DEFAULT_CODEC, available, create,
                                             parameter_count, read_metadata, shipped_weights,
                                             weights_config)

    print(f"{'codec':<12} {'params':>9}  {'weights':<34} Kodak RD (quality: bpp / PSNR-RGB dB)")
    for name in available():
        path = shipped_weights(name)
        if path is None:
            params, weights, rd = parameter_count(create(name)), "none shipped (train your own)", ""
        else:
            meta = read_metadata(path)
            params = parameter_count(create(name, **weights_config(meta, path, CODECS[name])))
            weights = f"{path.name} ({path.stat().st_size / 2**20:.1f} MiB)"
            rd = "  ".join(f"q{q:g}: {b:.3f}/{d:.2f}" for q, b, d in kodak_points(path))
        mark = " *" if name == DEFAULT_CODEC else ""
        print(f"{name + mark:<12} {params / 1e6:>8.2f}M  {weights:<34} {rd}")
    from neuralcodec.video.weights import model_rows
    for name, params, weights, note in model_rows():
        print(f"{name:<12} {params / 1e6:>8.2f}M  {weights:<34} {note}")
    print("* default codec")
    return 0
