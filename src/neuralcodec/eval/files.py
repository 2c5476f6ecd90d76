"""Atomic writes of output files with ordinary permissions (0666 minus the umask)."""
from __future__ import annotations

import contextlib
import os


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def output_path(path):
    """Like cli.io_utils.atomic_path, but the finished file gets normal permissions."""
    from neuralcodec.cli.io_utils import atomic_path

    with atomic_path(path) as tmp:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())


def write_text(path, text: str) -> None:
    with output_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
