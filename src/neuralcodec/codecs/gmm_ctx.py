"""`gmm-ctx`: ELIC-style quality flagship, ``Hyperprior(Factorized, ChannelGroups(
Checkerboard(Mixture)))``: channel groups of uneven size, each coded in two checkerboard
passes (anchors, then the rest with anchors as spatial context), a K-component Gaussian
mixture per element, and every network that feeds the coder integer-exact (see
:mod:`neuralcodec.entropy.exact`).

The constructor's switches exist for equal-compute ablations (docs/training.md): the
mixture size, a mean-shifted single Gaussian instead of the mixture (``mean_shift``: code
round(y - mean), as the hyperprior does), channel and spatial (checkerboard) context on or
off, the width of the hyper-synthesis output, and what the context networks see in training
(``context_inputs``: rounded latents with a straight-through gradient, or noisy ones).
"""
from __future__ import annotations

from torch import nn

from neuralcodec.codecs.base import register_codec
from neuralcodec.codecs.gained import HyperpriorCodec
from neuralcodec.codecs.transforms import conv, pointwise_net
from neuralcodec.entropy.exact import ExactNet
from neuralcodec.latent.channel_groups import ChannelGroups
from neuralcodec.latent.checkerboard import Checkerboard
from neuralcodec.latent.conditional import GaussianConditional, Mixture

CONTEXT_INPUTS = ("round", "noise")


def _chain(cin: int, hidden: tuple[int, ...], cout: int, kernel: int) -> ExactNet:
    """Integer-exact convolutions ``cin -> hidden... -> cout`` with ReLU between them."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [conv(cin, width, kernel, 1), nn.ReLU()]
        cin = width
    return ExactNet(*layers, conv(cin, cout, kernel, 1))


@register_codec
class GMMContextCodec(HyperpriorCodec):
    name = "gmm-ctx"
    packed_y = True

    #: constructor defaults; ``config`` records only the arguments that differ from them
    DEFAULTS = dict(mean_shift=False, channel_context=True, checkerboard=True, hyper_channels=None,
                    context_inputs="round", transform="gdn", blocks=(3, 3, 3), context_width=1,
                    channel_hidden=(64,), channel_kernel=3, param_hidden=(224, 160))

    def __init__(self, n: int = 128, m: int = 192, groups: tuple[int, ...] = (16, 16, 32, 64, 64),
                 components: int = 3, mean_shift: bool = False, channel_context: bool = True,
                 checkerboard: bool = True, hyper_channels: int | None = None, context_inputs: str = "round",
                 transform: str = "gdn", blocks: tuple[int, int, int] = (3, 3, 3), context_width: int = 1,
                 channel_hidden: tuple[int, ...] = (64,), channel_kernel: int = 3,
                 param_hidden: tuple[int, ...] = (224, 160)):
        if sum(groups) != m:
            raise ValueError("channel groups must sum to m")
        if mean_shift and components != 1:
            raise ValueError("mean_shift codes one Gaussian per element: it needs components=1")
        if context_inputs not in CONTEXT_INPUTS:
            raise ValueError(f"context_inputs must be one of {CONTEXT_INPUTS}")
        hyper = hyper_channels or m
        super().__init__(n, m, hyper, transform=transform, blocks=tuple(blocks))
        self.config.update(groups=list(groups), components=components)
        options = dict(mean_shift=mean_shift, channel_context=channel_context, checkerboard=checkerboard,
                       hyper_channels=hyper_channels if hyper_channels != m else None, context_inputs=context_inputs,
                       transform=transform, blocks=tuple(blocks), context_width=context_width,
                       channel_hidden=tuple(channel_hidden), channel_kernel=channel_kernel,
                       param_hidden=tuple(param_hidden))
        defaults = dict(GMMContextCodec.DEFAULTS)
        # record what differs from the base defaults (the shipped configs stay as they are)
        self.config.update({k: list(v) if isinstance(v, tuple) else v for k, v in options.items()
                            if v != defaults[k]})
        self.groups = tuple(groups)
        self.mean_shift, self.checkerboard, self.context_inputs = mean_shift, checkerboard, context_inputs
        width = [c * context_width for c in groups]
        contexts, boards = [], []
        for k, c in enumerate(groups):      # per group: channel context, spatial context, parameters
            prev = sum(groups[:k]) if channel_context else 0
            contexts.append(_chain(prev, tuple(channel_hidden), width[k], channel_kernel) if prev else None)
            spatial = ExactNet(conv(c, width[k], 5, 1)) if checkerboard else None
            leaf = GaussianConditional(c) if mean_shift else Mixture(c, components)
            cin = hyper + width[k] * ((1 if prev else 0) + (1 if checkerboard else 0))
            boards.append(Checkerboard(spatial, pointwise_net(cin, tuple(param_hidden), leaf.param_channels), leaf,
                                       width[k], noise_context=context_inputs == "noise"))
        self.latent.inner = ChannelGroups(groups, contexts, boards, noise_context=context_inputs == "noise")
        self.layout.add(slice_layout(len(groups)))


def slice_layout(count: int) -> dict[str, str]:
    """Where gmm-ctx stored its channel groups before the latent package (``slices.<k>.*``)."""
    out = {}
    for k in range(count):
        group, old = f"latent.inner.groups.{k}.", f"slices.{k}."
        out.update({group + "context.": old + "channel_ctx.", group + "inner.spatial.": old + "spatial_ctx.",
                    group + "inner.params.": old + "params."})
    return out


@register_codec
class ELICCodec(GMMContextCodec):
    """`elic`: the flagship design after the round-1 ablation (docs/training.md). ELIC-style
    (He et al. 2022) without its attention blocks: residual-bottleneck transforms (two blocks per
    stage), uneven channel groups (16, 16, 32, 128) each coded in two checkerboard passes with a
    mean-shifted Gaussian (round(y - mean), as the hyperprior codes), channel context from the
    earlier groups, a 2M-channel hyper path, and every network that feeds the coder integer-exact.
    The defaults (N=128, M=192, 6.7 M parameters) are sized so the shipped fp16 weights fit the
    repository's size budget; the paper's size is ``n=192, m=320, groups=(16, 16, 32, 64, 192),
    hyper_channels=640, blocks=(3, 3, 3), context_width=2, channel_kernel=5``."""

    name = "elic"
    DEFAULTS = dict(GMMContextCodec.DEFAULTS, mean_shift=True, transform="residual", blocks=(2, 2, 2),
                    context_width=1, channel_hidden=(96, 64), channel_kernel=3, param_hidden=(192, 128))

    def __init__(self, n: int = 128, m: int = 192, groups: tuple[int, ...] = (16, 16, 32, 128),
                 components: int = 1, hyper_channels: int | None = 384, **options):
        merged = {k: v for k, v in ELICCodec.DEFAULTS.items() if k != "hyper_channels"}
        merged.update(options)
        super().__init__(n, m, tuple(groups), components, hyper_channels=hyper_channels, **merged)
        # this codec's config is complete (its defaults are not the base class's)
        self.config = {"n": n, "m": m, "groups": list(groups), "components": components,
                       "hyper_channels": hyper_channels, **{k: list(v) if isinstance(v, tuple) else v
                                                            for k, v in merged.items()}}
