"""Codec registry: the codecs by name, the shipped weights, loading a codec with its weights
(the file checks and I/O are :mod:`neuralcodec.codecs.weights`)."""
from __future__ import annotations

from pathlib import Path

import torch

from neuralcodec.codecs.base import ImageCodec
from neuralcodec.codecs.catalog import DEFAULT_CODEC  # noqa: F401 (re-exported)
from neuralcodec.codecs.factorized import FactorizedCodec
from neuralcodec.codecs.gmm_ctx import ELICCodec, GMMContextCodec
from neuralcodec.codecs.hyperprior import MeanScaleHyperprior
from neuralcodec.codecs.imported import IMPORTED_CODECS
from neuralcodec.codecs.tritplane import TritPlaneCodec
from neuralcodec.codecs.weights import attach_weights, build_checked, read_metadata, weights_config
from neuralcodec.errors import ModelError

CODECS: dict[str, type[ImageCodec]] = {
    cls.name: cls for cls in (FactorizedCodec, MeanScaleHyperprior, GMMContextCodec, ELICCodec, TritPlaneCodec,
                              *IMPORTED_CODECS)
}
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def available() -> list[str]:
    return sorted(CODECS)


def create(name: str, **config) -> ImageCodec:
    """A fresh (untrained) codec."""
    if name not in CODECS:
        raise ModelError(f"unknown codec {name!r} (available: {', '.join(available())})")
    return CODECS[name](**config)


def shipped_weights(name: str) -> Path | None:
    """Path of the weights shipped in the package for ``name``, if any."""
    path = WEIGHTS_DIR / f"{name}.safetensors"
    return path if path.is_file() else None


def load_model(name: str | None = None, weights: str | Path | None = None, device: str = "cpu") -> ImageCodec:
    """Load a codec with its weights (the shipped ones unless ``weights`` is given)."""
    if weights is None:
        if name is None:
            raise ModelError("give a codec name or a weights file")
        weights = shipped_weights(name)
        if weights is None:
            create(name)  # unknown name -> clear error
            raise ModelError(f"codec {name!r} has no shipped weights; pass --weights FILE")
    path = Path(weights)
    if not path.is_file():
        raise ModelError(f"weights file {path} not found")
    meta = read_metadata(path)
    if name is not None and meta["codec"] != name:
        raise ModelError(f"weights {path} are for codec {meta['codec']!r}, not {name!r}")
    if meta["codec"] not in CODECS:
        create(meta["codec"])            # unknown name: the registry's error
    cls = CODECS[meta["codec"]]
    config = weights_config(meta, path, cls)
    model = build_checked(path, meta["codec"], cls, config, lambda: cls(**config))
    return attach_weights(model, path, meta, device)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
