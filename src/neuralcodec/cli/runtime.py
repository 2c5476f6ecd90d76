"""Options shared by the subcommands that run models: --device, --threads, --weights."""
from __future__ import annotations

import argparse

from neuralcodec.errors import InputError


def add_runtime_options(parser: argparse.ArgumentParser, weights: bool = True) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="where the networks run (default: cuda when present)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for the networks and the entropy coder")
    if weights:
        parser.add_argument("--weights", default=None, metavar="FILE",
                            help="safetensors weights instead of the shipped ones")


def apply_runtime(args: argparse.Namespace) -> str:
    """Apply --threads and resolve --device; returns the device name."""
    import torch

    if args.threads is not None:
        if args.threads < 1:
            raise InputError("--threads must be at least 1")
        torch.set_num_threads(args.threads)
        from neuralcodec.entropy import coder
        coder.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    return args.device or ("cuda" if torch.cuda.is_available() else "cpu")


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                        help="run the transforms with PyTorch or with ONNX Runtime (needs --onnx DIR)")
    parser.add_argument("--onnx", default=None, metavar="DIR",
                        help="folder written by `neuralcodec export onnx` for the same weights")
    parser.add_argument("--onnx-precision", choices=["auto", "fp32", "int8"], default="auto",
                        help="ONNX graphs to run (auto: INT8 when the export has them)")


def apply_backend(args: argparse.Namespace, model, device: str):
    """(model, device) to run: unchanged for --backend torch, else the ONNX Runtime twin of
    ``model`` (its torch side runs on the CPU; the graphs use CUDA when onnxruntime-gpu has it)."""
    if args.backend == "torch":
        if args.onnx:
            raise InputError("--onnx DIR needs --backend onnx")
        return model, device
    if not args.onnx:
        raise InputError("--backend onnx needs --onnx DIR (made by `neuralcodec export onnx`)")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        from neuralcodec.errors import ModelError
        raise ModelError("--backend onnx needs ONNX Runtime: pip install 'neuralcodec[cpu]' "
                         "(or 'neuralcodec[gpu]')") from None
    from neuralcodec.export.onnx_backend import load_onnx_codec

    return load_onnx_codec(model, args.onnx, precision=args.onnx_precision, device=args.device,
                           threads=args.threads), "cpu"
