"""Pick the quality that meets a rate or PSNR target (bisection on the monotone quality scale)."""
from __future__ import annotations

from neuralcodec.codecs.api import decode_with_model, encode_with_model, psnr
from neuralcodec.codecs.base import QUALITY_MAX, QUALITY_MIN, check_quality

DEFAULT_QUALITY = 4.0
SEARCH_STEPS = 9


def choose_quality(model, pixels, quality=None, target_bpp=None, target_psnr=None, device=None):
    """Returns (quality, bitstream). Without a target, encodes at ``quality`` (default 4)."""
    if target_bpp is None and target_psnr is None:
        q = check_quality(DEFAULT_QUALITY if quality is None else quality)
        return q, encode_with_model(model, pixels, q, device)
    pixels_count = pixels.shape[0] * pixels.shape[1]

    def good(q):
        data = encode_with_model(model, pixels, q, device)
        if target_bpp is not None:
            return 8 * len(data) / pixels_count <= target_bpp, data
        return psnr(decode_with_model(model, data, device), pixels) >= target_psnr, data

    # bpp target: the highest quality that fits; PSNR target: the lowest that reaches it
    want_high = target_bpp is not None
    lo, hi = QUALITY_MIN, QUALITY_MAX
    ok_lo, data_lo = good(lo)
    ok_hi, data_hi = good(hi)
    if want_high:
        if ok_hi:
            return hi, data_hi
        if not ok_lo:
            return lo, data_lo   # the target is below the lowest rate: closest possible
        best = (lo, data_lo)
    else:
        if ok_lo:
            return lo, data_lo
        if not ok_hi:
            return hi, data_hi
        best = (hi, data_hi)
    for _ in range(SEARCH_STEPS):
        mid = (lo + hi) / 2
        ok, data = good(mid)
        if want_high:
            lo, hi = (mid, hi) if ok else (lo, mid)
            if ok:
                best = (mid, data)
        else:
            lo, hi = (lo, mid) if ok else (mid, hi)
            if ok:
                best = (mid, data)
    return best
