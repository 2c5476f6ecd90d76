"""Codec registry: the codecs by name, the shipped weights, loading a codec with its weights
(the file checks and I/O are :mod:`neuralcodec.codecs.weights`)."""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from pathlib import Path

import torch

from neuralcodec.codecs.base import REGISTERED, ImageCodec
from neuralcodec.codecs.catalog import DEFAULT_CODEC  # noqa: F401 (re-exported)
from neuralcodec.codecs.weights import attach_weights, build_checked, read_metadata, weights_config
from neuralcodec.errors import ModelError


class CodecTable(Mapping):
    """Name -> codec class of every ``@register_codec`` class in the modules of the
    ``neuralcodec.codecs`` package, imported on first use (a new codec is one module there;
    the registry names none of them)."""

    def _codecs(self) -> dict:
        if not getattr(self, "_loaded", False):
            import neuralcodec.codecs as package
            for info in pkgutil.iter_modules(package.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{package.__name__}.{info.name}")
            self._loaded = True
        return REGISTERED

    def __getitem__(self, name: str) -> type[ImageCodec]:
        return self._codecs()[name]

    def __iter__(self):
        return iter(self._codecs())

    def __len__(self) -> int:
        return len(self._codecs())


CODECS = CodecTable()
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
