"""Fuzz: every mutated stream (truncation, bit flip, byte insertion/deletion/replacement,
random bytes, splice of another stream) decodes to CoderError, or to exactly the original
symbols when the mutation left the bytes unchanged. >= 10,000 mutated streams in total."""
import zlib

import numpy as np
import pytest

from neuralcodec.entropy import coder as C
from neuralcodec.errors import CoderError

N = 40  # small streams (several chunks) keep 2,500 decodes per model fast


def _cases():
    rng = np.random.default_rng(99)
    mu = rng.normal(0, 4, N).astype(np.float32)
    sc = np.exp(rng.uniform(-2.5, 3, N)).astype(np.float32)
    x = np.round(rng.normal(mu, sc)).astype(np.int32)
    x[[3, 17]] = [2**31 - 1, -(2**31)]  # escapes
    w = rng.dirichlet(np.ones(3), N).astype(np.float32)
    gm = (mu[:, None] + rng.normal(0, 3, (N, 3))).astype(np.float32)
    gs = np.repeat(sc[:, None], 3, 1)
    freqs = rng.integers(0, 50, (N, 6)).astype(np.int32) + 1
    cx = rng.integers(0, 6, N).astype(np.int32)
    cdfs = np.array([[0, 9000, 40000, 60000, 65536], [0, 30000, 65536, 0, 0]], np.int32)
    lengths, offsets = np.array([5, 3], np.int32), np.array([-2, 0], np.int32)
    idx = rng.integers(0, 2, N).astype(np.int32)
    ix = rng.integers(-4, 5, N).astype(np.int32)
    return {
        "gaussian": (C.encode_gaussian, C.decode_gaussian, x, (mu, sc)),
        "laplace": (C.encode_laplace, C.decode_laplace, x, (mu, sc)),
        "gmm": (C.encode_gmm, C.decode_gmm, x, (w, gm, gs)),
        "categorical": (C.encode_categorical, C.decode_categorical, cx, (freqs,)),
        "categorical_shared": (C.encode_categorical, C.decode_categorical, cx, (freqs[0],)),
        "indexed": (C.encode_indexed, C.decode_indexed, ix, (idx, cdfs, lengths, offsets)),
    }


def _mutations(data: bytes, rng, count):
    """Yield `count` mutated copies of data (some may equal data)."""
    n = len(data)
    for t in range(n):  # every truncation
        yield data[:t]
    for _ in range(count - n):
        kind = rng.integers(0, 7)
        b = bytearray(data)
        pos = int(rng.integers(0, n))
        if kind == 0:  # bit flip(s)
            for _ in range(int(rng.integers(1, 4))):
                p = int(rng.integers(0, n))
                b[p] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:  # byte insertion
            b.insert(pos, int(rng.integers(0, 256)))
        elif kind == 2:  # byte deletion
            del b[pos]
        elif kind == 3:  # byte replacement
            b[pos] = int(rng.integers(0, 256))
        elif kind == 4:  # random bytes of a random length
            b = bytearray(rng.integers(0, 256, int(rng.integers(0, 2 * n))).astype(np.uint8))
        elif kind == 5:  # random tail appended
            b += bytes(rng.integers(0, 256, int(rng.integers(1, 8))).astype(np.uint8))
        else:  # valid header, random body
            b[8:] = rng.integers(0, 256, n - 8).astype(np.uint8).tobytes()
        yield bytes(b)


@pytest.mark.parametrize("model", sorted(_cases()))
def test_mutated_streams_raise(model):
    enc, dec, x, params = _cases()[model]
    data = enc(x, *params, chunk_size=16)
    assert np.array_equal(dec(data, *params), x)
    rng = np.random.default_rng(zlib.crc32(model.encode()))
    decoded = rejected = 0
    for bad in _mutations(data, rng, 1700):
        try:
            out = dec(bad, *params, threads=1)
        except CoderError:
            rejected += 1
            continue
        assert bad == data and np.array_equal(out, x), "corrupt stream decoded silently"
        decoded += 1
    assert rejected + decoded == 1700 and rejected > 1600


def _crc_at(data: bytes) -> int:
    pos = 2
    for _ in range(2):  # symbol count, chunk size varints
        while data[pos] & 0x80:
            pos += 1
        pos += 1
    return pos


def _with_valid_crc(b: bytearray, at: int) -> bytes:
    crc = zlib.crc32(bytes(b[:at]) + bytes(b[at + 4:]))
    b[at:at + 4] = crc.to_bytes(4, "little")
    return bytes(b)


@pytest.mark.parametrize("model", sorted(_cases()))
def test_payload_corruption_behind_valid_crc(model):
    """With the CRC recomputed, the decoder's own checks (bounded reads, escape length, int32
    range, final state) must still turn any payload damage into CoderError or some array,
    never a crash or hang."""
    enc, dec, x, params = _cases()[model]
    data = enc(x, *params, chunk_size=16)
    at = _crc_at(data)
    rng = np.random.default_rng(zlib.crc32(model.encode()) + 1)
    rejected = 0
    for _ in range(300):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            p = int(rng.integers(at + 4, len(b)))
            b[p] ^= 1 << int(rng.integers(0, 8))
        try:
            out = dec(_with_valid_crc(b, at), *params, threads=2)
            assert out.shape == x.shape and out.dtype == np.int32
        except CoderError:
            rejected += 1
    assert rejected > 150  # most payload damage is caught even without the CRC
