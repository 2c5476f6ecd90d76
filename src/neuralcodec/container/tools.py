"""Container-level helpers: truncation for progressive codecs and weights checks."""
from __future__ import annotations

import hashlib
import io
import os

from neuralcodec.errors import BitstreamError, ModelError

from . import layout as L
from .layout import Header, Substream
from .reader import ContainerReader
from .writer import pack


def truncate_container(data: bytes, nbytes: int) -> bytes:
    """A valid container of at most ``nbytes`` bytes: cut truncatable substreams,
    last first, updating lengths and CRCs (cut ones are flagged truncated).

    ``data`` may itself be truncated inside a truncatable substream; it is then
    repaired into a complete container.
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        raise BitstreamError(f"nbytes must be an integer, got {nbytes!r}")
    # One checking pass that keeps no data; the substreams are then views of ``data``, so
    # memory is ``data`` plus the result, however large the substreams are.
    reader = ContainerReader(io.BytesIO(data), allow_truncated=True, skip_data=True)
    view, pos, streams = memoryview(data), len(reader.header_bytes), []
    for s in reader:
        pos += L.substream_overhead(s.name)
        streams.append(Substream(s.name, view[pos:pos + s.size], s.truncatable, s.truncated))
        pos += s.size
    size = pos + L.END_SIZE
    if reader.complete and size <= nbytes:
        return bytes(data)
    excess = size - nbytes
    for i in reversed(range(len(streams))):
        s = streams[i]
        if excess <= 0:
            break
        if s.truncatable and s.data:
            cut = min(excess, len(s.data))
            streams[i] = Substream(s.name, s.data[:len(s.data) - cut], True, True)
            excess -= cut
    if excess > 0:
        raise BitstreamError(f"cannot truncate to {nbytes} bytes: the non-truncatable part "
                             f"of the container takes {nbytes + excess} bytes")
    return pack(reader.header, streams, _raw_header=reader.header_bytes)


def weights_hash(path_or_bytes) -> bytes:
    """SHA-256 (32 bytes) of a weights file's bytes, or of the bytes given."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return hashlib.sha256(path_or_bytes).digest()
    digest = hashlib.sha256()
    try:
        with open(path_or_bytes, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ModelError(f"cannot read weights file {os.fspath(path_or_bytes)}: "
                         f"{exc.strerror or exc}") from None
    return digest.digest()


def _hash_bytes(value) -> bytes:
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ModelError(f"invalid weights hash {value!r}") from None
    return bytes(value)


def check_weights(header: Header, codec_name: str, expected_hash) -> None:
    """Raise ModelError unless the bitstream was made by ``codec_name`` with the
    weights whose hash is ``expected_hash`` (32 bytes or hex)."""
    expected = _hash_bytes(expected_hash)
    if header.codec == codec_name and header.weights_hash == expected:
        return
    raise ModelError(f"bitstream needs codec {header.codec} with weights "
                     f"{header.weights_hash.hex()[:12]}, got {codec_name} with weights "
                     f"{expected.hex()[:12]}")
