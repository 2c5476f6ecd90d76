"""A latent coded in channel groups, in order: each group's side input is the shared side
(e.g. the hyper-synthesis output) joined with a channel context, an integer-exact network
of the groups decoded before it."""
from __future__ import annotations

import torch
from torch import nn

from neuralcodec.entropy.exact import to_fixed
from neuralcodec.entropy.likelihoods import noisy
from neuralcodec.latent.base import LatentCodec


class GroupStage(nn.Module):
    """One channel group: its channel-context net (None: no channel context) and inner codec."""

    def __init__(self, context: nn.Module | None, inner: LatentCodec):
        super().__init__()
        self.context, self.inner = context, inner


class ChannelGroups(LatentCodec):
    """``ChannelGroups(sizes, contexts, inners)``: ``contexts[k]`` maps the decoded groups
    before k to group k's channel context (None for none). The side of group k is
    [side, context] (``context_first``: [context, side]); ``context_from_ends``: the context
    sees the first and the latest group only (ELIC-Chandelier); ``noise_context``: in
    training the context sees the noisy latent instead of the rounded one."""

    def __init__(self, sizes, contexts, inners, context_first: bool = False,
                 context_from_ends: bool = False, noise_context: bool = False):
        super().__init__()
        if not len(sizes) == len(contexts) == len(inners):
            raise ValueError("one context and one inner codec per channel group")
        self.sizes = tuple(sizes)
        self.groups = nn.ModuleList(GroupStage(c, i) for c, i in zip(contexts, inners))
        self.context_first, self.context_from_ends = context_first, context_from_ends
        self.noise_context = noise_context
        self.stream_count = sum(i.stream_count for i in inners)

    def _side(self, k: int, side, decoded: list, exact: bool):
        net = self.groups[k].context
        if net is None or not decoded:
            return side
        if self.context_from_ends and len(decoded) > 1:
            decoded = [decoded[0], decoded[-1]]
        seen = torch.cat(decoded, 1)
        context = net.exact(to_fixed(seen)) if exact else net(seen)
        return torch.cat([context, side] if self.context_first else [side, context], 1)

    def forward(self, y, side):
        y_hats, likelihoods, seen = [], [], []
        for k, y_k in enumerate(y.split(self.sizes, 1)):
            y_hat, lik = self.groups[k].inner(y_k, self._side(k, side, seen, exact=False))
            y_hats.append(y_hat)
            likelihoods.append(lik["y"])
            seen.append(noisy(y_k) if self.noise_context and self.training else y_hat)
        return torch.cat(y_hats, 1), {"y": torch.cat(likelihoods, 1)}

    @torch.no_grad()
    def compress(self, y, side):
        streams, decoded = [], []
        for k, y_k in enumerate(y.split(self.sizes, 1)):
            data, y_hat = self.groups[k].inner.compress(y_k, self._side(k, side, decoded, exact=True))
            streams += data
            decoded.append(y_hat)
        return streams, torch.cat(decoded, 1)

    @torch.no_grad()
    def decompress(self, streams, shape, side):
        b, _, h, w = shape
        decoded, start = [], 0
        for k, channels in enumerate(self.sizes):
            inner = self.groups[k].inner
            part = streams[start:start + inner.stream_count]
            start += inner.stream_count
            decoded.append(inner.decompress(part, (b, channels, h, w), self._side(k, side, decoded, exact=True)))
        return torch.cat(decoded, 1)
