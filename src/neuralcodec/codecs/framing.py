"""Several coder streams in one container substream: varint lengths, then the streams; and
coding a pass schedule (channel groups x checkerboard passes) into such a substream."""
from __future__ import annotations

from neuralcodec.errors import BitstreamError


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pack_streams(streams: list[bytes]) -> bytes:
    """Concatenate streams behind a table of their lengths (the count is implied by the reader)."""
    return b"".join(_varint(len(s)) for s in streams) + b"".join(streams)


def unpack_streams(data: bytes, count: int) -> list[bytes]:
    """Inverse of :func:`pack_streams`; validates every length against the data size."""
    pos, lengths = 0, []
    for _ in range(count):
        value, shift = 0, 0
        while True:
            if pos >= len(data) or shift > 56:
                raise BitstreamError("stream table is truncated or corrupt")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        lengths.append(value)
    if pos + sum(lengths) != len(data):
        raise BitstreamError("stream lengths do not match the substream size")
    out = []
    for n in lengths:
        out.append(data[pos:pos + n])
        pos += n
    return out


def compress_passes(passes, hyper_fx, parts) -> tuple[bytes, object]:
    """Run a pass schedule ``passes(hyper_fx, code)`` that calls ``code(index, group, model,
    params, mask)`` once per pass: the selected elements of ``parts[group]`` are coded with
    ``model.encode(values, *params)``, one stream per pass. Returns (packed streams, decoded latent)."""
    streams = []

    def encode(_, group, model, params, mask):
        data, values = model.encode(parts[group][:, :, mask].flatten(), *params)
        streams.append(data)
        return values

    y_hat = passes(hyper_fx, encode)
    return pack_streams(streams), y_hat


def decompress_passes(passes, hyper_fx, data: bytes, count: int):
    """Inverse of :func:`compress_passes` for a schedule of ``count`` passes."""
    streams = unpack_streams(data, count)
    return passes(hyper_fx, lambda i, group, model, params, mask: model.decode(streams[i], *params))
