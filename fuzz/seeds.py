"""Real small streams the harnesses start from (built once per run, shipped weights, CPU)."""
from __future__ import annotations

import io
from functools import lru_cache

import numpy as np

from _harness import ROOT


def crop(h: int = 64, w: int = 64) -> np.ndarray:
    """A 64x64 crop of tests/data/kodim05_crop.png (RGB uint8)."""
    from PIL import Image
    return np.ascontiguousarray(np.asarray(Image.open(ROOT / "tests/data/kodim05_crop.png")
                                           .convert("RGB"))[:h, :w])


@lru_cache(None)
def image_streams() -> dict[str, bytes]:
    """64x64 crop coded by factorized and hyperprior at three qualities, and a 48x40 one."""
    from neuralcodec.codecs.api import encode_image
    out = {}
    for codec in ("factorized", "hyperprior"):
        for q in (1.0, 4.0, 8.0):
            out[f"{codec}-q{q:g}.ncb"] = encode_image(crop(), codec, q, "cpu")
        out[f"{codec}-48x40.ncb"] = encode_image(crop(40, 48), codec, 3.0, "cpu")
    return out


@lru_cache(None)
def tritplane_streams() -> dict[str, bytes]:
    from neuralcodec.codecs.api import encode_image
    from neuralcodec.container import truncate_container
    full = encode_image(crop(), "trit-plane", 8.0, "cpu")
    return {"tp-64.ncb": full, "tp-64-cut900.ncb": truncate_container(full, 900),
            "tp-32x24.ncb": encode_image(crop(24, 32), "trit-plane", 8.0, "cpu")}


@lru_cache(None)
def video_streams() -> dict[str, bytes]:
    """4 frames of the crop (shifted), 64x64, with and without per-frame qualities."""
    from neuralcodec.video.codec import encode_frames
    from neuralcodec.video.weights import load
    model = load(None, None, "cpu")
    base = crop(64, 80)
    frames = [np.ascontiguousarray(base[:, t * 4:t * 4 + 64]) for t in range(4)]
    out = {}
    for name, kwargs in {"vrt-4.ncv": {}, "vrt-4-ip2.ncv": {"intra_period": 2},
                         "vrt-4-rate.ncv": {"target_bits": 3000.0}}.items():
        buf = io.BytesIO()
        encode_frames(model, frames, buf, 64, 64, (25, 1), 4.0,
                      kwargs.get("intra_period", 32), "cpu", total=4,
                      target_bits=kwargs.get("target_bits", 0.0))
        out[name] = buf.getvalue()
    return out
