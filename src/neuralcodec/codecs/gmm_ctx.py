"""`gmm-ctx`: ELIC-style quality flagship. Channel slices of uneven size, each coded in
two checkerboard passes (anchors, then the rest with anchors as spatial context), a
K-component Gaussian mixture per element, and every network that feeds the coder
integer-exact (see :mod:`neuralcodec.entropy.exact`)."""
from __future__ import annotations

import torch
from torch import nn

from neuralcodec.codecs.framing import compress_passes, decompress_passes
from neuralcodec.codecs.gained import HyperpriorCodec
from neuralcodec.codecs.transforms import conv, pointwise_net
from neuralcodec.entropy.conditional import MixtureModel
from neuralcodec.entropy.exact import ExactNet, to_fixed
from neuralcodec.entropy.likelihoods import noisy, ste_round


def anchor_mask(h: int, w: int, device) -> torch.Tensor:
    """Checkerboard: True where (row + col) is even (decoded first)."""
    idx = torch.arange(h, device=device)[:, None] + torch.arange(w, device=device)[None, :]
    return (idx % 2 == 0)


class SliceContext(nn.Module):
    """Entropy parameters of one channel slice from hyper features, earlier slices
    (channel context) and checkerboard anchors (spatial context)."""

    def __init__(self, hyper: int, prev: int, channels: int, mixture: MixtureModel):
        super().__init__()
        self.channels = channels
        self.ctx_width = channels
        self.channel_ctx = (ExactNet(conv(prev, 64, 3, 1), nn.ReLU(), conv(64, self.ctx_width, 3, 1))
                            if prev else None)
        self.spatial_ctx = ExactNet(conv(channels, self.ctx_width, 5, 1))
        cin = hyper + self.ctx_width * (2 if prev else 1)
        self.params = pointwise_net(cin, (224, 160), mixture.param_channels)

    def _inputs(self, hyper, prev, spatial, exact: bool):
        parts = [hyper]
        if self.channel_ctx is not None:
            parts.append(self.channel_ctx.exact(prev) if exact else self.channel_ctx(prev))
        parts.append(spatial)
        return torch.cat(parts, dim=1)

    def params_float(self, hyper, prev, anchors_hat, nonanchor):
        spatial = self.spatial_ctx(anchors_hat) * nonanchor
        return self.params(self._inputs(hyper, prev, spatial, exact=False))

    def params_exact(self, hyper_fx, prev_fx, anchors_fx, mask):
        """Integer-exact parameters at the ``mask`` positions only, as (B, P, N, 1): the
        parameter network is pointwise, so it runs on the gathered positions (half the
        latent per checkerboard pass) with the same integers as on the whole map."""
        b, _, h, w = hyper_fx.shape
        spatial = (self.spatial_ctx.exact(anchors_fx) if anchors_fx is not None
                   else hyper_fx.new_zeros(b, self.ctx_width, h, w))
        inputs = self._inputs(hyper_fx, prev_fx, spatial, exact=True)
        return self.params.exact(inputs[:, :, mask].unsqueeze(-1))


class GMMContextCodec(HyperpriorCodec):
    name = "gmm-ctx"

    def __init__(self, n: int = 128, m: int = 192, groups: tuple[int, ...] = (16, 16, 32, 64, 64),
                 components: int = 3):
        if sum(groups) != m:
            raise ValueError("channel groups must sum to m")
        hyper = m
        super().__init__(n, m, hyper)
        self.config.update(groups=list(groups), components=components)
        self.groups = tuple(groups)
        self.mixtures = [MixtureModel(c, components) for c in groups]
        starts = [sum(groups[:i]) for i in range(len(groups))]
        self.slices = nn.ModuleList(SliceContext(hyper, s, c, mix)
                                    for s, c, mix in zip(starts, groups, self.mixtures))

    # -- training ---------------------------------------------------------------
    def _y_forward(self, y, hyper):
        b, _, h, w = y.shape
        anchors = anchor_mask(h, w, y.device).to(y.dtype)
        nonanchor = 1 - anchors
        decoded, likelihoods = [], []
        for y_s, ctx, mix in zip(y.split(self.groups, 1), self.slices, self.mixtures):
            y_hat = ste_round(y_s)
            prev = torch.cat(decoded, 1) if decoded else None
            params = ctx.params_float(hyper, prev, y_hat * anchors, nonanchor)
            values = noisy(y_s) if self.training else torch.round(y_s)
            likelihoods.append(mix.likelihood(values, *mix.split_float(params)))
            decoded.append(y_hat)
        return torch.cat(decoded, 1), torch.cat(likelihoods, 1)

    # -- coding -----------------------------------------------------------------
    def _passes(self, hyper_fx, code):
        """Run the slice/pass schedule; ``code(pass_index, values_shape, mix, params, mask)``
        returns the decoded values of the selected elements (1-D)."""
        b, _, h, w = hyper_fx.shape
        masks = (anchor_mask(h, w, hyper_fx.device), ~anchor_mask(h, w, hyper_fx.device))
        decoded = []
        for s, (c, ctx, mix) in enumerate(zip(self.groups, self.slices, self.mixtures)):
            prev_fx = to_fixed(torch.cat(decoded, 1)) if decoded else None
            y_hat = hyper_fx.new_zeros(b, c, h, w, dtype=torch.float32)
            for p, mask in enumerate(masks):
                anchors_fx = to_fixed(y_hat) if p else None
                params = mix.split_exact(ctx.params_exact(hyper_fx, prev_fx, anchors_fx, mask))
                values = code(2 * s + p, s, mix, tuple(t.reshape(-1, t.shape[-1]) for t in params), mask)
                y_hat[:, :, mask] = values.view(b, c, -1).to(y_hat.dtype)
            decoded.append(y_hat)
        return torch.cat(decoded, 1)

    def _y_compress(self, y, hyper_fx) -> bytes:
        return compress_passes(self._passes, hyper_fx, y.split(self.groups, 1))

    def _y_decompress(self, data, hyper_fx):
        return decompress_passes(self._passes, hyper_fx, data, 2 * len(self.groups))
