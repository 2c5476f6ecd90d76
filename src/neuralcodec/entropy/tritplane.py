"""Integer-exact building blocks of trit-plane (progressive) coding, see docs/progressive.md.

Everything here is numpy int64 arithmetic on committed tables, so encoder and decoder derive
identical trit probabilities, priorities and segment layouts on any machine:

* :func:`boundary_cdf` / :func:`trit_masses`: masses (2^30 units) of integer intervals of the
  mean-subtracted symbol s under N(0, sigma_k), with the coder's Gaussian CDF table and
  fixed-point evaluation (docs/coder.md, "CDF and frequencies");
* :func:`log2_fixed`: log2 in ACT_FRAC fixed point from a 257-entry mantissa table;
* :func:`normalize_freqs`: the native coder's frequency normalisation (sum exactly 2^16);
* :func:`priorities`: rate-distortion priority of each element within a plane;
* :func:`gauss_plane`: masses, "active" flags and priority order of a whole plane in one
  native pass (the C++ twin of the functions above, bit-exact with them);
* segments: a plane's symbols in priority order, coded as small categorical coder streams
  whose fixed header fields are stripped (:func:`encode_segments`), and a prefix decoder
  that also decodes the decodable part of a cut segment (:func:`decode_partial`).
"""
from __future__ import annotations

import zlib

import numpy as np

from neuralcodec.entropy import coder, _rans  # coder first: its import explains a missing build
from neuralcodec.entropy import _tritplane_tables as tables
from neuralcodec.entropy.exact import ACT_FRAC
from neuralcodec.errors import BitstreamError, CoderError
from neuralcodec.io.varint import encode_varint, read_varint

_CDF = np.array(tables.GAUSS_CDF, dtype=np.int64)
INV_SIGMA = np.array(tables.INV_SIGMA, dtype=np.int64)  # round(2^28 / sigma_k) per scale index k
_LOG2M = np.array(tables.LOG2_MANTISSA, dtype=np.int64)
INV_SIGMA.setflags(write=False)
CDF_ONE = 1 << 30
TOTAL = 1 << 16                  # coder precision: normalised frequencies sum to 2^16
ONE = 1 << ACT_FRAC              # fixed-point 1.0
LOG2_3 = 6492                    # round(4096 * log2(3))
SEGMENT_BYTES = 2048             # target coded bytes per segment
SEGMENT_SYMBOLS = 65536          # at most this many symbols per segment (checked on read)
_CATEGORICAL = 4                 # the coder's model byte


def boundary_cdf(b: np.ndarray, k: np.ndarray) -> np.ndarray:
    """F(b - 1/2) in 2^30 units under N(0, sigma_k) for integer b (int64 arrays)."""
    d = 256 * b - 128                               # boundary in 2^-8 units, mean 0
    a = np.minimum(np.abs(d), 1 << 26)
    t = (a * INV_SIGMA[k]) >> 12
    j = np.minimum(t >> 16, len(_CDF) - 1)
    f = t & 0xFFFF
    nxt = _CDF[np.minimum(j + 1, len(_CDF) - 1)]
    fp = np.where(t >> 16 >= len(_CDF) - 1, _CDF[-1], _CDF[j] + (((nxt - _CDF[j]) * f) >> 16))
    return np.where(d >= 0, fp, CDF_ONE - fp)


def trit_masses(lo: np.ndarray, sub: int, k: np.ndarray) -> np.ndarray:
    """(N, 3) masses of [lo + j*sub, lo + (j+1)*sub - 1], j = 0, 1, 2."""
    edges = boundary_cdf(lo[:, None] + sub * np.arange(4, dtype=np.int64)[None], k[:, None])
    return np.diff(edges, axis=1)


def log2_fixed(x: np.ndarray) -> np.ndarray:
    """log2(x) * 2^12 (approximately, deterministic) for integers 1 <= x < 2^52."""
    x = np.maximum(np.asarray(x, dtype=np.int64), 1)
    e = np.frexp(x.astype(np.float64))[1].astype(np.int64) - 1    # exact: x < 2^53
    top = np.where(e >= 8, x >> np.maximum(e - 8, 0), x << np.maximum(8 - e, 0))
    return e * ONE + _LOG2M[top - 256]


def normalize_freqs(f: np.ndarray) -> np.ndarray:
    """The native coder's normalisation of (N, A) frequencies >= 0: 1 + f*(M-A)//T, the
    remainder to the largest (first on ties). Returns int64, rows summing to 2^16."""
    f = np.asarray(f, dtype=np.int64)
    a = f.shape[1]
    total = f.sum(1, keepdims=True)
    q = 1 + f * (TOTAL - a) // np.maximum(total, 1)
    big = np.argmax(f, axis=1)
    q[np.arange(len(f)), big] += TOTAL - q.sum(1)
    return q


def gauss_logits(masses: np.ndarray) -> np.ndarray:
    """Fixed-point base-2 log-probabilities of the masses, relative to the largest, >= -16."""
    lg = log2_fixed(masses + 1)
    return np.maximum(lg - lg.max(1, keepdims=True), -16 * ONE)


def priorities(q: np.ndarray) -> np.ndarray:
    """Expected distortion reduction per expected bit of the next trit, as int64, from the
    normalised frequencies q (N, 3). The distortion reduction is the variance of the
    sub-interval midpoints (the same factor 9^(p-1) for every element of a plane, so it is
    left out): Var(t) = (q0 + q2) M - (q2 - q0)^2 in 2^-32 units; the rate is the entropy
    sum q_j (16 - log2 q_j) in 2^-28 units."""
    var = (q[:, 0] + q[:, 2]) * TOTAL - (q[:, 2] - q[:, 0]) ** 2          # < 2^33
    ent = (q * (16 * ONE - log2_fixed(q))).sum(1)                          # < 2^30
    return (var << 18) // (ent + 1)                                        # < 2^51


def priority_order(q: np.ndarray) -> np.ndarray:
    """Element indices by decreasing priority, ties by increasing index."""
    return np.argsort(-priorities(q), kind="stable")


def gauss_plane(lo: np.ndarray, sub: int, k: np.ndarray, certain: int):
    """(masses (N, 3), active (N,) bool, order (N,)) of a plane in one native pass: exactly
    ``trit_masses(lo, sub, k)``, ``normalize_freqs(masses + 1).max(1) < certain`` and
    ``priority_order(normalize_freqs(masses + 1))`` (the numpy functions are the reference)."""
    lo = np.ascontiguousarray(lo, dtype=np.int64).reshape(-1)
    k = np.ascontiguousarray(k, dtype=np.int64).reshape(-1)
    try:
        return _rans.trit_plane_model(lo, k, int(sub), int(certain), _LOG2M, ONE)
    except CoderError as exc:
        raise BitstreamError(f"trit-plane model: {exc}") from None


# ---------------------------------------------------------------- segments

def segment_bounds(q: np.ndarray, ordered_symbols: np.ndarray) -> list[int]:
    """Split points of a plane (in priority order): a segment ends once it holds about
    SEGMENT_BYTES of ideal code or SEGMENT_SYMBOLS symbols (encoder side only)."""
    p = q[np.arange(len(q)), ordered_symbols]
    bits = np.cumsum(16 - np.log2(p.astype(np.float64)))
    bounds, start = [0], 0
    while start < len(q):
        base = bits[start - 1] if start else 0.0
        end = int(np.searchsorted(bits, base + 8 * SEGMENT_BYTES, side="right")) + 1
        end = min(max(end, start + 1), start + SEGMENT_SYMBOLS, len(q))
        bounds.append(end)
        start = end
    return bounds


def _strip(stream: bytes, count: int) -> bytes:
    """The chunk payload of a one-chunk categorical coder stream (header fields dropped)."""
    pos = 2
    for _ in range(2):                       # count, chunk size
        pos = read_varint(stream, pos, what="trit-plane stream")[1]
    pos += 4                                 # crc
    length, pos = read_varint(stream, pos, what="trit-plane stream")
    assert pos + length == len(stream)
    return stream[pos:]


def _rebuild(payload: bytes, count: int) -> bytes:
    """The coder stream whose chunk payload is ``payload`` (inverse of :func:`_strip`)."""
    head = bytes((1, _CATEGORICAL)) + encode_varint(count) + encode_varint(count)
    rest = encode_varint(len(payload)) + payload
    crc = zlib.crc32(rest, zlib.crc32(head)) & 0xFFFFFFFF
    return head + crc.to_bytes(4, "little") + rest


def encode_payload(symbols: np.ndarray, freqs: np.ndarray) -> bytes:
    """Symbols with their coder frequencies as the chunk payload of a one-chunk categorical
    coder stream (its fixed header fields dropped: the decoder knows the count)."""
    n = len(symbols)
    return _strip(coder.encode_categorical(symbols, freqs, chunk_size=n, threads=1), n)


def decode_payload(payload: bytes, freqs: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_payload` for a complete payload (len(freqs) symbols)."""
    try:
        return coder.decode_categorical(_rebuild(payload, len(freqs)), freqs, threads=1)
    except CoderError as exc:
        raise BitstreamError(f"corrupt trit-plane stream: {exc}") from None


def encode_segments(symbols: np.ndarray, freqs: np.ndarray) -> bytes:
    """A plane's trits (already in priority order) with their coder frequencies, as
    segments ``varint(count) varint(payload length) payload``."""
    out = bytearray()
    freqs = np.ascontiguousarray(freqs, dtype=np.int32)
    bounds = segment_bounds(normalize_freqs(freqs), symbols)
    for a, b in zip(bounds[:-1], bounds[1:]):
        payload = encode_payload(symbols[a:b], freqs[a:b])
        out += encode_varint(b - a) + encode_varint(len(payload)) + payload
    return bytes(out)


def decode_partial(payload: bytes, cum: np.ndarray, limit: int) -> np.ndarray:
    """Decode the symbols of a cut rANS chunk payload for as long as its words last (at
    most ``limit``); every symbol returned is exact. ``cum``: (N, 4) cumulative freqs."""
    if len(payload) < 4:
        return np.zeros(0, np.int64)
    x = int.from_bytes(payload[:4], "little")
    if x < TOTAL:
        raise BitstreamError("corrupt trit-plane stream: invalid rANS state")
    pos, out = 4, []
    rows = cum.tolist()
    for i in range(limit):
        c = rows[i]
        cf = x & 0xFFFF
        s = 0 if cf < c[1] else (1 if cf < c[2] else 2)
        out.append(s)
        x = (c[s + 1] - c[s]) * (x >> 16) + cf - c[s]
        if x < TOTAL:
            if pos + 2 > len(payload):
                break
            x = (x << 16) | payload[pos] | payload[pos + 1] << 8
            pos += 2
    return np.array(out, np.int64)


class SegmentReader:
    """Reads segments from a (possibly cut) plane byte string."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def read_plane(self, freqs: np.ndarray) -> np.ndarray:
        """Decode up to len(freqs) trits of one plane (priority order, coder frequencies);
        returns the trits available (fewer when the data ends inside this plane)."""
        freqs = np.ascontiguousarray(freqs, dtype=np.int32)
        n_total, parts, done = len(freqs), [], 0
        while done < n_total:
            head = read_varint(self.data, self.pos, what="trit-plane stream")
            if head is None:
                break
            count, pos = head
            head = read_varint(self.data, pos, what="trit-plane stream")
            if head is None:
                break
            length, pos = head
            if not 1 <= count <= SEGMENT_SYMBOLS or done + count > n_total:
                raise BitstreamError("corrupt trit-plane stream: bad segment size")
            payload = self.data[pos:pos + length]
            seg_f = freqs[done:done + count]
            if len(payload) == length:
                trits = decode_payload(payload, seg_f)
                self.pos = pos + length
            else:
                cum = np.concatenate([np.zeros((count, 1), np.int64),
                                      np.cumsum(normalize_freqs(seg_f), 1)], 1)
                trits = decode_partial(payload, cum, count)
                self.pos = len(self.data)
            parts.append(np.asarray(trits, np.int64))
            done += len(trits)
            if len(trits) < count:
                break
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)
