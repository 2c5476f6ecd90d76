"""The interface every learned image codec implements, and the quality scale.

Quality is a real number in [1, 8] (1 = lowest rate). Training samples it
uniformly and weighs distortion with :func:`rd_lambda`; one set of weights
covers the whole range through :class:`QualityGain` vectors on the latent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from neuralcodec.codecs.catalog import QUALITY_MAX, QUALITY_MIN, check_quality  # noqa: F401 (re-exported)

# MSE lambdas (for images in [0, 1], distortion = lambda * 255^2 * MSE) at quality 1 and 8;
# the same end points as CompressAI's quality 1..8 ladder, interpolated geometrically.
LAMBDA_MIN = 0.0018
LAMBDA_MAX = 0.18


def rd_lambda(quality: torch.Tensor | float) -> torch.Tensor:
    """Rate-distortion trade-off for a (continuous) quality in [1, 8]."""
    q = torch.as_tensor(quality, dtype=torch.float32).clamp(QUALITY_MIN, QUALITY_MAX)
    t = (q - QUALITY_MIN) / (QUALITY_MAX - QUALITY_MIN)
    return LAMBDA_MIN * torch.exp(t * math.log(LAMBDA_MAX / LAMBDA_MIN))


class QualityGain(nn.Module):
    """Per-channel gain vectors at the integer qualities 1..8, interpolated
    geometrically for a continuous quality (asymmetric gained VAE style)."""

    def __init__(self, channels: int, levels: int = 8, init_low: float = 0.5, init_high: float = 2.0):
        super().__init__()
        start = torch.linspace(math.log(init_low), math.log(init_high), levels)
        self.log_gain = nn.Parameter(start[:, None].repeat(1, channels))

    def forward(self, quality: torch.Tensor) -> torch.Tensor:
        """Gain of shape (B, C, 1, 1) for qualities of shape (B,)."""
        q = quality.to(self.log_gain.device, torch.float32).clamp(QUALITY_MIN, QUALITY_MAX) - QUALITY_MIN
        lo = q.floor().long().clamp(max=self.log_gain.shape[0] - 2)
        frac = (q - lo.float())[:, None]
        log_g = self.log_gain[lo] * (1 - frac) + self.log_gain[lo + 1] * frac
        return log_g.exp()[:, :, None, None]


@dataclass
class Compressed:
    """What a codec's ``compress`` returns: named coder streams and the latent geometry."""
    streams: dict[str, bytes]
    params: dict = field(default_factory=dict)
    #: the decoded latents the encoder expects the decoder to reproduce (not serialised)
    latents: "torch.Tensor | None" = None


class ImageCodec(nn.Module):
    """Base class of learned image codecs.

    Subclasses implement ``forward`` (training: differentiable likelihoods),
    ``compress``/``decompress`` (real bitstreams through the native coder) and
    ``update`` (freeze coding tables and the integer-exact parameter path).
    """

    name: str = ""
    #: spatial stride of the latent (inputs are padded to a multiple of it)
    stride: int = 64

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> dict:
        """x: (B,3,H,W) in [0,1]; quality: (B,). Returns {"x_hat", "likelihoods": {name: tensor}}."""
        raise NotImplementedError

    def aux_loss(self) -> torch.Tensor:
        """Auxiliary loss (e.g. factorized-prior quantiles); zero when there is none."""
        return torch.zeros((), device=next(self.parameters()).device)

    def update(self) -> None:
        """Build the coding tables and integer parameter path from the current weights."""
        raise NotImplementedError

    #: spatial stride of the latent relative to the image
    latent_stride: int = 16

    def analyse(self, x: torch.Tensor, quality) -> torch.Tensor:
        """Image (padded to ``stride``) -> latent."""
        raise NotImplementedError

    def synthesise(self, y_hat: torch.Tensor, quality) -> torch.Tensor:
        """Decoded latent -> image (unclamped)."""
        raise NotImplementedError

    @torch.no_grad()
    def compress_latent(self, y: torch.Tensor) -> Compressed:
        """Entropy-code a latent (or a tile of one; height and width multiples of
        ``stride // latent_stride``). ``params["latent_hw"]`` records its size."""
        raise NotImplementedError

    @torch.no_grad()
    def decode_latents(self, compressed: Compressed) -> torch.Tensor:
        """Entropy-decode the latents (bit-exact on every device); needs ``params["latent_hw"]``."""
        raise NotImplementedError

    @torch.no_grad()
    def compress(self, x: torch.Tensor, quality: float) -> Compressed:
        """Whole-image convenience: analyse then code (no tiling)."""
        return self.compress_latent(self.analyse(x, quality))

    @torch.no_grad()
    def decompress(self, compressed: Compressed, quality: float) -> torch.Tensor:
        """Decode to an image in [0, 1] (float synthesis: may differ slightly across devices)."""
        return self.synthesise(self.decode_latents(compressed), quality).clamp(0, 1)
