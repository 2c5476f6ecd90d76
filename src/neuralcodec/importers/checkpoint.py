"""Reading PyTorch checkpoints safely: ``torch.load(weights_only=True)`` only, so a file can
hold tensors and plain containers but never code; every failure is one ModelError line."""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from neuralcodec.errors import InputError, ModelError


@dataclass
class Checkpoint:
    """A state dict read from a file, with where it came from."""

    path: Path
    state: dict[str, torch.Tensor]
    kind: str                 # "state dict" (zoo files) or "training checkpoint" ({"state_dict": ...})
    sha256: str
    epoch: int | None = None


def _load(path: Path, data: bytes):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for foreign or damaged files
        text = str(exc)
        refused = next((line.strip() for line in text.splitlines() if "Unsupported global" in line), None)
        if refused:
            raise ModelError(f"{path} holds Python objects, not only tensors, and is not loaded "
                             f"(weights_only: {refused})") from None
        raise ModelError(f"{path} is not a PyTorch checkpoint (or it is damaged)") from None


def read_checkpoint(path: str | Path) -> Checkpoint:
    """A plain state dict (CompressAI zoo ``*.pth.tar``) or a training checkpoint whose
    ``"state_dict"`` entry is one (CompressAI's ``examples/train.py``); a ``module.`` prefix
    (DataParallel) is removed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} not found")
    data = path.read_bytes()
    obj = _load(path, data)
    kind, epoch = "state dict", None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        kind, epoch = "training checkpoint", obj.get("epoch")
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ModelError(f"{path} holds no state dict (a mapping of names to tensors)")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}
    return Checkpoint(path, state, kind, hashlib.sha256(data).hexdigest(),
                      epoch if isinstance(epoch, int) else None)
