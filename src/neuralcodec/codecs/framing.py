"""Several coder streams in one container substream: varint lengths, then the streams (e.g.
the channel groups x checkerboard passes of a latent codec)."""
from __future__ import annotations

from neuralcodec.errors import BitstreamError
from neuralcodec.io.varint import encode_varint, read_varint


def pack_streams(streams: list[bytes]) -> bytes:
    """Concatenate streams behind a table of their lengths (the count is implied by the reader)."""
    return b"".join(encode_varint(len(s)) for s in streams) + b"".join(streams)


def unpack_streams(data: bytes, count: int) -> list[bytes]:
    """Inverse of :func:`pack_streams`; validates every length against the data size."""
    pos, lengths = 0, []
    for _ in range(count):
        try:
            head = read_varint(data, pos)
        except BitstreamError:
            head = None
        if head is None:
            raise BitstreamError("stream table is truncated or corrupt")
        value, pos = head
        lengths.append(value)
    if pos + sum(lengths) != len(data):
        raise BitstreamError("stream lengths do not match the substream size")
    out = []
    for n in lengths:
        out.append(data[pos:pos + n])
        pos += n
    return out
