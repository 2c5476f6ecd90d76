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


def _run_tiled(fn, src: torch.Tensor, scale_num: int, scale_den: int, tile: int, halo: int,
               out_channels: int) -> torch.Tensor:
    """Apply a convolutional ``fn`` that maps a (h, w) input to (h*num/den, w*num/den), tile by tile."""
    h, w = src.shape[-2:]
    if h <= tile and w <= tile:
        return fn(src)

    def scaled(v: int) -> int:
        return v * scale_num // scale_den

    out = None
    for r, c, th, tw in tile_grid(h, w, tile):
        r0, c0 = max(0, r - halo), max(0, c - halo)
        r1, c1 = min(h, r + th + halo), min(w, c + tw + halo)
        part = fn(src[..., r0:r1, c0:c1])
        if out is None:
            out = part.new_empty(src.shape[0], out_channels, scaled(h), scaled(w))
        sr, sc, oh, ow = scaled(r - r0), scaled(c - c0), scaled(th), scaled(tw)
        out[..., scaled(r):scaled(r) + oh, scaled(c):scaled(c) + ow] = part[..., sr:sr + oh, sc:sc + ow]
    return out


def analyse_tiled(model, x: torch.Tensor, quality) -> torch.Tensor:
    s = model.latent_stride
    channels = model.config["m"]
    return _run_tiled(lambda t: model.analyse(t, quality), x, 1, s, TILE, HALO, channels)


def synthesise_tiled(model, y_hat: torch.Tensor, quality) -> torch.Tensor:
    s = model.latent_stride
    return _run_tiled(lambda t: model.synthesise(t, quality), y_hat, s, 1, TILE // s, HALO // s, 3)


def latent_tiles(latent_h: int, latent_w: int, model) -> list[tuple[int, int, int, int]]:
    """Entropy-coding tiles of the latent (sides multiples of stride // latent_stride)."""
    return tile_grid(latent_h, latent_w, TILE // model.latent_stride)
