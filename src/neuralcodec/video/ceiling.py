"""How good a P-frame of a ``video-rt`` model can get, whatever its rate.

:func:`p_frame_ceiling` codes the first frame of a pair as the I-frame (the attached image
codec, float path, at the I-frame's quality) and runs the P-frame transforms on the second with
the latent rounded (as coded, without the entropy model's mean shift), quantised 4x finer, and
not quantised at all. The last is the transforms' ceiling: if it stays far below the I-frame's
PSNR, more rate cannot help the P-frames and the fix is in the transforms (latent width,
resolution, training), not in the entropy model or the rate control.

The same figures split by region tell which of the two jobs of a P-frame limits it: where the
two source frames are equal (``still``: every channel within ``STILL_THRESHOLD`` levels) it has
only to keep the reference, elsewhere (``moving``) it must move or code new content; the
reference after the learned warp alone (``aligned``) shows what the motion compensation gives.
"""
from __future__ import annotations

import numpy as np
import torch

from neuralcodec.eval.metrics import psnr
from neuralcodec.video.model import STRIDE, frame_quality

STILL_THRESHOLD = 8          # levels (0..255): a pixel is still where no channel changes more
REGION_KEYS = ("copy", "aligned", "unquantised")


def _cropped(frame: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 frame cropped to a multiple of STRIDE (the latent grid)."""
    h, w = frame.shape[0] // STRIDE * STRIDE, frame.shape[1] // STRIDE * STRIDE
    if h == 0 or w == 0:
        raise ValueError(f"frames must be at least {STRIDE}x{STRIDE} pixels, got {frame.shape[1]}x{frame.shape[0]}")
    return np.ascontiguousarray(frame[:h, :w])


def _tensor(frame: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(frame).to(device).permute(2, 0, 1)[None].float() / 255


def _u8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1)[0].permute(1, 2, 0) * 255).round().byte().cpu().numpy()


def region_psnr(x: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> float:
    """PSNR-RGB (dB) over the pixels of ``mask`` (H x W bool); nan where the mask is empty."""
    if not mask.any():
        return float("nan")
    return psnr(x[mask], ref[mask])


@torch.no_grad()
def p_frame_ceiling(model, first: np.ndarray, second: np.ndarray, quality: float, device="cpu") -> dict:
    """PSNR-RGB (dB) of the I-frame and of the P-frame after it: ``copy`` (the decoded
    I-frame as the P-frame), ``rounded``, ``finer`` (latent steps 4x smaller) and
    ``unquantised``; ``still_fraction`` and, over the still and the moving pixels,
    ``copy_*``, ``aligned_*`` (the warped reference) and ``unquantised_*``. ``model``: a
    VideoRT with its image codec attached (``video.weights.load``); both run in eval mode (the
    I-frame rounded, as coded) and are left in the mode they had."""
    a, b = _cropped(first), _cropped(second)
    modes = [(net, net.training) for net in (model, model.intra)]
    for net, _ in modes:
        net.eval()
    try:
        x0, x1 = _tensor(a, device), _tensor(b, device)
        q_i, q_p = frame_quality(quality, 0), frame_quality(quality, 1)
        xi = model.intra(x0, torch.tensor([q_i], device=device))["x_hat"].clamp(0, 1)
        ctx = model.context_from_frame(xi)
        y = model.analyse(x1, xi, ctx, q_p)
        out = {"quality": quality, "i_frame": psnr(_u8(xi), a), "copy": psnr(_u8(xi), b)}
        pictures = {"copy": _u8(xi), "aligned": _u8(model.aligned_reference(y, xi, ctx, q_p))}
        for name, y_hat in (("rounded", torch.round(y)), ("finer", torch.round(4 * y) / 4), ("unquantised", y)):
            x_hat, _ = model.synthesise(y_hat, xi, ctx, q_p)
            pictures[name] = _u8(x_hat)
            out[name] = psnr(pictures[name], b)
        still = (np.abs(a.astype(np.int16) - b.astype(np.int16)) <= STILL_THRESHOLD).all(-1)
        out["still_fraction"] = float(still.mean())
        for name in REGION_KEYS:
            out[f"{name}_still"] = region_psnr(pictures[name], b, still)
            out[f"{name}_moving"] = region_psnr(pictures[name], b, ~still)
    finally:
        for net, training in modes:
            net.train(training)
    return out


def frame_pairs(frames: list[np.ndarray], count: int, every: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to ``count`` pairs (frame k, frame k + 1) for k = 0, every, 2 * every, ..."""
    return [(frames[k], frames[k + 1]) for k in range(0, len(frames) - 1, every)][:count]


def mean_ceiling(model, pairs, quality: float, device="cpu") -> dict:
    """:func:`p_frame_ceiling` averaged over frame pairs (the PSNR keys only)."""
    rows = [p_frame_ceiling(model, a, b, quality, device) for a, b in pairs]
    out = {}
    for k in rows[0]:
        if k != "quality":
            values = [r[k] for r in rows if not np.isnan(r[k])]      # a region may be empty in a pair
            out[k] = float(np.mean(values)) if values else float("nan")
    return out
