"""`gmm-ctx`: ELIC-style quality flagship. Channel slices of uneven size, each coded in
two checkerboard passes (anchors, then the rest with anchors as spatial context), a
K-component Gaussian mixture per element, and every network that feeds the coder
integer-exact (see :mod:`neuralcodec.entropy.exact`).

The constructor's switches exist for equal-compute ablations (docs/training.md): the
mixture size, a mean-shifted single Gaussian instead of the mixture (``mean_shift``: code
round(y - mean), as the hyperprior does), channel and spatial (checkerboard) context on or
off, the width of the hyper-synthesis output, and what the context networks see in training
(``context_inputs``: rounded latents with a straight-through gradient, or noisy ones).
"""
from __future__ import annotations

import torch
from torch import nn

from neuralcodec.codecs.base import register_codec
from neuralcodec.codecs.framing import compress_passes, decompress_passes
from neuralcodec.codecs.gained import HyperpriorCodec
from neuralcodec.codecs.transforms import conv, pointwise_net
from neuralcodec.entropy.conditional import GaussianModel, MixtureModel
from neuralcodec.entropy.exact import ExactNet, to_fixed
from neuralcodec.entropy.likelihoods import noisy, ste_round

CONTEXT_INPUTS = ("round", "noise")


def anchor_mask(h: int, w: int, device) -> torch.Tensor:
    """Checkerboard: True where (row + col) is even (decoded first)."""
    idx = torch.arange(h, device=device)[:, None] + torch.arange(w, device=device)[None, :]
    return (idx % 2 == 0)


def _chain(cin: int, hidden: tuple[int, ...], cout: int, kernel: int) -> ExactNet:
    """Integer-exact convolutions ``cin -> hidden... -> cout`` with ReLU between them."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [conv(cin, width, kernel, 1), nn.ReLU()]
        cin = width
    return ExactNet(*layers, conv(cin, cout, kernel, 1))


class SliceContext(nn.Module):
    """Entropy parameters of one channel slice from hyper features, earlier slices
    (channel context) and checkerboard anchors (spatial context). The context width is
    ``context_width`` times the slice's channels; ``channel_hidden`` (kernel ``channel_kernel``)
    and ``param_hidden`` are the hidden widths of the channel-context and parameter networks."""

    def __init__(self, hyper: int, prev: int, channels: int, param_channels: int, spatial: bool = True,
                 context_width: int = 1, channel_hidden: tuple[int, ...] = (64,), channel_kernel: int = 3,
                 param_hidden: tuple[int, ...] = (224, 160)):
        super().__init__()
        self.channels = channels
        self.ctx_width = channels * context_width
        self.channel_ctx = _chain(prev, tuple(channel_hidden), self.ctx_width, channel_kernel) if prev else None
        self.spatial_ctx = ExactNet(conv(channels, self.ctx_width, 5, 1)) if spatial else None
        cin = hyper + self.ctx_width * ((1 if prev else 0) + (1 if spatial else 0))
        self.params = pointwise_net(cin, tuple(param_hidden), param_channels)

    def _inputs(self, hyper, prev, spatial, exact: bool):
        parts = [hyper]
        if self.channel_ctx is not None:
            parts.append(self.channel_ctx.exact(prev) if exact else self.channel_ctx(prev))
        if self.spatial_ctx is not None:
            parts.append(spatial)
        return torch.cat(parts, dim=1)

    def params_float(self, hyper, prev, anchors_hat, nonanchor):
        """Parameters for the whole slice in one evaluation: at anchors the spatial input is
        zero (as in the first coding pass), elsewhere it is the context of ``anchors_hat``
        (the latent at the anchors, zero elsewhere)."""
        spatial = self.spatial_ctx(anchors_hat) * nonanchor if self.spatial_ctx is not None else None
        return self.params(self._inputs(hyper, prev, spatial, exact=False))

    def params_exact(self, hyper_fx, prev_fx, anchors_fx, mask):
        """Integer-exact parameters at the ``mask`` positions only, as (B, P, N, 1): the
        parameter network is pointwise, so it runs on the gathered positions (half the
        latent per checkerboard pass) with the same integers as on the whole map."""
        b, _, h, w = hyper_fx.shape
        spatial = None
        if self.spatial_ctx is not None:
            spatial = (self.spatial_ctx.exact(anchors_fx) if anchors_fx is not None
                       else hyper_fx.new_zeros(b, self.ctx_width, h, w))
        inputs = self._inputs(hyper_fx, prev_fx, spatial, exact=True)
        return self.params.exact(inputs[:, :, mask].unsqueeze(-1))


@register_codec
class GMMContextCodec(HyperpriorCodec):
    name = "gmm-ctx"

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
        self.models = [GaussianModel(c) if mean_shift else MixtureModel(c, components) for c in groups]
        starts = [sum(groups[:i]) if channel_context else 0 for i in range(len(groups))]
        self.slices = nn.ModuleList(SliceContext(hyper, s, c, model.param_channels, checkerboard, context_width,
                                                 tuple(channel_hidden), channel_kernel, tuple(param_hidden))
                                    for s, c, model in zip(starts, groups, self.models))

    # -- training ---------------------------------------------------------------
    def _y_forward(self, y, hyper):
        b, _, h, w = y.shape
        anchors = anchor_mask(h, w, y.device).to(y.dtype)
        nonanchor = 1 - anchors
        noise_ctx = self.training and self.context_inputs == "noise"
        decoded, context, likelihoods = [], [], []
        for y_s, ctx, model in zip(y.split(self.groups, 1), self.slices, self.models):
            prev = torch.cat(context, 1) if context and ctx.channel_ctx is not None else None
            if self.mean_shift:
                y_hat, lik, seen = self._gaussian_slice(y_s, hyper, prev, ctx, model, anchors, nonanchor, noise_ctx)
            else:
                y_hat = ste_round(y_s)
                seen = noisy(y_s) if noise_ctx else y_hat
                spatial_in = seen * anchors if self.checkerboard else None
                params = ctx.params_float(hyper, prev, spatial_in, nonanchor)
                values = noisy(y_s) if self.training else torch.round(y_s)
                lik = model.likelihood(values, *model.split_float(params))
            likelihoods.append(lik)
            decoded.append(y_hat)
            context.append(seen)
        return torch.cat(decoded, 1), torch.cat(likelihoods, 1)

    def _gaussian_slice(self, y_s, hyper, prev, ctx, model, anchors, nonanchor, noise_ctx):
        """Mean-shifted Gaussian slice: anchors' parameters first (they decide the anchors'
        decoded values, round(y - mean) + mean), then the rest's with the anchors as context."""
        def code(params):
            means, scales = model.split_float(params)
            values = noisy(y_s) if self.training else torch.round(y_s - means) + means
            return ste_round(y_s - means) + means, model.likelihood(values, means, scales)

        if not self.checkerboard:
            y_hat, lik = code(ctx.params_float(hyper, prev, None, nonanchor))
            return y_hat, lik, (noisy(y_s) if noise_ctx else y_hat)
        y_a, lik_a = code(ctx.params_float(hyper, prev, torch.zeros_like(y_s), torch.zeros_like(nonanchor)))
        seen_a = noisy(y_s) if noise_ctx else y_a
        y_n, lik_n = code(ctx.params_float(hyper, prev, seen_a * anchors, nonanchor))
        y_hat = y_a * anchors + y_n * nonanchor
        lik = lik_a * anchors + lik_n * nonanchor
        return y_hat, lik, (seen_a * anchors + (noisy(y_s) if noise_ctx else y_n) * nonanchor)

    # -- coding -----------------------------------------------------------------
    def _masks(self, h: int, w: int, device) -> tuple[torch.Tensor, ...]:
        if not self.checkerboard:
            return (torch.ones(h, w, dtype=torch.bool, device=device),)
        return anchor_mask(h, w, device), ~anchor_mask(h, w, device)

    def _passes(self, hyper_fx, code):
        """Run the slice/pass schedule; ``code(pass_index, slice_index, model, params, mask)``
        returns the decoded values of the selected elements (1-D)."""
        b, _, h, w = hyper_fx.shape
        masks = self._masks(h, w, hyper_fx.device)
        decoded = []
        for s, (c, ctx, model) in enumerate(zip(self.groups, self.slices, self.models)):
            prev_fx = to_fixed(torch.cat(decoded, 1)) if decoded and ctx.channel_ctx is not None else None
            y_hat = hyper_fx.new_zeros(b, c, h, w, dtype=torch.float32)
            for p, mask in enumerate(masks):
                anchors_fx = to_fixed(y_hat) if p else None
                params = model.coder_params(ctx.params_exact(hyper_fx, prev_fx, anchors_fx, mask))
                values = code(len(masks) * s + p, s, model, params, mask)
                y_hat[:, :, mask] = values.view(b, c, -1).to(y_hat.dtype)
            decoded.append(y_hat)
        return torch.cat(decoded, 1)

    def _y_compress(self, y, hyper_fx) -> bytes:
        return compress_passes(self._passes, hyper_fx, y.split(self.groups, 1))

    def _y_decompress(self, data, hyper_fx):
        return decompress_passes(self._passes, hyper_fx, data, len(self._masks(1, 1, "cpu")) * len(self.groups))


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
