"""Streaming, validating reader: one record at a time, never trusting a length
field to allocate (lengths are CRC-checked, then checked against the bytes left)."""
from __future__ import annotations

import io
import os

from neuralcodec.errors import BitstreamError

from . import layout as L
from .layout import Header, Substream

CHUNK = 1 << 18  # read size when the total size of the input is unknown


class _Source:
    """A binary file read exactly, with a running CRC32 and the size left (if known)."""

    def __init__(self, fileobj):
        self.f = fileobj
        self.pos = 0
        self.crc = 0
        self.end = None
        try:
            if fileobj.seekable():
                start = fileobj.tell()
                self.end = fileobj.seek(0, os.SEEK_END) - start
                fileobj.seek(start)
        except (OSError, AttributeError, ValueError):
            self.end = None

    def left(self) -> int | None:
        return None if self.end is None else max(self.end - self.pos, 0)

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at end of file); n must be trusted or checked."""
        left = self.left()
        if left is not None:
            n = min(n, left)
        parts, got = [], 0
        while got < n:
            part = self.f.read(min(n - got, CHUNK) if left is None else n - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.pos += len(data)
        self.crc = L.crc32(data, self.crc)
        return bytes(data)

    def consume(self, n: int) -> tuple[int, int]:
        """Read and drop up to ``n`` bytes (fewer only at end of file) in chunks, so memory
        stays at one chunk whatever ``n`` says; returns (bytes read, their CRC32)."""
        left = self.left()
        if left is not None:
            n = min(n, left)
        got, crc = 0, 0
        while got < n:
            part = self.f.read(min(n - got, CHUNK))
            if not part:
                break
            got += len(part)
            crc = L.crc32(part, crc)
            self.crc = L.crc32(part, self.crc)
        self.pos += got
        return got, crc

    def exact(self, n: int, what: str) -> bytes:
        data = self.read(n)
        if len(data) < n:
            raise BitstreamError(f"truncated file: {what} needs {n} bytes at offset "
                                 f"{self.pos - len(data)}, only {len(data)} left")
        return data


def _read_header(src: _Source) -> tuple[Header, tuple[int, int], bytes]:
    """Read and validate the header record: magic, version, length, CRC, fields."""
    prefix = src.read(L.PREFIX.size)
    if prefix[:len(L.MAGIC)] != L.MAGIC[:len(prefix)]:
        raise BitstreamError("not a neuralcodec bitstream (bad magic bytes)")
    if len(prefix) < L.PREFIX.size:
        raise BitstreamError(f"truncated file: {len(prefix)} bytes, too short for a header")
    version, body_len = L.check_prefix(prefix)
    rest = src.exact(body_len + L.CRC.size, "header")
    body, stored = rest[:body_len], L.CRC.unpack(rest[body_len:])[0]
    if L.crc32(prefix + body) != stored:
        raise BitstreamError("header CRC mismatch (corrupt file)")
    return L.decode_header_body(body, version), version, prefix + rest


class ContainerReader:
    """Validating reader: ``.header`` at once, then iterate for Substreams one at a
    time (memory bounded by the largest substream). ``fileobj`` is a binary file or
    a path. Errors (BitstreamError) may surface at any step, including after the
    last substream (end record, trailing data); each yielded substream's own CRC
    was checked unless it is reported truncated. With ``skip_data`` the data is
    streamed through its CRC check in chunks and not kept (``data`` is empty,
    ``size`` says how many bytes were there): memory stays bounded whatever the
    declared lengths, also on a pipe."""

    def __init__(self, fileobj, *, allow_truncated: bool = False, skip_data: bool = False):
        self._owned = isinstance(fileobj, (str, os.PathLike))
        self._file = open(fileobj, "rb") if self._owned else fileobj
        try:
            self._src = _Source(self._file)
            self.header, self.version, self.header_bytes = _read_header(self._src)
        except BaseException:
            self.close()
            raise
        self.allow_truncated = allow_truncated
        self.skip_data = skip_data
        self.count = 0
        self.truncated = False  # True when the file ended before its end record
        self.complete = False   # True once the end record and file end were verified
        self._open_truncatable = None  # name of a truncatable substream EOF may follow

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Close the file if this reader opened it."""
        if self._owned and not self._file.closed:
            self._file.close()

    def __iter__(self):
        while not self.complete and not self.truncated:
            try:
                sub = self._next_record()
            except BaseException:
                self.close()
                raise
            if sub is None:
                self.close()
                return
            yield sub

    def _eof(self, what: str):
        """End of file before ``what``: a truncation or an error."""
        if self._open_truncatable is not None and self.allow_truncated:
            self.truncated = True
            return None
        if self._open_truncatable is not None:
            raise BitstreamError(f"file ends after truncatable substream "
                                 f"{self._open_truncatable!r} (pass allow_truncated=True "
                                 "to read it)")
        raise BitstreamError(f"truncated file: {what} missing at offset {self._src.pos} "
                             f"after {self.count} substreams")

    def _next_record(self) -> Substream | None:
        src = self._src
        start = src.pos
        tag = src.read(1)
        if not tag:
            return self._eof("end record")
        if tag == L.TAG_END:
            return self._read_end(start)
        if tag != L.TAG_SUBSTREAM:
            raise BitstreamError(f"unknown record type 0x{tag[0]:02x} at offset {start} "
                                 "(corrupt file)")
        return self._read_substream(start)

    def _need(self, n: int, what: str) -> bytes | None:
        data = self._src.read(n)
        return data if len(data) == n else self._eof(what)

    def _read_substream(self, start: int) -> Substream | None:
        index = self.count
        if index >= L.MAX_SUBSTREAMS:
            raise BitstreamError(f"more than {L.MAX_SUBSTREAMS} substreams")
        head = self._need(2, f"substream #{index} record")
        if head is None:
            return None
        flags, name_len = head
        rest = self._need(name_len + L.SUB_FIXED.size + L.CRC.size,
                          f"substream #{index} record")
        if rest is None:
            return None
        name_raw = rest[:name_len]
        length, data_crc = L.SUB_FIXED.unpack_from(rest, name_len)
        stored = L.CRC.unpack_from(rest, name_len + L.SUB_FIXED.size)[0]
        if L.crc32(L.TAG_SUBSTREAM + head + rest[:-L.CRC.size]) != stored:
            raise BitstreamError(f"substream #{index} record CRC mismatch at offset {start} "
                                 "(corrupt file)")
        name = L.check_substream_head(flags, name_raw, length, index)
        truncatable = bool(flags & L.FLAG_TRUNCATABLE)
        self._open_truncatable = None
        self.count += 1
        data, got, crc = self._read_data(name, length, truncatable)
        short = got < length
        if not short and crc != data_crc:
            raise BitstreamError(f"substream #{index} {name!r} data CRC mismatch (corrupt file)")
        if truncatable:
            self._open_truncatable = name
        if short:
            self.truncated = True
        return Substream(name, data, truncatable, short or bool(flags & L.FLAG_TRUNCATED),
                         declared_length=length, size=got)

    def _read_data(self, name: str, length: int, truncatable: bool) -> tuple[bytes, int, int]:
        """(data or b"" when skipping, bytes present, their CRC32)."""
        allowed = truncatable and self.allow_truncated
        left = self._src.left()
        if left is not None and length > left and not allowed:
            self._short_data(name, length, left, truncatable)
        if self.skip_data:
            data, (got, crc) = b"", self._src.consume(length)
        else:
            data = self._src.read(length)
            got = len(data)
            crc = L.crc32(data) if got == length else 0
        if got < length and not allowed:
            self._short_data(name, length, got, truncatable)
        return data, got, crc

    def _short_data(self, name: str, length: int, got: int, truncatable: bool):
        hint = " (pass allow_truncated=True to read the prefix)" if truncatable else ""
        raise BitstreamError(f"substream #{self.count - 1} {name!r} claims {length} bytes but "
                             f"the file has only {got} left (truncated or corrupt){hint}")

    def _read_end(self, start: int) -> None:
        count_raw = self._need(L.END.size - 1, "end record")
        if count_raw is None:
            return None
        expected = self._src.crc
        crc_raw = self._need(L.CRC.size, "end record")
        if crc_raw is None:
            return None
        if L.CRC.unpack(crc_raw)[0] != expected:
            raise BitstreamError("container CRC mismatch in end record (corrupt file)")
        count = L.END.unpack(L.TAG_END + count_raw)[1]
        if count != self.count:
            raise BitstreamError(f"end record says {count} substreams, file has {self.count}")
        extra = self._src.left() if self._src.left() is not None else len(self._src.read(1))
        if extra:
            raise BitstreamError(f"trailing data after the end record at offset {self._src.pos}")
        self.complete = True
        return None


def _as_file(data_or_file):
    if isinstance(data_or_file, (bytes, bytearray, memoryview)):
        return io.BytesIO(data_or_file), False
    if isinstance(data_or_file, (str, os.PathLike)):
        return open(data_or_file, "rb"), True
    return data_or_file, False


def read_header(data_or_file) -> Header:
    """Read and validate only the header record of bytes, a path or a binary file."""
    f, owned = _as_file(data_or_file)
    try:
        return _read_header(_Source(f))[0]
    finally:
        if owned:
            f.close()


def unpack(data, *, allow_truncated: bool = False) -> tuple[Header, list[Substream]]:
    """Parse and fully validate a container held in memory."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"unpack needs bytes, got {type(data).__name__}")
    reader = ContainerReader(io.BytesIO(data), allow_truncated=allow_truncated)
    return reader.header, list(reader)
