"""Aggregating rows into RD curves; CompressAI-format results.json, CSV, published curves.

A results file follows CompressAI's layout (``name``, ``description``, ``results`` with
parallel lists ``bpp``, ``psnr-rgb``, ``ms-ssim-rgb``, ``encoding_time``, ``decoding_time``)
plus neuralcodec's extras (``quality``, per-plane video PSNRs, ``meta``), so CompressAI's
plotting tools read ours and ours read theirs.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuralcodec.errors import InputError

# Row key -> CompressAI results key (same name unless listed).
_RENAME = {"encode_s": "encoding_time", "decode_s": "decoding_time"}
# Keys averaged per quality; anything else in a row is per-row detail only.
CURVE_KEYS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb", "psnr-y", "psnr-u", "psnr-v",
              "psnr-yuv", "bitrate_kbps", "encode_s", "decode_s", "encode_fps", "decode_fps")
METRIC_LABELS = {"psnr-rgb": "PSNR-RGB [dB]", "ms-ssim-rgb": "MS-SSIM (RGB)",
                 "ms-ssim-db-rgb": "MS-SSIM [dB] (RGB)", "psnr-yuv": "PSNR-YUV 6:1:1 [dB]",
                 "psnr-y": "PSNR-Y [dB]"}


@dataclass
class Curve:
    """One codec's RD points, sorted by rate; ``values`` maps a result key to a list."""

    name: str
    values: dict
    description: str = ""
    meta: dict = field(default_factory=dict)
    included: bool = False

    def rate(self, key: str = "bpp") -> np.ndarray:
        return np.asarray(self.values[key], dtype=float)

    def has(self, key: str) -> bool:
        v = self.values.get(key)
        return v is not None and len(v) > 0 and np.all(np.isfinite(np.asarray(v, float)))


def good_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if not r.get("error")]


def complete_sources(rows: list[dict], codecs) -> tuple[list[str], list[str]]:
    """Sources with a good row for every requested (codec, quality), and those without."""
    want = {(c, q) for c, qs in codecs.items() for q in qs}
    have: dict[str, set] = {}
    for r in good_rows(rows):
        have.setdefault(r["source"], set()).add((r["codec"], r["quality"]))
    names = sorted({r["source"] for r in rows})
    full = [s for s in names if want <= have.get(s, set())]
    return full, [s for s in names if s not in full]


def aggregate(rows: list[dict], codec: str, sources, description: str = "",
              meta: dict | None = None) -> Curve:
    """Mean over ``sources`` of every curve key, per quality (CompressAI's averaging)."""
    keep = set(sources)
    by_q: dict[float, list[dict]] = {}
    for r in good_rows(rows):
        if r["codec"] == codec and r["source"] in keep:
            by_q.setdefault(r["quality"], []).append(r)
    qualities = sorted(by_q, key=lambda q: np.mean([r["bpp"] for r in by_q[q]]))
    values: dict = {"quality": qualities}
    for key in CURVE_KEYS:
        if all(key in r and r[key] is not None for q in qualities for r in by_q[q]):
            values[_RENAME.get(key, key)] = [
                float(np.mean([r[key] for r in by_q[q]])) for q in qualities]
    return Curve(codec, values, description, dict(meta or {}, n_sources=len(keep)))


def to_compressai(curve: Curve) -> dict:
    """The CompressAI results-file dict of a curve (non-finite numbers become null)."""
    clean = {k: [None if isinstance(x, float) and not math.isfinite(x) else x for x in v]
             for k, v in curve.values.items()}
    return {"name": curve.name, "description": curve.description, "meta": curve.meta,
            "results": clean}


def write_json(path, obj) -> None:
    from neuralcodec.eval.files import write_text

    write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def write_csv(path, rows: list[dict], source_label: str) -> None:
    """Every row, one line each; the first column is named ``source_label``."""
    from neuralcodec.eval.files import output_path

    first = ["source", "codec", "quality"]
    keys = first + sorted({k for r in rows for k in r} - set(first) - {"error"}) + ["error"]
    with output_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([source_label] + keys[1:])
        for r in sorted(rows, key=lambda r: (r["source"], r["codec"], r["quality"])):
            w.writerow(["" if r.get(k) is None else r.get(k) for k in keys])


def load_results(path) -> Curve:
    """A published results file (CompressAI format) as a Curve; InputError if malformed."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        curve = results_curve(data["results"], f"{data.get('name') or p.stem} [{p.name}]",
                              str(data.get("description", "")), {"file": str(p)})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{p} is not a CompressAI results file ({type(exc).__name__}: {exc})") \
            from None
    return curve


def results_curve(res: dict, name: str, description: str, meta: dict) -> Curve:
    """An included (not measured) Curve from CompressAI-format ``results`` lists, sorted by
    rate; MS-SSIM is given on both scales. KeyError/ValueError/TypeError if malformed."""
    bpp = [float(x) for x in res["bpp"]]
    values = {"bpp": bpp}
    for key, vals in res.items():
        if key != "bpp" and isinstance(vals, list) and len(vals) == len(bpp):
            try:
                values[key] = [float("nan") if x is None else float(x) for x in vals]
            except (TypeError, ValueError):
                continue
    if "ms-ssim-rgb" not in values and "ms-ssim-db-rgb" in values:
        values["ms-ssim-rgb"] = [1 - 10 ** (-x / 10) for x in values["ms-ssim-db-rgb"]]
    if "ms-ssim-db-rgb" not in values and "ms-ssim-rgb" in values:
        values["ms-ssim-db-rgb"] = [-10 * math.log10(1 - x) if x < 1 else math.inf
                                    for x in values["ms-ssim-rgb"]]
    order = np.argsort(bpp)
    values = {k: [v[i] for i in order] for k, v in values.items()}
    return Curve(name, values, description, meta, included=True)
