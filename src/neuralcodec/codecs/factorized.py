"""`factorized`: Ballé et al. 2017-style codec, a learned per-channel prior on the latent."""
from __future__ import annotations

import torch

from neuralcodec.codecs.base import Compressed, register_codec
from neuralcodec.codecs.gained import GainedCodec, latent_hw
from neuralcodec.latent.base import StoredLayout
from neuralcodec.latent.factorized import Factorized


@register_codec
class FactorizedCodec(GainedCodec):
    name = "factorized"
    stride = 16

    def __init__(self, n: int = 128, m: int = 192):
        super().__init__(n, m)
        self.latent = Factorized(m)
        StoredLayout({"latent.prior.": "y_prior."}).install(self)

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> dict:
        y_hat, likelihoods = self.latent(self.analyse(x, quality))
        return {"x_hat": self.synthesise(y_hat, quality), "likelihoods": likelihoods}

    def aux_loss(self) -> torch.Tensor:
        return self.latent.aux_loss()

    def update(self) -> None:
        self.latent.update()

    @torch.no_grad()
    def compress_latent(self, y: torch.Tensor) -> Compressed:
        streams, y_hat = self.latent.compress(y)
        return Compressed({"y": streams[0]}, {"latent_hw": list(y.shape[-2:])}, y_hat)

    @torch.no_grad()
    def decode_latents(self, compressed: Compressed) -> torch.Tensor:
        h, w = latent_hw(compressed.params)
        return self.latent.decompress([compressed.streams["y"]], (1, self.latent_channels, h, w))
