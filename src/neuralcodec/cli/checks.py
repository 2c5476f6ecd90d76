"""Argument and file checks that need no PyTorch: the subcommands run them before the networks
load, so a mistake is reported in a fraction of a second instead of after a 5-10 s import."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from neuralcodec.codecs import catalog
from neuralcodec.errors import InputError, ModelError

# optional dependencies and how to get them (the extras in pyproject.toml)
INSTALL_HINTS = {
    "onnxruntime": "pip install 'neuralcodec[cpu]' (or 'neuralcodec[gpu]' on a CUDA machine)",
    "onnx": "pip install onnx",
    "av": "pip install av",
    "imagecodecs": "pip install imagecodecs",
    "matplotlib": "pip install matplotlib",
}


def missing_module_message(name: str, purpose: str = "") -> str:
    """One line for a missing optional package: what needs it and how to install it."""
    top = (name or "?").split(".")[0]
    hint = INSTALL_HINTS.get(top, f"pip install {top}")
    return f"{purpose or 'this command'} needs the Python package '{top}', which is not installed: {hint}"


def require_module(name: str, purpose: str) -> None:
    """ModelError naming the install command when ``name`` cannot be imported."""
    if importlib.util.find_spec(name) is None:
        raise ModelError(missing_module_message(name, purpose))


def check_positive(option: str, value: float | None) -> None:
    """A finite number above zero (None: the option was not given)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise InputError(f"{option} must be a positive number, got {value:g}")


def check_runtime(args) -> None:
    """--threads, --backend/--onnx and --weights as far as they can be checked without torch."""
    threads = getattr(args, "threads", None)
    if threads is not None and threads < 1:
        raise InputError("--threads must be at least 1")
    backend = getattr(args, "backend", "torch")
    if backend == "torch" and getattr(args, "onnx", None):
        raise InputError("--onnx DIR needs --backend onnx")
    if backend == "onnx":
        if not args.onnx:
            raise InputError("--backend onnx needs --onnx DIR (made by `neuralcodec export onnx`)")
        if not Path(args.onnx).is_dir():
            raise InputError(f"--onnx {args.onnx}: no such folder")
        require_module("onnxruntime", "--backend onnx")
    weights = getattr(args, "weights", None)
    if weights and not Path(weights).is_file():
        raise ModelError(f"weights file {weights} not found")


def image_model(name: str | None) -> str | None:
    """The image codec a --model value names (None: taken from --weights or the default)."""
    if name is None or name in catalog.IMAGE_CODECS or name in catalog.IMPORTED_CODECS:
        return name
    if name in catalog.VIDEO_CODECS:
        raise ModelError(f"{name!r} is a video codec; the input is an image "
                         f"(image codecs: {', '.join(catalog.IMAGE_CODECS)})")
    raise ModelError(f"unknown codec {name!r} (image codecs: {', '.join(catalog.IMAGE_CODECS)}; "
                     f"video codecs: {', '.join(catalog.VIDEO_CODECS)})")


def video_model(name: str | None) -> str:
    """The video codec a --model value names (default: the default video codec)."""
    name = name or catalog.DEFAULT_VIDEO_CODEC
    if name not in catalog.VIDEO_CODECS:
        what = "an image codec" if name in catalog.IMAGE_CODECS else "not a video codec"
        raise ModelError(f"{name!r} is {what}; the input is a video "
                         f"(video codecs: {', '.join(catalog.VIDEO_CODECS)})")
    return name


def check_suffix(output, kind: str) -> None:
    """Refuse .ncv for an image bitstream and .ncb for a video one (other names are free)."""
    suffix = Path(output).suffix.lower()
    wrong = {"image": ".ncv", "video": ".ncb"}[kind]
    if suffix == wrong:
        right = ".ncb" if kind == "image" else ".ncv"
        raise InputError(f"output {output}: {wrong} is the extension of "
                         f"{'video' if kind == 'image' else 'image'} bitstreams; "
                         f"name {'an image' if kind == 'image' else 'a video'} bitstream {right}")
