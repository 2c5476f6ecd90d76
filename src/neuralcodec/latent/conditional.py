"""The leaves: latents coded under distributions whose parameters are the ``side`` input
(float in training, fixed point when coding), one coder stream each.

:class:`GaussianConditional` (mean-scale) codes round(y - mean) under zero-mean Gaussian
tables and decodes symbol + mean (mean-shifted rounding); :class:`Mixture` codes round(y)
under a K-component Gaussian mixture. ``compress``/``decompress`` take latents of any shape
(B, C, ...) with parameters of the same layout: a checkerboard pass codes (B, C, N, 1)."""
from __future__ import annotations

import torch

from neuralcodec.entropy.conditional import GaussianModel, MixtureModel
from neuralcodec.entropy.likelihoods import noisy, ste_round
from neuralcodec.latent.base import LatentCodec


class ConditionalLeaf(LatentCodec):
    """Shared structure of the leaves over an entropy model of :mod:`neuralcodec.entropy.conditional`
    (``split_float``, ``coder_params``, ``likelihood``, ``encode``, ``decode``)."""

    #: whether the decoded values depend on the parameters (mean-shifted rounding)
    mean_shift: bool = False

    def __init__(self, model):
        super().__init__()
        self.model = model            # an nn.Module (e.g. with a scale table) is a submodule
        self.param_channels = model.param_channels

    def quantize(self, y: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Training: the decoded latent with a straight-through gradient."""
        raise NotImplementedError

    def forward(self, y, params):
        """(decoded latent, {"y": likelihoods}): the rate is of noisy latents in training, of
        the decoded ones otherwise (with their straight-through gradient)."""
        parts = self.model.split_float(params)
        y_hat = self.quantize(y, params)
        return y_hat, {"y": self.model.likelihood(noisy(y) if self.training else y_hat, *parts)}

    @torch.no_grad()
    def compress(self, y, params_fixed):
        data, values = self.model.encode(y.flatten(), *self.model.coder_params(params_fixed))
        return [data], values.view(y.shape)

    @torch.no_grad()
    def decompress(self, streams, shape, params_fixed):
        return self.model.decode(streams[0], *self.model.coder_params(params_fixed)).view(tuple(shape))


class GaussianConditional(ConditionalLeaf):
    """Mean-scale Gaussian. ``model``: the parametrisation (default :class:`GaussianModel`;
    imported CompressAI models use a scale-table one)."""

    mean_shift = True

    def __init__(self, channels: int, model=None):
        super().__init__(model if model is not None else GaussianModel(channels))

    def quantize(self, y, params):
        means = self.model.split_float(params)[0]
        return ste_round(y - means) + means


class Mixture(ConditionalLeaf):
    """K-component Gaussian mixture over round(y)."""

    def __init__(self, channels: int, components: int = 3):
        super().__init__(MixtureModel(channels, components))

    def quantize(self, y, params=None):
        return ste_round(y)
