"""Rate-distortion loss for variable-rate training."""
from __future__ import annotations

import math

import torch

from neuralcodec.entropy.likelihoods import bits_per_pixel

#: MS-SSIM distortion is ``lambda * MSSSIM_FACTOR * (1 - MS-SSIM)``. CompressAI's MS-SSIM
#: lambdas (2.40 ... 220 for qualities 1..8) are about 1333x ... 1222x its MSE lambdas
#: (0.0018 ... 0.18); 1280 is close to their geometric mean, so one quality maps to a
#: similar rate under either distortion.
MSSSIM_FACTOR = 1280.0


def psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    """PSNR in dB for images in [0, 1]."""
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


class RateDistortionLoss:
    """``mean(lambda(q) * D + bpp)`` with D = 255^2 * MSE, or MSSSIM_FACTOR * (1 - MS-SSIM)."""

    def __init__(self, distortion: str = "mse"):
        if distortion not in ("mse", "ms-ssim"):
            raise ValueError(f"unknown distortion {distortion!r}")
        self.distortion = distortion
        self._msssim = None
        if distortion == "ms-ssim":
            try:
                from pytorch_msssim import ms_ssim
            except ImportError:
                from neuralcodec.errors import InputError
                raise InputError("--distortion ms-ssim needs the pytorch_msssim package") from None
            self._msssim = ms_ssim

    def __call__(self, out: dict, x: torch.Tensor, lam: torch.Tensor) -> dict:
        x_hat = out["x_hat"].float()
        n, _, h, w = x.shape
        bpp = bits_per_pixel(out["likelihoods"], h * w)
        mse = (x_hat - x).pow(2).flatten(1).mean(1)
        if self.distortion == "mse":
            dist = 255.0**2 * mse
        else:
            ssim = self._msssim(x_hat.clamp(0, 1), x, data_range=1.0, size_average=False)
            dist = MSSSIM_FACTOR * (1.0 - ssim)
        loss = (lam * dist + bpp).mean()
        with torch.no_grad():
            psnr = psnr_from_mse(mse).mean()
        return {"loss": loss, "bpp": bpp.mean().detach(), "mse": mse.mean().detach(), "psnr": psnr}


def lr_at(step: int, total: int, base: float, schedule: str, drops=(0.8, 0.95), factor: float = 0.1,
          warmup: int = 0, final: float = 0.01, progress: float | None = None) -> float:
    """Learning rate at ``step``: linear warm-up, then constant, step drops at fractions of
    ``total`` (each multiplies by ``factor``), or cosine down to ``final * base``. ``progress``
    (in [0, 1]) replaces ``step / total`` where given (schedules that follow a time budget)."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    if schedule == "constant":
        return base
    if schedule == "step":
        if progress is not None:
            return base * factor ** sum(progress >= f for f in drops)
        return base * factor ** sum(step >= int(f * total) for f in drops)
    if schedule == "cosine":
        t = min(1.0, (step - warmup) / max(1, total - warmup)) if progress is None else min(1.0, progress)
        return base * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t)))
    raise ValueError(f"unknown lr schedule {schedule!r}")
