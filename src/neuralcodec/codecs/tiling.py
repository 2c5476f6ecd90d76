"""Bounded-memory processing of large images.

The analysis and synthesis transforms run on overlapping tiles (a halo wider than
their receptive field, so interior results equal a whole-image pass up to float
rounding); the entropy model codes the latent in independent tiles, each with its own
streams. Peak memory then depends on the tile size, not on the image size.
"""
from __future__ import annotations

import torch

TILE = 2048          # image pixels per tile side (multiple of 64)
HALO = 128           # image pixels of context around an analysis/synthesis tile (multiple of 16)


def tile_grid(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(row, col, h, w) tiles covering a height x width grid, row-major."""
    return [(r, c, min(tile, height - r), min(tile, width - c))
            for r in range(0, height, tile) for c in range(0, width, tile)]


def tiled_parts(fn, rows, height: int, width: int, scale_num: int, scale_den: int, tile: int,
                halo: int):
    """Apply a convolutional ``fn`` that maps a (h, w) input to (h*num/den, w*num/den), one tile
    at a time. ``rows(a, b)`` returns input rows [a, b) (all columns), asked for once per row of
    tiles, top to bottom, so the caller decides what stays in memory. Yields ``(out_row,
    out_col, part)`` per tile in row-major order, each part cropped to its tile (one
    whole-picture pass when the input fits in one tile)."""
    if height <= tile and width <= tile:
        yield 0, 0, fn(rows(0, height))
        return

    def scaled(v: int) -> int:
        return v * scale_num // scale_den

    for r in range(0, height, tile):
        th = min(tile, height - r)
        r0, r1 = max(0, r - halo), min(height, r + th + halo)
        band = rows(r0, r1)
        for c in range(0, width, tile):
            tw = min(tile, width - c)
            c0, c1 = max(0, c - halo), min(width, c + tw + halo)
            part = fn(band[..., c0:c1])
            sr, sc, oh, ow = scaled(r - r0), scaled(c - c0), scaled(th), scaled(tw)
            yield scaled(r), scaled(c), part[..., sr:sr + oh, sc:sc + ow]


def _run_tiled(fn, src: torch.Tensor, scale_num: int, scale_den: int, tile: int, halo: int,
               out_channels: int) -> torch.Tensor:
    """:func:`tiled_parts` over a tensor in memory, assembled into one output tensor."""
    h, w = src.shape[-2:]
    if h <= tile and w <= tile:
        return fn(src)
    out = None
    for r, c, part in tiled_parts(fn, lambda a, b: src[..., a:b, :], h, w, scale_num, scale_den,
                                  tile, halo):
        if out is None:
            out = part.new_empty(src.shape[0], out_channels, h * scale_num // scale_den,
                                 w * scale_num // scale_den)
        out[..., r:r + part.shape[-2], c:c + part.shape[-1]] = part
    return out


def analyse_tiled(model, x: torch.Tensor, quality) -> torch.Tensor:
    s = model.latent_stride
    channels = model.latent_channels
    return _run_tiled(lambda t: model.analyse(t, quality), x, 1, s, TILE, HALO, channels)


def synthesise_tiled(model, y_hat: torch.Tensor, quality) -> torch.Tensor:
    s = model.latent_stride
    return _run_tiled(lambda t: model.synthesise(t, quality), y_hat, s, 1, TILE // s, HALO // s, 3)


def synthesis_parts(model, rows, latent_h: int, latent_w: int, quality):
    """:func:`tiled_parts` of the synthesis over a latent read through ``rows(a, b)``: the same
    tiles and halos as :func:`synthesise_tiled`, one tile at a time."""
    s = model.latent_stride
    return tiled_parts(lambda t: model.synthesise(t, quality), rows, latent_h, latent_w, s, 1,
                       TILE // s, HALO // s)


def latent_tiles(latent_h: int, latent_w: int, model) -> list[tuple[int, int, int, int]]:
    """Entropy-coding tiles of the latent (sides multiples of stride // latent_stride)."""
    return tile_grid(latent_h, latent_w, TILE // model.latent_stride)
