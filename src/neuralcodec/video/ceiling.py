"""How good a P-frame of a ``video-rt`` model can get, whatever its rate.

:func:`p_frame_ceiling` codes the first frame of a pair as the I-frame (the attached image
codec, float path, at the I-frame's quality) and runs the P-frame transforms on the second with
the latent rounded (as coded, without the entropy model's mean shift), quantised 4x finer, and
not quantised at all. The last is the transforms' ceiling: if it stays far below the I-frame's
PSNR, more rate cannot help the P-frames and the fix is in the transforms (latent width,
resolution, training), not in the entropy model or the rate control.
"""
from __future__ import annotations

import numpy as np
import torch

from neuralcodec.eval.metrics import psnr
from neuralcodec.video.model import STRIDE, frame_quality


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


@torch.no_grad()
def p_frame_ceiling(model, first: np.ndarray, second: np.ndarray, quality: float, device="cpu") -> dict:
    """PSNR-RGB (dB) of the I-frame and of the P-frame after it: ``copy`` (the decoded
    I-frame as the P-frame), ``rounded``, ``finer`` (latent steps 4x smaller) and
    ``unquantised``. ``model``: a VideoRT with its image codec attached (``video.weights.load``);
    both run in eval mode (the I-frame rounded, as coded) and are left in the mode they had."""
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
        for name, y_hat in (("rounded", torch.round(y)), ("finer", torch.round(4 * y) / 4), ("unquantised", y)):
            x_hat, _ = model.synthesise(y_hat, xi, ctx, q_p)
            out[name] = psnr(_u8(x_hat), b)
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
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "quality"}
