"""A latent coded in two checkerboard passes: the anchors ((row + column) even) with a zero
spatial context, then the other positions with an integer-exact context network of the
decoded anchors. A pointwise parameter network maps [side, spatial context] to the inner
leaf's parameters; it runs on one pass's positions only (gathered with fixed index tensors:
no boolean masks, no host syncs, so a pass can be captured in a CUDA graph)."""
from __future__ import annotations

import torch

from neuralcodec.entropy.exact import ExactNet, to_fixed
from neuralcodec.entropy.likelihoods import noisy
from neuralcodec.latent.base import LatentCodec
from neuralcodec.latent.conditional import ConditionalLeaf


def anchor_mask(h: int, w: int, device) -> torch.Tensor:
    """Checkerboard: True where (row + col) is even (decoded first)."""
    idx = torch.arange(h, device=device)[:, None] + torch.arange(w, device=device)[None, :]
    return (idx % 2 == 0)


class Checkerboard(LatentCodec):
    """``Checkerboard(spatial, params, inner)``: ``spatial`` (an ExactNet with
    ``context_channels`` outputs; None: one pass over all positions, no spatial context),
    ``params`` (a pointwise ExactNet), ``inner`` (a :class:`ConditionalLeaf`). The parameter
    input is [side, spatial context] (``context_first``: [spatial context, side]);
    ``noise_context``: in training the spatial context sees the noisy latent."""

    def __init__(self, spatial: ExactNet | None, params: ExactNet, inner: ConditionalLeaf,
                 context_channels: int = 0, context_first: bool = False, noise_context: bool = False):
        super().__init__()
        self.spatial, self.params, self.inner = spatial, params, inner
        self.context_channels = context_channels if spatial is not None else 0
        self.context_first, self.noise_context = context_first, noise_context
        self.passes = 2 if spatial is not None else 1
        self.stream_count = self.passes * inner.stream_count
        self._index: dict = {}      # (pass, h, w, device) -> flat positions (a cache)

    def _join(self, side, spatial):
        if spatial is None:
            return side
        return torch.cat([spatial, side] if self.context_first else [side, spatial], 1)

    # -- training ---------------------------------------------------------------
    def forward(self, y, side):
        if self.spatial is None:
            return self.inner(y, self.params(side))
        b, _, h, w = y.shape
        anchors = anchor_mask(h, w, y.device).to(y.dtype)
        nonanchor = 1 - anchors
        noise = self.noise_context and self.training
        if self.inner.mean_shift:       # anchors decode around their own (first-pass) means
            first = self.params(self._join(side, side.new_zeros(b, self.context_channels, h, w)))
            seen = noisy(y) if noise else self.inner.quantize(y, first)
        else:
            first, seen = None, noisy(y) if noise else self.inner.quantize(y, None)
        params = self.params(self._join(side, self.spatial(seen * anchors) * nonanchor))
        if first is not None:
            params = first * anchors + params * nonanchor
        return self.inner(y, params)

    # -- coding: the steps of a pass ----------------------------------------------
    def pass_index(self, p: int, h: int, w: int, device) -> torch.Tensor:
        """Flat positions (row-major) of pass ``p`` (0: anchors) in an h x w map."""
        key = (p, h, w, torch.device(device))
        if key not in self._index:
            mask = anchor_mask(h, w, "cpu").flatten() if self.passes == 2 else torch.ones(h * w, dtype=torch.bool)
            self._index[key] = torch.nonzero(mask if p == 0 else ~mask).flatten().to(device)
        return self._index[key]

    def gather(self, t: torch.Tensor, p: int) -> torch.Tensor:
        """The elements of pass ``p`` of a (B, C, H, W) map as (B, C, N, 1)."""
        return t.flatten(2).index_select(2, self.pass_index(p, *t.shape[-2:], t.device)).unsqueeze(-1)

    def place(self, y_hat: torch.Tensor, p: int, values: torch.Tensor) -> torch.Tensor:
        """Write the decoded values of pass ``p`` into ``y_hat`` (in place; returned)."""
        b, c, h, w = y_hat.shape
        y_hat.view(b, c, h * w).index_copy_(2, self.pass_index(p, h, w, y_hat.device),
                                            values.reshape(b, c, -1).to(y_hat.dtype))
        return y_hat

    def pass_params(self, p: int, side_fixed: torch.Tensor, y_hat: torch.Tensor | None = None) -> torch.Tensor:
        """Fixed-point parameters (B, P, N, 1) of pass ``p``; pass 1 needs the ``y_hat``
        whose anchors are decoded."""
        spatial = None
        if self.spatial is not None:
            b, _, h, w = side_fixed.shape
            spatial = (self.spatial.exact(to_fixed(y_hat)) if p else
                       side_fixed.new_zeros(b, self.context_channels, h, w))
        return self.params.exact(self.gather(self._join(side_fixed, spatial), p))

    def _code(self, side_fixed, shape, code) -> torch.Tensor:
        """The passes in order; ``code(p, params)`` returns pass p's decoded values."""
        y_hat = side_fixed.new_zeros(tuple(shape), dtype=torch.float32)
        for p in range(self.passes):
            self.place(y_hat, p, code(p, self.pass_params(p, side_fixed, y_hat)))
        return y_hat

    @torch.no_grad()
    def compress(self, y, side_fixed):
        streams = []

        def code(p, params):
            data, values = self.inner.compress(self.gather(y, p), params)
            streams.extend(data)
            return values
        y_hat = self._code(side_fixed, y.shape, code)
        return streams, y_hat

    @torch.no_grad()
    def decompress(self, streams, shape, side_fixed):
        n = self.inner.stream_count
        b, c = shape[:2]

        def code(p, params):
            return self.inner.decompress(streams[p * n:(p + 1) * n], (b, c, params.shape[2], 1), params)
        return self._code(side_fixed, shape, code)
