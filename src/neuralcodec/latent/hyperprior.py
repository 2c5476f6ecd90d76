"""A latent coded given a hyper-latent: z = h_a(y) is coded first (its own latent codec),
and the integer-exact hyper-synthesis h_s(z_hat) is the side input of the inner codec,
joined (channel concatenation, after h_s's output) with the ``side`` input when there is one
(the video P-frame model's latent buffer)."""
from __future__ import annotations

import torch
from torch import nn

from neuralcodec.entropy.exact import ExactNet, to_fixed
from neuralcodec.latent.base import LatentCodec


class Hyperprior(LatentCodec):
    """``Hyperprior(h_a, z, h_s, inner)``: streams are z's, then the inner codec's.
    ``stride``: spatial stride of z relative to y (h_a's downsampling). A codec may build
    ``inner`` after the hyper path (pass None, then set it): the order its parameters are
    initialised and listed in. ``side`` (optional, float in training, fixed point when
    coding) is appended to h_s(z_hat) to form the inner codec's side."""

    def __init__(self, h_a: nn.Module, z: LatentCodec, h_s: ExactNet, inner: LatentCodec | None,
                 stride: int = 4):
        super().__init__()
        self.h_a, self.h_s, self.z, self.inner = h_a, h_s, z, inner
        self.stride = stride

    @property
    def stream_count(self) -> int:
        return self.z.stream_count + self.inner.stream_count

    @staticmethod
    def _join(hyper: torch.Tensor, side) -> torch.Tensor:
        return hyper if side is None else torch.cat([hyper, side], 1)

    def forward(self, y, side=None):
        z_hat, z_lik = self.z(self.h_a(y))
        y_hat, likelihoods = self.inner(y, self._join(self.h_s(z_hat), side))
        return y_hat, {**likelihoods, "z": z_lik["y"]}

    # -- coding: the hyper path's steps (a codec driving the inner passes itself uses them)
    @torch.no_grad()
    def compress_z(self, y) -> tuple[list[bytes], torch.Tensor]:
        """z's streams and z_hat."""
        return self.z.compress(self.h_a(y))

    @torch.no_grad()
    def decompress_z(self, streams, shape) -> torch.Tensor:
        """z_hat for a latent of ``shape`` from z's streams."""
        b, _, h, w = shape
        return self.z.decompress(streams, (b, self.z_channels, h // self.stride, w // self.stride))

    @torch.no_grad()
    def inner_side(self, z_hat, side=None) -> torch.Tensor:
        """The inner codec's side when coding: h_s.exact(z_hat) (fixed point), then ``side``."""
        return self._join(self.h_s.exact(to_fixed(z_hat)), side)

    @torch.no_grad()
    def compress(self, y, side=None):
        z_streams, z_hat = self.compress_z(y)
        streams, y_hat = self.inner.compress(y, self.inner_side(z_hat, side))
        return [*z_streams, *streams], y_hat

    @torch.no_grad()
    def decompress(self, streams, shape, side=None):
        n = self.z.stream_count
        z_hat = self.decompress_z(streams[:n], shape)
        return self.inner.decompress(streams[n:], shape, self.inner_side(z_hat, side))

    @property
    def z_channels(self) -> int:
        return self.z.prior.bottleneck.channels
