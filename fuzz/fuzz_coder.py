"""Target 3: the native coder's decode entry points through neuralcodec/entropy/coder.py, with
hostile stream bytes (raw, encoded then damaged, or crafted headers and chunk tables with the
CRC recomputed) and hostile parameter arrays (NaN/inf/huge/negative values, wrong dtypes,
shapes, lengths, strides). A clean round trip must give the symbols back."""
from __future__ import annotations

import _harness
import atheris
import numpy as np

with atheris.instrument_imports(include=["neuralcodec"]):
    from neuralcodec.entropy import coder
    from neuralcodec.io.varint import encode_varint

MODELS = ("gaussian", "laplace", "gmm", "categorical", "indexed")
SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-45, -1.0, 1e38, -1e38, 3e38, 65536.0,
           65537.0, 2.0 ** 31, 1e-3, 256.0, 257.0]


@atheris.instrument_func
def _floats(fdp, shape, lo: float, hi: float) -> np.ndarray:
    """Mostly values in [lo, hi]; sometimes with specials mixed in."""
    size = int(np.prod(shape))
    a = np.array([fdp.ConsumeFloatInRange(lo, hi) for _ in range(size)], np.float64)
    if size and fdp.ConsumeIntInRange(0, 7) == 0:
        for _ in range(fdp.ConsumeIntInRange(1, 4)):
            a[fdp.ConsumeIntInRange(0, size - 1)] = SPECIAL[fdp.ConsumeIntInRange(0, len(SPECIAL) - 1)]
    return a.reshape(shape)


@atheris.instrument_func
def _ints(fdp, shape, lo: int, hi: int) -> np.ndarray:
    size = int(np.prod(shape))
    return np.array([fdp.ConsumeIntInRange(lo, hi) for _ in range(size)], np.int64).reshape(shape)


@atheris.instrument_func
def _hostile_array(fdp, a: np.ndarray):
    """``a``, or one of its hostile variants (dtype, shape, length, stride, container)."""
    k = fdp.ConsumeIntInRange(0, 15)
    if k == 0:
        return a.astype(np.float16) if a.dtype.kind == "f" else a.astype(np.int64) * 2 ** 33
    if k == 1:
        return a.reshape(1, *a.shape) if a.size else a.reshape(0, 1)
    if k == 2:
        return a[:-1] if len(a) else np.zeros(1, a.dtype)
    if k == 3:
        return np.repeat(a, 2, axis=0)[::2]                     # a strided view, same values
    if k == 4:
        return a.astype(bool)
    if k == 5:
        return a.astype(np.uint32) if a.dtype.kind == "i" else a.astype(np.complex64)
    if k == 6:
        return a.tolist()
    if k == 7:
        return np.array([object()] * len(a), dtype=object)
    return a


@atheris.instrument_func
def _params(fdp, model: str, n: int) -> tuple:
    """Parameters of ``n`` symbols, as the model's decode function takes them."""
    if model in ("gaussian", "laplace"):
        return _floats(fdp, (n,), -300, 300), _floats(fdp, (n,), 0, 300)
    if model == "gmm":
        k = fdp.ConsumeIntInRange(1, 9)
        return (_floats(fdp, (n, k), 0, 1), _floats(fdp, (n, k), -100, 100),
                _floats(fdp, (n, k), 0, 100))
    if model == "categorical":
        a = fdp.ConsumeIntInRange(1, 40) if fdp.ConsumeBool() else fdp.ConsumeIntInRange(1, 4097)
        shape = (a,) if fdp.ConsumeBool() else (n, a)
        return (_ints(fdp, shape, -2, 70000) if fdp.ConsumeIntInRange(0, 7) == 0
                else _ints(fdp, shape, 0, 1000)),
    tables = fdp.ConsumeIntInRange(1, 4)
    width = fdp.ConsumeIntInRange(2, 24)
    cdfs = np.zeros((tables, width), np.int64)
    lengths = np.zeros(tables, np.int64)
    for t in range(tables):
        length = fdp.ConsumeIntInRange(2, width)
        steps = np.sort(_ints(fdp, (length - 2,), 1, 65535)) if length > 2 else np.zeros(0, np.int64)
        row = np.concatenate([[0], steps, [65536]])
        if fdp.ConsumeIntInRange(0, 7) == 0:                    # broken table
            row[fdp.ConsumeIntInRange(0, length - 1)] = fdp.ConsumeIntInRange(-5, 70000)
        cdfs[t, :length] = row
        lengths[t] = length if fdp.ConsumeIntInRange(0, 15) else fdp.ConsumeIntInRange(-3, 40)
    indexes = _ints(fdp, (n,), 0, tables - 1) if fdp.ConsumeIntInRange(0, 7) else \
        _ints(fdp, (n,), -2, tables + 2)
    offsets = _ints(fdp, (tables,), -40, 40) if fdp.ConsumeIntInRange(0, 15) else \
        _ints(fdp, (tables,), -2 ** 31, 2 ** 31 - 1)
    return indexes, cdfs, lengths, offsets


@atheris.instrument_func
def _symbols(fdp, model: str, params, n: int) -> np.ndarray:
    if model == "categorical":
        return _ints(fdp, (n,), 0, params[0].shape[-1] - 1)
    if fdp.ConsumeIntInRange(0, 15) == 0:
        return _ints(fdp, (n,), -2 ** 31, 2 ** 31 - 1)
    return _ints(fdp, (n,), -30, 30)


@atheris.instrument_func
def _crafted(fdp, model_id: int, count: int | None) -> bytes:
    """A stream with header fields and chunk table from the fuzzer, CRC recomputed."""
    huge = [1 << 24, (1 << 24) + 1, 1 << 30, 1 << 40, 1 << 48, (1 << 64) - 1]
    if count is None or fdp.ConsumeIntInRange(0, 3) == 0:
        count = fdp.ConsumeIntInRange(0, 1000) if fdp.ConsumeBool() else huge[
            fdp.ConsumeIntInRange(0, len(huge) - 1)]
    chunk = fdp.ConsumeIntInRange(1, 70000) if fdp.ConsumeBool() else huge[
        fdp.ConsumeIntInRange(0, len(huge) - 1)]
    head = bytes((1 if fdp.ConsumeIntInRange(0, 15) else fdp.ConsumeIntInRange(0, 255),
                  model_id if fdp.ConsumeIntInRange(0, 15) else fdp.ConsumeIntInRange(0, 255)))
    head += encode_varint(count) + encode_varint(chunk)
    table, payload = b"", b""
    for _ in range(fdp.ConsumeIntInRange(0, 64)):
        part = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
        if len(part) >= 4 and fdp.ConsumeBool():               # a valid initial state
            part = (1 << 16).to_bytes(4, "little") + part[4:]
        table += encode_varint(len(part) if fdp.ConsumeIntInRange(0, 7) else
                               fdp.ConsumeIntInRange(0, 1 << 20))
        payload += part
    b = bytearray(head + b"\0\0\0\0" + table + payload)
    _harness.fix_coder_stream(b, 0, len(b))
    return bytes(b)


@atheris.instrument_func
def _damaged(fdp, stream: bytes) -> bytes:
    b = bytearray(stream)
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        if not b:
            break
        i = fdp.ConsumeIntInRange(0, len(b) - 1)
        op = fdp.ConsumeIntInRange(0, 3)
        if op == 0:
            b[i] ^= 1 << fdp.ConsumeIntInRange(0, 7)
        elif op == 1:
            del b[i:i + fdp.ConsumeIntInRange(1, 8)]
        elif op == 2:
            b[i:i] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 8))
        else:
            b[i] = fdp.ConsumeIntInRange(0, 255)
    if fdp.ConsumeBool():
        _harness.fix_coder_stream(b, 0, len(b))
    return bytes(b)


def _decode(model: str, stream, params):
    return getattr(coder, f"decode_{model}")(stream, *params, threads=1)


@atheris.instrument_func
def target(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    model = MODELS[fdp.ConsumeIntInRange(0, len(MODELS) - 1)]
    model_id = MODELS.index(model) + 1
    n = fdp.ConsumeIntInRange(0, 300)
    params = _params(fdp, model, n)
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:                                               # raw bytes
        _harness.attempt(_decode, model, fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096)), params)
        return
    if mode == 1:                                               # crafted header and table
        _harness.attempt(_decode, model, _crafted(fdp, model_id, n), params)
        return
    symbols = _symbols(fdp, model, params, n)
    chunk = fdp.ConsumeIntInRange(1, 400)
    enc = getattr(coder, f"encode_{model}")
    stream = _harness.attempt(enc, symbols, *params, chunk_size=chunk, threads=1)
    if stream is None:
        return
    if mode == 2:                                               # clean round trip
        got = _decode(model, stream, params)
        assert np.array_equal(got, symbols), f"{model}: round trip differs"
        hostile = tuple(_hostile_array(fdp, p) for p in params)
        _harness.attempt(_decode, model, stream, hostile)
        return
    _harness.attempt(_decode, model, _damaged(fdp, stream), params)


def seeds() -> dict[str, bytes]:
    import random
    rng = random.Random(3)
    return {f"random-{i}": rng.randbytes(rng.choice([64, 512, 4096])) for i in range(16)}


if __name__ == "__main__":
    _harness.main("coder", target, seeds)
