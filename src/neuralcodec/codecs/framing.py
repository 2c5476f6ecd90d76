"""Several coder streams in one container substream: varint lengths, then the streams; and
coding a pass schedule (channel groups x checkerboard passes) into such a substream."""
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
