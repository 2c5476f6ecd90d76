"""Validated, bounded-memory decoding of latent-codec image streams.

:class:`ImageDecoder` reads and checks everything before it allocates anything picture
sized: the header (kind, pixel format, quality range, tile count, the caller's pixel limit),
the weights hash, then every substream record (each tile's streams present once, in
order; no other record), so that a stream claiming a huge picture with a few tiles fails
at once. :meth:`ImageDecoder.rows` then decodes one row of tiles at a time: the entropy
decoder fills latent strips (at most three rows of entropy tiles are held), the synthesis
runs tile by tile with the same tiles and halos as a whole-picture decode, and each row of
tiles leaves as uint8 pixels. Peak memory follows one tile and the picture width, not its
height or area.
"""
from __future__ import annotations

import io

import numpy as np
import torch

from neuralcodec.codecs.pixels import to_pixels
from neuralcodec.codecs.base import QUALITY_MAX, QUALITY_MIN, Compressed, LevelledImageCodec
from neuralcodec.codecs.tiling import latent_tiles, synthesis_parts
from neuralcodec.errors import BitstreamError
from neuralcodec.limits import DEFAULT_MAX_PIXELS, check_picture_size

MAX_TILE_STREAMS = 16    # coder streams per tile (a codec writes 1 to 3)


def check_image_header(header, max_pixels: int) -> None:
    """Fields every image stream must have: kind, rgb24, quality in range, size limit."""
    if header.kind != "image":
        raise BitstreamError(f"this bitstream holds a {header.kind}, not an image")
    if header.pixel_format != "rgb24":
        raise BitstreamError(f"pixel format {header.pixel_format} is not supported by "
                             f"{header.codec} (rgb24 only)")
    if not QUALITY_MIN <= header.quality <= QUALITY_MAX:
        raise BitstreamError(f"header quality {header.quality!r} is outside "
                             f"[{QUALITY_MIN:g}, {QUALITY_MAX:g}]")
    check_picture_size(header.width, header.height, max_pixels)


def tile_streams(substreams, count: int) -> list[dict[str, bytes]]:
    """Group ``name.index`` records by tile. Tile 0's records come first and name the streams
    of a tile; every further tile repeats them in the same order. A duplicate, unknown,
    flagged (truncatable) or missing record raises at once, before any decoding."""
    per_tile: list[dict[str, bytes]] = [{} for _ in range(count)]
    stems: list[str] = []
    n = -1
    for n, sub in enumerate(substreams):
        stem, _, index = sub.name.rpartition(".")
        if sub.truncatable:
            raise BitstreamError(f"substream {sub.name!r} is flagged truncatable; image tile "
                                 "streams are not progressive")
        if index == "0" and stem and len(stems) == n:       # still in tile 0's records
            if stem in per_tile[0]:
                raise BitstreamError(f"duplicate substream {sub.name!r}")
            if len(stems) == MAX_TILE_STREAMS:
                raise BitstreamError(f"more than {MAX_TILE_STREAMS} streams in tile 0")
            stems.append(stem)
            per_tile[0][stem] = sub.data
            continue
        k = n - len(stems)
        tile = 1 + k // len(stems) if stems else 0
        want = f"{stems[k % len(stems)]}.{tile}" if stems else "a tile-0 stream"
        if not stems or tile >= count or sub.name != want:
            raise BitstreamError(f"unexpected substream {sub.name!r} (expected {want})")
        per_tile[tile][stems[k % len(stems)]] = sub.data
    if not stems:
        raise BitstreamError("the stream has no tile substreams")
    if n + 1 != count * len(stems):
        raise BitstreamError(f"missing substreams: {count} tiles of {len(stems)} streams need "
                             f"{count * len(stems)} records, the stream has {n + 1}")
    return per_tile


class _LatentStrips:
    """Latent rows decoded one row of entropy tiles (a strip) at a time; ``rows(a, b)`` keeps
    only the strips that reach row ``a`` or below."""

    def __init__(self, decode_tile, tiles, latent_w: int):
        self.decode_tile, self.latent_w = decode_tile, latent_w
        self.strips: dict[int, list] = {}        # first row -> [tiles of the strip]
        for i, tile in enumerate(tiles):
            self.strips.setdefault(tile[0], []).append((i, tile))
        self.done: dict[int, torch.Tensor] = {}  # first row -> decoded (1, C, h, latent_w)

    def _strip(self, r: int) -> torch.Tensor:
        if r not in self.done:
            strip = None
            for i, (_, c, th, tw) in self.strips[r]:
                part = self.decode_tile(i, th, tw)
                if strip is None:
                    strip = part.new_zeros(1, part.shape[1], th, self.latent_w)
                strip[..., c:c + tw] = part
            self.done[r] = strip
        return self.done[r]

    def rows(self, a: int, b: int) -> torch.Tensor:
        for r in [r for r in self.done if r + self.done[r].shape[-2] <= a]:
            del self.done[r]
        parts = []
        for r in sorted(self.strips):
            h = self.strips[r][0][1][2]
            if r < b and r + h > a:
                parts.append(self._strip(r)[..., max(a, r) - r:min(b, r + h) - r, :])
        return parts[0] if len(parts) == 1 else torch.cat(parts, -2)


class ImageDecoder:
    """A checked latent-codec image stream (bytes, a path or a binary file) ready to decode;
    see the module docstring. An imported codec's stream is decoded by the level its quality
    names (``LevelledImageCodec.level_for_stream``). ``header`` is known on return; ``rows()`` / ``pixels()`` decode."""

    def __init__(self, model, source, *, max_pixels: int = DEFAULT_MAX_PIXELS):
        from neuralcodec.codecs.weights import model_hash
        from neuralcodec.container import ContainerReader, check_weights

        if isinstance(source, (bytes, bytearray, memoryview)):
            source = io.BytesIO(source)
        with ContainerReader(source) as reader:
            header = self.header = reader.header
            check_image_header(header, max_pixels)
            if isinstance(model, LevelledImageCodec):   # imported codecs: one level per quality
                model = model.level_for_stream(header)
            check_weights(header, model.name, model_hash(model))
            self.model = model
            stride = model.stride
            self.latent_h = (header.height + (-header.height) % stride) // model.latent_stride
            self.latent_w = (header.width + (-header.width) % stride) // model.latent_stride
            self.tiles = latent_tiles(self.latent_h, self.latent_w, model)
            count = header.params.get("tiles")
            if (set(header.params) != {"tiles"} or type(count) is not int
                    or count != len(self.tiles)):
                raise BitstreamError(f"header params {header.params} do not match the image "
                                     f"size (want {{'tiles': {len(self.tiles)}}})")
            self._streams = tile_streams(reader, len(self.tiles))

    def _decode_tile(self, index: int, th: int, tw: int) -> torch.Tensor:
        try:
            return self.model.decode_latents(Compressed(self._streams[index],
                                                        {"latent_hw": [th, tw]}))
        except KeyError as exc:
            raise BitstreamError(f"missing substream {exc} in the bitstream") from None
        finally:
            self._streams[index] = {}            # coded bytes are not needed twice

    @torch.no_grad()
    def rows(self):
        """Yield ``(top_row, uint8 pixels (h, width, 3))`` per row of tiles, top to bottom
        (once: the coded bytes are dropped as they are decoded). Each tile becomes 8-bit
        pixels as soon as it is synthesised."""
        h, w, q = self.header.height, self.header.width, self.header.quality
        strips = _LatentStrips(self._decode_tile, self.tiles, self.latent_w)
        top, block = 0, None
        for r, c, part in synthesis_parts(self.model, strips.rows, self.latent_h, self.latent_w, q):
            if r >= h or c >= w:                     # padding only
                continue
            if block is not None and r != top:
                yield top, block
                block = None
            px = to_pixels(part[..., :h - r, :w - c])
            if block is None:
                top, block = r, np.empty((px.shape[0], w, 3), np.uint8)
            block[:, c:c + px.shape[1]] = px
        yield top, block

    def pixels(self) -> np.ndarray:
        """The whole picture (H, W, 3) uint8."""
        out = np.empty((self.header.height, self.header.width, 3), np.uint8)
        for r, block in self.rows():
            out[r:r + len(block)] = block
        return out
