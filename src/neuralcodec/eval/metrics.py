"""Image quality metrics on uint8 pixels: PSNR and MS-SSIM (numpy only).

MS-SSIM follows Wang et al. 2003 with the usual settings (11-tap Gaussian, sigma 1.5,
K1=0.01, K2=0.03, five scales, 2x2 average pooling, zero padding on odd sizes), the same
conventions as pytorch-msssim and CompressAI, so values are comparable with published curves.
"""
from __future__ import annotations

import math

import numpy as np

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_SIDE = 161  # five scales of an 11-tap window need a side > 10 * 2**4


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over all samples."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(d * d))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB over all samples (inf for identical inputs)."""
    err = mse(a, b)
    return math.inf if err == 0 else 10.0 * math.log10(peak * peak / err)


def _gaussian(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(maps: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation over the last two axes."""
    from scipy.ndimage import correlate1d

    half = len(win) // 2
    out = maps
    for axis in (-2, -1):
        if out.shape[axis] < len(win):
            continue  # like pytorch-msssim: skip a dimension smaller than the window
        out = correlate1d(out, win, axis=axis, mode="constant")
        sl = [slice(None)] * out.ndim
        sl[axis] = slice(half, out.shape[axis] - half)
        out = out[tuple(sl)]
    return out


def _ssim_cs(x: np.ndarray, y: np.ndarray, win: np.ndarray, peak: float):
    """Per-channel mean SSIM and contrast-structure terms for (C, H, W) arrays.

    Inputs are centred on peak/2 (variances do not change; the means are shifted back),
    which keeps float32 statistics accurate to ~1e-6; cs needs only sigma_x^2 + sigma_y^2.
    """
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    f = _filter_valid(np.stack([x, y, x * x + y * y, x * y]), win)
    mu_x, mu_y = f[0], f[1]
    s_sum = f[2] - mu_x * mu_x - mu_y * mu_y
    sxy = f[3] - mu_x * mu_y
    cs_map = (2 * sxy + c2) / (s_sum + c2)
    mu_x, mu_y = mu_x + peak / 2, mu_y + peak / 2
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1) * cs_map
    return (ssim_map.mean(axis=(-2, -1), dtype=np.float64),
            cs_map.mean(axis=(-2, -1), dtype=np.float64))


def _pool2(x: np.ndarray, zero: float = 0.0) -> np.ndarray:
    """2x2 average pooling, padding one sample of value ``zero`` (0 before centring) each
    side of an odd dimension."""
    pad = [(0, 0)] + [(s % 2, s % 2) for s in x.shape[1:]]
    if any(p[0] for p in pad):
        x = np.pad(x, pad, constant_values=zero)
    h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
    x = x[:, :h, :w]
    return 0.25 * (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2])


def ms_ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """MS-SSIM of two (H, W, C) or (H, W) images, averaged over channels; NaN if too small."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        return math.nan
    x = np.atleast_3d(a).astype(np.float32).transpose(2, 0, 1) - np.float32(peak / 2)
    y = np.atleast_3d(b).astype(np.float32).transpose(2, 0, 1) - np.float32(peak / 2)
    win = _gaussian()
    terms: list = []
    for level in range(len(MS_SSIM_WEIGHTS)):
        ssim_c, cs_c = _ssim_cs(x, y, win, peak)
        if level < len(MS_SSIM_WEIGHTS) - 1:
            terms.append(np.maximum(cs_c, 0))
            x, y = _pool2(x, -peak / 2), _pool2(y, -peak / 2)
    terms.append(np.maximum(ssim_c, 0))
    w = np.asarray(MS_SSIM_WEIGHTS)[:, None]
    return float(np.prod(np.stack(terms) ** w, axis=0).mean())


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on the dB scale used by published curves: -10 log10(1 - MS-SSIM)."""
    if value is None or math.isnan(value):
        return math.nan
    return math.inf if value >= 1 else -10.0 * math.log10(1.0 - value)


def image_metrics(ref: np.ndarray, rec: np.ndarray, metrics: tuple[str, ...]) -> dict[str, float]:
    """The requested metrics ('psnr', 'ms-ssim') under CompressAI's result keys."""
    out: dict[str, float] = {}
    if "psnr" in metrics:
        out["psnr-rgb"] = psnr(ref, rec)
    if "ms-ssim" in metrics:
        out["ms-ssim-rgb"] = ms_ssim(ref, rec)
        out["ms-ssim-db-rgb"] = ms_ssim_db(out["ms-ssim-rgb"])
    return out
