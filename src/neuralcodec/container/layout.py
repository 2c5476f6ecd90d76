"""Byte layout of the .ncb container: constants, limits, dataclasses and the
pure encode/decode functions for each record (see docs/bitstream.md)."""
from __future__ import annotations

import json
import math
import numbers
import re
import struct
import zlib
from dataclasses import dataclass, field

from neuralcodec.errors import BitstreamError

MAGIC = b"\x89NCB\r\n\x1a\n"
FORMAT_VERSION = (1, 0)  # (major, minor)

# Limits, all checked on write and on read before anything is allocated.
MAX_NAME = 64                 # codec and substream names, ASCII bytes
MAX_PARAMS_BYTES = 4096       # compact UTF-8 JSON of Header.params
MAX_HEADER_BODY = 65536       # header body, including future minor-version fields
MAX_SUBSTREAMS = 1 << 24
MAX_SUBSTREAM_BYTES = 1 << 40
MAX_DIMENSION = 1 << 20       # width and height
MAX_U32 = 0xFFFFFFFF

KINDS = ("image", "video")
PIXEL_FORMATS = ("rgb24", "rgb48", "gray8", "gray16", "yuv420p", "yuv422p", "yuv444p",
                 "yuv420p10", "yuv444p10")

FLAG_TRUNCATABLE = 0x01
FLAG_TRUNCATED = 0x02
KNOWN_FLAGS = FLAG_TRUNCATABLE | FLAG_TRUNCATED

TAG_SUBSTREAM = b"S"
TAG_END = b"E"

PREFIX = struct.Struct("<8sBBI")            # magic, major, minor, body length
FIXED_BODY = struct.Struct("<32sBBIIIIIdBH")  # hash, kind, pixfmt, w, h, frames, fps, q, lens
SUB_FIXED = struct.Struct("<QI")            # data length, data CRC32
END = struct.Struct("<cI")                  # tag, substream count (then CRC32)
CRC = struct.Struct("<I")
END_SIZE = END.size + CRC.size

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


@dataclass(kw_only=True)
class Header:
    """Everything a decoder needs before the substreams (keyword-only)."""
    codec: str
    weights_hash: bytes
    kind: str = "image"
    width: int
    height: int
    frames: int = 1
    fps: tuple[int, int] = (0, 1)
    pixel_format: str = "rgb24"
    quality: float = 0.0
    params: dict = field(default_factory=dict)


@dataclass
class Substream:
    """One named payload. ``truncated``: data is a prefix of what was written."""
    name: str
    data: bytes
    truncatable: bool = False
    truncated: bool = False
    # Length declared in the file (differs from len(data) when cut at end of file).
    declared_length: int | None = field(default=None, compare=False, repr=False)
    # Bytes of data present in the file (set by the reader; ``data`` is empty when the
    # reader was asked to check the data without keeping it).
    size: int | None = field(default=None, compare=False, repr=False)


def crc32(data, value: int = 0) -> int:
    """CRC32 (zlib polynomial) of ``data``, continuing from ``value``."""
    return zlib.crc32(data, value) & 0xFFFFFFFF


def check_name(name, what: str) -> bytes:
    """Validate a codec/substream name; return its ASCII bytes."""
    if not isinstance(name, str) or not name.isascii() or not _NAME_RE.match(name) \
            or len(name) > MAX_NAME:
        raise BitstreamError(f"invalid {what} name {name!r} (1-{MAX_NAME} chars of "
                             "A-Z a-z 0-9 . _ -, starting with a letter or digit)")
    return name.encode("ascii")


def _check_int(value, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or not lo <= value <= hi:
        raise BitstreamError(f"header {what} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _encode_params(params) -> bytes:
    if not isinstance(params, dict):
        raise BitstreamError(f"header params must be a dict, got {type(params).__name__}")
    try:
        text = json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=False)
        same = _loads_params(text) == params
    except (TypeError, ValueError, RecursionError) as exc:
        raise BitstreamError(f"header params are not JSON-serialisable: {exc}") from None
    if not same:
        raise BitstreamError("header params do not survive a JSON round trip "
                             "(use str keys, lists not tuples)")
    raw = text.encode("utf-8")
    if len(raw) > MAX_PARAMS_BYTES:
        raise BitstreamError(f"header params take {len(raw)} bytes as JSON, "
                             f"limit {MAX_PARAMS_BYTES}")
    return raw


MAX_PARAMS_INT = 1 << 63     # params integers lie in (-2^63, 2^63); floats are finite


def _no_constant(name: str):
    raise ValueError(f"{name} is not allowed")


class _OutOfRange(ValueError):
    """A params number the format does not allow."""


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or abs(int(text)) >= MAX_PARAMS_INT:
        raise _OutOfRange(f"integer {text[:24]}{'...' if len(text) > 24 else ''} is out of range")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange(f"number {text[:24]} is out of range")
    return value


def _loads_params(text: str):
    """JSON with the params rules: no NaN/Infinity, integers within +-2^63, finite floats."""
    return json.loads(text, parse_constant=_no_constant, parse_int=_bounded_int,
                      parse_float=_finite_float)


def _decode_params(raw: bytes) -> dict:
    try:
        params = _loads_params(raw.decode("utf-8"))
    except _OutOfRange as exc:
        raise BitstreamError(f"header params: {exc} (integers must lie within +-2^63, "
                             "floats must be finite)") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BitstreamError("header params are not valid UTF-8 JSON") from None
    if not isinstance(params, dict):
        raise BitstreamError("header params are not a JSON object")
    return params


def validate_header(h: Header) -> None:
    """Raise BitstreamError unless every header field is in range."""
    if not isinstance(h, Header):
        raise BitstreamError(f"expected a Header, got {type(h).__name__}")
    check_name(h.codec, "codec")
    if not isinstance(h.weights_hash, bytes) or len(h.weights_hash) != 32:
        raise BitstreamError("header weights_hash must be 32 bytes (SHA-256)")
    if h.kind not in KINDS:
        raise BitstreamError(f"header kind must be one of {KINDS}, got {h.kind!r}")
    if h.pixel_format not in PIXEL_FORMATS:
        raise BitstreamError(f"unknown pixel format {h.pixel_format!r}")
    _check_int(h.width, 1, MAX_DIMENSION, "width")
    _check_int(h.height, 1, MAX_DIMENSION, "height")
    if h.kind == "image":
        _check_int(h.frames, 1, 1, "frames (image)")
    else:
        _check_int(h.frames, 0, MAX_U32, "frames (video, 0 = unknown)")
    if not isinstance(h.fps, (tuple, list)) or len(h.fps) != 2:
        raise BitstreamError(f"header fps must be a (numerator, denominator) pair, got {h.fps!r}")
    _check_int(h.fps[0], 0, MAX_U32, "fps numerator")
    _check_int(h.fps[1], 1, MAX_U32, "fps denominator")
    if isinstance(h.quality, bool) or not isinstance(h.quality, numbers.Real) \
            or not math.isfinite(h.quality):
        raise BitstreamError(f"header quality must be a finite number, got {h.quality!r}")


def encode_header(h: Header) -> bytes:
    """The complete header record (prefix, body, CRC32) for ``h``."""
    validate_header(h)
    codec = check_name(h.codec, "codec")
    params = _encode_params(h.params)
    body = FIXED_BODY.pack(h.weights_hash, KINDS.index(h.kind),
                           PIXEL_FORMATS.index(h.pixel_format), int(h.width), int(h.height),
                           int(h.frames), int(h.fps[0]), int(h.fps[1]), float(h.quality),
                           len(codec), len(params))
    body += codec + params
    record = PREFIX.pack(MAGIC, *FORMAT_VERSION, len(body)) + body
    return record + CRC.pack(crc32(record))


def check_prefix(prefix: bytes) -> tuple[tuple[int, int], int]:
    """Check magic, version and body length of a complete 14-byte prefix."""
    magic, major, minor, body_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise BitstreamError("not a neuralcodec bitstream (bad magic bytes)")
    if major > FORMAT_VERSION[0]:
        raise BitstreamError(f"bitstream written by a newer neuralcodec (format {major}.{minor};"
                             f" this version reads {FORMAT_VERSION[0]}.x)")
    if major < 1:
        raise BitstreamError(f"invalid bitstream format version {major}.{minor}")
    if not FIXED_BODY.size < body_len <= MAX_HEADER_BODY:
        raise BitstreamError(f"invalid header length {body_len}")
    return (major, minor), body_len


def decode_header_body(body: bytes, version: tuple[int, int]) -> Header:
    """Parse a CRC-checked header body; newer minor versions may append fields."""
    (whash, kind, pixfmt, width, height, frames, fps_num, fps_den, quality, codec_len,
     params_len) = FIXED_BODY.unpack_from(body)
    end = FIXED_BODY.size + codec_len + params_len
    if end > len(body) or (end < len(body) and version[1] <= FORMAT_VERSION[1]):
        raise BitstreamError("header field lengths do not match the header size")
    if kind >= len(KINDS) or pixfmt >= len(PIXEL_FORMATS):
        raise BitstreamError(f"unknown kind code {kind} or pixel format code {pixfmt}")
    if params_len > MAX_PARAMS_BYTES:
        raise BitstreamError(f"header params take {params_len} bytes, limit {MAX_PARAMS_BYTES}")
    codec_raw = body[FIXED_BODY.size:FIXED_BODY.size + codec_len]
    codec = codec_raw.decode("ascii", errors="replace")
    header = Header(codec=codec, weights_hash=whash, kind=KINDS[kind], width=width,
                    height=height, frames=frames, fps=(fps_num, fps_den),
                    pixel_format=PIXEL_FORMATS[pixfmt], quality=quality,
                    params=_decode_params(body[FIXED_BODY.size + codec_len:end]))
    validate_header(header)
    return header


def substream_record_head(name: bytes, flags: int, length: int, data_crc: int) -> bytes:
    """Record header of a substream (everything before its data), with its CRC32."""
    head = TAG_SUBSTREAM + bytes((flags, len(name))) + name + SUB_FIXED.pack(length, data_crc)
    return head + CRC.pack(crc32(head))


def substream_overhead(name: str) -> int:
    """Bytes a substream record adds on top of its data."""
    return 3 + len(name) + SUB_FIXED.size + CRC.size


def check_substream_head(flags: int, name_raw: bytes, length: int, index: int) -> str:
    """Validate a CRC-checked substream record header; return the name."""
    try:
        name = name_raw.decode("ascii")
        check_name(name, "substream")
    except (UnicodeDecodeError, BitstreamError):
        raise BitstreamError(f"substream #{index} has an invalid name {name_raw!r}") from None
    if flags & ~KNOWN_FLAGS:
        raise BitstreamError(f"substream #{index} {name!r} has unknown flags 0x{flags:02x}")
    if flags & FLAG_TRUNCATED and not flags & FLAG_TRUNCATABLE:
        raise BitstreamError(f"substream #{index} {name!r} is marked truncated "
                             "but not truncatable")
    if length > MAX_SUBSTREAM_BYTES:
        raise BitstreamError(f"substream #{index} {name!r} claims {length} bytes, "
                             f"limit {MAX_SUBSTREAM_BYTES}")
    return name
