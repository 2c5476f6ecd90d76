"""Bjøntegaard deltas (BD-rate, BD-PSNR) with pchip or classic cubic interpolation.

``pchip`` integrates a piecewise cubic Hermite interpolant through the points (the method
of current JVET/AOM practice and of the `bjontegaard` package); ``cubic`` is the original
VCEG-M33 third-order polynomial fit. Sign convention: a negative BD-rate means the test
codec needs fewer bits than the anchor for the same quality; a positive BD-PSNR means the
test codec has higher quality at the same rate.
"""
from __future__ import annotations

import numpy as np

from neuralcodec.errors import NeuralCodecError

METHODS = ("pchip", "cubic")


class BDError(NeuralCodecError, ValueError):
    """The curves do not allow a Bjøntegaard delta (too few points, no overlap, ...)."""


def _prepare(x, y, what: str, method: str, axis: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise BDError(f"{what} curve: rate and quality lists differ in length")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    need = 4 if method == "cubic" else 2
    if len(x) < need:
        raise BDError(f"{what} curve: {method} BD needs at least {need} finite points, got {len(x)}")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.any(np.diff(x) <= 0):
        raise BDError(f"{what} curve has two points with the same {axis}; BD needs distinct points")
    return x, y


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    if method == "pchip":
        from scipy.interpolate import PchipInterpolator

        return float(PchipInterpolator(x, y).integrate(lo, hi))
    poly = np.polyint(np.polyfit(x, y, 3))
    return float(np.polyval(poly, hi) - np.polyval(poly, lo))


def _bd(xa, ya, xt, yt, method: str, axis_name: str) -> float:
    """Mean of (test - anchor) of y over the overlap of the x ranges."""
    if method not in METHODS:
        raise BDError(f"unknown BD interpolation {method!r}; use one of {', '.join(METHODS)}")
    xa, ya = _prepare(xa, ya, "anchor", method, axis_name)
    xt, yt = _prepare(xt, yt, "test", method, axis_name)
    lo, hi = max(xa[0], xt[0]), min(xa[-1], xt[-1])
    if hi <= lo:
        raise BDError(
            f"curves do not overlap in {axis_name} (anchor {xa[0]:.4g}..{xa[-1]:.4g}, "
            f"test {xt[0]:.4g}..{xt[-1]:.4g}); BD is undefined")
    return (_integral(xt, yt, lo, hi, method) - _integral(xa, ya, lo, hi, method)) / (hi - lo)


def bd_rate(rate_anchor, dist_anchor, rate_test, dist_test, method: str = "pchip") -> float:
    """Average rate difference in percent at equal quality (negative: test saves bits)."""
    _check_rates(rate_anchor, rate_test)
    d = _bd(dist_anchor, np.log10(rate_anchor), dist_test, np.log10(rate_test), method, "quality")
    return float((10.0 ** d - 1.0) * 100.0)


def bd_quality(rate_anchor, dist_anchor, rate_test, dist_test, method: str = "pchip") -> float:
    """Average quality difference (e.g. dB for PSNR) at equal rate (positive: test is better)."""
    _check_rates(rate_anchor, rate_test)
    return float(_bd(np.log10(rate_anchor), dist_anchor, np.log10(rate_test), dist_test, method, "rate"))


bd_psnr = bd_quality


def overlap_fraction(a, b) -> float:
    """Length of the overlap of two value ranges over the length of their union."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    span = max(a.max(), b.max()) - min(a.min(), b.min())
    return 0.0 if span <= 0 else max(hi - lo, 0.0) / span


def _check_rates(*rates) -> None:
    for r in rates:
        if np.any(np.asarray(r, dtype=np.float64) <= 0):
            raise BDError("rates must be positive for a BD computation")
