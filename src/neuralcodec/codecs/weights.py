"""Weights files (safetensors only, never pickle): save, check, load, hash.

A weights file holds the state dict (floats as fp16 by default) and metadata: ``format``,
``codec``, ``config`` (the constructor arguments, JSON) and ``info`` (the model card, JSON).
``dtype="int8"`` writes the large float tensors as int8 with per-channel scales (format 2,
:mod:`neuralcodec.codecs.weight_quant`); loading dequantises them to the same floats everywhere.
It is checked before anything large is built: its metadata (format, a ``config`` JSON object
whose keys are constructor arguments with values of the defaults' types and in range), then
the tensor names, shapes and dtypes it holds against the codec built in torch's fake-tensor
mode (no memory), so the real model can only be as large as the file.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
from pathlib import Path

import torch

from neuralcodec.codecs.catalog import WEIGHT_DTYPES
from neuralcodec.errors import ModelError

WEIGHTS_FORMAT = "neuralcodec-weights-1"
QUANT_FORMAT = "neuralcodec-weights-2"     # format 1 + int8 tensors listed in 'quant'
FORMATS = (WEIGHTS_FORMAT, QUANT_FORMAT)
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def save_weights(model: torch.nn.Module, path: str | Path, *, dtype: str = "fp16",
                 info: dict | None = None, extra_meta: dict | None = None, codec: str = "",
                 config: dict | None = None, keep: tuple[str, ...] = (), group: int = 0) -> Path:
    """Write every parameter and buffer of ``model`` (floating ones cast to ``dtype``) with
    its codec name (``model.name``, else ``codec``), config (``model.config``, else
    ``config``) and ``info`` as metadata, atomically; returns the path. ``dtype="int8"``
    stores the tensors that ``weight_quant.quantisable`` picks (none under the ``keep``
    module prefixes) as int8 + scales (one per output channel, or per ``group`` weights of
    it) and the other floats as fp16."""
    meta = {"codec": getattr(model, "name", "") or codec,
            "config": json.dumps(getattr(model, "config", None) or config or {}, sort_keys=True),
            "info": json.dumps(info or {}, sort_keys=True), **(extra_meta or {})}
    return write_state(model.state_dict(), meta, path, dtype=dtype, keep=keep, group=group)


def write_state(state: dict, meta: dict, path: str | Path, *, dtype: str = "fp16",
                keep: tuple[str, ...] = (), group: int = 0, overwrite: bool = True) -> Path:
    """Write a state dict with metadata ``meta`` (codec, config, info, ...; ``format`` and
    ``quant`` are set here) as :func:`save_weights` describes, atomically (an existing file
    is replaced unless ``overwrite`` is off)."""
    from safetensors.torch import save

    from neuralcodec.codecs import weight_quant as wq
    from neuralcodec.io.outputs import atomic_path

    if dtype not in WEIGHT_DTYPES:
        raise ModelError(f"unknown weights dtype {dtype!r} ({', '.join(WEIGHT_DTYPES)})")
    if type(group) is not int or not 0 <= group <= wq.MAX_GROUP:
        raise ModelError(f"int8 group size must be an integer in 0..{wq.MAX_GROUP}, got {group!r}")
    target = DTYPES.get(dtype, torch.float16)
    tensors, quantised = {}, []
    for key, value in state.items():
        value = value.detach().to("cpu", copy=True)
        if dtype == "int8" and wq.quantisable(key, value, keep):
            if key + wq.SCALE_SUFFIX in state:
                raise ModelError(f"cannot quantise {key}: the model has a tensor named "
                                 f"{key + wq.SCALE_SUFFIX}")
            tensors[key], tensors[key + wq.SCALE_SUFFIX] = wq.quantise(value, group)
            quantised.append(key)
            continue
        tensors[key] = (value.to(target) if value.is_floating_point() else value).contiguous()
    meta = {k: v for k, v in meta.items() if k not in ("format", "quant")}
    meta["format"] = QUANT_FORMAT if dtype == "int8" else WEIGHTS_FORMAT
    if dtype == "int8":
        meta["quant"] = wq.Quant(tuple(quantised), group).to_json()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Path(tmp).write_bytes(canonical_safetensors(save(tensors, metadata=meta)))
    return path


def canonical_safetensors(data: bytes) -> bytes:
    """``data`` (a safetensors file) with its header written in one order: the metadata keys
    sorted, first, then the tensors in the order of their data. safetensors writes the metadata
    in a random order, so equal weights gave files with different hashes, and the hash is what a
    bitstream records; the order of the JSON keys means nothing to a reader."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    ordered = {"__metadata__": dict(sorted(header.pop("__metadata__", {}).items()))}
    ordered.update(sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]))
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)            # the data starts 8-byte aligned, as safetensors writes it
    return len(text).to_bytes(8, "little") + text + data[8 + size:]


def convert_weights(source: str | Path, target: str | Path, dtype: str,
                    keep: tuple[str, ...] = (), group: int = 0, overwrite: bool = True) -> Path:
    """Rewrite the weights file ``source`` as ``target`` in ``dtype`` (e.g. fp16 -> int8),
    metadata kept; the card (``info``) records the new ``dtype`` and ``converted_from``
    (the source's SHA-256). ``target`` must not be ``source`` (nor a link to it)."""
    import os

    from neuralcodec.container import weights_hash

    source, target = Path(source), Path(target)
    if target.exists() and source.exists() and os.path.samefile(source, target):
        raise ModelError(f"weights convert: the output {target} is the input file")
    meta = read_metadata(source)
    info = weights_info(meta, source)
    info.update(dtype=dtype, converted_from=weights_hash(source).hex())
    meta = {**meta, "info": json.dumps(info, sort_keys=True)}
    return write_state(load_state(source, meta), meta, target, dtype=dtype, keep=keep,
                       group=group, overwrite=overwrite)


MAX_CONFIG_INT = 1 << 16       # channel counts and other integer constructor arguments
MAX_CONFIG_TEXT = 256
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")   # safetensors names; floats are cast on load
INT_DTYPES = {torch.int32: "I32", torch.int64: "I64", torch.int16: "I16", torch.int8: "I8",
              torch.uint8: "U8", torch.bool: "BOOL"}


def read_metadata(path: str | Path) -> dict:
    """The metadata of a neuralcodec weights file, with ``codec`` and ``config`` present."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises several types for bad files
        raise ModelError(f"cannot read weights {path}: {' '.join(str(exc).split())}") from None
    if meta.get("format") not in FORMATS:
        raise ModelError(f"{path} is not a neuralcodec weights file")
    for key in ("codec", "config"):
        if key not in meta:
            raise ModelError(f"weights {path}: metadata has no {key!r}")
    if ("quant" in meta) != (meta["format"] == QUANT_FORMAT):
        raise ModelError(f"weights {path}: metadata 'quant' belongs in a {QUANT_FORMAT} file, "
                         "and only there")
    return meta


def _fits(value, default) -> bool:
    """Whether a config value has the type of the constructor default and a sane size (an
    optional argument, default None, takes None, an integer, a short string or a short list
    of flat JSON objects of numbers and integer lists, e.g. an imported codec's levels)."""
    if default is None:
        return value is None or any(_fits(value, kind) for kind in (1, "")) or _flat_objects(value)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return type(value) is int and 1 <= value <= MAX_CONFIG_INT
    if isinstance(default, float):
        return type(value) in (int, float) and math.isfinite(value) and abs(value) <= 1e6
    if isinstance(default, str):
        return isinstance(value, str) and len(value) <= MAX_CONFIG_TEXT
    if isinstance(default, (tuple, list)):
        return isinstance(value, list) and len(value) <= MAX_CONFIG_TEXT and all(
            type(v) is int and 1 <= v <= MAX_CONFIG_INT for v in value)
    return False


def _flat_objects(value) -> bool:
    return isinstance(value, list) and 0 < len(value) <= MAX_CONFIG_TEXT and all(
        isinstance(item, dict) and len(item) <= 16 and all(
            isinstance(k, str) and len(k) <= 32 and (_fits(v, 1.0) or _fits(v, [1]))
            for k, v in item.items())
        for item in value)


def constructor_defaults(cls) -> dict:
    """The keyword arguments of ``cls``'s constructor and their defaults
    (``inspect.Parameter.empty`` for a required one). A constructor taking ``**options``
    passes them on to its base class, whose arguments count too, with ``cls.DEFAULTS``'
    values where it declares them (e.g. elic over gmm-ctx)."""
    out: dict = {}
    declared = getattr(cls, "DEFAULTS", {})
    for klass in cls.__mro__:
        if "__init__" not in klass.__dict__:
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        for p in params:
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) \
                    and p.name not in out:
                out[p.name] = p.default if klass is cls else declared.get(p.name, p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return out


def weights_config(meta: dict, path, cls) -> dict:
    """The constructor arguments recorded in a weights file's metadata for ``cls``: a JSON
    object of known argument names, each value of its default's type and in range."""
    try:
        config = json.loads(meta["config"])
    except (TypeError, ValueError, RecursionError):
        raise ModelError(f"weights {path}: metadata 'config' is not valid JSON") from None
    if not isinstance(config, dict):
        raise ModelError(f"weights {path}: metadata 'config' is not a JSON object")
    defaults = constructor_defaults(cls)
    for key, value in config.items():
        if defaults.get(key, inspect.Parameter.empty) is inspect.Parameter.empty:
            raise ModelError(f"weights {path}: config key {key!r} is not an argument of codec "
                             f"{cls.name!r} ({', '.join(defaults)})")
        if not _fits(value, defaults[key]):
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise ModelError(f"weights {path}: config {key}={shown} is out of range for codec "
                             f"{cls.name!r}")
    return config


def _is_default(cls, config: dict) -> bool:
    defaults = constructor_defaults(cls)
    return all(v == (list(d) if isinstance(d := defaults[k], tuple) else d)
               for k, v in config.items())


def _layout(module: torch.nn.Module) -> dict:
    return {k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()}


def build_checked(path, name: str, cls, config: dict, build):
    """``build()``, once the tensors of the weights file (names, shapes, dtypes; its header
    only) were found to fit the model: checked on a model built in fake-tensor mode (no
    memory) unless ``config`` only repeats ``cls``'s defaults (the shipped size), where the
    real model is built first. Coding-table buffers that a fresh model leaves empty may take
    any stored shape."""
    from safetensors import safe_open

    model = build() if _is_default(cls, config) else None
    if model is not None:
        expected = _layout(model)
    else:
        from neuralcodec.codecs.fake_build import fake_layout
        try:
            expected = fake_layout(build)
        except (ValueError, TypeError, RuntimeError, AssertionError, ModelError) as exc:
            raise ModelError(f"weights {path}: its config does not build codec {name!r}: "
                             f"{exc}") from None
    from neuralcodec.codecs.weight_quant import read_quant, stored_layout

    with safe_open(str(path), framework="pt") as f:
        stored = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype())
                  for k in f.keys()}
        stored = stored_layout(stored, read_quant(f.metadata() or {}, path), path)
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise ModelError(f"weights {path} do not fit codec {name!r}: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    for key, (shape, dtype) in stored.items():
        want_shape, want_dtype = expected[key]
        ok = dtype in FLOAT_DTYPES if want_dtype.is_floating_point \
            else dtype == INT_DTYPES.get(want_dtype)
        if not ok:
            raise ModelError(f"weights {path}: tensor {key} is {dtype}, codec {name!r} needs "
                             f"{'a float type' if want_dtype.is_floating_point else want_dtype}")
        if shape != want_shape and math.prod(want_shape) != 0:
            raise ModelError(f"weights {path}: tensor {key} has shape {list(shape)}, codec "
                             f"{name!r} needs {list(want_shape)}")
    return model if model is not None else build()


def load_state(path: str | Path, meta: dict | None = None) -> dict:
    """The state dict a weights file holds (``meta``: its checked metadata, read when not
    given): int8 tensors of a quantised file dequantised to fp32, the rest as stored."""
    from safetensors.torch import load_file

    from neuralcodec.codecs.weight_quant import dequantised_state, read_quant

    meta = read_metadata(path) if meta is None else meta
    quant = read_quant(meta, path)
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for bad files
        raise ModelError(f"cannot read weights {path}: {' '.join(str(exc).split())}") from None
    return dequantised_state(tensors, quant, path) if quant else tensors


def weights_info(meta: dict, path) -> dict:
    """The model card (metadata ``info``, a JSON object) of a weights file."""
    try:
        info = json.loads(meta.get("info", "{}"))
    except (TypeError, ValueError, RecursionError):
        info = None
    if not isinstance(info, dict):
        raise ModelError(f"weights {path}: metadata 'info' is not a JSON object")
    return info


def attach_weights(model: torch.nn.Module, path: Path, meta: dict, device: str = "cpu"):
    """Load a weights file into a freshly built model; record its SHA-256 and card info."""
    from neuralcodec.container import weights_hash

    info = weights_info(meta, path)
    try:
        model.load_state_dict(load_state(path, meta))
    except RuntimeError as exc:
        raise ModelError(f"weights {path} do not fit codec {meta['codec']!r}: "
                         f"{str(exc).splitlines()[0]}") from None
    model.weights_hash = weights_hash(path)
    model.weights_info = info
    model = model.to(device).eval()
    if torch.device(device).type == "cpu":
        # oneDNN runs the (transposed) convolutions up to ~1.8x faster on channels-last
        # tensors (bench/image_codec.py times both layouts); the exact integer networks give
        # the same integers, the float transforms may differ in the last bits
        model.to(memory_format=torch.channels_last)
    return model


def state_dict_hash(module: torch.nn.Module, h=None):
    """``h`` (a fresh SHA-256 by default) updated with every state-dict entry in key order:
    the key, then the tensor's bytes. The hash of a model in memory (no weights file)."""
    h = hashlib.sha256() if h is None else h
    for key, value in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h


def model_hash(model: torch.nn.Module) -> bytes:
    """The weights hash a bitstream records: the weights file's SHA-256 when loaded from
    a file, else a hash of the codec name and the current state dict (models in training)."""
    known = getattr(model, "weights_hash", None)
    if known is not None:
        return known
    return state_dict_hash(model, hashlib.sha256(model.name.encode())).digest()
