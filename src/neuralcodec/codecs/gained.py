"""Shared skeletons: a gained analysis/synthesis transform pair, and the hyperprior
structure (hyper-analysis, factorized hyper-latent, integer-exact hyper-synthesis)."""
from __future__ import annotations

import torch

from neuralcodec.codecs.base import Compressed, LatentImageCodec, QualityGain
from neuralcodec.codecs.transforms import (analysis, hyper_analysis, hyper_synthesis, residual_analysis,
                                           residual_synthesis, synthesis)
from neuralcodec.entropy.exact import to_fixed
from neuralcodec.entropy.factorized import FactorizedPrior


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

    def analyse(self, x: torch.Tensor, quality) -> torch.Tensor:
        return self.g_a(x) * self.gain(quality_tensor(quality, x))

    def synthesise(self, y_hat: torch.Tensor, quality) -> torch.Tensor:
        return self.g_s(y_hat * self.inv_gain(quality_tensor(quality, y_hat)))


class HyperLatentCoding:
    """Coding with a hyper-latent (a mixin for ImageCodecs with ``h_a``, an integer-exact
    ``h_s`` and a factorized ``z_prior``): z is coded first, and the hyper-synthesis output
    (fixed point) parametrises y's coding in ``_y_compress`` / ``_y_decompress``."""

    @torch.no_grad()
    def compress_latent(self, y: torch.Tensor) -> Compressed:
        z_stream, z_hat = self.z_prior.compress(self.h_a(y))
        hyper = self.h_s.exact(to_fixed(z_hat))
        y_stream, y_hat = self._y_compress(y, hyper)
        return Compressed({"z": z_stream, "y": y_stream}, {"latent_hw": list(y.shape[-2:])}, y_hat)

    @torch.no_grad()
    def decode_latents(self, compressed: Compressed) -> torch.Tensor:
        device = next(self.parameters()).device
        h, w = latent_hw(compressed.params, 4)
        shape = (1, self.z_prior.bottleneck.channels, h // 4, w // 4)
        z_hat = self.z_prior.decompress(compressed.streams["z"], shape, device)
        hyper = self.h_s.exact(to_fixed(z_hat))
        return self._y_decompress(compressed.streams["y"], hyper)

    def _y_compress(self, y, hyper_fixed) -> tuple[bytes, torch.Tensor]:
        raise NotImplementedError

    def _y_decompress(self, data: bytes, hyper_fixed) -> torch.Tensor:
        raise NotImplementedError


class HyperpriorCodec(HyperLatentCoding, GainedCodec):
    """Adds a hyper-latent z with a factorized prior; subclasses model y given the
    hyper-synthesis output (``_y_forward``, ``_y_compress``, ``_y_decompress``)."""

    hyper_out: int  # channels of the hyper-synthesis output
    # builders of the hyper transforms: (m, n) -> h_a and (n, m, hyper_out) -> h_s (an ExactNet)
    hyper_analysis = staticmethod(hyper_analysis)
    hyper_synthesis = staticmethod(hyper_synthesis)

    def __init__(self, n: int, m: int, hyper_out: int, **transform):
        super().__init__(n, m, **transform)
        self.h_a = self.hyper_analysis(m, n)
        self.h_s = self.hyper_synthesis(n, m, hyper_out)
        self.z_prior = FactorizedPrior(n)

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> dict:
        y = self.analyse(x, quality)
        z_hat, z_lik = self.z_prior(self.h_a(y))
        y_hat, y_lik = self._y_forward(y, self.h_s(z_hat))
        return {"x_hat": self.synthesise(y_hat, quality), "likelihoods": {"y": y_lik, "z": z_lik}}

    def aux_loss(self) -> torch.Tensor:
        return self.z_prior.aux_loss()

    def update(self) -> None:
        self.z_prior.update()
        for module in self.modules():
            if hasattr(module, "freeze"):
                module.freeze()

    def _y_forward(self, y, hyper):
        raise NotImplementedError
