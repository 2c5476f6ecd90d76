"""Scoring a decoded video: per-frame PSNR-Y/U/V, PSNR-YUV, PSNR-RGB and MS-SSIM, and the
evaluation row (means, rate, speed); shared by the FFmpeg codecs and the neural one."""
from __future__ import annotations

import numpy as np

from neuralcodec.io.colour import yuv_frame_to_rgb, yuv_planes


def frame_scores(ref_rgb, ref_yuv, rec_yuv, metrics, rec_rgb=None) -> dict:
    """Per-frame PSNR-Y/U/V, 6:1:1 PSNR-YUV, PSNR-RGB and MS-SSIM (RGB scores on ``rec_rgb``
    when the codec's output is RGB, else on ``rec_yuv`` converted back)."""
    from neuralcodec.eval.metrics import ms_ssim, psnr

    out = {}
    rec_rgb = yuv_frame_to_rgb(rec_yuv) if rec_rgb is None else rec_rgb
    if "psnr" in metrics:
        y, u, v = (psnr(a, b) for a, b in zip(yuv_planes(ref_yuv), yuv_planes(rec_yuv)))
        out.update({"psnr-y": y, "psnr-u": u, "psnr-v": v, "psnr-yuv": (6 * y + u + v) / 8,
                    "psnr-rgb": psnr(ref_rgb, rec_rgb)})
    if "ms-ssim" in metrics:
        out["ms-ssim-rgb"] = ms_ssim(ref_rgb, rec_rgb)
    return out


def summary_row(scores: list[dict], width: int, height: int, fps: float, size: int,
                t_enc: float, t_dec: float) -> dict:
    """An evaluation row from per-frame scores: means, rate (bpp, kbit/s) and speed."""
    from neuralcodec.eval.metrics import ms_ssim_db

    n = len(scores)
    row = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
    if "ms-ssim-rgb" in row:
        row["ms-ssim-db-rgb"] = ms_ssim_db(row["ms-ssim-rgb"])
    row.update(width=width, height=height, frames=n, fps=float(fps), bytes=size,
               bpp=8.0 * size / (n * width * height), bitrate_kbps=8.0 * size * float(fps) / n / 1000,
               encode_s=t_enc, decode_s=t_dec, encode_fps=n / t_enc if t_enc else None,
               decode_fps=n / t_dec if t_dec else None)
    return row
