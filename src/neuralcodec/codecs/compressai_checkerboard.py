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
from neuralcodec.codecs.framing import compress_passes, decompress_passes
from neuralcodec.codecs.gained import HyperLatentCoding
from neuralcodec.codecs.gmm_ctx import anchor_mask
from neuralcodec.entropy.exact import ExactNet, to_fixed
from neuralcodec.entropy.factorized import FactorizedPrior

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
    whose weights it takes (a fresh one of ``arch`` when None)."""

    stride = 64

    def __init__(self, arch: str, n: int, m: int, groups: list[int], model: nn.Module | None = None):
        super().__init__()
        model = model if model is not None else compressai_model(arch, n, m, groups)
        self.config = {"arch": arch, "n": n, "m": m, "groups": list(groups)}
        self.latent_channels = m
        self.groups = tuple(groups)
        hyper, y = model.latent_codec["hyper"], model.latent_codec["y"]
        self.g_a, self.g_s, self.h_a = model.g_a, model.g_s, hyper.h_a
        self.h_s = exact_copy(hyper.h_s)
        self.z_prior = FactorizedPrior(n)
        self.z_prior.bottleneck = hyper.entropy_bottleneck
        if len(self.groups) == 1:
            boards, contexts = [y], []
        else:
            boards = [y.latent_codec[f"y{k}"] for k in range(len(self.groups))]
            contexts = [y.channel_context[f"y{k}"] for k in range(1, len(self.groups))]
        # ELIC-Chandelier's channel context sees the first and the latest group, not all
        self.context_from_ends = arch == "elic2022-chandelier"
        self.channel_ctx = nn.ModuleList(exact_copy(c) for c in contexts)
        self.spatial_ctx = nn.ModuleList(masked_context(b.context_prediction) for b in boards)
        self.params = nn.ModuleList(exact_copy(b.entropy_parameters) for b in boards)
        for net in self.params:
            if any(isinstance(layer, nn.Conv2d) and layer.kernel_size != (1, 1) for layer in net.layers):
                raise ValueError("the entropy-parameter networks must be pointwise (1x1 convolutions)")
        self.gaussians = nn.ModuleList(table_gaussian(b.y, g) for b, g in zip(boards, self.groups))

    def analyse(self, x: torch.Tensor, quality=None) -> torch.Tensor:
        return self.g_a(x)

    def synthesise(self, y_hat: torch.Tensor, quality=None) -> torch.Tensor:
        return self.g_s(y_hat)

    def _channel_input(self, decoded: list[torch.Tensor]) -> torch.Tensor:
        if self.context_from_ends and 1 < len(decoded) < len(self.groups):
            decoded = [decoded[0], decoded[-1]]
        return to_fixed(torch.cat(decoded, 1))

    def _passes(self, hyper_fx: torch.Tensor, code) -> torch.Tensor:
        """Groups in order, anchors then the rest; ``code(stream_index, group, gaussian,
        (means, scales), mask)`` codes the selected elements and returns their decoded values
        (1-D); see :func:`~neuralcodec.codecs.framing.compress_passes`."""
        b, _, h, w = hyper_fx.shape
        anchors = anchor_mask(h, w, hyper_fx.device)
        decoded = []
        for k, channels in enumerate(self.groups):
            side = [hyper_fx] if k == 0 else [self.channel_ctx[k - 1].exact(self._channel_input(decoded)), hyper_fx]
            y_hat = hyper_fx.new_zeros(b, channels, h, w, dtype=torch.float32)
            for step, mask in enumerate((anchors, ~anchors)):
                spatial = (self.spatial_ctx[k].exact(to_fixed(y_hat)) if step
                           else hyper_fx.new_zeros(b, 2 * channels, h, w))
                inputs = torch.cat([spatial, *side], 1)[:, :, mask].unsqueeze(-1)
                means, scales = self.gaussians[k].split_exact(self.params[k].exact(inputs))
                values = code(2 * k + step, k, self.gaussians[k], (means.flatten(), scales.flatten()), mask)
                y_hat[:, :, mask] = values.view(b, channels, -1).to(y_hat.dtype)
            decoded.append(y_hat)
        return torch.cat(decoded, 1)

    def _y_compress(self, y, hyper_fx):
        return compress_passes(self._passes, hyper_fx, y.split(self.groups, 1))

    def _y_decompress(self, data, hyper_fx):
        return decompress_passes(self._passes, hyper_fx, data, 2 * len(self.groups))
