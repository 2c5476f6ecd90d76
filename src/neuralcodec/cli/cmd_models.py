"""`neuralcodec models`: codecs, their weights, size and measured Kodak RD."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("models", help="list codecs with their weights, parameter count and Kodak RD")
    p.add_argument("--json", action="store_true", help="print one JSON object (a list of codecs)")
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


def model_list() -> list[dict]:
    """Every codec: name, kind, default flag, parameter count, shipped weights, Kodak RD, note."""
    from neuralcodec.codecs.registry import (CODECS, DEFAULT_CODEC, available, create, parameter_count, shipped_weights)
    from neuralcodec.codecs.weights import read_metadata, weights_config

    rows = []
    for name in available():
        path = shipped_weights(name)
        config = weights_config(read_metadata(path), path, CODECS[name]) if path else {}
        rd = [{"quality": q, "bpp": b, "psnr-rgb": d} for q, b, d in kodak_points(path)] if path else []
        rows.append({"name": name, "kind": "image", "default": name == DEFAULT_CODEC,
                     "params": parameter_count(create(name, **config)),
                     "weights": _weights_entry(path), "kodak": rd,
                     "note": "" if path else getattr(CODECS[name], "weights_note", "")})
    from neuralcodec.video.weights import model_rows, shipped_weights as video_weights
    for name, params, _, note in model_rows():
        rows.append({"name": name, "kind": "video", "default": False, "params": params,
                     "weights": _weights_entry(video_weights(name)), "kodak": [], "note": note})
    return rows


def _weights_entry(path) -> dict | None:
    return {"file": path.name, "bytes": path.stat().st_size} if path else None


def run(args) -> int:
    import json

    rows = model_list()
    if args.json:
        print(json.dumps({"codecs": rows}, indent=2))
        return 0
    col = max(len(row["name"]) + 2 for row in rows)     # name column (room for the default mark)
    print(f"{'codec':<{col}} {'params':>9}  {'weights':<34} Kodak RD (quality: bpp / PSNR-RGB dB)")
    for row in rows:
        w = row["weights"]
        weights = (f"{w['file']} ({w['bytes'] / 2**20:.1f} MiB)" if w else row["note"] or
                   ("none shipped (train your own)" if row["kind"] == "image" else "none shipped (train-video)"))
        rd = "  ".join(f"q{p['quality']:g}: {p['bpp']:.3f}/{p['psnr-rgb']:.2f}" for p in row["kodak"])
        mark = " *" if row["default"] else ""
        note = "" if not w and row["note"] == weights else row["note"]
        print(f"{row['name'] + mark:<{col}} {row['params'] / 1e6:>8.2f}M  {weights:<34} {rd or note}")
    print("* default codec")
    return 0
