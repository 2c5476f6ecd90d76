"""Streaming writer and ``pack``: header record, substream records, end record."""
from __future__ import annotations

import io
import os

from neuralcodec.errors import BitstreamError

from . import layout as L
from .layout import Header, Substream


def _as_bytes(data) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise BitstreamError(f"substream data must be bytes, got {type(data).__name__}")


class ContainerWriter:
    """Write a container record by record; memory does not grow with its length.

    ``fileobj`` is a binary file (left open) or a path (opened and closed here).
    The header is written at once; call ``add`` per substream, then ``close`` to
    write the end record. Leaving a ``with`` block by an exception writes no end
    record, so readers reject the incomplete file.
    """

    def __init__(self, fileobj, header: Header, *, _raw_header: bytes | None = None):
        record = _raw_header if _raw_header is not None else L.encode_header(header)
        self._owned = isinstance(fileobj, (str, os.PathLike))
        self._file = open(fileobj, "wb") if self._owned else fileobj
        self.header = header
        self.count = 0
        self.bytes_written = 0
        self.closed = False
        self._crc = 0
        self._write(record)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        elif self._owned:
            self._file.close()

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._crc = L.crc32(data, self._crc)
        self.bytes_written += len(data)

    def add(self, name: str, data: bytes, truncatable: bool = False) -> None:
        """Append one named substream."""
        self._add(name, data, L.FLAG_TRUNCATABLE if truncatable else 0)

    def _add(self, name: str, data, flags: int) -> None:
        if self.closed:
            raise BitstreamError("cannot add a substream: container already closed")
        raw_name = L.check_name(name, "substream")
        data = _as_bytes(data)
        if len(data) > L.MAX_SUBSTREAM_BYTES:
            raise BitstreamError(f"substream {name!r} has {len(data)} bytes, "
                                 f"limit {L.MAX_SUBSTREAM_BYTES}")
        if self.count >= L.MAX_SUBSTREAMS:
            raise BitstreamError(f"more than {L.MAX_SUBSTREAMS} substreams")
        self._write(L.substream_record_head(raw_name, flags, len(data), L.crc32(data)))
        self._write(data)
        self.count += 1

    def close(self) -> None:
        """Write the end record (once) and close the file if this writer opened it."""
        if self.closed:
            return
        self._write(L.END.pack(L.TAG_END, self.count))
        self._file.write(L.CRC.pack(self._crc))
        self.bytes_written += L.CRC.size
        self.closed = True
        if self._owned:
            self._file.close()
        elif hasattr(self._file, "flush"):
            self._file.flush()


def _flags(s: Substream) -> int:
    if not isinstance(s, Substream):
        raise BitstreamError(f"expected a Substream, got {type(s).__name__}")
    if s.truncated and not s.truncatable:
        raise BitstreamError(f"substream {s.name!r} is marked truncated but not truncatable")
    return (L.FLAG_TRUNCATABLE if s.truncatable else 0) | (L.FLAG_TRUNCATED if s.truncated else 0)


def pack(header: Header, streams: list[Substream], *, _raw_header: bytes | None = None) -> bytes:
    """Serialise a header and substreams into one container."""
    buf = io.BytesIO()
    writer = ContainerWriter(buf, header, _raw_header=_raw_header)
    for s in streams:
        writer._add(s.name, s.data, _flags(s))
    writer.close()
    return buf.getvalue()
