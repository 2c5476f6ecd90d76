"""Factorized (fully learned, per-channel) prior, built on CompressAI's EntropyBottleneck.

Training uses the bottleneck as is. For coding, :meth:`update` freezes its CDF tables
(integers, stored as buffers and shipped with the weights, so encoder and decoder never
recompute them in floating point) and a median snapped to the 2**-8 grid, so decoded
values are exact fixed-point numbers.
"""
from __future__ import annotations

import numpy as np
import torch
from compressai.entropy_models import EntropyBottleneck
from torch import nn
from torch.nn import functional as F

from neuralcodec.entropy import coder
from neuralcodec.entropy.likelihoods import ste_round

_TABLE_BUFFERS = ("_quantized_cdf", "_cdf_length", "_offset")      # in the order _tables returns


def _version(t: torch.Tensor) -> int | None:
    """The tensor's in-place write counter (None for inference tensors, which have none)."""
    try:
        return t._version
    except RuntimeError:
        return None


class FactorizedPrior(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bottleneck = EntropyBottleneck(channels)
        self.register_buffer("median_q", torch.zeros(channels))
        self._host_tables: tuple | None = None     # (the buffers and versions they were read at, arrays)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_hat, likelihoods): noisy in training, rounded around the medians otherwise.
        Always computed in float32, also under autocast. The same numbers as the bottleneck's
        own forward, with static permutations so that torch.compile sees one graph."""
        with torch.autocast(z.device.type, enabled=False):
            eb = self.bottleneck
            z = z.float()
            c = z.shape[1]
            values = z.transpose(0, 1).reshape(c, 1, -1)           # (C, 1, B*H*W)
            if self.training:
                values = values + torch.empty_like(values).uniform_(-0.5, 0.5)
            else:
                medians = eb.quantiles[:, :, 1:2]
                values = ste_round(values - medians) + medians
            likelihood = torch.sigmoid(self._cumulative(values + 0.5)) - torch.sigmoid(self._cumulative(values - 0.5))
            if eb.use_likelihood_bound:
                likelihood = eb.likelihood_lower_bound(likelihood)

            def back(t: torch.Tensor) -> torch.Tensor:
                return t.reshape(c, z.shape[0], *z.shape[2:]).transpose(0, 1).contiguous()
            return back(values), back(likelihood)

    def _cumulative(self, x: torch.Tensor) -> torch.Tensor:
        """Cumulative logits of the learned univariate densities (Balle et al. 2018, appendix 6.1)."""
        eb = self.bottleneck
        for i in range(len(eb.filters) + 1):
            x = torch.matmul(F.softplus(eb.matrices[i]), x) + eb.biases[i]
            if i < len(eb.filters):
                x = x + torch.tanh(eb.factors[i]) * torch.tanh(x)
        return x

    def aux_loss(self) -> torch.Tensor:
        return self.bottleneck.loss()

    @torch.no_grad()
    def update(self) -> None:
        self.bottleneck.update(force=True)
        self.snap_medians()

    @torch.no_grad()
    def snap_medians(self) -> None:
        """Set the coding medians from the bottleneck's quantiles (keeping its CDF tables)."""
        medians = self.bottleneck.quantiles[:, 0, 1].detach()
        self.median_q.copy_(torch.round(medians * 256) / 256)

    def has_tables(self) -> bool:
        """Whether the CDF tables are built (by :meth:`update` or loaded with the weights)."""
        return self.bottleneck.offset.numel() > 0

    def _medians(self, z: torch.Tensor) -> torch.Tensor:
        return self.median_q.to(z.device).view(1, -1, 1, 1)

    @torch.no_grad()
    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(symbols int32, z_hat exact on the 2**-8 grid)."""
        symbols = torch.round(z - self._medians(z))
        return symbols.int(), symbols + self._medians(z)

    def _tables(self):
        """(cdfs, lengths, offsets) as host int32 arrays, copied from the buffers once and
        again only when a buffer is replaced (update, loading) or written to (its version)."""
        if not self.has_tables():
            raise RuntimeError("FactorizedPrior.update() must run before coding")
        buffers = [getattr(self.bottleneck, name) for name in _TABLE_BUFFERS]
        seen = [(t, _version(t)) for t in buffers]
        cached = self._host_tables
        if cached is None or any(t is not old or v is None or v != old_v
                                 for (t, v), (old, old_v) in zip(seen, cached[0])):
            arrays = tuple(t.cpu().numpy().astype(np.int32) for t in buffers)
            for a in arrays:
                a.setflags(write=False)
            self._host_tables = cached = (seen, arrays)
        return cached[1]

    @staticmethod
    def _indexes(shape) -> np.ndarray:
        b, c, h, w = shape
        return np.broadcast_to(np.arange(c, dtype=np.int32)[None, :, None, None], (b, c, h, w)).ravel()

    @torch.no_grad()
    def compress(self, z: torch.Tensor) -> tuple[bytes, torch.Tensor]:
        """Code z; returns (stream, z_hat)."""
        symbols, z_hat = self.quantize(z)
        cdfs, lengths, offsets = self._tables()
        data = coder.encode_indexed(symbols.cpu().numpy().ravel(), self._indexes(z.shape),
                                    cdfs, lengths, offsets)
        return data, z_hat

    @torch.no_grad()
    def decompress(self, data: bytes, shape, device="cpu") -> torch.Tensor:
        cdfs, lengths, offsets = self._tables()
        symbols = coder.decode_indexed(data, self._indexes(shape), cdfs, lengths, offsets)
        z = torch.from_numpy(symbols.astype(np.float32)).view(*shape).to(device)
        return z + self._medians(z)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The coding tables are empty until update(); take the shapes of the stored ones.
        for name in _TABLE_BUFFERS:
            key = f"{prefix}bottleneck.{name}"
            if key in state_dict:
                buf = getattr(self.bottleneck, name)
                self.bottleneck.register_buffer(name, torch.zeros_like(state_dict[key], dtype=buf.dtype,
                                                                       device=buf.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
