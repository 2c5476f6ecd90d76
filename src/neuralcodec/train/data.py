"""Training data: decoded images held in memory (on the GPU when training there)
and a counter-based crop sampler whose whole state is ``(seed, step)``."""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neuralcodec.errors import InputError
from neuralcodec.train.files import JPEG_SUFFIXES, find_images  # noqa: F401 (re-exported)


def load_image(path: Path, jpeg_downsample: float = 1.0) -> np.ndarray:
    """Decode one image to uint8 HxWx3 (:func:`neuralcodec.io.images.read_rgb8`: 16-bit
    samples scaled), downsampling JPEG sources by ``jpeg_downsample``."""
    from neuralcodec.io.images import read_rgb8

    pixels = read_rgb8(path).pixels
    if Path(path).suffix.lower() in JPEG_SUFFIXES and jpeg_downsample > 1.0:
        from PIL import Image

        h, w = pixels.shape[:2]
        size = (max(1, round(w / jpeg_downsample)), max(1, round(h / jpeg_downsample)))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.LANCZOS), dtype=np.uint8)
    return np.ascontiguousarray(pixels)


def fit_to_crop(img: np.ndarray, crop: int, small: str) -> np.ndarray | None:
    """Pad an image smaller than the crop by symmetric reflection, or return None to skip it."""
    h, w = img.shape[:2]
    if h >= crop and w >= crop:
        return img
    if small == "skip":
        return None
    ph, pw = max(0, crop - h), max(0, crop - w)
    return np.pad(img, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="symmetric")


@dataclass
class Batch:
    x: torch.Tensor        # (B,3,C,C) float in [0,1]
    quality: torch.Tensor  # (B,) float in [1,8]


class ImageBank:
    """Decoded uint8 images on one device, packed into one flat buffer, and per-step crops.

    The crops of step ``s`` come from a generator seeded with ``(seed, s)``: the
    global batch (``batch_size * world_size`` crops) is drawn identically on every
    rank and each rank takes its own slice, so resuming needs only the step. A batch
    is cut with one gather from the flat buffer (no Python loop over crops) and comes
    out in the channels-last memory format.
    """

    def __init__(self, images: list[np.ndarray], names: list[str], crop: int, device: torch.device,
                 weighting: str = "image"):
        if not images:
            raise InputError("no usable training images (all smaller than the crop size?)")
        self.crop = crop
        self.names = names
        self.device = torch.device(device)
        self.shapes = [(int(im.shape[0]), int(im.shape[1])) for im in images]
        h = torch.tensor([s[0] for s in self.shapes], dtype=torch.int64)
        w = torch.tensor([s[1] for s in self.shapes], dtype=torch.int64)
        sizes = (h * w).double()
        self.weights = sizes / sizes.sum() if weighting == "area" else torch.full_like(sizes, 1.0 / len(sizes))
        self._h, self._w = h, w
        offsets = torch.zeros(len(images), dtype=torch.int64)
        offsets[1:] = torch.cumsum(3 * h * w, 0)[:-1]
        # HxWx3 images, flattened and concatenated: pixel (c, y, x) of image i is at
        # offsets[i] + (y * W_i + x) * 3 + c
        self.flat = torch.cat([torch.from_numpy(np.ascontiguousarray(im)).reshape(-1) for im in images]
                              ).to(self.device)
        self._offsets = offsets.to(self.device)
        self._w_dev = w.to(self.device)
        self._ramp = torch.arange(crop, device=self.device)
        self._chan = torch.arange(3, device=self.device)

    def __len__(self) -> int:
        return len(self.shapes)

    @property
    def num_pixels(self) -> int:
        return sum(h * w for h, w in self.shapes)

    def draw(self, seed: int, step: int, batch_size: int, world_size: int = 1, rank: int = 0):
        """The crop plan of one rank at one step as tensors (CPU): image index, top, left,
        hflip, vflip (each (B,)) and the qualities (B,)."""
        g = torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63 - 1))
        n = batch_size * world_size
        idx = torch.multinomial(self.weights, n, replacement=True, generator=g)
        u = torch.rand(n, 2, generator=g, dtype=torch.float64)
        flips = torch.rand(n, 2, generator=g) < 0.5
        quality = 1.0 + 7.0 * torch.rand(n, generator=g)
        sl = slice(rank * batch_size, (rank + 1) * batch_size)
        idx, u, flips = idx[sl], u[sl], flips[sl]
        h, w = self._h[idx], self._w[idx]
        top = torch.minimum((u[:, 0] * (h - self.crop + 1).double()).long(), h - self.crop)
        left = torch.minimum((u[:, 1] * (w - self.crop + 1).double()).long(), w - self.crop)
        return idx, top, left, flips[:, 0], flips[:, 1], quality[sl]

    def plan(self, seed: int, step: int, batch_size: int, world_size: int = 1, rank: int = 0):
        """The crop plan as a list of (image index, y, x, hflip, vflip), and the qualities."""
        idx, top, left, hf, vf, quality = self.draw(seed, step, batch_size, world_size, rank)
        return list(zip(idx.tolist(), top.tolist(), left.tolist(), hf.tolist(), vf.tolist())), quality

    def batch(self, seed: int, step: int, batch_size: int, world_size: int = 1, rank: int = 0) -> Batch:
        """Crops of one rank at one step, on the bank's device (float in [0, 1], channels-last)."""
        idx, top, left, hf, vf, quality = (t.to(self.device, non_blocking=True)
                                           for t in self.draw(seed, step, batch_size, world_size, rank))
        c, ramp = self.crop, self._ramp
        rows = top[:, None] + torch.where(vf[:, None], c - 1 - ramp, ramp)      # (B, C)
        cols = left[:, None] + torch.where(hf[:, None], c - 1 - ramp, ramp)     # (B, C)
        width = self._w_dev[idx]
        pix = (rows * width[:, None])[:, :, None] + cols[:, None, :]            # (B, C, C)
        index = (self._offsets[idx][:, None, None, None] + 3 * pix[..., None] + self._chan)  # (B, C, C, 3)
        x = self.flat[index].permute(0, 3, 1, 2).float().div_(255.0)
        return Batch(x=x, quality=quality.float())


def build_bank(dirs: list[str], crop: int, device: torch.device, jpeg_downsample: float = 1.0,
               small: str = "pad", workers: int = 4, weighting: str = "image", log=print) -> ImageBank:
    """Find, decode and (if needed) pad the training images into an :class:`ImageBank`."""
    if jpeg_downsample < 1.0:
        raise InputError(f"--jpeg-downsample must be >= 1, got {jpeg_downsample:g}")
    paths = find_images(dirs)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        decoded = list(pool.map(lambda p: load_image(p, jpeg_downsample), paths))
    images, names, skipped = [], [], 0
    for p, im in zip(paths, decoded):
        im = fit_to_crop(im, crop, small)
        if im is None:
            skipped += 1
            continue
        images.append(im)
        names.append(str(p))
    if skipped:
        log(f"skipped {skipped} image(s) smaller than the {crop}px crop")
    bank = ImageBank(images, names, crop, device, weighting)
    log(f"training data: {len(bank)} images, {bank.num_pixels / 1e6:.1f} Mpixel "
        f"({math.fsum(im.nbytes for im in images) / 2**20:.0f} MiB on {bank.device})")
    return bank
