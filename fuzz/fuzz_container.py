"""Target 1: the .ncb container parser (read_header, unpack, the streaming reader on a seekable
file and on a pipe, with and without keeping data; truncate_container)."""
from __future__ import annotations

import io

import _harness
from _harness import attempt
import atheris

with atheris.instrument_imports(include=["neuralcodec"]):
    from neuralcodec import container as C


class _Pipe(io.RawIOBase):
    """A non-seekable reader handing out a few bytes at a time."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), 7, len(self.data) - self.pos)
        b[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


def target(data: bytes) -> None:
    data = _harness.prepare(data)
    attempt(C.read_header, data)
    for allow in (False, True):
        got = attempt(C.unpack, data, allow_truncated=allow)
        if got is not None and not allow:        # what was read is written back the same
            assert C.unpack(C.pack(*got)) == got, "pack(unpack(x)) does not read back the same"
    for skip in (False, True):
        attempt(_read_pipe, data, skip)
    cut = attempt(C.truncate_container, data, max(len(data) - len(data) // 3, 0))
    if cut is not None:
        assert len(cut) <= max(len(data) - len(data) // 3, 0) or cut == data
        C.unpack(cut, allow_truncated=True)


def _read_pipe(data: bytes, skip: bool) -> None:
    with C.ContainerReader(io.BufferedReader(_Pipe(data)), allow_truncated=True,
                           skip_data=skip) as r:
        for s in r:
            assert s.size <= len(data)


def seeds() -> dict[str, bytes]:
    import seeds as S
    out = {**S.image_streams(), **S.tritplane_streams(), **S.video_streams()}
    hostile = _harness.ROOT / "tests/data/hostile"
    for p in sorted(hostile.iterdir()):
        if p.stat().st_size < 20000 and p.name != "hp-claims-2e40.ncb":
            try:
                if _harness.fix_container(p.read_bytes()) == p.read_bytes():
                    out["hostile-" + p.name] = p.read_bytes()
            except Exception:
                pass
    return out


if __name__ == "__main__":
    _harness.main("container", target, seeds)
