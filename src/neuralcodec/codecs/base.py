"""The codec contract (the kinds of image codec, ``@register_codec``) and the quality scale.

Quality is a real number in [1, 8] (1 = lowest rate). Training samples it
uniformly and weighs distortion with :func:`rd_lambda`; one set of weights
covers the whole range through :class:`QualityGain` vectors on the latent.
"""
from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
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


#: every registered image codec by name, filled by :func:`register_codec` (the registry
#: imports the codec modules of this package to fill it; see ``neuralcodec.codecs.registry``)
REGISTERED: dict[str, type] = {}


def register_codec(cls):
    """Class decorator: make an image codec known to the registry under ``cls.name``."""
    if not cls.name or not issubclass(cls, ImageCodec):
        raise TypeError(f"{cls.__name__} is not a named ImageCodec")
    if REGISTERED.get(cls.name, cls) is not cls:
        raise TypeError(f"two codecs are called {cls.name!r}")
    REGISTERED[cls.name] = cls
    return cls


class ImageCodec(nn.Module, metaclass=ABCMeta):
    """Base class of learned image codecs: ``name``, ``config`` (the constructor arguments),
    ``forward`` (training: differentiable likelihoods), ``update`` (freeze coding tables and
    the integer-exact parameter path). Codecs are one of the two kinds below; the encoders,
    decoders and the CLI dispatch on the kind (``isinstance``), never on attribute names."""

    name: str = ""
    config: dict

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> dict:
        """x: (B,3,H,W) in [0,1]; quality: (B,). Returns {"x_hat", "likelihoods": {name: tensor}}."""
        raise NotImplementedError

    def aux_loss(self) -> torch.Tensor:
        """Auxiliary loss (e.g. factorized-prior quantiles); zero when there is none."""
        return torch.zeros((), device=next(self.parameters()).device)

    def update(self) -> None:
        """Build the coding tables and integer parameter path from the current weights."""
        raise NotImplementedError


class LatentImageCodec(ImageCodec):
    """A codec of the latent domain: transforms (``analyse``/``synthesise``) around a latent
    coder (``compress_latent``/``decode_latents``); the shared image encoder and decoder
    (``codecs.api``, ``codecs.image_decoder``) pad, tile and frame its streams."""

    #: spatial stride inputs are padded to a multiple of
    stride: int = 64
    #: spatial stride of the latent relative to the image
    latent_stride: int = 16
    #: channels of the latent ``analyse`` returns (set by the constructor)
    latent_channels: int

    @abstractmethod
    def analyse(self, x: torch.Tensor, quality) -> torch.Tensor:
        """Image (padded to ``stride``) -> latent."""

    @abstractmethod
    def synthesise(self, y_hat: torch.Tensor, quality) -> torch.Tensor:
        """Decoded latent -> image (unclamped)."""

    @abstractmethod
    def compress_latent(self, y: torch.Tensor) -> Compressed:
        """Entropy-code a latent (or a tile of one; height and width multiples of
        ``stride // latent_stride``). ``params["latent_hw"]`` records its size."""

    @abstractmethod
    def decode_latents(self, compressed: Compressed) -> torch.Tensor:
        """Entropy-decode the latents (bit-exact on every device); needs ``params["latent_hw"]``."""

    @torch.no_grad()
    def compress(self, x: torch.Tensor, quality: float) -> Compressed:
        """Whole-image convenience: analyse then code (no tiling)."""
        return self.compress_latent(self.analyse(x, quality))

    @torch.no_grad()
    def decompress(self, compressed: Compressed, quality: float) -> torch.Tensor:
        """Decode to an image in [0, 1] (float synthesis: may differ slightly across devices)."""
        return self.synthesise(self.decode_latents(compressed), quality).clamp(0, 1)


class StreamImageCodec(ImageCodec):
    """A codec that owns its stream layout (trit-plane's progressive planes, an imported
    codec's quality levels): it writes and reads whole container bitstreams itself."""

    @abstractmethod
    def encode_image(self, pixels, quality=None, device=None) -> bytes:
        """uint8 pixels (H, W, 3) -> a container bitstream."""

    @abstractmethod
    def decode_image(self, data: bytes, device=None, **limits):
        """A container bitstream -> uint8 pixels (H, W, 3)."""
