"""Input helpers and the output option shared by the subcommands (the output rules and
atomic writes themselves are :mod:`neuralcodec.io.outputs`)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from neuralcodec.errors import InputError


def read_input_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of an input file, with a clear error when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input {path} not found")
    return path.read_bytes()


def read_input_header(path: str | os.PathLike):
    """The header record of an input bitstream; only the first bytes of the file are read, so
    a large or foreign file fails before anything is loaded."""
    from neuralcodec.container import read_header

    path = Path(path)
    if not path.is_file():
        raise InputError(f"input {path} not found")
    try:
        return read_header(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--no-overwrite", dest="overwrite", action="store_false",
                        help="never replace an existing output (default: replace it atomically; "
                             "a write-protected file is never replaced)")
