"""`hyperprior`: mean-scale hyperprior (Minnen et al. 2018 without autoregression),
variable rate through latent gains, integer-exact entropy parameters:
``Hyperprior(Factorized, GaussianConditional)``."""
from __future__ import annotations

from neuralcodec.codecs.base import register_codec
from neuralcodec.codecs.gained import HyperpriorCodec
from neuralcodec.latent.conditional import GaussianConditional


@register_codec
class MeanScaleHyperprior(HyperpriorCodec):
    name = "hyperprior"

    def __init__(self, n: int = 128, m: int = 192):
        super().__init__(n, m, 2 * m)
        self.latent.inner = GaussianConditional(m)

    @property
    def gaussian(self):
        """The Gaussian parametrisation of y (``latent.inner.model``)."""
        return self.latent.inner.model
