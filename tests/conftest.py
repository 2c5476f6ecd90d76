"""Shared fixtures: small deterministic codecs and images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def make_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth-plus-noise RGB test image (uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 80 * np.sin(xx / 7.0 + c) * np.cos(yy / 5.0 - c) for c in range(3)], -1)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def synthetic(h: int, w: int, seed: int = 0, box: float = 0) -> np.ndarray:
    """Smooth texture and noise, plus an optional brighter box (an edge): compresses like a
    photo, not like noise (the evaluation tests' image)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([120 + 70 * np.sin(xx / (6 + c) + c) * np.cos(yy / 9.0 - c) for c in range(3)], -1)
    if box:
        img[h // 3: h // 2, w // 4: w // 2] += box
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def codec_factory():
    """Build an updated (coding-ready) codec with fixed random weights, cached per name."""
    from neuralcodec.codecs.registry import create

    cache = {}

    def build(name: str):
        if name not in cache:
            torch.manual_seed(1234)
            model = create(name).eval()
            model.update()
            cache[name] = model
        return cache[name]

    return build


@pytest.fixture(scope="session")
def weights_files(tmp_path_factory, codec_factory):
    """Saved weights files of the test codecs (as the CLI would load them)."""
    from neuralcodec.codecs.weights import save_weights

    folder = tmp_path_factory.mktemp("weights")
    paths = {}
    for name in ("factorized", "hyperprior", "gmm-ctx"):
        paths[name] = folder / f"{name}.safetensors"
        save_weights(codec_factory(name), paths[name])
    return paths
