"""Seeded fuzzing of what a decoder trusts (issue 17): header fields with the CRC recomputed,
weights metadata, video GOP params and the tile records of an image stream. Each case either
passes every check (and then satisfies the documented limits) or raises the one documented
error type; nothing else escapes. Parsing level only, so 10k cases each run in seconds."""
from __future__ import annotations

import io
import json
import math
import random
import string

import pytest

from neuralcodec import container as C
from neuralcodec.container import layout as L
from neuralcodec.errors import BitstreamError, ModelError

CASES = 10_000
WORDS = ["tiles", "planes", "intra_period", "p_offsets", "i_offset", "intra", "n", "m", "groups",
         "components", "base", "base_sha256", "quality", "crr_hidden", "cdr_hidden", "f", "nz",
         "buf", "intra_m", "x", ""]


def _number(rng: random.Random) -> str:
    return rng.choice([
        str(rng.randint(-3, 300)), str(rng.randint(-2 ** 70, 2 ** 70)), "9" * rng.randint(1, 500),
        "-" + "9" * rng.randint(18, 22), repr(rng.uniform(-10, 10)), "1e400", "-1e400", "1e308",
        "1e-400", "0.5", "NaN", "Infinity", "-Infinity", str(2 ** 63), str(2 ** 63 - 1)])


def _json(rng: random.Random, depth: int = 0) -> str:
    """Random JSON-ish text: mostly valid, with numbers out of every range."""
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return _number(rng)
    if kind == 1:
        return json.dumps(rng.choice(WORDS + ["".join(rng.choices(string.printable, k=5))]))
    if kind == 2:
        return rng.choice(["true", "false", "null"])
    if kind == 3:
        return rng.choice(["{", "[1,", '{"a":}', "\xff", "", "[]", "{}"])
    if kind == 4:
        return "[" + ",".join(_json(rng, depth + 1) for _ in range(rng.randint(0, 4))) + "]"
    items = [f"{json.dumps(rng.choice(WORDS))}:{_json(rng, depth + 1)}"
             for _ in range(rng.randint(0, 5))]
    return "{" + ",".join(items) + "}"


def _pick(rng: random.Random, good: list, bad: list):
    """Mostly a plausible value, sometimes a hostile one."""
    return rng.choice(good if rng.random() < 0.85 else bad)


def _gop(rng: random.Random) -> str:
    """Video GOP params text, numbers mostly in range."""
    num = lambda: repr(rng.uniform(-8, 8)) if rng.random() < 0.8 else _number(rng)  # noqa: E731
    return '{"intra_period":%s,"p_offsets":[%s],"i_offset":%s}' % (
        str(rng.randint(0, 64)) if rng.random() < 0.8 else _number(rng),
        ",".join(num() for _ in range(rng.randint(0, 4))), num())


def _header_record(rng: random.Random) -> bytes:
    codec = _pick(rng, [b"hyperprior", b"video-rt", b"trit-plane", b"gmm-ctx"],
                  [b"", b"a" * 70, bytes(rng.randbytes(rng.randint(1, 8)))])
    params = rng.choice([_json(rng), _gop(rng), '{"tiles":%s}' % _number(rng),
                         '{"planes":%d}' % rng.randint(0, 13)]).encode("utf-8", "surrogatepass")
    dims = lambda: _pick(rng, [1, 2, 64, 2048, 16384, 1 << 20],   # noqa: E731
                         [0, (1 << 20) + 1, rng.getrandbits(32)])
    quality = _pick(rng, [1.0, 4.0, 8.0, rng.uniform(0, 9)],
                    [1e308, -1e308, math.inf, math.nan, rng.uniform(-20, 20)])
    body = L.FIXED_BODY.pack(rng.randbytes(32), _pick(rng, [0, 1], [2, 3]),
                             _pick(rng, [0, 0, 4, 8], [9, 11, 255]), dims(), dims(),
                             rng.choice([0, 1, 2, 30, 2 ** 32 - 1]),
                             rng.choice([0, 25, 30000, 2 ** 32 - 1]), rng.choice([0, 1, 1001]),
                             quality, len(codec) if rng.random() < 0.95 else rng.randrange(256),
                             len(params) if rng.random() < 0.95 else rng.randrange(65536))
    body += codec + params + (rng.randbytes(rng.randint(1, 9)) if rng.random() < 0.05 else b"")
    minor = rng.choice([0, 0, 0, 1])
    record = L.PREFIX.pack(L.MAGIC, 1, minor, len(body)) + body
    return record + L.CRC.pack(L.crc32(record))


def test_fuzz_header_fields_with_valid_crc():
    from neuralcodec.codecs.image_decoder import check_image_header
    from neuralcodec.video.codec import GopConfig, check_video_header

    rng = random.Random(17)
    accepted = 0
    for _ in range(CASES):
        try:
            h = C.read_header(_header_record(rng))
        except BitstreamError:
            continue
        accepted += 1
        assert h.kind in L.KINDS and h.pixel_format in L.PIXEL_FORMATS
        assert 1 <= h.width <= L.MAX_DIMENSION and 1 <= h.height <= L.MAX_DIMENSION
        assert math.isfinite(h.quality) and isinstance(h.params, dict)
        assert len(json.dumps(h.params).encode()) <= 4 * L.MAX_PARAMS_BYTES
        C.pack(h, [])                                 # what was read can be written back
        try:
            if h.kind == "image":
                check_image_header(h, 1 << 28)
            else:
                check_video_header(h, 1 << 28)
                gop = GopConfig.from_params(h.params)
                assert 0 <= gop.intra_period < 2 ** 32 and 1 <= len(gop.p_offsets) <= 1024
                assert all(abs(v) <= 7 for v in gop.p_offsets + [gop.i_offset])
            assert 1 <= h.quality <= 8 and h.pixel_format == "rgb24"
        except BitstreamError:
            pass
    assert accepted > 500                      # the generator reaches the field checks


def test_fuzz_video_gop_params():
    from neuralcodec.video.codec import GopConfig

    rng = random.Random(18)
    ok = 0
    for _ in range(CASES):
        text = _json(rng) if rng.random() < 0.2 else _gop(rng)
        try:
            params = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if not isinstance(params, dict):
            continue
        try:
            gop = GopConfig.from_params(params)
        except BitstreamError:
            continue
        ok += 1
        assert type(gop.intra_period) is int and 0 <= gop.intra_period < 2 ** 32
        assert all(type(v) is float and abs(v) <= 7 for v in gop.p_offsets + [gop.i_offset])
        assert 0 <= gop.quality(4.0, rng.randrange(100)) <= 8
    assert ok > 100


def test_fuzz_weights_metadata():
    from neuralcodec.codecs.registry import CODECS
    from neuralcodec.codecs.weights import MAX_CONFIG_INT, constructor_defaults, weights_config
    from neuralcodec.video.weights import VIDEO_CODECS

    classes = {**CODECS, **VIDEO_CODECS}
    rng = random.Random(19)
    ok = 0
    for _ in range(CASES):
        name = rng.choice(sorted(classes))
        cls = classes[name]
        defaults = constructor_defaults(cls)
        params = list(defaults)
        config = rng.choice([
            _json(rng),
            "{" + ",".join(f"{json.dumps(rng.choice(params + ['x']))}:{_json(rng, 2)}"
                           for _ in range(rng.randint(0, 4))) + "}"])
        meta = {"format": "neuralcodec-weights-1", "codec": name, "config": config}
        try:
            got = weights_config(meta, "w.safetensors", cls)
        except ModelError:
            continue
        ok += 1
        for key, value in got.items():
            want = defaults[key]
            ints = value if isinstance(value, list) else [value]
            if want is None:      # optional: None, an int, a str or a list of flat objects
                assert value is None or isinstance(value, str) or (
                    type(value) is int and 1 <= value <= MAX_CONFIG_INT) or all(
                    isinstance(item, dict) and all(
                        (type(v) in (int, float) and math.isfinite(v) and abs(v) <= 1e6)
                        or (isinstance(v, list)
                            and all(type(n) is int and 1 <= n <= MAX_CONFIG_INT for n in v))
                        for v in item.values())
                    for item in value)
            elif isinstance(want, bool) or isinstance(want, str):
                assert type(value) is type(want)
            elif isinstance(want, (int, tuple, list)):
                assert all(type(v) is int and 1 <= v <= MAX_CONFIG_INT for v in ints)
            else:
                assert type(value) in (int, float) and math.isfinite(value)
    assert ok > 100


def test_fuzz_weights_shapes_against_the_file():
    """Accepted configs of random sizes: the fake-tensor comparison with the shipped file
    passes only for the shipped shapes, else one ModelError (never a big allocation)."""
    from neuralcodec.codecs.registry import CODECS, shipped_weights
    from neuralcodec.codecs.weights import build_checked

    rng = random.Random(20)
    path, cls = shipped_weights("hyperprior"), CODECS["hyperprior"]
    for _ in range(12):
        config = {"n": rng.choice([128, 1, 64, 65536]), "m": rng.choice([192, 3, 65536])}
        try:
            build_checked(path, "hyperprior", cls, config, lambda: cls(**config))
            assert config == {"n": 128, "m": 192}
        except ModelError as exc:
            assert config != {"n": 128, "m": 192} and "shape" in str(exc)


class _Sub:
    def __init__(self, name: str, truncatable: bool = False):
        self.name, self.truncatable, self.data = name, truncatable, b"x"


def test_fuzz_tile_records():
    from neuralcodec.codecs.image_decoder import tile_streams

    rng = random.Random(21)
    ok = 0
    for _ in range(CASES):
        count = rng.randint(1, 6)
        stems = rng.sample(["z", "y", "a", "y2"], rng.randint(1, 3))
        subs = [_Sub(f"{s}.{t}") for t in range(count) for s in stems]
        for _ in range(rng.randint(0, 2)):                # a few mutations
            op = rng.randrange(5)
            i = rng.randrange(len(subs) + 1)
            if op == 0 and subs:
                del subs[min(i, len(subs) - 1)]
            elif op == 1:
                subs.insert(i, _Sub(rng.choice(["junk", "z.0", "y.99", "z.-1", ".0", "z.01", "y"])))
            elif op == 2 and subs:
                subs.insert(i, subs[min(i, len(subs) - 1)])
            elif op == 3 and subs:
                subs[min(i, len(subs) - 1)] = _Sub(subs[min(i, len(subs) - 1)].name, True)
            elif op == 4 and len(subs) > 1:
                j = rng.randrange(len(subs))
                subs[min(i, len(subs) - 1)], subs[j] = subs[j], subs[min(i, len(subs) - 1)]
        try:
            tiles = tile_streams(iter(subs), count)
        except BitstreamError:
            continue
        ok += 1
        assert len(tiles) == count and all(list(t) == list(tiles[0]) for t in tiles)
        assert sum(map(len, tiles)) == len(subs) and not any(s.truncatable for s in subs)
        assert [s.name for s in subs] == [f"{k}.{t}" for t in range(count) for k in tiles[0]]
    assert ok > 1000


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzz_container_records_after_valid_header(seed):
    """Random record bytes behind a valid header: the streaming reader (with and without
    keeping data) raises BitstreamError or returns records within the limits."""
    rng = random.Random(seed)
    h = C.Header(codec="hyperprior", weights_hash=bytes(32), width=64, height=64,
                 params={"tiles": 1})
    head = C.pack(h, [])[:-L.END_SIZE]
    for _ in range(CASES // 4):
        tail = bytearray()
        for _ in range(rng.randint(0, 3)):
            name = rng.choice([b"z.0", b"y.0", b"trits", b"\xff", b""])
            length = rng.choice([0, 3, 1 << 40, (1 << 40) + 1, rng.getrandbits(64)])
            flags = rng.choice([0, 1, 2, 3, 4])
            tail += L.TAG_SUBSTREAM + bytes((flags, len(name))) + name + L.SUB_FIXED.pack(length, 0)
            tail = tail + L.CRC.pack(L.crc32(bytes(tail[-(len(name) + 15):])))
            tail += rng.randbytes(rng.randint(0, 6))
        data = head + bytes(tail)
        for skip in (False, True):
            try:
                with C.ContainerReader(io.BytesIO(data), allow_truncated=rng.random() < 0.5,
                                       skip_data=skip) as r:
                    for s in r:
                        assert s.size <= len(data) and s.declared_length <= L.MAX_SUBSTREAM_BYTES
            except BitstreamError:
                pass
