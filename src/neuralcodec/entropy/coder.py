"""Deterministic rANS entropy coding (native C++ core, see docs/coder.md).

Every model codes int32 symbols into a self-describing, CRC-protected byte stream that decodes
bit-exactly on any platform and for any thread count. Parameters are quantised inside the
coder to a documented integer grid (`quantize_gaussian_params` exposes the Gaussian/Laplace
grid). Invalid input or a corrupt stream raises `neuralcodec.errors.CoderError`.

Models:
    gaussian / laplace   one (mean, scale) per symbol; values far from the mean are escaped
    gmm                  Gaussian mixture, (N, K) weights/means/scales, K in 1..8
    categorical          int32 frequencies, shared (A,) or per symbol (N, A), A in 1..4096
    indexed              CompressAI's (indexes, cdfs, cdf_lengths, offsets) table contract
"""
from __future__ import annotations

import os

import numpy as np

from neuralcodec.errors import BitstreamError, CoderError
from neuralcodec.io.varint import read_varint

try:
    from neuralcodec.entropy import _rans
except ImportError as exc:  # pragma: no cover - build problem, not a user error
    raise ImportError(
        "neuralcodec's native entropy coder is not built; run `pip install -e .`"
    ) from exc

__all__ = [
    "PRECISION", "DEFAULT_CHUNK_SIZE", "MAX_STREAM_SYMBOLS", "set_num_threads", "get_num_threads",
    "encode_gaussian", "decode_gaussian", "ideal_bits_gaussian",
    "encode_laplace", "decode_laplace", "ideal_bits_laplace",
    "encode_gmm", "decode_gmm", "ideal_bits_gmm",
    "encode_categorical", "decode_categorical", "ideal_bits_categorical",
    "encode_indexed", "decode_indexed", "ideal_bits_indexed",
    "quantize_gaussian_params", "simd_active", "set_simd",
]

PRECISION = 16
DEFAULT_CHUNK_SIZE = 65536
MAX_COMPONENTS = 8
MAX_ALPHABET = 4096
#: most symbols decode_categorical takes from a stream's own count (shared freqs): 2^28,
#: a 1 GiB int32 output, as many as the pixels of the largest picture decoded by default
MAX_STREAM_SYMBOLS = 1 << 28
_GAUSSIAN, _LAPLACE, _GMM, _CATEGORICAL, _INDEXED = 1, 2, 3, 4, 5
_I32 = np.iinfo(np.int32)


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


_num_threads = _cpu_count()


def set_num_threads(n: int) -> None:
    """Set the default worker count (>= 1) used when `threads=None`. Streams do not depend on it."""
    global _num_threads
    _num_threads = _threads(n)


def get_num_threads() -> int:
    """Default worker count (all usable cores unless changed with `set_num_threads`)."""
    return _num_threads


def simd_active() -> bool:
    """Whether mixtures are coded on the SIMD (AVX2) path: the CPU has it and `set_simd` did
    not switch it off. The streams are identical either way."""
    return bool(_rans.simd_active())


def set_simd(enabled: bool) -> None:
    """Switch the SIMD mixture path on (the default, where the CPU has it) or off (the portable
    scalar path); for tests and benchmarks. Streams do not depend on it."""
    _rans.set_simd(bool(enabled))


# ---------------------------------------------------------------- argument conversion

def _threads(threads) -> int:
    if threads is None:
        return _num_threads
    if isinstance(threads, (bool, np.bool_)) or not isinstance(threads, (int, np.integer)):
        raise CoderError(f"threads must be a positive int or None, got {threads!r}")
    if not 1 <= int(threads) <= 1024:
        raise CoderError(f"threads must be in [1, 1024], got {threads}")
    return int(threads)


def _chunk(chunk_size) -> int:
    if chunk_size is None:
        return DEFAULT_CHUNK_SIZE
    if isinstance(chunk_size, (bool, np.bool_)) or not isinstance(chunk_size, (int, np.integer)):
        raise CoderError(f"chunk_size must be an int, got {chunk_size!r}")
    if not 1 <= int(chunk_size) <= _rans.MAX_CHUNK_SIZE:
        raise CoderError(f"chunk_size must be in [1, 2^24], got {chunk_size}")
    return int(chunk_size)


def _array(x, name: str) -> np.ndarray:
    try:
        return np.asarray(x)
    except (ValueError, TypeError, RuntimeError) as exc:  # ragged lists, grad tensors, ...
        raise CoderError(f"{name} is not a numeric array: {exc}") from None


def _check_ndim(a: np.ndarray, name: str, ndim: int) -> None:
    if a.ndim != ndim:
        raise CoderError(f"{name} must be {ndim}-D, got shape {a.shape}")


def _ints(x, name: str, ndim: int = 1) -> np.ndarray:
    """Contiguous int32 copy/view of an integer array whose values fit int32."""
    a = _array(x, name)
    _check_ndim(a, name, ndim)
    if a.size == 0 and a.dtype.kind in "biuf":
        return np.zeros(a.shape, np.int32)
    if a.dtype.kind not in "iu":
        raise CoderError(f"{name} must hold integers, got dtype {a.dtype}")
    if a.dtype.itemsize > 4 or a.dtype == np.uint32:
        if a.min() < _I32.min or a.max() > _I32.max:
            raise CoderError(f"{name} has values outside the int32 range")
    return np.ascontiguousarray(a, dtype=np.int32)


def _floats(x, name: str, ndim: int = 1) -> np.ndarray:
    """Contiguous float32 array from any real numeric array (no NaN checks here)."""
    a = _array(x, name)
    _check_ndim(a, name, ndim)
    if a.dtype.kind not in "iuf" and not (a.size == 0 and a.dtype.kind == "b"):
        raise CoderError(f"{name} must hold real numbers, got dtype {a.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(a, dtype=np.float32)


def _same_length(n: int, **arrays: np.ndarray) -> None:
    for name, a in arrays.items():
        if a.shape[0] != n:
            raise CoderError(f"{name} has {a.shape[0]} entries but there are {n} symbols")


def _data(data) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        raise CoderError("data must be bytes, got str")
    try:
        return memoryview(data).tobytes()
    except TypeError:
        raise CoderError(f"data must be bytes, got {type(data).__name__}") from None


# ---------------------------------------------------------------- gaussian / laplace

def _parametric(means, scales, n=None):
    mu = _floats(means, "means")
    sc = _floats(scales, "scales")
    n = mu.shape[0] if n is None else n
    _same_length(n, means=mu, scales=sc)
    return mu, sc


def _encode_parametric(model, symbols, means, scales, threads, chunk_size) -> bytes:
    sym = _ints(symbols, "symbols")
    mu, sc = _parametric(means, scales, sym.shape[0])
    return _rans.encode_parametric(model, sym, mu, sc, _threads(threads), _chunk(chunk_size))


def _decode_parametric(model, data, means, scales, threads) -> np.ndarray:
    mu, sc = _parametric(means, scales)
    return _rans.decode_parametric(model, _data(data), mu, sc, _threads(threads))


def _ideal_parametric(model, symbols, means, scales) -> float:
    sym = _ints(symbols, "symbols")
    return _rans.ideal_parametric(model, sym, *_parametric(means, scales, sym.shape[0]))


def encode_gaussian(symbols, means, scales, *, threads=None, chunk_size=None) -> bytes:
    """Code int32 `symbols` under discretised Gaussians N(means, scales) (1-D, same length)."""
    return _encode_parametric(_GAUSSIAN, symbols, means, scales, threads, chunk_size)


def decode_gaussian(data, means, scales, *, threads=None) -> np.ndarray:
    """Inverse of `encode_gaussian` (same means/scales); returns int32 symbols."""
    return _decode_parametric(_GAUSSIAN, data, means, scales, threads)


def ideal_bits_gaussian(symbols, means, scales) -> float:
    """-sum log2 p of `symbols` under the quantised Gaussian model (escape payload included)."""
    return _ideal_parametric(_GAUSSIAN, symbols, means, scales)


def encode_laplace(symbols, means, scales, *, threads=None, chunk_size=None) -> bytes:
    """Code int32 `symbols` under discretised Laplace(means, b=scales)."""
    return _encode_parametric(_LAPLACE, symbols, means, scales, threads, chunk_size)


def decode_laplace(data, means, scales, *, threads=None) -> np.ndarray:
    """Inverse of `encode_laplace`."""
    return _decode_parametric(_LAPLACE, data, means, scales, threads)


def ideal_bits_laplace(symbols, means, scales) -> float:
    """-sum log2 p of `symbols` under the quantised Laplace model."""
    return _ideal_parametric(_LAPLACE, symbols, means, scales)


def quantize_gaussian_params(means, scales):
    """The grid values the Gaussian/Laplace/GMM models actually use, as float32 arrays of the
    input shape (any shape, both the same): means -> round-half-even(mean * 256) / 256
    clamped to [-65536, 65536]; scales -> sigma_k = 2^(k/16 - 4), k = 0..192, nearest on a
    log scale (clamped to [0.0625, 256]). NaN/inf means and NaN/inf/negative scales raise
    CoderError. Coding with the outputs gives the same stream as with the inputs."""
    mu, sc = _array(means, "means"), _array(scales, "scales")
    if mu.shape != sc.shape:
        raise CoderError(f"means {mu.shape} and scales {sc.shape} must have the same shape")
    mu_q, sc_q = _rans.quantize_gaussian_params(_floats(mu.reshape(-1), "means"),
                                                _floats(sc.reshape(-1), "scales"))
    return mu_q.reshape(mu.shape), sc_q.reshape(sc.shape)


# ---------------------------------------------------------------- gaussian mixture

def _mixture(weights, means, scales, n=None):
    w = _floats(weights, "weights", 2)
    mu = _floats(means, "means", 2)
    sc = _floats(scales, "scales", 2)
    if not w.shape == mu.shape == sc.shape:
        raise CoderError(
            f"weights {w.shape}, means {mu.shape} and scales {sc.shape} must have the same shape")
    if not 1 <= w.shape[1] <= MAX_COMPONENTS:
        raise CoderError(f"mixtures need 1..{MAX_COMPONENTS} components, got {w.shape[1]}")
    if n is not None:
        _same_length(n, weights=w)
    return w, mu, sc


def encode_gmm(symbols, weights, means, scales, *, threads=None, chunk_size=None) -> bytes:
    """Code symbols under Gaussian mixtures; parameters shaped (N, K). Weights need not sum
    to 1 (they are normalised per symbol); zero weights drop a component."""
    sym = _ints(symbols, "symbols")
    params = _mixture(weights, means, scales, sym.shape[0])
    return _rans.encode_gmm(sym, *params, _threads(threads), _chunk(chunk_size))


def decode_gmm(data, weights, means, scales, *, threads=None) -> np.ndarray:
    """Inverse of `encode_gmm`."""
    return _rans.decode_gmm(_data(data), *_mixture(weights, means, scales), _threads(threads))


def ideal_bits_gmm(symbols, weights, means, scales) -> float:
    """-sum log2 p of `symbols` under the quantised mixture model."""
    sym = _ints(symbols, "symbols")
    return _rans.ideal_gmm(sym, *_mixture(weights, means, scales, sym.shape[0]))


# ---------------------------------------------------------------- categorical

def _freqs(freqs, n=None):
    f = _array(freqs, "freqs")
    if f.ndim not in (1, 2):
        raise CoderError(f"freqs must be 1-D (shared) or 2-D (per symbol), got shape {f.shape}")
    f = _ints(f, "freqs", f.ndim)
    if not 1 <= f.shape[-1] <= MAX_ALPHABET:
        raise CoderError(f"alphabet size must be in [1, {MAX_ALPHABET}], got {f.shape[-1]}")
    if f.ndim == 1:
        return f.reshape(1, -1), False
    if n is not None:
        _same_length(n, freqs=f)
    return f, True


def _stream_count(data: bytes, max_symbols: int) -> int:
    """Symbol count from a stream header, at most ``max_symbols`` (the full stream is
    validated before decoding)."""
    try:
        head = read_varint(data[:12], 2)
    except BitstreamError:
        head = None
    if head is None:
        raise CoderError("corrupt stream: bad symbol count")
    if head[0] > max_symbols:
        raise CoderError(f"stream declares {head[0]} symbols, more than the limit of "
                         f"{max_symbols} (pass max_symbols to raise it)")
    return head[0]


def encode_categorical(symbols, freqs, *, threads=None, chunk_size=None) -> bytes:
    """Code symbols in [0, A) with integer frequencies `freqs` (>= 0, positive sum), shared
    (A,) or per symbol (N, A). Zero frequencies are raised to the minimum probability."""
    sym = _ints(symbols, "symbols")
    f, _ = _freqs(freqs, sym.shape[0])
    return _rans.encode_categorical(sym, f, _threads(threads), _chunk(chunk_size))


def decode_categorical(data, freqs, *, threads=None,
                       max_symbols: int = MAX_STREAM_SYMBOLS) -> np.ndarray:
    """Inverse of `encode_categorical`. With shared freqs the symbol count comes from the
    (CRC-checked) stream and may not exceed ``max_symbols`` (a few bytes can declare
    billions of symbols); with per-symbol freqs it must equal the number of rows."""
    data = _data(data)
    f, per_symbol = _freqs(freqs)
    if isinstance(max_symbols, (bool, np.bool_)) or not isinstance(max_symbols, (int, np.integer)) \
            or max_symbols < 0:
        raise CoderError(f"max_symbols must be an int >= 0, got {max_symbols!r}")
    n = f.shape[0] if per_symbol else (_stream_count(data, int(max_symbols)) if len(data) > 2 else 0)
    return _rans.decode_categorical(data, f, n, _threads(threads))


def ideal_bits_categorical(symbols, freqs) -> float:
    """-sum log2 p of `symbols` under the normalised frequencies."""
    sym = _ints(symbols, "symbols")
    return _rans.ideal_categorical(sym, _freqs(freqs, sym.shape[0])[0])


# ---------------------------------------------------------------- indexed (CompressAI tables)

def _tables(indexes, cdfs, cdf_lengths, offsets, n=None):
    idx = _ints(indexes, "indexes")
    c = _ints(cdfs, "cdfs", 2)
    lengths = _ints(cdf_lengths, "cdf_lengths")
    off = _ints(offsets, "offsets")
    if n is not None:
        _same_length(n, indexes=idx)
    if c.shape[0] == 0 or lengths.shape[0] != c.shape[0] or off.shape[0] != c.shape[0]:
        raise CoderError(
            f"cdfs has {c.shape[0]} tables, cdf_lengths {lengths.shape[0]}, offsets "
            f"{off.shape[0]}: need the same positive number")
    return idx, c, lengths, off


def encode_indexed(symbols, indexes, cdfs, cdf_lengths, offsets, *, threads=None,
                   chunk_size=None) -> bytes:
    """CompressAI `RansEncoder.encode_with_indexes` semantics: symbol i uses table
    indexes[i]; value = symbol - offsets[t]; position cdf_lengths[t] - 2 is the overflow,
    followed by our escape payload (so any int32 round-trips)."""
    sym = _ints(symbols, "symbols")
    tables = _tables(indexes, cdfs, cdf_lengths, offsets, sym.shape[0])
    return _rans.encode_indexed(sym, *tables, _threads(threads), _chunk(chunk_size))


def decode_indexed(data, indexes, cdfs, cdf_lengths, offsets, *, threads=None) -> np.ndarray:
    """Inverse of `encode_indexed`."""
    tables = _tables(indexes, cdfs, cdf_lengths, offsets)
    return _rans.decode_indexed(_data(data), *tables, _threads(threads))


def ideal_bits_indexed(symbols, indexes, cdfs, cdf_lengths, offsets) -> float:
    """-sum log2 p of `symbols` under the tables (escape payload included)."""
    sym = _ints(symbols, "symbols")
    return _rans.ideal_indexed(sym, *_tables(indexes, cdfs, cdf_lengths, offsets, sym.shape[0]))
