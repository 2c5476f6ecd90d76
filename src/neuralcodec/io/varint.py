"""Unsigned LEB128 varints (7 bits a byte, low group first, high bit = more follows): the
length fields of every byte format of the package (stream tables, trit-plane segments,
coder stream headers)."""
from __future__ import annotations

from neuralcodec.errors import BitstreamError

#: a varint holds at most 9 groups (63 bits); a longer one is corrupt
MAX_SHIFT = 56


def encode_varint(n: int) -> bytes:
    """The varint bytes of ``n >= 0``."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(data, pos: int = 0, what: str = "stream") -> tuple[int, int] | None:
    """(value, position after it) of the varint at ``data[pos]``; None when the data ends
    inside it; BitstreamError ``corrupt {what}: bad varint`` past 9 groups."""
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            return None
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > MAX_SHIFT:
            raise BitstreamError(f"corrupt {what}: bad varint")
