"""8-bit storage of weights files: large float tensors as int8 with one fp32 scale per slice
of their first dimension (output channels of a Conv2d, input channels of a ConvTranspose2d).

A quantised file has the format ``neuralcodec-weights-2`` and a ``quant`` metadata field
(JSON): ``{"scheme": "int8-axis0", "tensors": [names]}``. Each listed tensor ``NAME`` is
stored as I8 (values -127..127) with ``NAME.q8_scale`` (F32, shape ``[NAME.shape[0]]``,
finite and positive) beside it; every other tensor is stored as in a format-1 file. Loading
dequantises ``int8 -> fp32 * scale``: one IEEE product of an integer of 8 bits and an fp32
number, correctly rounded, so the loaded floats are the same on every machine.
"""
from __future__ import annotations

import json

import torch

from neuralcodec.errors import ModelError

QUANT_SCHEME = "int8-axis0"
SCALE_SUFFIX = ".q8_scale"
QMAX = 127
MIN_QUANT_ELEMENTS = 4096     # smaller tensors (biases, gains, entropy-model parameters) stay float


def quantisable(name: str, value: torch.Tensor, keep: tuple[str, ...] = ()) -> bool:
    """Whether ``save_weights(dtype="int8")`` stores this state-dict entry as int8: a float
    tensor of >= 2 dimensions and ``MIN_QUANT_ELEMENTS`` elements outside the ``keep``
    prefixes (module names kept in the float type, e.g. the exact entropy networks)."""
    kept = any(name == p or name.startswith(p + ".") for p in keep)
    return (value.is_floating_point() and value.dim() >= 2 and value.numel() >= MIN_QUANT_ELEMENTS
            and not kept)


def quantise(value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 values, fp32 scales) of a float tensor, symmetric per slice of dimension 0: the
    scale is the slice's peak magnitude / 127 (1 for an all-zero slice)."""
    w = value.detach().to("cpu", torch.float32)
    peak = w.abs().flatten(1).amax(1)
    scale = torch.where(peak > 0, peak / QMAX, torch.ones_like(peak))
    if not bool(torch.isfinite(scale).all()):
        raise ModelError("cannot quantise a tensor with inf or nan values")
    view = (-1,) + (1,) * (w.dim() - 1)
    q = torch.round(w / scale.view(view)).clamp(-QMAX, QMAX).to(torch.int8)
    return q.contiguous(), scale.contiguous()


def dequantise(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """fp32 ``q * scale`` (per slice of dimension 0): exact integers times fp32, one rounding."""
    return q.to(torch.float32) * scale.to(torch.float32).view((-1,) + (1,) * (q.dim() - 1))


def quant_names(meta: dict, path) -> list[str]:
    """The names a quantised file's ``quant`` field lists (empty for a format-1 file)."""
    if "quant" not in meta:
        return []
    try:
        quant = json.loads(meta["quant"])
    except (TypeError, ValueError, RecursionError):
        raise ModelError(f"weights {path}: metadata 'quant' is not valid JSON") from None
    if not isinstance(quant, dict) or quant.get("scheme") != QUANT_SCHEME:
        raise ModelError(f"weights {path}: metadata 'quant' must name the scheme {QUANT_SCHEME!r}")
    names = quant.get("tensors")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) \
            or len(set(names)) != len(names):
        raise ModelError(f"weights {path}: metadata 'quant' needs a list of distinct tensor names")
    return names


def stored_layout(stored: dict, names: list[str], path) -> dict:
    """The header layout ``{name: (shape, safetensors dtype)}`` of a file as the model sees it
    after dequantising: each quantised tensor is checked (I8, with an F32 scale of shape
    ``[shape[0]]``) and reported as F32, its scale left out."""
    layout = dict(stored)
    for name in names:
        scale_name = name + SCALE_SUFFIX
        if name not in stored:
            raise ModelError(f"weights {path}: metadata 'quant' lists {name!r}, which the file "
                             "does not hold")
        shape, dtype = stored[name]
        if dtype != "I8" or len(shape) < 2:
            raise ModelError(f"weights {path}: quantised tensor {name} is {dtype} of "
                             f"{len(shape)} dimensions, not I8 of 2 or more")
        if scale_name not in stored:
            raise ModelError(f"weights {path}: quantised tensor {name} has no {scale_name}")
        scale_shape, scale_dtype = layout.pop(scale_name)
        if scale_dtype != "F32" or tuple(scale_shape) != (shape[0],):
            raise ModelError(f"weights {path}: {scale_name} is {scale_dtype} of shape "
                             f"{list(scale_shape)}, not F32 of shape [{shape[0]}]")
        layout[name] = (shape, "F32")
    return layout


def dequantised_state(tensors: dict, names: list[str], path) -> dict:
    """The state dict of a loaded file: quantised tensors dequantised to fp32 (their scales
    finite and positive), scales dropped, everything else as stored."""
    state = {k: v for k, v in tensors.items() if k not in {n + SCALE_SUFFIX for n in names}}
    for name in names:
        q, scale = tensors.get(name), tensors.get(name + SCALE_SUFFIX)
        if q is None or scale is None or q.dtype != torch.int8 or scale.dtype != torch.float32 \
                or q.dim() < 2 or tuple(scale.shape) != (q.shape[0],):
            raise ModelError(f"weights {path}: quantised tensor {name} or its scale is missing "
                             "or malformed")
        if not bool((torch.isfinite(scale) & (scale > 0)).all()):
            raise ModelError(f"weights {path}: {name}{SCALE_SUFFIX} holds a scale that is not "
                             "finite and positive")
        state[name] = dequantise(q, scale)
    return state
