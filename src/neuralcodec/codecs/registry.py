"""Codec registry and weights I/O (safetensors only, never pickle)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from neuralcodec.codecs.base import ImageCodec
from neuralcodec.codecs.catalog import DEFAULT_CODEC  # noqa: F401 (re-exported)
from neuralcodec.codecs.factorized import FactorizedCodec
from neuralcodec.codecs.gmm_ctx import ELICCodec, GMMContextCodec
from neuralcodec.codecs.hyperprior import MeanScaleHyperprior
from neuralcodec.codecs.imported import IMPORTED_CODECS
from neuralcodec.codecs.tritplane import TritPlaneCodec
from neuralcodec.errors import ModelError

CODECS: dict[str, type[ImageCodec]] = {
    cls.name: cls for cls in (FactorizedCodec, MeanScaleHyperprior, GMMContextCodec, ELICCodec, TritPlaneCodec,
                              *IMPORTED_CODECS)
}
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
WEIGHTS_FORMAT = "neuralcodec-weights-1"


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


def save_weights(model: torch.nn.Module, path: str | Path, *, half: bool = True, info: dict | None = None,
                 extra_meta: dict | None = None) -> None:
    """Write model weights (floats as fp16 by default) with codec name and config as metadata."""
    from safetensors.torch import save_file

    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        if half and value.is_floating_point():
            value = value.half()
        tensors[key] = value
    meta = {"format": WEIGHTS_FORMAT, "codec": model.name, "config": json.dumps(model.config),
            "info": json.dumps(info or {}), **(extra_meta or {})}
    save_file(tensors, str(path), metadata=meta)


def read_metadata(path: str | Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises several types for bad files
        raise ModelError(f"cannot read weights {path}: {exc}") from None
    if meta.get("format") != WEIGHTS_FORMAT:
        raise ModelError(f"{path} is not a neuralcodec weights file")
    return meta


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
    return attach_weights(create(meta["codec"], **json.loads(meta["config"])), path, meta, device)


def attach_weights(model: torch.nn.Module, path: Path, meta: dict, device: str = "cpu"):
    """Load a weights file into a freshly built model; record its SHA-256 and card info."""
    from safetensors.torch import load_file

    try:
        model.load_state_dict(load_file(str(path)))
    except RuntimeError as exc:
        raise ModelError(f"weights {path} do not fit codec {meta['codec']!r}: "
                         f"{str(exc).splitlines()[0]}") from None
    model.weights_hash = hashlib.sha256(path.read_bytes()).digest()
    model.weights_info = json.loads(meta.get("info", "{}"))
    model = model.to(device).eval()
    if torch.device(device).type == "cpu":
        # oneDNN runs the (transposed) convolutions up to ~1.8x faster on channels-last
        # tensors (bench/image_codec.py times both layouts); the exact integer networks give
        # the same integers, the float transforms may differ in the last bits
        model.to(memory_format=torch.channels_last)
    return model


def model_hash(model: ImageCodec) -> bytes:
    """The weights hash a bitstream records: the weights file's SHA-256 when loaded from
    a file, else a hash of the current state dict (models in training)."""
    known = getattr(model, "weights_hash", None)
    if known is not None:
        return known
    h = hashlib.sha256(model.name.encode())
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
