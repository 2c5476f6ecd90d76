"""Conditional entropy models: Gaussian (mean-scale) and Gaussian mixture.

Each model splits a parameter tensor predicted by a network into its parts, in
two ways: ``*_float`` for training (differentiable likelihoods) and ``*_exact`` for
coding (from fixed-point network outputs onto the coder's grid, see
:mod:`.param_grid`). ``encode``/``decode`` code selected latent elements with the
native coder and return the exactly reproducible decoded values.
"""
from __future__ import annotations

import numpy as np
import torch

from neuralcodec.entropy import coder
from neuralcodec.entropy.likelihoods import (gaussian_likelihood, gmm_likelihood,
                                             mixture_weights, scale_from_log2)
from neuralcodec.entropy.param_grid import (mean_from_fixed, scale_from_index,
                                            scale_index_from_fixed, weights_from_fixed)


def _np(t: torch.Tensor, dtype) -> np.ndarray:
    """Host array of ``t`` in ``dtype``, converted on the tensor's device (exact here: integer
    values or float32 grid values) so that only the final type crosses to the host."""
    t = t.detach().to(getattr(torch, np.dtype(dtype).name))
    return np.ascontiguousarray(t.cpu().numpy())


class GaussianModel:
    """Mean-scale Gaussian; values are coded as round(y - mean), decoded as symbol + mean."""

    def __init__(self, channels: int):
        self.channels = channels
        self.param_channels = 2 * channels

    def split_float(self, params: torch.Tensor):
        means, log2_scales = params.chunk(2, dim=1)
        return means, scale_from_log2(log2_scales)

    def split_exact(self, params_fixed: torch.Tensor):
        means, log2_scales = params_fixed.chunk(2, dim=1)
        return mean_from_fixed(means), scale_from_index(scale_index_from_fixed(log2_scales))

    @staticmethod
    def likelihood(values, means, scales):
        return gaussian_likelihood(values, means, scales)

    def coder_params(self, params_fixed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(means, scales) of selected elements, flat, from fixed-point parameters (B, P, N, 1)."""
        return tuple(t.reshape(-1) for t in self.split_exact(params_fixed))

    @staticmethod
    def quantize(y, means):
        """Training/inference quantisation around the mean (STE is applied by callers)."""
        return torch.round(y - means) + means

    @staticmethod
    def encode(y: torch.Tensor, means: torch.Tensor, scales: torch.Tensor,
               chunk_size: int | None = None) -> tuple[bytes, torch.Tensor]:
        """Code 1-D selections; returns (stream, decoded values). ``chunk_size``: symbols per
        independently decodable chunk (smaller: more decoder threads, a few bytes more)."""
        symbols = torch.round(y - means)
        return GaussianModel.encode_symbols(symbols, scales, chunk_size), symbols + means

    @staticmethod
    def decode(data: bytes, means: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        return GaussianModel.decode_symbols(data, scales) + means

    @staticmethod
    def encode_symbols(symbols: torch.Tensor, scales: torch.Tensor, chunk_size: int | None = None) -> bytes:
        """Code integer-valued ``symbols`` (= round(y - mean)) under zero-mean Gaussians."""
        return coder.encode_gaussian(_np(symbols, np.int32), np.zeros(symbols.numel(), np.float32),
                                     _np(scales, np.float32), chunk_size=chunk_size)

    @staticmethod
    def decode_symbols(data: bytes, scales: torch.Tensor) -> torch.Tensor:
        """Symbols (float32, on the scales' device) of a stream from ``encode_symbols``."""
        symbols = coder.decode_gaussian(data, np.zeros(scales.numel(), np.float32), _np(scales, np.float32))
        return torch.from_numpy(symbols.astype(np.float32)).to(scales.device, non_blocking=True)


class MixtureModel:
    """K-component Gaussian mixture over round(y); parameters laid out as (3, K, C)."""

    def __init__(self, channels: int, components: int = 3):
        self.channels = channels
        self.k = components
        self.param_channels = 3 * components * channels

    def _parts(self, params: torch.Tensor):
        b, _, h, w = params.shape
        p = params.view(b, 3, self.k, self.channels, h, w).permute(1, 0, 3, 4, 5, 2)
        return p[0], p[1], p[2]          # each (B, C, H, W, K)

    def split_float(self, params: torch.Tensor):
        logits, means, log2_scales = self._parts(params)
        return mixture_weights(logits), means, scale_from_log2(log2_scales)

    def split_exact(self, params_fixed: torch.Tensor):
        logits, means, log2_scales = self._parts(params_fixed)
        return (weights_from_fixed(logits), mean_from_fixed(means),
                scale_from_index(scale_index_from_fixed(log2_scales)))

    @staticmethod
    def likelihood(values, weights, means, scales):
        return gmm_likelihood(values, weights, means, scales)

    def coder_params(self, params_fixed: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(weights, means, scales) of selected elements as (N, K) rows, from fixed-point
        parameters (B, P, N, 1)."""
        return tuple(t.reshape(-1, self.k) for t in self.split_exact(params_fixed))

    @staticmethod
    def encode(y: torch.Tensor, weights, means, scales) -> tuple[bytes, torch.Tensor]:
        symbols = torch.round(y)
        data = coder.encode_gmm(_np(symbols, np.int32), _np(weights, np.float32),
                                _np(means, np.float32), _np(scales, np.float32))
        return data, symbols

    @staticmethod
    def decode(data: bytes, weights, means, scales) -> torch.Tensor:
        symbols = coder.decode_gmm(data, _np(weights, np.float32), _np(means, np.float32),
                                   _np(scales, np.float32))
        return torch.from_numpy(symbols.astype(np.float32)).to(means.device)
