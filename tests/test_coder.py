"""Native entropy coder: round trips, determinism, efficiency, reference model, bad input."""
import hashlib
import math
import pathlib
import re
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralcodec.entropy import coder as C
from neuralcodec.errors import CoderError

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
ROOT = pathlib.Path(__file__).resolve().parents[1]
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ strategies

f32 = dict(width=32, allow_nan=False, allow_infinity=False)
symbols_st = st.one_of(
    st.integers(-20, 20),
    st.integers(I32_MIN, I32_MAX),
    st.sampled_from([I32_MIN, I32_MAX, I32_MIN + 1, I32_MAX - 1, 0, 70000, -70000]),
)
means_st = st.one_of(st.floats(-30, 30, **f32), st.floats(**f32),
                     st.sampled_from([0.0, 0.5, -0.5, 1.5, 65536.0, -65536.0, 1e9, -1e9]))
scales_st = st.one_of(st.floats(0, 300, **f32), st.floats(min_value=0, **f32),
                      st.sampled_from([0.0, 1e-30, 0.0625, 0.11, 256.0, 1e9]))
threads_st = st.sampled_from([None, 1, 2, 3])
chunk_st = st.integers(1, 40)


def _arr(values, dtype):
    return np.array(values, dtype=dtype)


# ------------------------------------------------------------------ round trips

@settings(max_examples=150, **SETTINGS)
@given(st.lists(st.tuples(symbols_st, means_st, scales_st), max_size=60), threads_st, chunk_st,
       st.sampled_from(["gaussian", "laplace"]))
def test_parametric_round_trip(rows, threads, chunk, model):
    x = _arr([r[0] for r in rows], np.int32)
    mu = _arr([r[1] for r in rows], np.float32)
    sc = _arr([r[2] for r in rows], np.float32)
    enc, dec = getattr(C, f"encode_{model}"), getattr(C, f"decode_{model}")
    data = enc(x, mu, sc, threads=threads, chunk_size=chunk)
    out = dec(data, mu, sc, threads=threads)
    assert out.dtype == np.int32 and np.array_equal(out, x)
    assert data == enc(x, mu, sc, threads=1, chunk_size=chunk)


@st.composite
def gmm_case(draw):
    k = draw(st.integers(1, 8))
    n = draw(st.integers(0, 40))
    weight = st.one_of(st.floats(0, 1, **f32), st.sampled_from([0.0, 1.0, 1e-30, 3e38]))
    w = np.array(draw(st.lists(st.lists(weight, min_size=k, max_size=k), min_size=n, max_size=n)),
                 np.float32).reshape(n, k)
    w[~(w > 0).any(1), draw(st.integers(0, k - 1))] = 1.0  # at least one positive weight
    if draw(st.booleans()):  # one-hot
        w = np.eye(k, dtype=np.float32)[np.arange(n) % k]
    mu = np.array(draw(st.lists(means_st, min_size=n * k, max_size=n * k)), np.float32)
    sc = np.array(draw(st.lists(scales_st, min_size=n * k, max_size=n * k)), np.float32)
    x = np.array(draw(st.lists(symbols_st, min_size=n, max_size=n)), np.int32)
    return x, w, mu.reshape(n, k), sc.reshape(n, k)


@settings(max_examples=120, **SETTINGS)
@given(gmm_case(), threads_st, chunk_st)
def test_gmm_round_trip(case, threads, chunk):
    x, w, mu, sc = case
    data = C.encode_gmm(x, w, mu, sc, threads=threads, chunk_size=chunk)
    assert np.array_equal(C.decode_gmm(data, w, mu, sc, threads=threads), x)


@st.composite
def categorical_case(draw):
    a = draw(st.one_of(st.integers(1, 10), st.sampled_from([1, 2, 255, 4096])))
    n = draw(st.integers(0, 50))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (n, a) if draw(st.booleans()) and a <= 300 else (a,)
    kind = draw(st.sampled_from(["small", "huge", "sparse"]))
    if kind == "small":
        f = rng.integers(0, 6, shape)
    elif kind == "huge":
        f = rng.integers(0, I32_MAX, shape, endpoint=True)
    else:
        f = rng.integers(0, 3, shape) * (rng.random(shape) < 0.1)
    f[..., rng.integers(0, a)] += 1  # positive sum
    f = np.minimum(f, I32_MAX).astype(np.int32)
    x = rng.integers(0, a, n).astype(np.int32)
    return x, f


@settings(max_examples=120, **SETTINGS)
@given(categorical_case(), threads_st, chunk_st)
def test_categorical_round_trip(case, threads, chunk):
    x, f = case
    data = C.encode_categorical(x, f, threads=threads, chunk_size=chunk)
    assert np.array_equal(C.decode_categorical(data, f, threads=threads), x)


def random_tables(rng, n_tables, max_len=40):
    """CompressAI-contract tables: strictly increasing, 0 .. 65536, random lengths."""
    lengths = rng.integers(2, max_len + 1, n_tables).astype(np.int32)
    cdfs = np.zeros((n_tables, max_len), np.int32)
    for t, ln in enumerate(lengths):
        inner = np.sort(rng.choice(np.arange(1, 65536), ln - 2, replace=False))
        cdfs[t, :ln] = np.concatenate([[0], inner, [65536]])
    offsets = rng.integers(-1000, 1000, n_tables).astype(np.int32)
    offsets[0] = I32_MIN if n_tables > 2 else offsets[0]
    offsets[-1] = I32_MAX - 3 if n_tables > 3 else offsets[-1]
    return cdfs, lengths, offsets


@settings(max_examples=120, **SETTINGS)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.lists(symbols_st, max_size=50),
       threads_st, chunk_st)
def test_indexed_round_trip(seed, n_tables, xs, threads, chunk):
    rng = np.random.default_rng(seed)
    cdfs, lengths, offsets = random_tables(rng, n_tables)
    x = np.array(xs, np.int32)
    idx = rng.integers(0, n_tables, len(x)).astype(np.int32)
    near = rng.random(len(x)) < 0.5  # half of the symbols inside the tables' ranges
    x[near] = (offsets[idx[near]].astype(np.int64) + rng.integers(0, 40, near.sum())).clip(
        I32_MIN, I32_MAX)
    data = C.encode_indexed(x, idx, cdfs, lengths, offsets, threads=threads, chunk_size=chunk)
    assert np.array_equal(C.decode_indexed(data, idx, cdfs, lengths, offsets, threads=threads), x)


def test_extreme_values_every_model():
    x = np.array([I32_MIN, I32_MAX, 0, -1, 1, I32_MIN + 1, I32_MAX - 1, 123456789], np.int32)
    n = len(x)
    for mean, scale in [(0.0, 0.0), (1e30, 1e30), (-1e30, 1e-30), (65536.0, 256.0)]:
        mu, sc = np.full(n, mean, np.float32), np.full(n, scale, np.float32)
        for m in ("gaussian", "laplace"):
            data = getattr(C, f"encode_{m}")(x, mu, sc)
            assert np.array_equal(getattr(C, f"decode_{m}")(data, mu, sc), x)
        w = np.ones((n, 8), np.float32)
        mus = np.tile(np.linspace(-5e6, 5e6, 8, dtype=np.float32), (n, 1))
        data = C.encode_gmm(x, w, mus, np.full((n, 8), scale, np.float32))
        assert np.array_equal(C.decode_gmm(data, w, mus, np.full((n, 8), scale, np.float32)), x)
    f = np.ones(1, np.int32)
    assert np.array_equal(C.decode_categorical(C.encode_categorical(np.zeros(5, np.int32), f), f),
                          np.zeros(5, np.int32))


def test_empty_streams():
    e = np.zeros(0, np.int32)
    z = np.zeros(0, np.float32)
    assert C.decode_gaussian(C.encode_gaussian(e, z, z), z, z).shape == (0,)
    z2 = np.zeros((0, 3), np.float32)
    assert C.decode_gmm(C.encode_gmm(e, z2, z2, z2), z2, z2, z2).shape == (0,)
    f = np.array([1, 2], np.int32)
    assert C.decode_categorical(C.encode_categorical(e, f), f).shape == (0,)


def test_input_conversion():
    """Lists, int64/uint8 symbols and float64 parameters are converted safely."""
    x = [0, 1, -2, 3]
    data = C.encode_gaussian(x, [0.0] * 4, np.ones(4))
    assert data == C.encode_gaussian(np.array(x, np.int64), np.zeros(4, np.float32),
                                     np.ones(4, np.float16))
    assert C.decode_gaussian(bytearray(data), np.zeros(4), np.ones(4)).tolist() == x


@pytest.mark.parametrize("k", range(1, 8))
def test_gmm_zero_weight_component_changes_nothing(k):
    """A component of weight 0 adds nothing to the mixture's CDF and not to its support: the
    stream with one appended is the same. K = 2, 3, 4 run models with the component count fixed
    at compile time, other K the general one, so this also ties those paths together."""
    u = np.random.Generator(np.random.PCG64(7 + k)).random((500, 3 * k + 1))
    w = (u[:, :k] + 0.01).astype(np.float32)
    mu = ((u[:, k:2 * k] - 0.5) * 40).astype(np.float32)
    sc = np.ldexp(1 + np.floor(u[:, 2 * k:3 * k] * 64), -3).astype(np.float32)
    x = np.floor(mu[:, 0] + (u[:, -1] - 0.5) * 8 * sc[:, 0]).astype(np.int32)
    pad = lambda a, v: np.concatenate([a, np.full((len(a), 1), v, np.float32)], 1)  # noqa: E731
    data = C.encode_gmm(x, w, mu, sc)
    wide = (pad(w, 0.0), pad(mu, 1000.0), pad(sc, 50.0))  # far away and wide: no effect
    assert C.encode_gmm(x, *wide) == data
    assert np.array_equal(C.decode_gmm(data, *wide), x)


# ------------------------------------------------------------------ determinism

def golden_inputs(n=3000):
    """Fixed inputs built with exact IEEE operations only (uniform doubles from PCG64, +, *,
    floor, ldexp): no transcendental numpy functions, whose last bit may vary by CPU."""
    u = np.random.Generator(np.random.PCG64(1234)).random((n, 16))
    sc = np.ldexp(1 + np.floor(u[:, 0] * 1024), np.floor(u[:, 1] * 14).astype(int) - 14)
    sc = sc.astype(np.float32)  # ~6e-5 .. 512
    mu = ((u[:, 2] - 0.5) * 64).astype(np.float32)
    x = np.floor(mu + (u[:, 3] - 0.5) * 6 * sc).astype(np.int64)
    x[::97] = np.floor((u[::97, 4] - 0.5) * 2.0**32)  # far escapes, up to the int32 limits
    x = x.clip(I32_MIN, I32_MAX).astype(np.int32)
    w = u[:, 5:9].astype(np.float32)
    w[::5, 1:] = 0
    gm = (mu[:, None] + (u[:, 9:13] - 0.5) * 20).astype(np.float32)
    gs = (sc[:, None] * (0.25 + u[:, 12:16] * 2)).astype(np.float32)
    freqs = np.floor(u[:17, 13] * 1000).astype(np.int32)
    freqs[3] = 0
    cx = np.floor(u[:, 14] * 17).astype(np.int32)
    # 9 tables of lengths 3, 8, ..., 43: c_i = i + (65536 - L + 1) i^2 // (L - 1)^2
    lengths = np.arange(3, 48, 5, dtype=np.int32)
    cdfs = np.zeros((9, 43), np.int32)
    for t, ln in enumerate(lengths):
        i = np.arange(ln, dtype=np.int64)
        cdfs[t, :ln] = i + (65536 - ln + 1) * i * i // ((ln - 1) ** 2)
    offsets = np.array([-20, -5, 0, 3, 100, I32_MIN, I32_MAX - 10, -1, 7], np.int32)
    idx = np.floor(u[:, 15] * 9).astype(np.int32)
    ix = offsets[idx].astype(np.int64) + np.floor(u[:, 10] * 50).astype(np.int64) - 3
    return {
        "gaussian": (C.encode_gaussian, C.decode_gaussian, (x, mu, sc)),
        "laplace": (C.encode_laplace, C.decode_laplace, (x, mu, sc)),
        "gmm": (C.encode_gmm, C.decode_gmm, (x, w, gm, gs)),
        "categorical": (C.encode_categorical, C.decode_categorical, (cx, freqs)),
        "indexed": (C.encode_indexed, C.decode_indexed,
                    (ix.clip(I32_MIN, I32_MAX).astype(np.int32), idx, cdfs, lengths, offsets)),
    }


# sha256 of the streams for golden_inputs() with chunk_size=1000. A change here means the
# stream format or the probability model changed: bump the format byte and document it.
GOLDEN = {
    "gaussian": "453ee09ec973d0d36ec512ba62de9c981f6ff1588530ae0f3ec25090a6b043b3",
    "laplace": "2ca5dc0a2278768eafbf9f9cf9809fbb213ce87c3dc4d36072caa8bb70526f58",
    "gmm": "a0bfeefb5c4e5600d165adb08e1a3b3822883aa8896f28cf3ef12324e45a1f95",
    "categorical": "5e8251f635eba7b22343051742b3a080041162241225d35c44b358f8f226e0e0",
    "indexed": "b178354db7ec460b26b72d8a75a487c706c065c821ef90d90bcde60179b91e47",
}


@pytest.mark.parametrize("model", sorted(GOLDEN))
def test_golden_streams_and_thread_independence(model):
    enc, dec, (x, *params) = golden_inputs()[model]
    streams = {t: enc(x, *params, threads=t, chunk_size=1000) for t in (1, 2, 7)}
    assert streams[1] == streams[2] == streams[7]
    assert hashlib.sha256(streams[1]).hexdigest() == GOLDEN[model]
    for t in (1, 2, 7):
        assert np.array_equal(dec(streams[1], *params, threads=t), x)
    # default chunk size, default threads
    assert np.array_equal(dec(enc(x, *params), *params), x)


@pytest.mark.parametrize("model", ["gaussian", "laplace"])
def test_zero_means_tabulated_path_gives_the_same_streams(model):
    """All-zero means (the codecs' usual call) use per-scale CDF tables; means of 1e-30 (not
    zero, so the general path, but quantised to the same mean 0) must give identical bytes."""
    enc, dec = {"gaussian": (C.encode_gaussian, C.decode_gaussian),
                "laplace": (C.encode_laplace, C.decode_laplace)}[model]
    rng = np.random.default_rng(5)
    n = 6000
    sc = np.exp(rng.uniform(np.log(1e-3), np.log(1e4), n)).astype(np.float32)
    sc[::17] = 0.0
    x = np.round(rng.normal(0, np.minimum(sc, 3e3) * 1.4)).astype(np.int32)
    x[::211] = -(2 ** 31)
    x[5::307] = 2 ** 31 - 1
    zeros, tiny = np.zeros(n, np.float32), np.full(n, 1e-30, np.float32)
    zeros[::3] = -0.0
    for chunk in (500, 65536):
        tabulated = enc(x, zeros, sc, chunk_size=chunk, threads=2)
        assert tabulated == enc(x, tiny, sc, chunk_size=chunk)
        assert np.array_equal(dec(tabulated, zeros, sc, threads=3), x)
        assert np.array_equal(dec(tabulated, tiny, sc), x)


def test_threads_setting():
    old = C.get_num_threads()
    try:
        C.set_num_threads(3)
        assert C.get_num_threads() == 3
        with pytest.raises(CoderError):
            C.set_num_threads(0)
    finally:
        C.set_num_threads(old)


def test_stream_layout():
    """Header fields and the CRC32 (zlib-compatible) are where docs/coder.md says."""
    x = np.arange(10, dtype=np.int32)
    data = C.encode_gaussian(x, np.zeros(10), np.ones(10), chunk_size=4)
    assert data[0] == 1 and data[1] == 1 and data[2] == 10 and data[3] == 4
    crc = int.from_bytes(data[4:8], "little")
    assert crc == zlib.crc32(data[:4] + data[8:])
    lengths = list(data[8:11])
    assert sum(lengths) == len(data) - 11 and all(ln >= 4 and ln % 2 == 0 for ln in lengths)


# ------------------------------------------------------------------ quantisation grid

def test_quantize_gaussian_params_grid():
    sigma = (2.0 ** (np.arange(193) / 16 - 4)).astype(np.float32)
    mu_q, sc_q = C.quantize_gaussian_params(np.zeros(193), sigma)
    assert np.array_equal(sc_q, sigma) and not mu_q.any()
    m = np.array([0.5 / 256, 1.5 / 256, -2.5 / 256, 1e9, -1e9, 0.1], np.float32)
    mu_q, sc_q = C.quantize_gaussian_params(m, [0, 1e-20, 1e9, -0.0, 256, 0.1])
    assert mu_q.tolist() == [0.0, 2 / 256, -2 / 256, 65536.0, -65536.0, 26 / 256]
    assert sc_q[:4].tolist() == [0.0625, 0.0625, 256.0, 0.0625]
    # idempotent, monotone in the scale
    rng = np.random.default_rng(0)
    m, s = rng.normal(0, 100, 5000), np.exp(rng.uniform(-4, 7, 5000))
    mq, sq = C.quantize_gaussian_params(m, s)
    assert all(np.array_equal(a, b) for a, b in zip(C.quantize_gaussian_params(mq, sq), (mq, sq)))
    order = np.argsort(s.astype(np.float32), kind="stable")
    assert np.all(np.diff(sq[order]) >= 0)
    mq2, sq2 = C.quantize_gaussian_params(m.reshape(50, 10, 10), s.reshape(50, 10, 10))
    assert mq2.shape == (50, 10, 10) and np.array_equal(sq2.ravel(), sq)
    # quantised parameters code identically to the raw ones
    x = np.round(rng.normal(m, s)).astype(np.int32)
    assert C.encode_gaussian(x, m, s) == C.encode_gaussian(x, mq, sq)


# ------------------------------------------------------------------ reference model

def _tables():
    text = (ROOT / "src/neuralcodec/entropy/native/tables.h").read_text()
    out = {}
    for name, body in re.findall(r"static const \w+ (\w+)\[\d+\] = \{(.*?)\};", text, re.S):
        vals = [v.strip() for v in body.split(",") if v.strip()]
        out[name] = [float.fromhex(v[:-1]) if "0x" in v else int(v.rstrip("ul")) for v in vals]
    return out


def _ref_component(mean, scale, t, table):
    """(mu_q, F(u)) of one quantised component, as documented."""
    mu = int(np.round(np.float64(np.float32(mean)) * 256))  # numpy rounds half to even
    mu = max(-(2**24), min(2**24, mu))
    k = sum(b <= np.float32(scale) for b in t["kScaleBounds"])
    inv, last = t["kInvSigma"][k], len(table) - 1

    def F(u):
        d = u - mu
        a = min(abs(d), 2**26)
        tt = (a * inv) >> 12
        j = tt >> 16
        f = table[last] if j >= last else table[j] + (((table[j + 1] - table[j]) * (tt & 0xFFFF)) >> 16)
        return 2**30 - f if d < 0 else f

    return mu, k, F


def _ref_freqs(x, lo, n, F):
    """Op frequencies of value x: cdf(i) = floor((F(u_i) - F(u_0)) (M - n - 1) / 2^30) + i."""
    span = 65536 - n - 1

    def cdf(i):
        return ((F((lo + i) * 256 - 128) - F(lo * 256 - 128)) * span >> 30) + i

    p = x - lo
    if 0 <= p < n:
        return [cdf(p + 1) - cdf(p)]
    v = (p - n if p >= 0 else -p - 1) + 1
    freqs = [65536 - cdf(n), 2**9]
    rem = v.bit_length() - 1
    while rem > 0:
        b = rem % 16 or 16
        rem -= b
        freqs.append(2 ** (16 - b))
    return freqs


def _ref_op_freqs(x, mean, scale, laplace, t):
    """Independent Python transcription of docs/coder.md (one Gaussian/Laplace symbol)."""
    table = t["kLaplaceCdf" if laplace else "kGaussCdf"]
    mu, k, F = _ref_component(mean, scale, t, table)
    half = t["kHalfWidthLaplace" if laplace else "kHalfWidthGauss"][k]
    return _ref_freqs(x, (mu + 128) // 256 - half, 2 * half + 1, F)


def _ref_mixture_op_freqs(x, weights, means, scales, t):
    """docs/coder.md for one mixture symbol: weights, union support (clamped), F_mix."""
    w = np.float32(weights).astype(np.float64)
    e = math.frexp(w.max())[1] - 1  # 2^e <= max < 2^(e+1)
    r = [int(np.round(v * 2.0 ** (16 - e))) for v in w]
    recip = 2**48 // sum(r)
    q = [(v * recip) >> 32 for v in r]
    q[int(np.argmax(r))] += 65536 - sum(q)
    comps = []
    for qj, m, s in zip(q, means, scales):
        mu, k, F = _ref_component(m, s, t, t["kGaussCdf"])
        if qj:
            c, h = (mu + 128) // 256, t["kHalfWidthGauss"][k]
            comps.append((qj, F, c - h, c + h, c))
    lo, hi = min(c[2] for c in comps), max(c[3] for c in comps)
    if hi - lo + 1 > 8191:
        heavy = max(comps, key=lambda c: c[0])  # first on ties
        lo = min(max(heavy[4] - 4095, lo), hi - 8190)
        hi = lo + 8190

    def F_mix(u):
        return sum(qj * F(u) for qj, F, *_ in comps) >> 16

    return _ref_freqs(x, lo, hi - lo + 1, F_mix)


def test_reference_model_matches_coder():
    """ideal_bits (exact coder frequencies) equals the documented formula evaluated in Python."""
    t = _tables()
    rng = np.random.default_rng(7)
    cases = [(int(rng.normal(m, s * 2)), m, s) for m, s in
             zip(rng.normal(0, 50, 300), np.exp(rng.uniform(-4, 6, 300)))]
    cases += [(I32_MAX, 0.3, 1.0), (I32_MIN, -7.2, 0.01), (1000, 0.0, 1.0), (-3, 0.5 / 256, 0.0)]
    for x, m, s in cases:
        for laplace in (False, True):
            fn = C.ideal_bits_laplace if laplace else C.ideal_bits_gaussian
            want = sum(16 - math.log2(f) for f in _ref_op_freqs(x, m, s, laplace, t))
            got = fn([x], [m], [s])
            assert got == pytest.approx(want, abs=1e-9), (x, m, s, laplace)


def test_reference_mixture_matches_coder():
    t = _tables()
    rng = np.random.default_rng(8)
    for trial in range(60):
        k = int(rng.integers(1, 9))
        w = rng.random(k) * (rng.random(k) < 0.7)
        w[rng.integers(0, k)] += 1e-3
        if trial % 7 == 0:
            w *= 1e-30
        m = rng.normal(0, 30 if trial % 5 else 3000, k)
        s = np.exp(rng.uniform(-4, 6, k))
        x = int(rng.normal(m[0], s[0] * 3))
        want = sum(16 - math.log2(f) for f in _ref_mixture_op_freqs(x, w, m, s, t))
        got = C.ideal_bits_gmm([x], w[None], m[None], s[None])
        assert got == pytest.approx(want, abs=1e-9), (x, w, m, s)


def test_tables_header_is_generated():
    pytest.importorskip("mpmath")
    r = subprocess.run([sys.executable, str(ROOT / "scripts/gen_coder_tables.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# ------------------------------------------------------------------ efficiency

def test_size_close_to_ideal():
    rng = np.random.default_rng(3)
    n = 200_000
    sc = np.exp(rng.uniform(math.log(0.1), math.log(20), n)).astype(np.float32)
    mu = rng.normal(0, 1, n).astype(np.float32)
    x = np.round(rng.normal(mu, sc)).astype(np.int32)
    k = 3
    w = rng.dirichlet(np.ones(k), n).astype(np.float32)
    gm = (mu[:, None] + rng.normal(0, 2, (n, k))).astype(np.float32)
    gs = np.repeat(sc[:, None], k, 1)
    f = np.array([700, 200, 100], np.int32)
    cx = rng.choice(3, n, p=[0.7, 0.2, 0.1]).astype(np.int32)
    for data, ideal in [
        (C.encode_gaussian(x, mu, sc), C.ideal_bits_gaussian(x, mu, sc)),
        (C.encode_laplace(x, mu, sc), C.ideal_bits_laplace(x, mu, sc)),
        (C.encode_gmm(x, w, gm, gs), C.ideal_bits_gmm(x, w, gm, gs)),
        (C.encode_categorical(cx, f), C.ideal_bits_categorical(cx, f)),
    ]:
        assert ideal <= len(data) * 8 <= ideal * 1.005 + 8 * 64


def test_wrong_model_or_parameters():
    rng = np.random.default_rng(5)
    n = 500
    mu, sc = rng.normal(0, 3, n).astype(np.float32), np.exp(rng.uniform(-2, 3, n)).astype(np.float32)
    x = np.round(rng.normal(mu, sc)).astype(np.int32)
    data = C.encode_gaussian(x, mu, sc)
    ones = np.ones((n, 1), np.float32)
    with pytest.raises(CoderError, match="gaussian model, not gmm"):
        C.decode_gmm(data, ones, mu[:, None], sc[:, None])
    with pytest.raises(CoderError, match="gaussian model, not laplace"):
        C.decode_laplace(data, mu, sc)
    with pytest.raises(CoderError, match="500 symbols"):
        C.decode_gaussian(data, mu[:-1], sc[:-1])
    for trial in range(30):  # different parameters: an error or some symbols, never a crash
        m2 = mu + rng.normal(0, 5, n).astype(np.float32) * (trial % 3)
        s2 = sc * np.float32(np.exp(rng.normal(0, 1)))
        try:
            out = C.decode_gaussian(data, m2, s2)
            assert out.shape == (n,)
        except CoderError:
            pass


# ------------------------------------------------------------------ bad input

def _n(k=3):
    return np.zeros(k, np.int32), np.zeros(k, np.float32), np.ones(k, np.float32)


@pytest.mark.parametrize("bad, msg", [
    (float("nan"), "scales\\[1(, 0)?\\] = nan"), (float("inf"), "finite"), (-1.0, ">= 0"),
])
def test_bad_scales(bad, msg):
    x, mu, sc = _n()
    sc[1] = bad
    for fn in (C.encode_gaussian, C.encode_laplace, C.ideal_bits_gaussian):
        with pytest.raises(CoderError, match=msg):
            fn(x, mu, sc)
    with pytest.raises(CoderError, match=msg):
        C.quantize_gaussian_params(mu, sc)
    with pytest.raises(CoderError, match=msg):
        C.encode_gmm(x, np.ones((3, 1)), mu[:, None], sc[:, None])


def test_bad_means_and_weights():
    x, mu, sc = _n()
    mu[2] = np.nan
    with pytest.raises(CoderError, match="means\\[2\\] = nan is not finite"):
        C.encode_gaussian(x, mu, sc)
    w = np.ones((3, 2), np.float32)
    for bad, msg in [(-1.0, ">= 0"), (np.inf, "finite"), (np.nan, "finite")]:
        w2 = w.copy()
        w2[1, 1] = bad
        with pytest.raises(CoderError, match=msg):
            C.encode_gmm(x, w2, np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(CoderError, match="all zero"):
        C.encode_gmm(x, np.zeros((3, 2)), np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(CoderError, match="1..8 components"):
        C.encode_gmm(x, np.ones((3, 9)), np.zeros((3, 9)), np.ones((3, 9)))
    with pytest.raises(CoderError, match="same shape"):
        C.encode_gmm(x, np.ones((3, 2)), np.zeros((3, 3)), np.ones((3, 2)))


def test_bad_shapes_and_dtypes():
    x, mu, sc = _n()
    cases = [
        lambda: C.encode_gaussian(x, mu[:2], sc[:2]),
        lambda: C.encode_gaussian(x, mu, sc[:2]),
        lambda: C.encode_gaussian(x[:, None], mu, sc),
        lambda: C.encode_gaussian(x.astype(np.float32), mu, sc),
        lambda: C.encode_gaussian(np.array([2**31, 0, 0]), mu, sc),
        lambda: C.encode_gaussian(["a", "b", "c"], mu, sc),
        lambda: C.encode_gaussian(x, mu.astype(np.complex64), sc),
        lambda: C.encode_gaussian(x, [[0, 1], [2]], sc),
        lambda: C.encode_gaussian(x, mu, sc, threads=0),
        lambda: C.encode_gaussian(x, mu, sc, threads=1.5),
        lambda: C.encode_gaussian(x, mu, sc, chunk_size=0),
        lambda: C.encode_gaussian(x, mu, sc, chunk_size=2**25),
        lambda: C.decode_gaussian("text", mu, sc),
        lambda: C.decode_gaussian(b"", mu, sc),
        lambda: C.decode_gmm(b"", np.ones(3), mu, sc),
    ]
    for case in cases:
        with pytest.raises(CoderError):
            case()


def test_bad_categorical():
    x = np.array([0, 1, 2], np.int32)
    for f, msg in [([1, -1, 1], ">= 0"), ([0, 0, 0], "all zero"), ([], "alphabet size"),
                   (np.ones(4097, np.int32), "alphabet size"), (np.ones((2, 3), np.int32), "2 entries"),
                   ([1.5, 1, 1], "integers"), (np.ones((1, 1, 3)), "1-D")]:
        with pytest.raises(CoderError, match=msg):
            C.encode_categorical(x, np.asarray(f))
    for bad in ([0, 3, 1], [-1, 0, 0]):
        with pytest.raises(CoderError, match="outside the alphabet"):
            C.encode_categorical(np.array(bad), [1, 1, 1])
        with pytest.raises(CoderError, match="outside the alphabet"):
            C.ideal_bits_categorical(np.array(bad), [1, 1, 1])
    f = np.ones((3, 3), np.int32)
    f[2] = [0, -5, 1]
    with pytest.raises(CoderError, match="freqs\\[2\\]\\[1\\] = -5"):
        C.encode_categorical(x, f)


def test_bad_indexed_tables():
    cdfs = np.array([[0, 100, 65536, 0], [0, 1, 2, 65536]], np.int32)
    lengths = np.array([3, 4], np.int32)
    offsets = np.array([0, -1], np.int32)
    x, idx = np.array([0, 5], np.int32), np.array([0, 1], np.int32)
    C.decode_indexed(C.encode_indexed(x, idx, cdfs, lengths, offsets), idx, cdfs, lengths, offsets)
    bad = [
        (cdfs, lengths, offsets, np.array([0, 2]), "indexes\\[1\\] = 2"),
        (cdfs, lengths, offsets, np.array([0, -1]), "indexes\\[1\\] = -1"),
        (cdfs, np.array([3, 5]), offsets, idx, "cdf_lengths\\[1\\] = 5"),
        (cdfs, np.array([1, 4]), offsets, idx, "cdf_lengths\\[0\\] = 1"),
        (cdfs, lengths[:1], offsets, idx, "same positive number"),
        (np.array([[0, 100, 65535, 0], [0, 1, 2, 65536]]), lengths, offsets, idx, "end at 65536"),
        (np.array([[1, 100, 65536, 0], [0, 1, 2, 65536]]), lengths, offsets, idx, "start at 0"),
        (np.array([[0, 100, 65536, 0], [0, 2, 2, 65536]]), lengths, offsets, idx, "strictly"),
        (cdfs[0], lengths, offsets, idx, "2-D"),
    ]
    for c, ln, off, ix, msg in bad:
        with pytest.raises(CoderError, match=msg):
            C.encode_indexed(x, ix, c, ln, off)
