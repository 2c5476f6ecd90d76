"""A latent coded with a factorized (per-channel, learned) prior, no side information."""
from __future__ import annotations

import torch

from neuralcodec.entropy.factorized import FactorizedPrior
from neuralcodec.latent.base import LatentCodec


class Factorized(LatentCodec):
    """:class:`~neuralcodec.entropy.factorized.FactorizedPrior` as a latent codec (one stream)."""

    def __init__(self, channels: int):
        super().__init__()
        self.prior = FactorizedPrior(channels)

    def forward(self, y, side=None):
        y_hat, likelihood = self.prior(y)
        return y_hat, {"y": likelihood}

    @torch.no_grad()
    def compress(self, y, side=None):
        data, y_hat = self.prior.compress(y)
        return [data], y_hat

    @torch.no_grad()
    def decompress(self, streams, shape, side=None):
        return self.prior.decompress(streams[0], tuple(shape), self.prior.median_q.device)
