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

from neuralcodec.entropy.exact import ExactNet
from neuralcodec.latent.base import stored_names
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

    # -- what export needs (ONNX graphs, integer nets), by stored names --------------
    def float_graphs(self) -> dict[str, tuple[nn.Module, str, str, int]]:
        """The float transforms that export writes as ONNX graphs: name -> (module, input
        name, output name, input channels). Names are stored names (see :meth:`exact_nets`);
        empty for a codec without exportable transforms."""
        return {}

    def exact_nets(self) -> dict[str, ExactNet]:
        """Every integer-exact network (hyper-synthesis, context, parameter nets) by its
        stored name: the state-dict prefix of the weights layout (e.g. ``h_s``,
        ``slices.0.params``), which stays put when modules move in the tree."""
        names = stored_names(self)
        return {names[path]: m for path, m in self.named_modules() if isinstance(m, ExactNet) and path in names}

    def replace_module(self, stored: str, module: nn.Module) -> None:
        """Put ``module`` where the module of stored name ``stored`` is (export backends
        swap transforms and integer nets this way)."""
        paths = {name: path for path, name in stored_names(self).items()}
        if stored not in paths:
            raise KeyError(f"{self.name} has no module stored as {stored!r}")
        parent, _, attr = paths[stored].rpartition(".")
        setattr(self.get_submodule(parent) if parent else self, attr, module)


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
    #: the latent codec (a :class:`~neuralcodec.latent.base.LatentCodec`, set by the constructor)
    latent: nn.Module

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

    @abstractmethod
    def analysis(self) -> nn.Module:
        """The float analysis transform (``analyse`` without the quality gain)."""

    @abstractmethod
    def synthesis(self) -> nn.Module:
        """The float synthesis transform (``synthesise`` without the quality gain)."""

    def synthesis_input(self, y_hat: torch.Tensor, quality) -> torch.Tensor:
        """What ``synthesise`` feeds :meth:`synthesis` for a decoded latent (the latent
        itself unless a quality gain applies)."""
        return y_hat

    def float_graphs(self) -> dict[str, tuple[nn.Module, str, str, int]]:
        """``g_a`` and ``g_s``, and ``h_a`` when the latent codec has a hyper-analysis."""
        from neuralcodec.latent.hyperprior import Hyperprior

        m = self.latent_channels
        graphs = {"g_a": (self.analysis(), "x", "y", 3), "g_s": (self.synthesis(), "y_hat", "x_hat", m)}
        if isinstance(self.latent, Hyperprior):
            graphs["h_a"] = (self.latent.h_a, "y", "z", m)
        return graphs

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


class LevelledImageCodec(StreamImageCodec):
    """Fixed-rate latent codecs (``levels``), one per quality label (imported models): a
    stream is coded by one level, and the shared decoder asks which (``level_for_stream``)."""

    levels: nn.ModuleList

    @abstractmethod
    def level_for_stream(self, header) -> LatentImageCodec:
        """The level that decodes a stream with this container ``header`` (checked)."""

    def float_graphs(self) -> dict[str, tuple[nn.Module, str, str, int]]:
        """Each level's graphs, as ``levels.<i>.<graph>``."""
        return {f"levels.{i}.{name}": spec for i, level in enumerate(self.levels)
                for name, spec in level.float_graphs().items()}
