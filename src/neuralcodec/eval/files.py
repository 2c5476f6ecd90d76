"""Atomic writes of output files with ordinary permissions (0666 minus the umask)."""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def output_path(path):
    """io.outputs.atomic_path (the finished file gets 0666 minus the umask)."""
    from neuralcodec.io.outputs import atomic_path

    with atomic_path(path) as tmp:
        yield tmp


def write_text(path, text: str) -> None:
    with output_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
