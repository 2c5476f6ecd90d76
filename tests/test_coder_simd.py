"""The coder's SIMD mixture path against its scalar reference, and chunks coded in turns:
identical streams, identical decodes, identical error messages."""
import hashlib
import re
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralcodec.entropy import coder as C
from neuralcodec.errors import CoderError

from test_coder import GOLDEN, golden_inputs

SIMD = C.simd_active()
needs_simd = pytest.mark.skipif(not SIMD, reason="this CPU has no SIMD mixture path (AVX2)")


@pytest.fixture
def scalar():
    """Run the body with the SIMD path switched off; always switch it back on."""
    C.set_simd(False)
    try:
        yield
    finally:
        C.set_simd(True)


def both_paths(fn):
    """fn() with the SIMD path on, then off."""
    try:
        C.set_simd(True)
        fast = fn()
        C.set_simd(False)
        slow = fn()
    finally:
        C.set_simd(True)
    return fast, slow


def test_switch():
    assert C.simd_active() == SIMD
    C.set_simd(False)
    try:
        assert not C.simd_active()
    finally:
        C.set_simd(True)
    assert C.simd_active() == SIMD


@pytest.mark.parametrize("on", [True, False])
def test_gmm_golden_stream_on_both_paths(on):
    enc, dec, (x, *params) = golden_inputs()["gmm"]
    C.set_simd(on)
    try:
        for t in (1, 2, 7):
            data = enc(x, *params, threads=t, chunk_size=1000)
            assert hashlib.sha256(data).hexdigest() == GOLDEN["gmm"]
            assert np.array_equal(dec(data, *params, threads=t), x)
    finally:
        C.set_simd(True)


def mixture_case(seed, n, k):
    """Mixtures with the awkward cases mixed in: zero, tiny and subnormal weights, weights of
    very different sizes, clamped means, zero and huge scales, supports wider than 8191
    positions, escapes, values near the int32 limits."""
    rng = np.random.default_rng(seed)
    w = rng.random((n, k)).astype(np.float32)
    w[rng.random((n, k)) < 0.15] = 0
    w[:, 0] = np.where(w.max(1) == 0, 1, w[:, 0])
    w[::13] *= np.float32(1e-36)          # top weight below 2^-111 (reference path)
    w[5::17, -1] = np.float32(1e-44)      # subnormal beside normal weights
    w[7::19] = np.float32(3e-45)          # all subnormal
    w[9::23] *= np.float32(1e30)
    mu = rng.normal(0, 30, (n, k)).astype(np.float32)
    mu[::11] *= 2000                      # far apart: supports clamped to 8191 positions
    mu[3::29, 0] = np.float32(1e20)       # clamped to 65536
    mu[4::31] = np.float32(0.5)           # round half to even
    sc = np.exp(rng.uniform(np.log(0.01), np.log(400), (n, k))).astype(np.float32)
    sc[::7, 0] = 0
    sc[2::37] = np.float32(1e30)
    pick = rng.integers(0, k, n)
    rows = np.arange(n)
    x = np.round(rng.normal(mu[rows, pick].clip(-1e5, 1e5), sc[rows, pick].clip(0, 1e3)))
    x[::41] = rng.integers(-(2**31), 2**31 - 1, len(x[::41]))
    return x.clip(-(2**31), 2**31 - 1).astype(np.int32), w, mu, sc


@needs_simd
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("n, chunk", [(1, None), (7, None), (8, None), (1003, 37), (5000, 1000)])
def test_simd_and_scalar_streams_are_identical(k, n, chunk):
    x, w, mu, sc = mixture_case(k * 1000 + n, n, k)
    fast, slow = both_paths(lambda: C.encode_gmm(x, w, mu, sc, chunk_size=chunk, threads=1))
    assert fast == slow
    for threads in (1, 2, 3):
        out_fast, out_slow = both_paths(lambda: C.decode_gmm(fast, w, mu, sc, threads=threads))
        assert np.array_equal(out_fast, x) and np.array_equal(out_slow, x)


@needs_simd
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 8), st.integers(1, 40), st.integers(0, 2**32 - 1),
       st.sampled_from([1.0, 1e-3, 1e3, 1e-30, 1e30]))
def test_simd_matches_scalar_on_random_mixtures(k, n, seed, spread):
    rng = np.random.default_rng(seed)
    w = (rng.random((n, k)) ** 4 * spread).astype(np.float32)
    w[:, 0] += np.float32(spread * 1e-3)
    mu = (rng.standard_normal((n, k)) * rng.choice([0.1, 10, 1e4, 1e6], (n, k))).astype(np.float32)
    sc = (rng.random((n, k)) * rng.choice([1e-3, 1, 100, 1e4], (n, k))).astype(np.float32)
    x = np.round(mu[:, 0].clip(-3e5, 3e5) + rng.standard_normal(n) * 5).astype(np.int32)
    chunk = int(rng.integers(1, 20))
    fast, slow = both_paths(lambda: C.encode_gmm(x, w, mu, sc, chunk_size=chunk))
    assert fast == slow
    assert np.array_equal(C.decode_gmm(fast, w, mu, sc), x)


@pytest.mark.parametrize("field, value, msg", [
    ("weights", np.nan, r"weights\[1500, 1\] = nan: weights must be finite and >= 0"),
    ("weights", -1.0, r"weights\[1500, 1\] = -1.000000: weights must be finite and >= 0"),
    ("means", np.inf, r"means\[1500, 1\] = inf is not finite"),
    ("scales", -2.0, r"scales\[1500, 1\] = -2.000000: scales must be finite and >= 0"),
])
def test_error_messages_are_the_same_on_every_path(field, value, msg):
    """An invalid parameter in two chunks (1500 in the second, 3700 in the fourth): every path
    and thread count reports the one in the lowest chunk."""
    x, w, mu, sc = mixture_case(3, 5000, 3)
    data = C.encode_gmm(x, w, mu, sc, chunk_size=1000)
    arrays = {"weights": w, "means": mu, "scales": sc}
    arrays[field][1500, 1] = value
    arrays[field][3700, 2] = value
    for threads in (1, 2, 7):
        for call in (lambda: C.encode_gmm(x, w, mu, sc, chunk_size=1000, threads=threads),
                     lambda: C.decode_gmm(data, w, mu, sc, threads=threads)):
            messages = both_paths(lambda: _message(call))
            assert all(m is not None and re.search(msg, m) for m in messages), messages
            assert messages[0] == messages[1]


def _message(fn):
    try:
        fn()
    except CoderError as exc:
        return str(exc)
    return None


def _corrupt_chunks(data, chunks):
    """The stream with one byte of each listed chunk's payload flipped and a recomputed CRC."""
    b = bytearray(data)
    pos = 2
    for _ in range(2):  # count, chunk size
        while b[pos] & 0x80:
            pos += 1
        pos += 1
    crc_at, pos = pos, pos + 4
    lengths = []
    while sum(lengths) < len(b) - pos:
        v, shift = 0, 0
        while True:
            v |= (b[pos] & 0x7F) << shift
            shift += 7
            pos += 1
            if not b[pos - 1] & 0x80:
                break
        lengths.append(v)
    starts = np.cumsum([pos] + lengths[:-1])
    for c in chunks:
        b[starts[c] + lengths[c] // 2] ^= 0x5A
    crc = zlib.crc32(bytes(b[crc_at + 4:]), zlib.crc32(bytes(b[:crc_at])))
    b[crc_at:crc_at + 4] = crc.to_bytes(4, "little")
    return bytes(b)


@pytest.mark.parametrize("model", ["gaussian", "gmm", "categorical"])
def test_corrupt_chunks_give_the_lowest_chunks_error_whatever_the_pairing(model):
    """Chunks are decoded two at a time in turns; a failure is re-derived chunk by chunk, so
    the message is that of the lowest failing chunk, for any thread count or path."""
    enc, dec, (x, *params) = golden_inputs(8000)[model]
    data = enc(x, *params, chunk_size=1000)
    alone = {c: _message(lambda: dec(_corrupt_chunks(data, [c]), *params, threads=1)) for c in range(8)}
    assert sum(m is not None for m in alone.values()) >= 6  # flips are caught, or the test says nothing
    for bad in ([3], [2, 5], [6, 7], [0, 1, 4]):
        corrupt = _corrupt_chunks(data, bad)
        expected = next((alone[c] for c in bad if alone[c] is not None), None)
        for threads in (1, 2, 3, 8):
            got = both_paths(lambda: _message(lambda: dec(corrupt, *params, threads=threads)))
            assert got[0] == got[1] == expected, (bad, threads, got, expected)


def window_edge_case(n=3000, seed=5):
    """Mixtures where the SIMD decoder's 4-position window (started next to its guess, the
    weighted mean of the component quantiles) meets every edge: supports of 3 positions (zero
    scales), symbols at the first and last positions of the support and escaped past either
    end, two modes far apart (the guess lands between them: the second window, then the scalar
    gallop), weights near 0 and 1, huge scales."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 4, n)
    w = rng.dirichlet(np.ones(3), n).astype(np.float32)
    mu = np.repeat(rng.normal(0, 3, (n, 1)), 3, 1).astype(np.float32)
    sc = np.exp(rng.uniform(np.log(0.05), np.log(5), (n, 3))).astype(np.float32)
    x = np.round(mu[:, 0] + rng.normal(0, 1, n) * sc[:, 0])
    tiny = kind == 0  # zero scales: supports of 3 positions, symbols on each and past both ends
    sc[tiny] = 0
    x[tiny] = np.round(mu[tiny, 0]) + rng.integers(-3, 4, tiny.sum())
    apart = kind == 1  # modes 200 apart, symbols near either mode or at the support's edges
    mu[apart, 1] += 200
    sc[apart] = 1
    far = np.where(rng.random(apart.sum()) < 0.5, mu[apart, 0], mu[apart, 1])
    x[apart] = np.round(far + rng.choice([-7, -1, 0, 1, 7], apart.sum()))
    skew = kind == 2  # one weight near 1, the others near 0 (or exactly 0)
    w[skew] = np.array([1.0, 1e-6, 0.0], np.float32)
    mu[skew, 1] -= 40
    x[skew] = np.round(mu[skew, 1] + rng.normal(0, 2, skew.sum()))  # the light component's side
    wide = kind == 3  # huge scales (clamped supports) with symbols at the tails and far away
    sc[wide] = np.float32(3e3)
    x[wide] = rng.choice([-4200, -4095, 0, 4095, 4200, 10**6], wide.sum())
    return x.astype(np.int32), w, mu, sc


@needs_simd
@pytest.mark.parametrize("chunk", [None, 7, 640])
def test_decoder_window_edges_match_the_reference(chunk):
    x, w, mu, sc = window_edge_case()
    fast, slow = both_paths(lambda: C.encode_gmm(x, w, mu, sc, chunk_size=chunk, threads=1))
    assert fast == slow
    for threads in (1, 2):  # one chunk at a time, and two in turns
        out_fast, out_slow = both_paths(lambda: C.decode_gmm(fast, w, mu, sc, threads=threads))
        assert np.array_equal(out_fast, x) and np.array_equal(out_slow, x)


@needs_simd
def test_support_edge_cdf_on_every_scale():
    """F(b_0) of each component at its support's lower edge (the SIMD path takes it from a
    tail rule where the support is not clamped): mixtures of three equal components, where it
    decides the stream, on every scale of the grid and 64 offsets of the mean."""
    k = np.arange(193)
    sigma = (2.0 ** (k / 16 - 4)).astype(np.float32)
    offsets = (np.arange(64) / 64).astype(np.float32)
    sc = np.repeat(np.repeat(sigma, 64)[:, None], 3, 1)
    mu = np.repeat(np.tile(offsets, 193)[:, None], 3, 1) * np.float32(7.3)
    w = np.ones_like(sc)
    rng = np.random.default_rng(11)
    x = np.round(mu[:, 0] + rng.normal(0, 1, len(mu)) * sc[:, 0]).astype(np.int32)
    fast, slow = both_paths(lambda: C.encode_gmm(x, w, mu, sc, chunk_size=500))
    assert fast == slow
    assert np.array_equal(C.decode_gmm(fast, w, mu, sc), x)
