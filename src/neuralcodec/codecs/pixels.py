"""Pixels <-> tensors for the codecs: the input check, conversions and stride padding."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neuralcodec.errors import InputError

MAX_PIXELS = 8192 * 8192 * 4   # refuse absurd sizes before allocating


def check_pixels(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` if it is an (H, W, 3) uint8 array of a codable size, else InputError."""
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise InputError("pixels must be a uint8 array of shape (H, W, 3)")
    h, w = pixels.shape[:2]
    if h < 1 or w < 1 or h * w > MAX_PIXELS:
        raise InputError(f"unsupported image size {w}x{h}")
    return pixels


def to_tensor(pixels: np.ndarray, device) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1] on ``device``."""
    return torch.tensor(pixels).to(device).permute(2, 0, 1)[None].float() / 255


def pixel_tensor(x: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) float in [0, 1] -> (H, W, 3) uint8 on the same device."""
    return (x[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0)


def to_pixels(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] -> (H, W, 3) uint8 numpy array."""
    return pixel_tensor(x).cpu().numpy()


def pad_to_multiple(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Pad (N, C, H, W) on the bottom and right, replicating the edge, to multiples of ``stride``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    if not (ph or pw):
        return x
    # replicate padding works for any size, 1x1 included
    return F.pad(x, (0, pw, 0, ph), mode="replicate")
