"""Writing outputs: atomic writes and the output rules.

Outputs (docs: README "Outputs"): written to a temporary name beside the output and renamed
over it when complete, so a reader never sees a partial file and a failed or interrupted
command (Ctrl-C, SIGTERM) leaves nothing behind. A new output gets the usual permissions,
0666 (0777 for a folder) minus the umask; an existing one is replaced (``-n`` refuses) by a
new file with the old one's permission bits: other hard links keep the old content, and a
write-protected file is never replaced.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from neuralcodec.errors import InputError


def umask() -> int:
    """The process umask (from /proc where it can be read without changing it)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


def check_replaceable(out: Path, overwrite: bool = True) -> None:
    """Raise if an existing ``out`` may not be replaced: ``overwrite`` is off, or the file is
    write-protected (no owner write bit, or not writable by this user)."""
    if not os.path.lexists(out):
        return
    if not overwrite:
        raise InputError(f"output {out} exists (-n/--no-overwrite given)")
    mode = os.lstat(out).st_mode
    if stat.S_ISREG(mode) and (not mode & stat.S_IWUSR or not os.access(out, os.W_OK)):
        raise InputError(f"output {out} is write-protected (mode {stat.S_IMODE(mode):04o}); "
                         "it is not replaced")


def check_output_path(output: str | os.PathLike, *inputs: str | os.PathLike,
                      overwrite: bool = True) -> Path:
    """Refuse an output path that is one of the inputs (never overwrite an input), a folder,
    in a missing folder, or (see :func:`check_replaceable`) an existing file not to replace."""
    out = Path(output)
    refuse_input_overwrite(out, *inputs)
    if out.is_dir():
        raise InputError(f"output {out} is a directory")
    require_parent(out)
    check_replaceable(out, overwrite)
    return out


def finish_output(tmp: Path, out: Path, overwrite: bool = True) -> None:
    """Give the finished temporary ``tmp`` its permissions and move it to ``out``: the mode of
    the file it replaces, else 0666 (0777 for a folder) minus the umask. Without
    ``overwrite`` an output created meanwhile by someone else is not replaced either."""
    try:
        old = os.stat(out).st_mode if os.path.isfile(out) and not tmp.is_dir() else None
    except OSError:
        old = None
    os.chmod(tmp, stat.S_IMODE(old) if old is not None
             else (0o777 if tmp.is_dir() else 0o666) & ~umask())
    if overwrite or tmp.is_dir():
        os.replace(tmp, out)
        return
    try:
        os.link(tmp, out)                    # fails if out exists: no clobbering race
    except FileExistsError:
        raise InputError(f"output {out} exists (-n/--no-overwrite given)") from None
    except OSError:                          # a file system without hard links
        if os.path.lexists(out):
            raise InputError(f"output {out} exists (-n/--no-overwrite given)") from None
        os.replace(tmp, out)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(output: str | os.PathLike, suffix: str | None = None, *,
                overwrite: bool = True):
    """Yield a temporary path beside ``output``; move it to ``output`` on success (see
    :func:`finish_output`), remove it on any error or interruption."""
    out = Path(output)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=suffix or out.suffix + ".tmp",
                               dir=out.parent if str(out.parent) else ".")
    os.close(fd)
    try:
        yield Path(tmp)
        finish_output(Path(tmp), out, overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(output: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``output`` atomically."""
    with atomic_path(output, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
