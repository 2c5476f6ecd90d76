"""Rate control for ``video-rt``: per-frame qualities that hold a bitrate over a sequence.

Model: a frame of kind k (the I-frame, or a P-frame at position class ``gop_index mod 4``)
at quality q costs ``bits = exp(alpha_k + beta_t * q)``, with one slope per frame type t
(I or P). Before each frame the controller
plans over a window of the next ``window`` frames (the intra period, or 32; up to the end
of the sequence where its length is known): it finds the base quality whose planned bits
over the window, with the GOP's quality offsets, fill what is left of the budget
(``target * (frames coded + window) - bits spent``, header and record overhead included),
and codes the frame at that base plus its offset. After coding, alpha_k is re-estimated from
the measured bits (the last I-frame; a running mean for P classes). An I-frame, or the first
P-frame, whose cost misses the plan by more than ``retry`` is coded once more at the
re-planned quality, and the two measurements of the first frame of a type give its slope
(otherwise the slopes stay at their priors: consecutive frames differ in content more than
in quality, so their pairs would measure the content). The first I-frame decides much of a
short sequence's rate before any P-frame is seen, so :meth:`RateController.calibrate` first
codes the first two frames on a scratch encoder (I, then P) to measure both kinds. The frame's quality travels
in its record (``GopConfig.frame_quality``), so the decoder needs no model.
"""
from __future__ import annotations

import math

from neuralcodec.codecs.base import QUALITY_MAX, QUALITY_MIN

# Priors until frames are measured, from video-rt's shipped (round-9) weights on BasketballPass
# (16 frames, intra period 32): I-frames 0.41 bpp at quality 2.5 and 1.80 at 8.5 (log-rate
# slope 0.245 per quality step), P-frames 0.105 and 0.34 bpp on average at 2 and 8 (slope
# 0.20): a P-frame costs about a quarter of an I-frame at the same quality.
P_TO_I = 0.25
I_BPP_AT_Q2 = 0.37
SLOPES = {"I": 0.245, "P": 0.20}


class RateController:
    """Choose each frame's quality for a target of ``bits_per_frame``."""

    def __init__(self, bits_per_frame: float, pixels: int, gop, frames: int = 0, window: int = 0,
                 retry: float = 0.25):
        if not bits_per_frame > 0:
            raise ValueError("the target rate must be positive")
        self.target, self.gop, self.frames = float(bits_per_frame), gop, frames
        self.window = window or (gop.intra_period if gop.intra_period > 0 else 32)
        self.retry = retry
        self.beta = dict(SLOPES)
        self.alpha = {"I": math.log(I_BPP_AT_Q2 * pixels) - SLOPES["I"] * 2.0}
        self.spent = 0.0            # bits so far, as written (see account)
        self.coded = 0
        self.retries = 0
        self.qualities: list[float] = []

    # -- model ------------------------------------------------------------------------
    def _kind(self, gop_index: int):
        return "I" if gop_index == 0 else ("P", gop_index % len(self.gop.p_offsets))

    @staticmethod
    def _type(kind) -> str:
        return "I" if kind == "I" else "P"

    def _alpha(self, kind) -> float:
        if kind in self.alpha:
            return self.alpha[kind]
        known = [v for k, v in self.alpha.items() if k != "I"]
        if known:
            return sum(known) / len(known)
        return self.alpha["I"] + (self.beta["I"] - self.beta["P"]) * 4.0 + math.log(P_TO_I)   # equal at q4

    def _bits(self, kind, q: float) -> float:
        return math.exp(self._alpha(kind) + self.beta[self._type(kind)] * q)

    def _positions(self, start_gop_index: int, start: int) -> list[int]:
        """GOP positions of the frames of the planning window starting at frame ``start``."""
        n = self.window if not self.frames else max(1, min(self.window, self.frames - start))
        out, g = [], start_gop_index
        for i in range(n):
            if i:
                g = 0 if self.gop.is_intra(start + i) else g + 1
            out.append(g)
        return out

    def _planned_bits(self, base: float, positions: list[int]) -> float:
        return sum(self._bits(self._kind(g), self.gop.quality(base, g)) for g in positions)

    def plan(self, gop_index: int) -> float:
        """Quality of the next frame (at GOP position ``gop_index``)."""
        positions = self._positions(gop_index, self.coded)
        budget = max(self.target * (self.coded + len(positions)) - self.spent, 0.15 * self.target * len(positions))
        lo, hi = QUALITY_MIN - 2.0, QUALITY_MAX + 2.0      # the offsets move frames by up to ~1
        for _ in range(50):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self._planned_bits(mid, positions) < budget else (lo, mid)
        return self.gop.quality(lo, gop_index)

    def observe(self, gop_index: int, q: float, bits: float) -> None:
        kind = self._kind(gop_index)
        measured = math.log(max(bits, 8.0)) - self.beta[self._type(kind)] * q
        if kind == "I" or kind not in self.alpha:
            self.alpha[kind] = measured
        else:
            self.alpha[kind] += 0.5 * (measured - self.alpha[kind])

    # -- coding -----------------------------------------------------------------------
    def encode(self, enc, pixels):
        """Code the next frame of ``enc`` (a VideoEncoder) at a planned quality; returns what
        ``VideoEncoder.encode`` does."""
        x = enc.prepare(pixels)
        intra, g = enc.next_is_intra(), enc.next_gop_index()
        kind = self._kind(g)
        first = kind not in self.alpha or (kind == "I" and self.coded == 0)
        q = self.plan(g)
        predicted = self._bits(kind, q)
        q, payload, y_hat = enc.code(x, intra, q)
        bits = 8.0 * len(payload)
        self.observe(g, q, bits)
        if (intra or first) and abs(math.log(bits / predicted)) > math.log1p(self.retry):
            q2 = self.plan(g)
            if abs(q2 - q) > 0.05:
                q2, payload2, y_hat2 = enc.code(x, intra, q2)
                bits2 = 8.0 * len(payload2)
                if first and abs(q2 - q) >= 0.3 and bits2 > 0 and bits > 0:
                    slope = (math.log(bits2) - math.log(bits)) / (q2 - q)
                    self.beta[self._type(kind)] = min(0.8, max(0.03, slope))
                self.observe(g, q2, bits2)
                q, payload, y_hat = q2, payload2, y_hat2
                self.retries += 1
        self.qualities.append(q)
        self.coded += 1
        return enc.commit(intra, q, payload, y_hat)

    def calibrate(self, scratch, first_frames) -> None:
        """Measure the I and P costs of this content on a scratch encoder (coded and thrown
        away: the first frame as I, the second as P), then start over with what was learnt."""
        for pixels in first_frames[:2]:
            self.encode(scratch, pixels)
        self.spent, self.coded, self.qualities = 0.0, 0, []

    def account(self, total_bytes: int) -> None:
        """Bits written so far (header and record overhead included)."""
        self.spent = 8.0 * total_bytes

    def summary(self) -> dict:
        n = max(1, self.coded)
        return {"target_bits_per_frame": self.target, "achieved_bits_per_frame": self.spent / n,
                "frames": self.coded, "retries": self.retries,
                "quality_min": min(self.qualities, default=0.0), "quality_max": max(self.qualities, default=0.0),
                "quality_mean": sum(self.qualities) / n}
