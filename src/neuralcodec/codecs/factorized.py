"""`factorized`: Ballé et al. 2017-style codec, a learned per-channel prior on the latent."""
from __future__ import annotations

import torch

from neuralcodec.codecs.base import Compressed, register_codec
from neuralcodec.codecs.gained import GainedCodec, latent_hw
from neuralcodec.entropy.factorized import FactorizedPrior


@register_codec
class FactorizedCodec(GainedCodec):
    name = "factorized"
    stride = 16

    def __init__(self, n: int = 128, m: int = 192):
        super().__init__(n, m)
        self.y_prior = FactorizedPrior(m)

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> dict:
        y_hat, y_lik = self.y_prior(self.analyse(x, quality))
        return {"x_hat": self.synthesise(y_hat, quality), "likelihoods": {"y": y_lik}}

    def aux_loss(self) -> torch.Tensor:
        return self.y_prior.aux_loss()

    def update(self) -> None:
        self.y_prior.update()

    @torch.no_grad()
    def compress_latent(self, y: torch.Tensor) -> Compressed:
        data, y_hat = self.y_prior.compress(y)
        return Compressed({"y": data}, {"latent_hw": list(y.shape[-2:])}, y_hat)

    @torch.no_grad()
    def decode_latents(self, compressed: Compressed) -> torch.Tensor:
        device = next(self.parameters()).device
        h, w = latent_hw(compressed.params)
        shape = (1, self.y_prior.bottleneck.channels, h, w)
        return self.y_prior.decompress(compressed.streams["y"], shape, device)
