"""Pick the quality that meets a rate or PSNR target (bisection on the monotone quality scale)."""
from __future__ import annotations

from dataclasses import dataclass

from neuralcodec.codecs.api import decode_with_model, encode_with_model, psnr
from neuralcodec.codecs.base import QUALITY_MAX, QUALITY_MIN, check_quality

DEFAULT_QUALITY = 4.0
SEARCH_STEPS = 9
MAX_ENCODES = 2 + SEARCH_STEPS     # both ends of the scale, then the bisection


@dataclass
class QualityChoice:
    """The chosen stream: its quality, bytes and rate, its PSNR (measured for --target-psnr
    only) and whether the target was met (False: the nearest end of the scale was taken)."""

    quality: float
    data: bytes
    bpp: float
    psnr: float | None = None
    reached: bool = True


def choose_quality(model, pixels, quality=None, target_bpp=None, target_psnr=None, device=None,
                   on_step=None, refine=None, on_refine_step=None) -> QualityChoice:
    """Encode at ``quality`` (default 4), or search the quality for a target.
    ``on_step(quality, bpp, psnr)`` is called after each encode of a search; ``refine`` and
    ``on_refine_step``: latent refinement of every encode (see ``encode_with_model``)."""
    pixels_count = pixels.shape[0] * pixels.shape[1]
    if target_bpp is None and target_psnr is None:
        q = check_quality(DEFAULT_QUALITY if quality is None else quality)
        data = encode_with_model(model, pixels, q, device, refine, on_refine_step)
        return QualityChoice(q, data, 8 * len(data) / pixels_count)

    def trial(q):
        data = encode_with_model(model, pixels, q, device, refine, on_refine_step)
        bpp = 8 * len(data) / pixels_count
        if target_bpp is not None:
            choice = QualityChoice(q, data, bpp, reached=bpp <= target_bpp)
        else:
            db = psnr(decode_with_model(model, data, device), pixels)
            choice = QualityChoice(q, data, bpp, db, reached=db >= target_psnr)
        if on_step:
            on_step(q, bpp, choice.psnr)
        return choice

    # bpp target: the highest quality that fits; PSNR target: the lowest that reaches it
    want_high = target_bpp is not None
    lo, hi = QUALITY_MIN, QUALITY_MAX
    at_lo, at_hi = trial(lo), trial(hi)
    if want_high:
        if at_hi.reached:
            return at_hi
        if not at_lo.reached:
            return at_lo      # the target is below the lowest rate: the closest possible
        best = at_lo
    else:
        if at_lo.reached:
            return at_lo
        if not at_hi.reached:
            return at_hi      # the target is above the highest PSNR: the closest possible
        best = at_hi
    for _ in range(SEARCH_STEPS):
        mid = trial((lo + hi) / 2)
        if want_high:
            lo, hi = (mid.quality, hi) if mid.reached else (lo, mid.quality)
        else:
            lo, hi = (lo, mid.quality) if mid.reached else (mid.quality, hi)
        if mid.reached:
            best = mid
    return best
