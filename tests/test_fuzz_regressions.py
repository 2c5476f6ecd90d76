"""Minimised inputs from the fuzzing campaign (fuzz/README.md): each once broke the promise
that bad input is one project error, without a crash, a hang or a huge allocation."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from neuralcodec.entropy import coder
from neuralcodec.errors import CoderError
from neuralcodec.io.varint import encode_varint


def _coder_stream(model: int, count: int, chunk: int, payloads: list[bytes]) -> bytes:
    """A native coder stream with a correct CRC (docs/coder.md, stream layout)."""
    head = bytes((1, model)) + encode_varint(count) + encode_varint(chunk)
    rest = b"".join(encode_varint(len(p)) for p in payloads) + b"".join(payloads)
    return head + (zlib.crc32(rest, zlib.crc32(head)) & 0xFFFFFFFF).to_bytes(4, "little") + rest


STATE = (1 << 16).to_bytes(4, "little")       # the rANS initial state: a chunk of no words


def test_shared_categorical_count_is_bounded_before_allocating():
    """100 bytes declaring 17 * 2^24 symbols of a one-symbol alphabet (valid: such symbols
    cost no bits) used to allocate 1.1 GiB and decode for seconds; 64 such chunks, 4 GiB."""
    data = _coder_stream(4, 17 << 24, 1 << 24, [STATE] * 17)
    assert len(data) == 100
    with pytest.raises(CoderError, match="declares 285212672 symbols, more than the limit"):
        coder.decode_categorical(data, np.array([1]))


def test_shared_categorical_count_limit_is_the_callers():
    data = _coder_stream(4, 1000, 1000, [STATE])
    assert np.array_equal(coder.decode_categorical(data, np.array([1])), np.zeros(1000, np.int32))
    with pytest.raises(CoderError, match="more than the limit of 999"):
        coder.decode_categorical(data, np.array([1]), max_symbols=999)
    for bad in (-1, True, 2.0):
        with pytest.raises(CoderError, match="max_symbols"):
            coder.decode_categorical(data, np.array([1]), max_symbols=bad)


def test_trit_plane_segment_longer_than_the_encoder_writes_is_refused():
    """A cut segment is decoded trit by trit in Python for as long as its words last; one
    claiming more trits than a segment holds (65536) could keep that loop busy for a whole
    plane (1.15 million near-certain trits from 84 bytes took 5 s)."""
    from neuralcodec.entropy.tritplane import SEGMENT_SYMBOLS, SegmentReader
    from neuralcodec.errors import BitstreamError

    freqs = np.tile(np.array([[65534, 1, 1]], np.int32), (SEGMENT_SYMBOLS + 1, 1))
    payload = (0xFFFF0000).to_bytes(4, "little") + bytes(80)
    data = encode_varint(SEGMENT_SYMBOLS + 1) + encode_varint(1000) + payload
    with pytest.raises(BitstreamError, match="bad segment size"):
        SegmentReader(data).read_plane(freqs)
    ok = encode_varint(SEGMENT_SYMBOLS) + encode_varint(1000) + payload   # cut, decodes a prefix
    assert 0 < len(SegmentReader(ok).read_plane(freqs[:-1])) <= SEGMENT_SYMBOLS
