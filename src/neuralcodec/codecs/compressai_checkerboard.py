"""CompressAI's checkerboard models at one quality: the levels of imported ``elic2022-official``,
``elic2022-chandelier`` and ``cheng2020-anchor-checkerboard`` models.

These CompressAI models code the latent in channel groups (ELIC: uneven groups, each with a
channel context from the groups decoded before; Cheng2020: one group), each group in two
checkerboard passes: the anchors (row + column even) with a zero spatial context, then the
other positions with a context convolution of the decoded anchors. A mean-scale Gaussian's
parameters come from a pointwise network on [spatial context, channel context, hyper
parameters] -- the structure `gmm-ctx` uses.

A level is made from a CompressAI model instance: its float transforms (``g_a``, ``g_s``,
``h_a``, CompressAI's own layers) are kept; every network that feeds the coder becomes an
:class:`~neuralcodec.entropy.exact.ExactNet` with the same layers (the masked context
convolution with its mask applied to the weights); each group's Gaussian uses CompressAI's
scale-table rule and parameter order (ELIC-Chandelier predicts means first). The coded
distributions are CompressAI's, computed the same on every device.
"""
from __future__ import annotations

import torch
from torch import nn

from neuralcodec.codecs.base import LatentImageCodec
from neuralcodec.codecs.compressai_levels import TableGaussian
from neuralcodec.codecs.gained import HYPER_LAYOUT, HyperLatentCoding
from neuralcodec.entropy.exact import ExactNet
from neuralcodec.latent.base import StoredLayout
from neuralcodec.latent.channel_groups import ChannelGroups
from neuralcodec.latent.checkerboard import Checkerboard
from neuralcodec.latent.conditional import GaussianConditional
from neuralcodec.latent.factorized import Factorized
from neuralcodec.latent.hyperprior import Hyperprior

CHECKERBOARD_ARCHS = ("elic2022-official", "elic2022-chandelier", "cheng2020-anchor-checkerboard")


def compressai_model(arch: str, n: int, m: int, groups: list[int]) -> nn.Module:
    """A fresh CompressAI model of ``arch`` (the structure a level is made from)."""
    from compressai.models import Cheng2020AnchorCheckerboard, Elic2022Chandelier, Elic2022Official

    if arch == "cheng2020-anchor-checkerboard":
        return Cheng2020AnchorCheckerboard(n)
    cls = Elic2022Official if arch == "elic2022-official" else Elic2022Chandelier
    return cls(n, m, list(groups))


def _layers(module: nn.Module) -> list[nn.Module]:
    """The layers of nested sequences, in order."""
    if isinstance(module, nn.Sequential):
        return [layer for child in module for layer in _layers(child)]
    return [module]


def exact_copy(module: nn.Module) -> ExactNet:
    """An ExactNet with the (flattened) layers of a CompressAI sequence."""
    return ExactNet(*_layers(module))


def masked_context(conv: nn.Conv2d) -> ExactNet:
    """A checkerboard-masked context convolution as a plain one with the mask applied."""
    plain = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding)
    with torch.no_grad():
        plain.weight.copy_(conv.weight * conv.mask)
        plain.bias.copy_(conv.bias)
    return ExactNet(plain)


def table_gaussian(codec, channels: int) -> TableGaussian:
    """A TableGaussian like a CompressAI GaussianConditionalLatentCodec: its parameter order,
    its GaussianConditional's scale table (when built) and bound."""
    if tuple(codec.chunks) not in (("scales", "means"), ("means", "scales")):
        raise ValueError(f"unsupported Gaussian parameters {codec.chunks}")
    gc = codec.gaussian_conditional
    gaussian = TableGaussian(channels, with_means=True, means_first=codec.chunks[0] == "means")
    if gc.scale_table.numel():
        gaussian.scale_table = gc.scale_table.detach().float().clone()
    gaussian.scale_bound.copy_(gc.scale_bound.detach().float())
    return gaussian


class CheckerboardLevel(HyperLatentCoding, LatentImageCodec):
    """One quality of a CompressAI checkerboard model; ``model`` is the CompressAI instance
    whose weights it takes (a fresh one of ``arch`` when None). Its latent codec is
    ``Hyperprior(Factorized, ChannelGroups(Checkerboard(GaussianConditional)))`` with
    CompressAI's parameter order: [spatial context, channel context, hyper parameters]."""

    stride = 64
    packed_y = True

    def __init__(self, arch: str, n: int, m: int, groups: list[int], model: nn.Module | None = None):
        super().__init__()
        model = model if model is not None else compressai_model(arch, n, m, groups)
        self.config = {"arch": arch, "n": n, "m": m, "groups": list(groups)}
        self.latent_channels = m
        self.groups = tuple(groups)
        hyper, y = model.latent_codec["hyper"], model.latent_codec["y"]
        self.g_a, self.g_s = model.g_a, model.g_s
        z = Factorized(n)
        z.prior.bottleneck = hyper.entropy_bottleneck
        if len(self.groups) == 1:
            boards, contexts = [y], [None]
        else:
            boards = [y.latent_codec[f"y{k}"] for k in range(len(self.groups))]
            contexts = [None] + [exact_copy(y.channel_context[f"y{k}"]) for k in range(1, len(self.groups))]
        inners = []
        for board, channels in zip(boards, self.groups):
            params = exact_copy(board.entropy_parameters)
            if any(isinstance(layer, nn.Conv2d) and layer.kernel_size != (1, 1) for layer in params.layers):
                raise ValueError("the entropy-parameter networks must be pointwise (1x1 convolutions)")
            leaf = GaussianConditional(channels, table_gaussian(board.y, channels))
            inners.append(Checkerboard(masked_context(board.context_prediction), params, leaf, 2 * channels,
                                       context_first=True))
        # ELIC-Chandelier's channel context sees the first and the latest group, not all
        groups_codec = ChannelGroups(self.groups, contexts, inners, context_first=True,
                                     context_from_ends=arch == "elic2022-chandelier")
        self.latent = Hyperprior(hyper.h_a, z, exact_copy(hyper.h_s), groups_codec)
        StoredLayout(level_layout(len(self.groups))).install(self)

    def analysis(self) -> nn.Module:
        return self.g_a

    def synthesis(self) -> nn.Module:
        return self.g_s

    def analyse(self, x: torch.Tensor, quality=None) -> torch.Tensor:
        return self.g_a(x)

    def synthesise(self, y_hat: torch.Tensor, quality=None) -> torch.Tensor:
        return self.g_s(y_hat)


def level_layout(count: int) -> dict[str, str]:
    """Where a CheckerboardLevel stored its modules before the latent package."""
    out = dict(HYPER_LAYOUT)
    for k in range(count):
        group = f"latent.inner.groups.{k}."
        out.update({group + "inner.spatial.": f"spatial_ctx.{k}.", group + "inner.params.": f"params.{k}.",
                    group + "inner.inner.model.": f"gaussians.{k}."})
        if k:
            out[group + "context."] = f"channel_ctx.{k - 1}."
    return out
