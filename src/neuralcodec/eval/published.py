"""Published Kodak RD curves beside the measured ones.

``published_kodak.json`` (made by ``scripts/make_published_kodak.py``) holds CompressAI's
published Kodak results, numbers only and attributed: its pretrained MSE models, VTM and AV1.
A report whose inputs are exactly the 24 Kodak images (recognised by their decoded pixels,
whatever the file names or format) carries these curves and BD-rates against them, unless
``--no-published``; the curves are means over all 24 images, so a subset gets none.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from neuralcodec.eval.results import Curve, results_curve

KODAK_FILE = Path(__file__).with_name("published_kodak.json")
TAG = "published"


@lru_cache(maxsize=1)
def kodak_data() -> dict:
    """The shipped file: attribution, the Kodak images' pixel digests, the curves."""
    return json.loads(KODAK_FILE.read_text())


def kodak_names() -> list[str]:
    """The names the published curves get in a report (valid --anchor values)."""
    return [_curve_name(c) for c in kodak_data()["curves"]]


def _curve_name(entry: dict) -> str:
    return f"{entry['name']} [{TAG}]"


def is_published(name: str) -> bool:
    """Whether a curve name is one of the published curves'."""
    return name.endswith(f" [{TAG}]")


def kodak_curves() -> list[Curve]:
    """Every published Kodak curve, marked as included, with its source in ``meta``."""
    data = kodak_data()
    return [results_curve(c["results"], _curve_name(c), f"{c['name']} ({data['attribution']})",
                          {"file": c["source"], "published": True, "label": c["name"],
                           "attribution": data["attribution"]})
            for c in data["curves"]]


def kodak_coverage(sources) -> tuple[int, int, int]:
    """(Kodak images among ``sources``, other images, size of the Kodak set), by pixel digest."""
    known = set(kodak_data()["kodak_pixels"].values())
    digests = [s.pixels_digest for s in sources]
    hits = len({d for d in digests if d in known})
    return hits, sum(1 for d in digests if d not in known), len(known)
