"""Fixed-rate codecs with CompressAI's architectures: the levels of an imported model.

Each level is one of this package's codecs with the layers of a CompressAI model, so that
CompressAI's weights load into it under neuralcodec's names
(:mod:`neuralcodec.importers.compressai` maps the keys):

* :class:`FactorizedLevel` (``bmshj2018-factorized``): the `factorized` codec; the same
  GDN transforms and an EntropyBottleneck on the latent.
* :class:`ScaleHyperpriorLevel` (``bmshj2018-hyperprior``): hyper-analysis of ``|y|`` with
  ReLUs; the hyper-synthesis (ReLUs, a ReLU at the end) predicts scales only; zero means.
* :class:`MeanScaleLevel` (``mbt2018-mean``): the `hyperprior` codec's hyper-analysis; a
  hyper-synthesis with leaky ReLUs that predicts scales, then means.

A level codes one quality: the latent gains of the codecs they build on are fixed at 1.
The hyper-synthesis runs integer-exact (:class:`~neuralcodec.entropy.exact.ExactNet`), and
predicted scales are coded with CompressAI's scale-table rule
(:mod:`neuralcodec.entropy.scale_table`): the distributions CompressAI codes with, the same
on every device.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from neuralcodec.codecs.factorized import FactorizedCodec
from neuralcodec.codecs.gained import GainedCodec, HyperpriorCodec
from neuralcodec.codecs.hyperprior import MeanScaleHyperprior
from neuralcodec.codecs.transforms import conv, deconv
from neuralcodec.entropy.conditional import GaussianModel
from neuralcodec.entropy.exact import ExactNet
from neuralcodec.entropy.param_grid import mean_from_fixed
from neuralcodec.entropy.scale_table import table_scales
from neuralcodec.latent.conditional import GaussianConditional

SCALE_BOUND = 0.11                 # CompressAI's lower bound of Gaussian scales
SCALE_TABLE = (0.11, 256.0, 64)    # CompressAI's default table: 64 log-spaced scales
TABLE_LAYOUT = {"latent.inner.model.": "gaussian."}   # where the levels stored the table


def default_scale_table() -> torch.Tensor:
    """CompressAI's default scale table (what ``update()`` builds), float32."""
    lo, hi, levels = SCALE_TABLE
    return torch.exp(torch.linspace(math.log(lo), math.log(hi), levels))


class TableGaussian(GaussianModel, nn.Module):
    """Mean-scale Gaussian with CompressAI's parameters: linear scales and, when the model
    predicts them, means (after the scales, or before them with ``means_first``), a lower
    bound and a scale table, held as buffers."""

    def __init__(self, channels: int, with_means: bool, means_first: bool = False):
        nn.Module.__init__(self)
        GaussianModel.__init__(self, channels)
        self.with_means, self.means_first = with_means, means_first
        self.param_channels = (2 if with_means else 1) * channels
        self.register_buffer("scale_table", default_scale_table())
        self.register_buffer("scale_bound", torch.tensor([SCALE_BOUND]))

    def _parts(self, params: torch.Tensor):
        """(scales, means or None)."""
        if not self.with_means:
            return params, None
        first, second = params.chunk(2, dim=1)
        return (second, first) if self.means_first else (first, second)

    def split_float(self, params: torch.Tensor):
        scales, means = self._parts(params)
        return (torch.zeros_like(scales) if means is None else means,
                scales.clamp_min(float(self.scale_bound)))

    def split_exact(self, params_fixed: torch.Tensor):
        scales, means = self._parts(params_fixed)
        means = (torch.zeros(scales.shape, device=scales.device) if means is None
                 else mean_from_fixed(means))
        return means, table_scales(scales, self.scale_table, float(self.scale_bound))


class AbsInput(nn.Sequential):
    """A sequence applied to the absolute value of its input (bmshj2018's hyper-analysis)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.abs(x))


def fix_gains(codec: GainedCodec) -> None:
    """One quality per level: latent gains of exactly 1, left out of training."""
    for gain in (codec.gain, codec.inv_gain):
        nn.init.zeros_(gain.log_gain)
        gain.log_gain.requires_grad_(False)


def abs_relu_hyper_analysis(m: int, n: int) -> nn.Module:
    return AbsInput(conv(m, n, 3, 1), nn.ReLU(inplace=True), conv(n, n), nn.ReLU(inplace=True), conv(n, n))


def relu_hyper_synthesis(n: int, m: int, out: int) -> ExactNet:
    return ExactNet(deconv(n, n), nn.ReLU(), deconv(n, n), nn.ReLU(), conv(n, out, 3, 1), nn.ReLU())


def leaky_hyper_synthesis(n: int, m: int, out: int) -> ExactNet:
    return ExactNet(deconv(n, m), nn.LeakyReLU(), deconv(m, m * 3 // 2), nn.LeakyReLU(),
                    conv(m * 3 // 2, out, 3, 1))


class FactorizedLevel(FactorizedCodec):
    """bmshj2018-factorized at one quality."""

    def __init__(self, n: int = 128, m: int = 192):
        super().__init__(n, m)
        fix_gains(self)


class MeanScaleLevel(MeanScaleHyperprior):
    """mbt2018-mean at one quality."""

    hyper_synthesis = staticmethod(leaky_hyper_synthesis)

    def __init__(self, n: int = 128, m: int = 192):
        super().__init__(n, m)
        self.latent.inner = GaussianConditional(m, TableGaussian(m, with_means=True))
        self.layout.add(TABLE_LAYOUT)
        fix_gains(self)


class ScaleHyperpriorLevel(MeanScaleHyperprior):
    """bmshj2018-hyperprior at one quality."""

    hyper_analysis = staticmethod(abs_relu_hyper_analysis)
    hyper_synthesis = staticmethod(relu_hyper_synthesis)

    def __init__(self, n: int = 128, m: int = 192):
        HyperpriorCodec.__init__(self, n, m, m)      # scales only: m outputs, not 2m
        self.latent.inner = GaussianConditional(m, TableGaussian(m, with_means=False))
        self.layout.add(TABLE_LAYOUT)
        fix_gains(self)
