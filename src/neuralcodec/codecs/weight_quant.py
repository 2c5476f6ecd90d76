"""8-bit storage of weights files: large float tensors as int8 with fp32 scales, one per slice
of their first dimension (output channels of a Conv2d, input channels of a ConvTranspose2d)
or, with a group size G, one per G consecutive weights of each such slice.

A quantised file has the format ``neuralcodec-weights-2`` and a ``quant`` metadata field
(JSON): ``{"scheme": "int8-axis0", "group": G, "tensors": [names]}`` (G = 0: one scale per
slice). Each listed tensor ``NAME`` is stored as I8 (written as -127..127) with
``NAME.q8_scale`` beside it: F32, finite and positive, of shape ``[NAME.shape[0]]`` (G = 0) or
``[NAME.shape[0], ceil(slice size / G)]``; every other tensor is stored as in a format-1 file.
Loading dequantises ``int8 -> fp32 * scale``: one IEEE product of an integer of 8 bits and an
fp32 number, correctly rounded, so the loaded floats are the same on every machine.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import torch

from neuralcodec.errors import ModelError

QUANT_SCHEME = "int8-axis0"
SCALE_SUFFIX = ".q8_scale"
QMAX = 127
MIN_QUANT_ELEMENTS = 4096     # smaller tensors (biases, gains, entropy-model parameters) stay float
MAX_GROUP = 1 << 16


@dataclass(frozen=True)
class Quant:
    """A quantised file's ``quant`` field: the int8 tensors and the group size (0: per slice)."""
    names: tuple[str, ...]
    group: int = 0

    def scale_shape(self, shape) -> tuple[int, ...]:
        """The shape of the scales of a tensor of ``shape``."""
        if not self.group:
            return (shape[0],)
        return (shape[0], math.ceil(math.prod(shape[1:]) / self.group))

    def to_json(self) -> str:
        return json.dumps({"scheme": QUANT_SCHEME, "group": self.group, "tensors": list(self.names)})


def quantisable(name: str, value: torch.Tensor, keep: tuple[str, ...] = ()) -> bool:
    """Whether ``save_weights(dtype="int8")`` stores this state-dict entry as int8: a float
    tensor of >= 2 dimensions and ``MIN_QUANT_ELEMENTS`` elements outside the ``keep``
    prefixes (module names kept in the float type, e.g. the exact entropy networks)."""
    kept = any(name == p or name.startswith(p + ".") for p in keep)
    return (value.is_floating_point() and value.dim() >= 2 and value.numel() >= MIN_QUANT_ELEMENTS
            and not kept)


def _groups(flat: torch.Tensor, group: int) -> torch.Tensor:
    """``flat`` (slices x n) as (slices, groups, G), zero-padded (G = n when ``group`` is 0)."""
    size = group or flat.shape[1]
    return torch.nn.functional.pad(flat, (0, -flat.shape[1] % size)).view(flat.shape[0], -1, size)


def quantise(value: torch.Tensor, group: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 values, fp32 scales) of a float tensor, symmetric per slice of dimension 0 (or
    per ``group`` weights of it): a scale is the peak magnitude / 127 (1 where all are zero)."""
    w = value.detach().to("cpu", torch.float32)
    flat = w.flatten(1)
    parts = _groups(flat, group)
    peak = parts.abs().amax(2)
    scale = torch.where(peak > 0, peak / QMAX, torch.ones_like(peak))
    if not bool(torch.isfinite(scale).all()):
        raise ModelError("cannot quantise a tensor with inf or nan values")
    q = torch.round(parts / scale.unsqueeze(2)).clamp(-QMAX, QMAX).to(torch.int8)
    q = q.flatten(1)[:, :flat.shape[1]].reshape(w.shape)
    return q.contiguous(), (scale if group else scale[:, 0]).contiguous()


def dequantise(q: torch.Tensor, scale: torch.Tensor, group: int = 0) -> torch.Tensor:
    """fp32 ``q * scale``: exact integers times fp32, one rounding per weight."""
    flat = q.flatten(1).to(torch.float32)
    parts = _groups(flat, group)
    values = parts * scale.to(torch.float32).view(parts.shape[0], -1, 1)
    return values.flatten(1)[:, :flat.shape[1]].reshape(q.shape)


def read_quant(meta: dict, path) -> Quant | None:
    """The ``quant`` field of a file's metadata (None for a format-1 file), checked."""
    if "quant" not in meta:
        return None
    try:
        quant = json.loads(meta["quant"])
    except (TypeError, ValueError, RecursionError):
        raise ModelError(f"weights {path}: metadata 'quant' is not valid JSON") from None
    if not isinstance(quant, dict) or quant.get("scheme") != QUANT_SCHEME:
        raise ModelError(f"weights {path}: metadata 'quant' must name the scheme {QUANT_SCHEME!r}")
    names, group = quant.get("tensors"), quant.get("group", 0)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) \
            or len(set(names)) != len(names):
        raise ModelError(f"weights {path}: metadata 'quant' needs a list of distinct tensor names")
    if type(group) is not int or not 0 <= group <= MAX_GROUP:
        raise ModelError(f"weights {path}: metadata 'quant' group must be an integer in "
                         f"0..{MAX_GROUP}")
    return Quant(tuple(names), group)


def stored_layout(stored: dict, quant: Quant | None, path) -> dict:
    """The header layout ``{name: (shape, safetensors dtype)}`` of a file as the model sees it
    after dequantising: each quantised tensor is checked (I8, with an F32 scale of its
    ``scale_shape``) and reported as F32, its scale left out."""
    layout = dict(stored)
    for name in quant.names if quant else ():
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
        want = quant.scale_shape(shape)
        if scale_dtype != "F32" or tuple(scale_shape) != want:
            raise ModelError(f"weights {path}: {scale_name} is {scale_dtype} of shape "
                             f"{list(scale_shape)}, not F32 of shape {list(want)}")
        layout[name] = (shape, "F32")
    return layout


def dequantised_state(tensors: dict, quant: Quant, path) -> dict:
    """The state dict of a loaded file: quantised tensors dequantised to fp32 (their scales
    finite and positive), scales dropped, everything else as stored."""
    scales = {n + SCALE_SUFFIX for n in quant.names}
    state = {k: v for k, v in tensors.items() if k not in scales}
    for name in quant.names:
        q, scale = tensors.get(name), tensors.get(name + SCALE_SUFFIX)
        if q is None or scale is None or q.dtype != torch.int8 or scale.dtype != torch.float32 \
                or q.dim() < 2 or tuple(scale.shape) != quant.scale_shape(q.shape):
            raise ModelError(f"weights {path}: quantised tensor {name} or its scale is missing "
                             "or malformed")
        if not bool((torch.isfinite(scale) & (scale > 0)).all()):
            raise ModelError(f"weights {path}: {name}{SCALE_SUFFIX} holds a scale that is not "
                             "finite and positive")
        state[name] = dequantise(q, scale, quant.group)
    return state
