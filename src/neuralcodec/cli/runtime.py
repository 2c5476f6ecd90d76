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
