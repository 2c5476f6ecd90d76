"""A latent coded given a hyper-latent: z = h_a(y) is coded first (its own latent codec),
and the integer-exact hyper-synthesis h_s(z_hat) is the side input of the inner codec."""
from __future__ import annotations

import torch
from torch import nn

from neuralcodec.entropy.exact import ExactNet, to_fixed
from neuralcodec.latent.base import LatentCodec


class Hyperprior(LatentCodec):
    """``Hyperprior(h_a, z, h_s, inner)``: streams are z's, then the inner codec's.
    ``stride``: spatial stride of z relative to y (h_a's downsampling). A codec may build
    ``inner`` after the hyper path (pass None, then set it): the order its parameters are
    initialised and listed in."""

    def __init__(self, h_a: nn.Module, z: LatentCodec, h_s: ExactNet, inner: LatentCodec | None,
                 stride: int = 4):
        super().__init__()
        self.h_a, self.h_s, self.z, self.inner = h_a, h_s, z, inner
        self.stride = stride

    @property
    def stream_count(self) -> int:
        return self.z.stream_count + self.inner.stream_count

    def forward(self, y, side=None):
        z_hat, z_lik = self.z(self.h_a(y))
        y_hat, likelihoods = self.inner(y, self.h_s(z_hat))
        return y_hat, {**likelihoods, "z": z_lik["y"]}

    @torch.no_grad()
    def compress(self, y, side=None):
        z_streams, z_hat = self.z.compress(self.h_a(y))
        streams, y_hat = self.inner.compress(y, self.h_s.exact(to_fixed(z_hat)))
        return [*z_streams, *streams], y_hat

    @torch.no_grad()
    def decompress(self, streams, shape, side=None):
        b, _, h, w = shape
        z_shape = (b, self.z_channels, h // self.stride, w // self.stride)
        z_hat = self.z.decompress(streams[:self.z.stream_count], z_shape)
        return self.inner.decompress(streams[self.z.stream_count:], shape, self.h_s.exact(to_fixed(z_hat)))

    @property
    def z_channels(self) -> int:
        return self.z.prior.bottleneck.channels
