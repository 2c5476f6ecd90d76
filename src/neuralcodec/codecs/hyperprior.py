"""`hyperprior`: mean-scale hyperprior (Minnen et al. 2018 without autoregression),
variable rate through latent gains, integer-exact entropy parameters."""
from __future__ import annotations

import torch

from neuralcodec.codecs.base import register_codec
from neuralcodec.codecs.gained import HyperpriorCodec
from neuralcodec.entropy.conditional import GaussianModel
from neuralcodec.entropy.likelihoods import noisy, ste_round


@register_codec
class MeanScaleHyperprior(HyperpriorCodec):
    name = "hyperprior"

    def __init__(self, n: int = 128, m: int = 192):
        super().__init__(n, m, 2 * m)
        self.gaussian = GaussianModel(m)

    def _y_forward(self, y, params):
        means, scales = self.gaussian.split_float(params)
        likelihood = self.gaussian.likelihood(noisy(y) if self.training else torch.round(y - means) + means,
                                              means, scales)
        return ste_round(y - means) + means, likelihood

    def _y_compress(self, y, params_fixed) -> bytes:
        means, scales = self.gaussian.split_exact(params_fixed)
        data, y_hat = self.gaussian.encode(y.flatten(), means.flatten(), scales.flatten())
        return data, y_hat.view(means.shape)

    def _y_decompress(self, data, params_fixed):
        means, scales = self.gaussian.split_exact(params_fixed)
        return self.gaussian.decode(data, means.flatten(), scales.flatten()).view(means.shape)
