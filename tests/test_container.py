"""Tests of the .ncb container: round trips, streaming, validation, truncation."""
from __future__ import annotations

import hashlib
import io
import struct
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuralcodec import container as C
from neuralcodec.container import layout as L
from neuralcodec.errors import BitstreamError, ModelError

HASH = hashlib.sha256(b"weights").digest()


def make_header(**kw) -> C.Header:
    base = dict(codec="hyperprior", weights_hash=HASH, width=64, height=48, quality=0.5,
                params={"lmbda": 0.01, "levels": [1, 2]})
    base.update(kw)
    return C.Header(**base)


def sample(truncatable_last: bool = True) -> tuple[C.Header, list[C.Substream], bytes]:
    streams = [C.Substream("y", b"latent-y" * 3), C.Substream("z", b""),
               C.Substream("enh", bytes(range(40)), truncatable=truncatable_last)]
    header = make_header()
    return header, streams, C.pack(header, streams)


class NonSeekable(io.RawIOBase):
    """A pipe-like stream: not seekable, returns at most ``step`` bytes per read."""

    def __init__(self, data: bytes, step: int = 7):
        self._buf, self._pos, self._step = data, 0, step

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self._step, len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n


def read_all(source, **kw):
    reader = C.ContainerReader(source, **kw)
    return reader.header, list(reader)


def crafted(prefix_fields=None, body: bytes | None = None, records: bytes = b"") -> bytes:
    """Header record (optionally with a hand-made prefix or body) plus raw records."""
    good = L.encode_header(make_header())
    magic, major, minor, _ = L.PREFIX.unpack_from(good)
    if prefix_fields:
        magic, major, minor = prefix_fields
    body = good[L.PREFIX.size:-4] if body is None else body
    rec = L.PREFIX.pack(magic, major, minor, len(body)) + body
    return rec + L.CRC.pack(L.crc32(rec)) + records


def end_record(data: bytes, count: int) -> bytes:
    data += L.END.pack(L.TAG_END, count)
    return data + L.CRC.pack(L.crc32(data))


# ---------------------------------------------------------------- round trips

names = st.text("abcXYZ019._-", min_size=1, max_size=12).filter(lambda s: s[0].isalnum())
substreams = st.builds(C.Substream, name=names, data=st.binary(max_size=64),
                       truncatable=st.booleans())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=3),
    max_leaves=8)
headers = st.builds(
    C.Header, codec=names, weights_hash=st.binary(min_size=32, max_size=32),
    kind=st.just("image"), width=st.integers(1, C.MAX_DIMENSION),
    height=st.integers(1, C.MAX_DIMENSION), pixel_format=st.sampled_from(C.PIXEL_FORMATS),
    quality=st.floats(allow_nan=False, allow_infinity=False),
    params=st.dictionaries(st.text(max_size=6), json_values, max_size=4))
videos = st.builds(
    C.Header, codec=names, weights_hash=st.binary(min_size=32, max_size=32),
    kind=st.just("video"), width=st.integers(1, 4096), height=st.integers(1, 4096),
    frames=st.integers(0, 2**32 - 1), fps=st.tuples(st.integers(0, 2**32 - 1),
                                                    st.integers(1, 2**32 - 1)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=headers | videos, streams=st.lists(substreams, max_size=30))
def test_round_trip(header, streams):
    data = C.pack(header, streams)
    assert C.unpack(data) == (header, streams)
    assert C.read_header(data) == header
    assert read_all(io.BytesIO(data)) == (header, streams)
    assert read_all(NonSeekable(data, step=5)) == (header, streams)
    buf = io.BytesIO()
    with C.ContainerWriter(buf, header) as writer:
        for s in streams:
            writer.add(s.name, s.data, truncatable=s.truncatable)
    assert buf.getvalue() == data


def test_many_and_empty_substreams():
    streams = [C.Substream(f"f{i}", b"x" * (i % 3), truncatable=i % 2 == 0) for i in range(5000)]
    header, got = C.unpack(C.pack(make_header(), streams))
    assert got == streams and header == make_header()
    assert C.unpack(C.pack(make_header(), [])) == (make_header(), [])
    assert C.unpack(C.pack(make_header(), [C.Substream("e", b"")]))[1][0].data == b""


def test_duplicate_names_and_bytes_like_data():
    streams = [C.Substream("frame", bytearray(b"a")), C.Substream("frame", memoryview(b"bc"))]
    assert [s.data for s in C.unpack(C.pack(make_header(), streams))[1]] == [b"a", b"bc"]


def test_numpy_numbers_are_accepted():
    np = pytest.importorskip("numpy")
    header = make_header(width=np.int64(7), height=np.uint16(5), quality=np.float32(0.5),
                         kind="video", frames=np.int32(3), fps=(np.int64(25), 1))
    got = C.unpack(C.pack(header, []))[0]
    assert (got.width, got.height, got.quality, got.frames, got.fps) == (7, 5, 0.5, 3, (25, 1))
    assert type(got.width) is int and type(got.quality) is float


def test_layout_matches_docs():
    """Offsets documented in docs/bitstream.md."""
    header = make_header(kind="video", frames=9, fps=(30000, 1001), pixel_format="yuv420p",
                         width=640, height=360, quality=2.5, params={"k": 1})
    data = C.pack(header, [C.Substream("frame", b"DATA", truncatable=True)])
    u32 = lambda off: struct.unpack_from("<I", data, off)[0]  # noqa: E731
    assert data[:8] == C.MAGIC and data[8:10] == b"\x01\x00"
    body = u32(10)
    assert data[14:46] == HASH and data[46] == 1 and data[47] == 4
    assert [u32(o) for o in (48, 52, 56, 60, 64)] == [640, 360, 9, 30000, 1001]
    assert struct.unpack_from("<d", data, 68)[0] == 2.5
    n, p = data[76], struct.unpack_from("<H", data, 77)[0]
    assert data[79:79 + n] == b"hyperprior" and data[79 + n:79 + n + p] == b'{"k":1}'
    assert body == 65 + n + p and u32(14 + body) == L.crc32(data[:14 + body])
    r = 18 + body
    assert r == 83 + n + p and data[r:r + 3] == b"S\x01\x05" and data[r + 3:r + 8] == b"frame"
    assert struct.unpack_from("<Q", data, r + 8)[0] == 4 and u32(r + 16) == L.crc32(b"DATA")
    assert u32(r + 20) == L.crc32(data[r:r + 20]) and data[r + 24:r + 28] == b"DATA"
    e = r + 19 + 5 + 4
    assert len(data) == e + 9 and data[e:e + 1] == b"E" and u32(e + 1) == 1
    assert u32(e + 5) == L.crc32(data[:e + 5])


def test_constants():
    assert C.MAGIC == b"\x89NCB\r\n\x1a\n" and C.FORMAT_VERSION == (1, 0)
    assert C.pack(make_header(), []).startswith(C.MAGIC + b"\x01\x00")


# ---------------------------------------------------------------- streaming

def test_streaming_file_equivalence(tmp_path):
    header, streams, data = sample()
    path = tmp_path / "x.ncb"
    with C.ContainerWriter(path, header) as w:
        for s in streams:
            w.add(s.name, s.data, truncatable=s.truncatable)
    assert path.read_bytes() == data and w.bytes_written == len(data)
    with C.ContainerReader(path) as r:
        assert r.header == header and list(r) == streams and r.complete
    with open(path, "rb") as f:
        assert C.read_header(f) == header
    assert C.read_header(path) == header


def test_streaming_memory_is_bounded(tmp_path):
    header = make_header(kind="video", frames=0, fps=(25, 1))
    chunk = b"\xab" * 65536
    path = tmp_path / "v.ncb"
    tracemalloc.start()
    try:
        with open(path, "wb") as f, C.ContainerWriter(f, header) as w:
            for i in range(300):
                w.add("frame", chunk)
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with open(path, "rb") as f:
            n = sum(len(s.data) for s in C.ContainerReader(f))
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 300 * len(chunk)
    assert write_peak < 1 << 20 and read_peak < 1 << 20  # vs 19 MiB of data


def test_writer_usage_errors():
    buf = io.BytesIO()
    w = C.ContainerWriter(buf, make_header())
    w.close()
    w.close()  # idempotent
    with pytest.raises(BitstreamError, match="closed"):
        w.add("y", b"")
    buf = io.BytesIO()
    with pytest.raises(RuntimeError):
        with C.ContainerWriter(buf, make_header()) as w:
            w.add("y", b"abc")
            raise RuntimeError("encoder failed")
    with pytest.raises(BitstreamError, match="end record"):
        C.unpack(buf.getvalue())


# ---------------------------------------------------------------- validation on write

@pytest.mark.parametrize("kw, msg", [
    (dict(codec=""), "codec name"), (dict(codec="héllo"), "codec name"),
    (dict(codec="a" * 65), "codec name"), (dict(codec="-x"), "codec name"),
    (dict(weights_hash=b"short"), "32 bytes"), (dict(kind="audio"), "kind"),
    (dict(width=0), "width"), (dict(height=C.MAX_DIMENSION + 1), "height"),
    (dict(frames=2), "frames"), (dict(kind="video", frames=-1), "frames"),
    (dict(fps=(1, 0)), "denominator"), (dict(fps=(30,)), "fps"),
    (dict(pixel_format="cmyk"), "pixel format"), (dict(quality=float("nan")), "quality"),
    (dict(params={"a": (1, 2)}), "round trip"), (dict(params={1: 2}), "round trip"),
    (dict(params={"a": object()}), "JSON"), (dict(params={"a": "x" * 5000}), "limit"),
    (dict(params=[1]), "dict"), (dict(width=True), "width"),
])
def test_pack_rejects_bad_headers(kw, msg):
    with pytest.raises(BitstreamError, match=msg):
        C.pack(make_header(**kw), [])


@pytest.mark.parametrize("sub", [
    C.Substream("", b""), C.Substream("naïve", b""), C.Substream("a b", b""),
    C.Substream("x" * 65, b""), C.Substream("y", "text"),
    C.Substream("y", b"", truncatable=False, truncated=True),
])
def test_pack_rejects_bad_substreams(sub):
    with pytest.raises(BitstreamError):
        C.pack(make_header(), [sub])


# ---------------------------------------------------------------- corruption

def test_bad_magic_and_versions():
    _, _, data = sample()
    for bad in (b"", b"abc", b"GIF89a" + data[6:], b"\x89NCB\r\n\x1a"):
        with pytest.raises(BitstreamError, match="bad magic|too short"):
            C.unpack(bad)
    with pytest.raises(BitstreamError, match="bad magic"):
        C.unpack(b"PK\x03\x04" + data)
    newer = crafted(prefix_fields=(C.MAGIC, 2, 0))
    with pytest.raises(BitstreamError, match="written by a newer neuralcodec"):
        C.unpack(newer)
    with pytest.raises(BitstreamError, match="written by a newer neuralcodec"):
        C.read_header(data[:8] + b"\x07\x03" + data[10:])
    with pytest.raises(BitstreamError, match="version 0"):
        C.unpack(crafted(prefix_fields=(C.MAGIC, 0, 9)))


def test_newer_minor_version_is_read():
    body = L.encode_header(make_header())[L.PREFIX.size:-4]
    newer = end_record(crafted(prefix_fields=(C.MAGIC, 1, 5), body=body + b"future"), 0)
    assert C.unpack(newer) == (make_header(), [])
    same = end_record(crafted(body=body + b"future"), 0)
    with pytest.raises(BitstreamError, match="header"):
        C.unpack(same)


def test_every_truncation_fails_strict():
    for trunc_last in (False, True):
        _, _, data = sample(trunc_last)
        for n in range(len(data)):
            with pytest.raises(BitstreamError):
                C.unpack(data[:n])
            with pytest.raises(BitstreamError):
                read_all(NonSeekable(data[:n]))


def test_every_bit_flip_fails():
    _, _, data = sample()
    for i in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            with pytest.raises(BitstreamError):
                C.unpack(bytes(bad))
            with pytest.raises(BitstreamError):
                C.unpack(bytes(bad), allow_truncated=True)


def test_header_only_corruption_detected_by_read_header():
    _, _, data = sample()
    hlen = len(L.encode_header(make_header()))
    for i in range(hlen):
        bad = bytearray(data)
        bad[i] ^= 0x10
        with pytest.raises(BitstreamError):
            C.read_header(bytes(bad))
    assert C.read_header(data[:hlen]) == make_header()


def test_trailing_data_and_bad_end_record():
    _, _, data = sample()
    with pytest.raises(BitstreamError, match="trailing data"):
        C.unpack(data + b"\0")
    with pytest.raises(BitstreamError, match="trailing data"):
        read_all(NonSeekable(data + b"junk"))
    body = data[:-L.END_SIZE]
    with pytest.raises(BitstreamError, match="end record says 2"):
        C.unpack(end_record(body, 2))
    with pytest.raises(BitstreamError, match="unknown record type"):
        C.unpack(body + b"Q")


def _sub_record(name: bytes, flags: int, length: int, data: bytes) -> bytes:
    return L.substream_record_head(name, flags, length, L.crc32(data)) + data


@pytest.mark.parametrize("record, msg", [
    (_sub_record(b"y", 0x80, 1, b"a"), "unknown flags"),
    (_sub_record(b"y", 0x02, 1, b"a"), "truncated but not truncatable"),
    (_sub_record(b"", 0, 1, b"a"), "invalid name"),
    (_sub_record("é".encode(), 0, 1, b"a"), "invalid name"),
    (_sub_record(b"bad name", 0, 1, b"a"), "invalid name"),
    (L.substream_record_head(b"y", 0, 1, 0) + b"a", "data CRC"),
])
def test_crafted_bad_substreams(record, msg):
    data = end_record(crafted(records=record), 1)
    with pytest.raises(BitstreamError, match=msg):
        C.unpack(data)


def _body(params: bytes = b"{}", patch: tuple[int, bytes] | None = None) -> bytes:
    """A header body (codec "hyperprior") with raw params bytes and an optional
    patch (offset, bytes) of the fixed fields."""
    body = bytearray(L.encode_header(make_header(params={}))[L.PREFIX.size:-4])
    struct.pack_into("<H", body, L.FIXED_BODY.size - 2, len(params))
    if patch:
        body[patch[0]:patch[0] + len(patch[1])] = patch[1]
    return bytes(body[:-2]) + params


@pytest.mark.parametrize("body, msg", [
    (_body(patch=(32, b"\x09")), "kind code"),
    (_body(patch=(33, b"\xff")), "pixel format code"),
    (_body(patch=(34, bytes(4))), "width"),
    (_body(patch=(42, bytes(4))), "frames"),
    (_body(patch=(54, struct.pack("<d", float("inf")))), "quality"),
    (_body(patch=(62, b"\x00")), "field lengths|codec name"),
    (_body(patch=(65, b"\x00")), "codec name"),
    (_body(patch=(65, "é".encode())), "codec name"),
    (_body()[:-1], "field lengths"),
    (_body() + b"x", "field lengths"),
    (_body(b"[1, 2]"), "not a JSON object"),
    (_body(b'{"a": NaN'), "not valid UTF-8 JSON"),
    (_body(b'{"a":NaN}'), "not valid UTF-8 JSON"),
    (_body(b'{"a":-Infinity}'), "not valid UTF-8 JSON"),
    (_body(b'{"\xff": 1}'), "not valid UTF-8 JSON"),
    (_body(b"[" * 2000 + b"]" * 2000), "not valid UTF-8 JSON"),  # RecursionError inside
    (_body(b'{"a":' + b" " * 4100 + b"1}"), "limit"),
])
def test_crafted_bad_header_fields(body, msg):
    with pytest.raises(BitstreamError, match=msg):
        C.unpack(end_record(crafted(body=body), 0))


# ---------------------------------------------------------------- huge lengths

def _fast_and_small(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(BitstreamError) as info:
            fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 0.5 and peak < 1 << 20
    return str(info.value)


def test_huge_claimed_lengths_fail_fast():
    for body_len, msg in ((0xFFFFFFFF, "invalid header length"), (60000, "truncated file")):
        tiny = C.MAGIC + b"\x01\x00" + struct.pack("<I", body_len) + b"\0" * 6
        assert len(tiny) == 20
        assert msg in _fast_and_small(lambda: C.unpack(tiny))
        assert msg in _fast_and_small(lambda: read_all(NonSeekable(tiny)))
    for flags, length, msg in ((0, 1 << 60, "limit"), (1, 1 << 60, "limit"),
                               (0, (1 << 40) - 1, "only 10 left"), (0, 1 << 32, "only 10 left")):
        data = crafted(records=L.substream_record_head(b"y", flags, length, 0) + b"0123456789")
        for allow in (False, True):
            assert msg in _fast_and_small(lambda: C.unpack(data, allow_truncated=allow))
            assert msg in _fast_and_small(
                lambda: read_all(NonSeekable(data, step=4096), allow_truncated=allow))
    # within the limit, a truncatable stream cut short is a prefix in lenient mode
    head = crafted(records=L.substream_record_head(b"y", 1, 1 << 39, 0) + b"0123456789")
    _, subs = C.unpack(head, allow_truncated=True)
    assert subs[0].data == b"0123456789" and subs[0].truncated
    assert subs[0].declared_length == 1 << 39


# ---------------------------------------------------------------- truncatable

def test_allow_truncated_returns_prefix_at_every_offset():
    header, streams, data = sample()
    enh_start = len(data) - L.END_SIZE - 40
    for n in range(enh_start, len(data)):
        for got in (C.unpack(data[:n], allow_truncated=True),
                    read_all(NonSeekable(data[:n]), allow_truncated=True)):
            h, subs = got
            assert h == header and subs[:2] == streams[:2]
            keep = min(n - enh_start, 40)
            assert subs[2].data == bytes(range(keep))
            assert subs[2].truncated == (keep < 40)
            assert subs[2].declared_length == 40
        with pytest.raises(BitstreamError, match="allow_truncated"):
            C.unpack(data[:n])
    # before the truncatable record header is complete: still an error
    with pytest.raises(BitstreamError):
        C.unpack(data[:enh_start - 2], allow_truncated=True)


def test_reader_flags_for_truncated_files():
    _, _, data = sample()
    r = C.ContainerReader(io.BytesIO(data[:-20]), allow_truncated=True)
    list(r)
    assert r.truncated and not r.complete
    r = C.ContainerReader(io.BytesIO(data), allow_truncated=True)
    list(r)
    assert r.complete and not r.truncated


def test_non_truncatable_stays_strict():
    _, _, data = sample(truncatable_last=False)
    for n in range(len(data) - L.END_SIZE - 40, len(data)):
        with pytest.raises(BitstreamError):
            C.unpack(data[:n], allow_truncated=True)


def test_truncated_data_corruption_still_detected_in_complete_part():
    _, _, data = sample()
    bad = bytearray(data[:-20])
    bad[40] ^= 1  # inside the header
    with pytest.raises(BitstreamError):
        C.unpack(bytes(bad), allow_truncated=True)


# ---------------------------------------------------------------- truncate_container

def test_truncate_container_every_size():
    header, streams, data = sample()
    minimum = len(data) - 40
    for n in range(minimum, len(data) + 3):
        out = C.truncate_container(data, n)
        assert len(out) == min(n, len(data))
        h, subs = C.unpack(out)
        assert h == header and subs[:2] == streams[:2]
        assert subs[2].data == bytes(range(min(n, len(data)) - minimum))
        assert subs[2].truncated == (n < len(data))
    assert C.truncate_container(data, len(data)) == data
    with pytest.raises(BitstreamError, match="non-truncatable part"):
        C.truncate_container(data, minimum - 1)
    _, _, fixed = sample(truncatable_last=False)
    with pytest.raises(BitstreamError, match="non-truncatable part"):
        C.truncate_container(fixed, len(fixed) - 1)
    with pytest.raises(BitstreamError):
        C.truncate_container(data, "10")


def test_truncate_container_cuts_last_truncatable_first():
    streams = [C.Substream("base", b"B" * 10), C.Substream("l1", b"1" * 10, True),
               C.Substream("meta", b"M" * 5), C.Substream("l2", b"2" * 10, True)]
    data = C.pack(make_header(), streams)
    subs = C.unpack(C.truncate_container(data, len(data) - 4))[1]
    assert [s.data for s in subs] == [b"B" * 10, b"1" * 10, b"M" * 5, b"2" * 6]
    subs = C.unpack(C.truncate_container(data, len(data) - 13))[1]
    assert [s.data for s in subs] == [b"B" * 10, b"1" * 7, b"M" * 5, b""]
    assert [s.truncated for s in subs] == [False, True, False, True]
    again = C.truncate_container(C.truncate_container(data, len(data) - 4), len(data) - 13)
    assert C.unpack(again)[1] == subs


def test_truncate_container_repairs_cut_file():
    header, streams, data = sample()
    cut = data[:-20]
    out = C.truncate_container(cut, len(data))
    h, subs = C.unpack(out)
    assert subs[2].data == bytes(range(40 - 20 + L.END_SIZE)) and subs[2].truncated
    with pytest.raises(BitstreamError):
        C.truncate_container(data[:30], 1000)


# ---------------------------------------------------------------- weights

def test_weights_hash(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"weights")
    assert C.weights_hash(path) == HASH == C.weights_hash(str(path)) == C.weights_hash(b"weights")
    with pytest.raises(ModelError, match="cannot read weights file"):
        C.weights_hash(tmp_path / "missing.safetensors")


def test_check_weights():
    header = make_header()
    C.check_weights(header, "hyperprior", HASH)
    C.check_weights(header, "hyperprior", HASH.hex())
    other = hashlib.sha256(b"other").digest()
    with pytest.raises(ModelError) as info:
        C.check_weights(header, "hyperprior", other)
    assert str(info.value) == (f"bitstream needs codec hyperprior with weights {HASH.hex()[:12]},"
                               f" got hyperprior with weights {other.hex()[:12]}")
    with pytest.raises(ModelError, match="needs codec hyperprior .* got factorized"):
        C.check_weights(header, "factorized", HASH)


def test_count_and_size_limits(monkeypatch):
    data = C.pack(make_header(), [C.Substream(f"s{i}", b"abcd") for i in range(4)])
    monkeypatch.setattr(L, "MAX_SUBSTREAMS", 3)
    with pytest.raises(BitstreamError, match="more than 3 substreams"):
        C.unpack(data)
    with pytest.raises(BitstreamError, match="more than 3 substreams"):
        C.pack(make_header(), [C.Substream(f"s{i}", b"") for i in range(4)])
    monkeypatch.setattr(L, "MAX_SUBSTREAMS", 1 << 24)
    monkeypatch.setattr(L, "MAX_SUBSTREAM_BYTES", 3)
    with pytest.raises(BitstreamError, match="limit 3"):
        C.unpack(data)
    with pytest.raises(BitstreamError, match="limit 3"):
        C.pack(make_header(), [C.Substream("big", b"abcd")])
