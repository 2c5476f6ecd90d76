"""The `neuralcodec` command line.

Subcommands live in modules named ``cmd_<name>.py`` in this package; each defines
``register(subparsers)`` which adds its parser and sets ``func`` to a callable
taking the parsed namespace and returning an exit code. Modules import heavy
dependencies (torch, codecs) inside ``func``, after the torch-free checks of
``neuralcodec.cli.checks`` and ``neuralcodec.codecs.catalog``, so that ``--help``, ``info``,
``truncate`` and every mistake in the arguments or files answer without importing torch
(``tests/test_cli_startup.py``).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import signal
import sys
import threading
import warnings

from neuralcodec import __version__
from neuralcodec.errors import NeuralCodecError, reason


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuralcodec",
        description="Learned image and video compression.",
    )
    parser.add_argument("--version", action="version", version=f"neuralcodec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("cmd_"))
    for name in names:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _quiet_dependencies() -> None:
    """Hide a dependency's import-time deprecation notice that says nothing about the user's
    command (compressai imports torch_geometric, which calls torch.jit.script)."""
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that the same cleanup runs
    (temporary outputs are removed) before the exit."""


def _raise_terminated(signum, frame):
    raise Terminated


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises :class:`Terminated` while the command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's allocation failure (RuntimeError or a subclass)."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text
                                              or "out of memory" in text.lower())


def main(argv: list[str] | None = None) -> int:
    _quiet_dependencies()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        with _sigterm_raises():
            return int(args.func(args) or 0)
    except NeuralCodecError as exc:
        print(f"neuralcodec: error: {exc}", file=sys.stderr)
        return 1
    except Terminated:
        print("neuralcodec: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("neuralcodec: interrupted", file=sys.stderr)
        return 130
    except (OSError, MemoryError) as exc:
        print(f"neuralcodec: error: {reason(exc) if isinstance(exc, OSError) else 'out of memory'}",
              file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line, traceback on request
        if _out_of_memory(exc):         # torch's allocators raise RuntimeError
            print(f"neuralcodec: error: out of memory ({reason(exc)})", file=sys.stderr)
            return 1
        if os.environ.get("NEURALCODEC_DEBUG"):
            raise
        if isinstance(exc, ModuleNotFoundError) and not (exc.name or "neuralcodec").startswith("neuralcodec"):
            from neuralcodec.cli.checks import missing_module_message   # an optional dependency

            print(f"neuralcodec: error: {missing_module_message(exc.name, f'neuralcodec {args.command}')}",
                  file=sys.stderr)
            return 1
        print(f"neuralcodec: internal error: {type(exc).__name__}: {reason(exc)} "
              "(set NEURALCODEC_DEBUG=1 for a traceback)", file=sys.stderr)
        return 3
