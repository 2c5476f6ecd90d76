"""Shared skeletons: a gained analysis/synthesis transform pair, and codecs whose latent
codec is a :class:`~neuralcodec.latent.hyperprior.Hyperprior` (hyper-analysis, factorized
hyper-latent, integer-exact hyper-synthesis, an inner codec of y)."""
from __future__ import annotations

import torch

from neuralcodec.codecs.base import Compressed, LatentImageCodec, QualityGain
from neuralcodec.codecs.framing import pack_streams, unpack_streams
from neuralcodec.codecs.transforms import (analysis, hyper_analysis, hyper_synthesis, residual_analysis,
                                           residual_synthesis, synthesis)
from neuralcodec.entropy.exact import ExactNet
from neuralcodec.entropy.factorized import FactorizedPrior
from neuralcodec.latent.base import StoredLayout
from neuralcodec.latent.factorized import Factorized
from neuralcodec.latent.hyperprior import Hyperprior


def latent_hw(params: dict, multiple: int = 1) -> tuple[int, int]:
    """The latent (tile) size recorded with coded streams, validated before any allocation."""
    from neuralcodec.errors import BitstreamError

    hw = params.get("latent_hw")
    if (not isinstance(hw, (list, tuple)) or len(hw) != 2
            or not all(isinstance(v, int) and 0 < v <= 1 << 14 and v % multiple == 0 for v in hw)):
        raise BitstreamError(f"bad latent size in bitstream: {hw!r}")
    return int(hw[0]), int(hw[1])


def quality_tensor(quality, x: torch.Tensor) -> torch.Tensor:
    q = torch.as_tensor(quality, dtype=torch.float32, device=x.device)
    return q.expand(x.shape[0]) if q.dim() == 0 else q


class GainedCodec(LatentImageCodec):
    """Analysis/synthesis transforms with per-quality channel gains on the latent."""

    def __init__(self, n: int, m: int, transform: str = "gdn", blocks: tuple[int, int, int] = (3, 3, 3)):
        super().__init__()
        if transform not in ("gdn", "residual"):
            raise ValueError("transform must be 'gdn' or 'residual'")
        self.config = {"n": n, "m": m}
        self.latent_channels = m
        if transform == "residual":
            self.g_a, self.g_s = residual_analysis(n, m, tuple(blocks)), residual_synthesis(n, m, tuple(blocks))
        else:
            self.g_a, self.g_s = analysis(n, m), synthesis(n, m)
        self.gain = QualityGain(m, init_low=0.5, init_high=2.0)
        self.inv_gain = QualityGain(m, init_low=2.0, init_high=0.5)

    def analysis(self) -> torch.nn.Module:
        return self.g_a

    def synthesis(self) -> torch.nn.Module:
        return self.g_s

    def analyse(self, x: torch.Tensor, quality) -> torch.Tensor:
        return self.g_a(x) * self.gain(quality_tensor(quality, x))

    def synthesis_input(self, y_hat: torch.Tensor, quality) -> torch.Tensor:
        return y_hat * self.inv_gain(quality_tensor(quality, y_hat))

    def synthesise(self, y_hat: torch.Tensor, quality) -> torch.Tensor:
        return self.g_s(self.synthesis_input(y_hat, quality))


#: where the hyperprior pieces were stored before the latent package (weights files keep it)
HYPER_LAYOUT = {"latent.h_a.": "h_a.", "latent.h_s.": "h_s.", "latent.z.prior.": "z_prior."}


class HyperLatentCoding:
    """Coding through ``self.latent`` (a :class:`~neuralcodec.latent.hyperprior.Hyperprior`):
    substream ``z``, then ``y``: the inner codec's streams, behind a table of their lengths
    when ``packed_y`` (channel groups x checkerboard passes), else its one stream."""

    packed_y = False
    latent: Hyperprior

    @torch.no_grad()
    def compress_latent(self, y: torch.Tensor) -> Compressed:
        streams, y_hat = self.latent.compress(y)
        y_stream = pack_streams(streams[1:]) if self.packed_y else streams[1]
        return Compressed({"z": streams[0], "y": y_stream}, {"latent_hw": list(y.shape[-2:])}, y_hat)

    @torch.no_grad()
    def decode_latents(self, compressed: Compressed) -> torch.Tensor:
        h, w = latent_hw(compressed.params, self.latent.stride)
        data = compressed.streams["y"]
        y_streams = unpack_streams(data, self.latent.inner.stream_count) if self.packed_y else [data]
        return self.latent.decompress([compressed.streams["z"], *y_streams], (1, self.latent_channels, h, w))

    # the hyper path by its usual names (trit-plane and the video trainer use them)
    @property
    def h_a(self) -> torch.nn.Module:
        return self.latent.h_a

    @property
    def h_s(self) -> ExactNet:
        return self.latent.h_s

    @property
    def z_prior(self) -> FactorizedPrior:
        return self.latent.z.prior


class HyperpriorCodec(HyperLatentCoding, GainedCodec):
    """Gained transforms around ``Hyperprior(h_a, Factorized, h_s, inner)``; subclasses set
    ``self.latent.inner`` (the codec of y given the hyper-synthesis output) and extend
    ``self.layout`` with where its modules were stored before."""

    hyper_out: int  # channels of the hyper-synthesis output
    # builders of the hyper transforms: (m, n) -> h_a and (n, m, hyper_out) -> h_s (an ExactNet)
    hyper_analysis = staticmethod(hyper_analysis)
    hyper_synthesis = staticmethod(hyper_synthesis)

    def __init__(self, n: int, m: int, hyper_out: int, **transform):
        super().__init__(n, m, **transform)
        h_a = self.hyper_analysis(m, n)
        h_s = self.hyper_synthesis(n, m, hyper_out)
        self.latent = Hyperprior(h_a, Factorized(n), h_s, None)
        self.layout = StoredLayout(HYPER_LAYOUT)
        self.layout.install(self)

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> dict:
        y_hat, likelihoods = self.latent(self.analyse(x, quality))
        return {"x_hat": self.synthesise(y_hat, quality), "likelihoods": likelihoods}

    def forward_y(self, y: torch.Tensor, hyper: torch.Tensor):
        """(y_hat, likelihoods of y) given the float hyper-synthesis output."""
        y_hat, likelihoods = self.latent.inner(y, hyper)
        return y_hat, likelihoods["y"]

    def aux_loss(self) -> torch.Tensor:
        return self.latent.aux_loss()

    def update(self) -> None:
        self.latent.update()
