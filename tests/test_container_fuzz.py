"""Fuzz the container reader: every mutated container either raises
BitstreamError or decodes to exactly the original content."""
from __future__ import annotations

import hashlib
import io
import random

from neuralcodec import container as C
from neuralcodec.errors import BitstreamError


def _bases() -> list[bytes]:
    h = hashlib.sha256(b"w").digest()
    image = C.Header(codec="factorized", weights_hash=h, width=32, height=16, quality=3.0,
                     params={"n": 192, "tag": "x"})
    video = C.Header(codec="ssf", weights_hash=h, kind="video", width=8, height=8, frames=3,
                     fps=(30000, 1001), pixel_format="yuv420p")
    return [
        C.pack(image, [C.Substream("y", bytes(range(50))), C.Substream("z", b"zz")]),
        C.pack(image, [C.Substream("base", b"b" * 20),
                       C.Substream("enh", b"e" * 30, truncatable=True)]),
        C.pack(video, [C.Substream("frame", bytes([i]) * (5 + i)) for i in range(3)]),
        C.pack(video, []),
    ]


def _pos(rng: random.Random, size: int) -> int:
    """A mutation offset, biased past the ~100-byte header towards the records."""
    return rng.randrange(min(100, size - 1), size) if rng.random() < 0.6 else rng.randrange(size)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    op = rng.randrange(8)
    pos = _pos(rng, len(b) + 1)
    if op == 0:                                   # truncation
        return bytes(b[:_pos(rng, len(b))])
    if op == 1:                                   # 1 to 3 bit flips
        for _ in range(rng.randint(1, 3)):
            b[_pos(rng, len(b))] ^= 1 << rng.randrange(8)
    elif op == 2:                                 # random bytes overwritten
        n = rng.randint(1, 8)
        b[pos:pos + n] = rng.randbytes(n)
    elif op == 3:                                 # inserted bytes
        b[pos:pos] = rng.randbytes(rng.randint(1, 8))
    elif op == 4:                                 # deleted bytes
        del b[pos:pos + rng.randint(1, 8)]
    elif op == 5:                                 # duplicated span
        b[pos:pos] = b[pos:pos + rng.randint(1, 40)]
    elif op == 6:                                 # trailing junk or random tail
        b[pos:] = rng.randbytes(rng.randint(0, 40))
    else:                                         # random bytes behind a valid prefix
        return bytes(b[:rng.randrange(32)]) + rng.randbytes(rng.randint(0, 200))
    return bytes(b)


def _check(mutated: bytes, expected) -> bool:
    """True when the mutated container was accepted (it must then be identical)."""
    try:
        got = C.unpack(mutated)
    except BitstreamError:
        return False
    assert got == expected, "a mutated container decoded to different content"
    return True


def test_fuzz_mutations_only_raise_bitstream_error():
    rng = random.Random(20261125)
    bases = _bases()
    expected = [C.unpack(b) for b in bases]
    changed = accepted_changed = 0
    for i in range(12000):
        k = i % len(bases)
        mutated = _mutate(rng, bases[k])
        accepted = _check(mutated, expected[k])
        if mutated != bases[k]:
            changed += 1
            accepted_changed += accepted
        if i % 10 == 0:                          # streaming reader and header-only path
            try:
                reader = C.ContainerReader(io.BytesIO(mutated))
                assert (reader.header, list(reader)) == expected[k]
            except BitstreamError:
                pass
            try:
                assert C.read_header(mutated) == expected[k][0]
            except BitstreamError:
                pass
    assert changed >= 10000
    assert accepted_changed == 0  # identical content from changed bytes needs a CRC collision


def test_fuzz_allow_truncated_checks_all_but_the_cut_tail():
    rng = random.Random(7)
    base = _bases()[1]
    header, streams = C.unpack(base)
    for _ in range(3000):
        mutated = _mutate(rng, base)
        try:
            h, subs = C.unpack(mutated, allow_truncated=True)
        except BitstreamError:
            continue
        # Only the data of a cut truncatable substream is unchecked (no CRC for a prefix).
        assert h == header and len(subs) == 2 and subs[0] == streams[0]
        if subs[1].truncated:
            assert len(subs[1].data) < len(streams[1].data) and mutated.endswith(subs[1].data)
        else:
            assert subs[1] == streams[1]
