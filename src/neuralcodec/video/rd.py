"""Rate-distortion of a video codec on clips with real bitstreams, and what its P-frames earn.

:func:`code_clip` encodes frames into an in-memory ``.ncv``, decodes it and returns the
whole-stream rate (header included), the mean PSNR-RGB and per-frame bits and PSNRs.
:func:`clip_rd` runs it at several qualities with the GOP structure asked for and all-intra
(every frame an I-frame, the same image codec), and :func:`p_frame_cost` turns the two into
the cost of a P-frame relative to an I-frame of the same content at equal PSNR: the BD-rate
(pchip) of the P-frames' (bpp, PSNR) points against the all-intra points, as a ratio
(1 + BD / 100; the target is <= 0.5).
"""
from __future__ import annotations

import io
import time

import numpy as np

from neuralcodec.eval.metrics import psnr


def code_clip(model, frames: list[np.ndarray], quality: float, intra_period: int, device, half: bool = False,
              adaptive_intra: bool = False) -> dict:
    """Encode and decode ``frames``; rates in bits per pixel, PSNR-RGB in dB."""
    from neuralcodec.video.codec import decode_frames, encode_frames

    h, w = frames[0].shape[:2]
    buf, kinds, bits = io.BytesIO(), [], []

    def on_frame(_i, name, nbytes):
        kinds.append(name)
        bits.append(8 * nbytes)
    t0 = time.perf_counter()
    encode_frames(model, frames, buf, w, h, (25, 1), quality, intra_period, device, half, on_frame=on_frame,
                  adaptive_intra=adaptive_intra)
    t1 = time.perf_counter()
    buf.seek(0)
    scores = [min(psnr(ref, rec), 100.0) for ref, rec in zip(frames, decode_frames(model, buf, device, half))]
    t2 = time.perf_counter()
    n = len(frames)
    return {"quality": quality, "bpp": 8 * len(buf.getvalue()) / (n * w * h), "psnr": float(np.mean(scores)),
            "kinds": "".join(kinds), "frame_bits": bits, "frame_psnr": [round(s, 3) for s in scores],
            "encode_fps": n / (t1 - t0), "decode_fps": n / (t2 - t1)}


def frame_type_point(row: dict, kind: str, pixels: int) -> tuple[float, float] | None:
    """(bpp, mean PSNR) of the frames of one kind ("I" or "P") of a :func:`code_clip` row."""
    sel = [i for i, k in enumerate(row["kinds"]) if k == kind]
    if not sel:
        return None
    return (float(np.mean([row["frame_bits"][i] for i in sel])) / pixels,
            float(np.mean([row["frame_psnr"][i] for i in sel])))


def p_frame_cost(gop_rows: list[dict], intra_rows: list[dict], pixels: int) -> dict:
    """Bits of a P-frame over those of an I-frame at equal PSNR (pchip BD-rate of the
    P-frame points against the all-intra points); ``ratio`` is None without a PSNR overlap."""
    from neuralcodec.eval.bdrate import BDError, bd_rate
    p = [pt for pt in (frame_type_point(r, "P", pixels) for r in gop_rows) if pt is not None]
    i = [pt for pt in (frame_type_point(r, "I", pixels) for r in intra_rows) if pt is not None]
    out = {"p_points": p, "i_points": i, "ratio": None}
    if len(p) < 2 or len(i) < 2:
        out["note"] = "fewer than two points"
        return out
    try:
        bd = bd_rate([b for b, _ in i], [d for _, d in i], [b for b, _ in p], [d for _, d in p])
        out.update(bd_rate=bd, ratio=1 + bd / 100)
    except BDError:
        # no PSNR overlap: compare the best P point with the cheapest I point instead
        best_p, cheap_i = max(p, key=lambda pt: pt[1]), min(i, key=lambda pt: pt[0])
        out.update(best_p_over_cheapest_i=best_p[0] / cheap_i[0], psnr_gap_db=cheap_i[1] - best_p[1])
        out["note"] = (f"undefined: no PSNR overlap (P-frames {min(d for _, d in p):.2f}-{max(d for _, d in p):.2f} dB, "
                       f"I-frames {min(d for _, d in i):.2f}-{max(d for _, d in i):.2f} dB); the best P point costs "
                       f"{out['best_p_over_cheapest_i']:.3f} of the cheapest I point and is "
                       f"{out['psnr_gap_db']:.2f} dB below it")
    return out


def clip_rd(model, frames: list[np.ndarray], qualities, intra_period: int, device, half: bool = False,
            intra_rows: list[dict] | None = None, adaptive_intra: bool = False) -> dict:
    """RD rows at each quality with ``intra_period`` (and the encoder's I/P choice with
    ``adaptive_intra``), the all-intra rows (given, e.g. cached for a shared I-frame codec, or
    computed at the same qualities and at quality 1, which reaches down towards the P-frames'
    PSNR) and the P-frame cost."""
    h, w = frames[0].shape[:2]
    rows = [code_clip(model, frames, q, intra_period, device, half, adaptive_intra) for q in qualities]
    if intra_rows is None:
        intra_rows = [code_clip(model, frames, q, 1, device, half) for q in sorted({1.0, *qualities})]
    return {"size": [w, h], "frames": len(frames), "rows": rows, "intra_rows": intra_rows,
            "p_frame_cost": p_frame_cost(rows, intra_rows, w * h)}
