"""File helpers shared by the subcommands: atomic writes and input protection."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from neuralcodec.errors import InputError


def read_input_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of an input file, with a clear error when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input {path} not found")
    return path.read_bytes()


def refuse_input_overwrite(out: Path, *inputs: str | os.PathLike) -> None:
    """Raise if ``out`` is (or resolves to) one of the inputs."""
    for item in inputs:
        src = Path(item)
        if out.resolve() == src.resolve() or (out.exists() and src.exists() and os.path.samefile(out, src)):
            raise InputError(f"output {out} would overwrite the input {src}")


def require_parent(out: Path) -> None:
    """Raise if the folder that would hold ``out`` does not exist."""
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output folder {parent} does not exist")


def check_output_path(output: str | os.PathLike, *inputs: str | os.PathLike) -> Path:
    """Refuse an output path that is one of the inputs (never overwrite an input)."""
    out = Path(output)
    refuse_input_overwrite(out, *inputs)
    if out.is_dir():
        raise InputError(f"output {out} is a directory")
    require_parent(out)
    return out


@contextlib.contextmanager
def atomic_path(output: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside ``output``; rename it over ``output`` on success."""
    out = Path(output)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=suffix or out.suffix + ".tmp",
                               dir=out.parent if str(out.parent) else ".")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(output: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``output`` atomically."""
    with atomic_path(output) as tmp:
        tmp.write_bytes(data)
