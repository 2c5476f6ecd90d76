#!/usr/bin/env python3
"""Build the crafted hostile streams of tests/data/hostile (issue 17) with the shipped weights.

Each file is a CRC-valid container (or, where the defect is the container's own field, a
header whose CRC was recomputed) that a careless decoder would mishandle: pictures claimed
far larger than their tiles, duplicate or junk records, flags, qualities and params out of
range, cut and damaged videos. tests/test_hostile.py uses them; bench/decode_memory.py
measures the memory bombs among them (and builds the larger ones with ``bomb``).

    python scripts/make_hostile_streams.py            # rewrite tests/data/hostile
    python scripts/make_hostile_streams.py --check    # exit 1 if a file would change

Regenerate after the shipped weights change (the streams record the weights hash; the tests
re-stamp it, so only streams whose coder bytes must decode need a rebuild).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from neuralcodec import container as C  # noqa: E402
from neuralcodec.container import layout as L  # noqa: E402

OUT = ROOT / "tests" / "data" / "hostile"


def restamp(data: bytes, weights_hash: bytes) -> bytes:
    """``data`` with another weights hash in its header (header and end CRCs recomputed), so
    the crafted files keep testing their defect after the shipped weights change."""
    complete = L.CRC.unpack(data[-4:])[0] == L.crc32(data[:-4])    # ends with its end record
    b = bytearray(data)
    end = L.PREFIX.size + L.PREFIX.unpack_from(b)[3]
    b[14:46] = weights_hash
    b[end:end + 4] = L.CRC.pack(L.crc32(b[:end]))
    if complete:
        b[-4:] = L.CRC.pack(L.crc32(b[:-4]))
    return bytes(b)


def raw_header(header: C.Header, params_json: bytes) -> bytes:
    """A header record whose params are ``params_json`` verbatim (CRC recomputed), for
    params that no writer accepts."""
    codec = header.codec.encode()
    body = L.FIXED_BODY.pack(header.weights_hash, L.KINDS.index(header.kind),
                             L.PIXEL_FORMATS.index(header.pixel_format), header.width,
                             header.height, header.frames, *header.fps, header.quality,
                             len(codec), len(params_json)) + codec + params_json
    record = L.PREFIX.pack(L.MAGIC, *L.FORMAT_VERSION, len(body)) + body
    return record + L.CRC.pack(L.crc32(record))


def with_raw_header(stream: bytes, record: bytes) -> bytes:
    """``stream``'s substreams behind another header record (end-record CRC recomputed)."""
    reader = C.ContainerReader(io.BytesIO(stream))
    subs = list(reader)
    return C.pack(reader.header, subs, _raw_header=record)


def repack(stream: bytes, header=None, subs=None) -> bytes:
    h, s = C.unpack(stream, allow_truncated=True)
    return C.pack(header or h, s if subs is None else subs)


def image_stream(codec: str, pixels: np.ndarray, quality: float = 1.0) -> bytes:
    from neuralcodec.codecs.api import encode_with_model, get_model
    return encode_with_model(get_model(codec, None, "cpu"), pixels, quality, "cpu")


def flat(h: int, w: int) -> np.ndarray:
    return np.full((h, w, 3), 128, np.uint8)


def bomb(tile_stream: bytes, side: int) -> bytes:
    """A hyperprior stream claiming side x side pixels whose tiles are all copies of the one
    tile of ``tile_stream`` (a 2048x2048 picture): valid, and tiny for its size."""
    header, subs = C.unpack(tile_stream)
    tiles = (side // 2048) ** 2
    copies = [C.Substream(f"{s.name.rpartition('.')[0]}.{i}", s.data)
              for i in range(tiles) for s in subs]
    return C.pack(dataclasses.replace(header, width=side, height=side,
                                      params={"tiles": tiles}), copies)


def image_cases() -> dict[str, bytes]:
    tile = image_stream("hyperprior", flat(2048, 2048))
    header, subs = C.unpack(tile)
    small = image_stream("hyperprior", flat(64, 64), 4.0)
    sh, ss = C.unpack(small)
    r = dataclasses.replace
    cases = {
        "hp-2048.ncb": tile,
        "hp-4096-four-copies.ncb": bomb(tile, 4096),
        "hp-16384-tile0-only.ncb": C.pack(r(header, width=16384, height=16384,
                                            params={"tiles": 64}), subs),
        "hp-64.ncb": small,
        "hp-duplicate.ncb": C.pack(sh, ss + [ss[0]]),
        "hp-junk-record.ncb": C.pack(sh, ss + [C.Substream("junk", b"x" * 16)]),
        "hp-missing-z.ncb": C.pack(sh, [s for s in ss if s.name != "z.0"]),
        "hp-truncated-flag.ncb": C.pack(sh, [C.Substream(s.name, s.data, True, True)
                                             for s in ss]),
        "hp-quality-huge.ncb": C.pack(r(sh, quality=1e308), ss),
        "hp-quality-negative.ncb": C.pack(r(sh, quality=-1e308), ss),
        "hp-pixfmt-yuv420p10.ncb": C.pack(r(sh, pixel_format="yuv420p10"), ss),
        "hp-tiles-true.ncb": C.pack(r(sh, params={"tiles": True}), ss),
        "hp-params-extra.ncb": C.pack(r(sh, params={"tiles": 1, "x": 1}), ss),
        "hp-params-1e400.ncb": with_raw_header(small, raw_header(sh, b'{"tiles":1e400}')),
        "hp-params-bigint.ncb": with_raw_header(small, raw_header(
            sh, b'{"tiles":' + b"9" * 400 + b"}")),
        # a record header claiming 2^40 bytes of data (CRC-valid), then nothing
        "hp-claims-2e40.ncb": C.pack(sh, [])[:-L.END_SIZE] + L.substream_record_head(
            b"trits", L.FLAG_TRUNCATABLE, 1 << 40, 0),
    }
    tp = image_stream("trit-plane", flat(2048, 2048))
    th, ts = C.unpack(tp)
    cases["tp-2048-z-only.ncb"] = C.truncate_container(tp, len(tp) - len(ts[1].data))
    cases["tp-z-truncatable.ncb"] = C.pack(th, [C.Substream("z", ts[0].data, True),
                                                C.Substream("trits", b"", True)])
    return cases


def video_cases() -> dict[str, bytes]:
    from neuralcodec.video.codec import encode_frames
    from neuralcodec.video.weights import load

    model = load(None, None, "cpu")
    yy, xx = np.mgrid[0:64, 0:64]
    frames = [np.stack([(xx * 3 + 5 * t) % 256, (yy * 3) % 256, np.full_like(xx, 90)], -1)
              .astype(np.uint8) for t in range(4)]
    buf = io.BytesIO()
    encode_frames(model, frames, buf, 64, 64, (25, 1), 4.0, 32, "cpu", total=4)
    video = buf.getvalue()
    header, subs = C.unpack(video)
    cut = len(video) - L.END_SIZE - len(subs[-1].data) // 2      # inside the last frame's data
    big = "9" * 400

    def params_with(key: str, text: str) -> bytes:
        """The video's params JSON with ``key``'s value written as ``text``."""
        return json.dumps(dict(header.params, **{key: "@"}), sort_keys=True,
                          separators=(",", ":")).replace('"@"', text).encode()

    return {
        "vrt-4frames.ncv": video,
        "vrt-cut-in-last-frame.ncv": video[:cut],
        # frame 2's payload one byte longer than its stream table says
        "vrt-frame2-bad-length.ncv": C.pack(header, subs[:2] + [C.Substream("P", subs[2].data
                                                                            + b"\0")] + subs[3:]),
        "vrt-p-offsets-bigint.ncv": with_raw_header(video, raw_header(
            header, params_with("p_offsets", f"[{big},0.5]"))),
        "vrt-i-offset-bigint.ncv": with_raw_header(video, raw_header(
            header, params_with("i_offset", big))),
        "vrt-truncatable-frame.ncv": C.pack(header, [C.Substream(s.name, s.data, True)
                                                     for s in subs]),
    }


def build() -> dict[str, bytes]:
    return {**image_cases(), **video_cases()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare with the files on disk")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    files = build()
    stale = [n for n, d in files.items()
             if not (args.out / n).is_file() or (args.out / n).read_bytes() != d]
    if args.check:
        print("\n".join(f"differs: {n}" for n in stale) or "up to date")
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
    print(f"wrote {len(files)} files ({sum(map(len, files.values()))} bytes) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
