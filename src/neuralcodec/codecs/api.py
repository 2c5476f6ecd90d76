"""Image encode/decode on numpy pixels: padding, the model, and the container.

``encode_image``/``decode_image`` work from codec names (shipped weights);
``encode_with_model``/``decode_with_model`` take a model in memory (training,
evaluation of checkpoints).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from neuralcodec.codecs.base import ImageCodec, LatentImageCodec, StreamImageCodec, check_quality
from neuralcodec.codecs.pixels import (MAX_PIXELS, check_pixels, pad_to_multiple, pixel_tensor,  # noqa: F401
                                       to_pixels, to_tensor)
from neuralcodec.codecs.registry import available, load_model
from neuralcodec.codecs.weights import model_hash
from neuralcodec.codecs.tiling import analyse_tiled, latent_tiles
from neuralcodec.errors import InputError, ModelError
from neuralcodec.limits import DEFAULT_MAX_PIXELS


def list_codecs() -> list[str]:
    return available()


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (RGB, peak 255)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


@torch.no_grad()
def encode_with_model(model: LatentImageCodec | StreamImageCodec, pixels: np.ndarray, quality: float, device=None,
                      refine=None, on_refine_step=None) -> bytes:
    """Encode pixels (H, W, 3) uint8 with a model in memory; returns a container bitstream.
    ``refine``: a :class:`~neuralcodec.codecs.refine.Refinement` to optimise each latent tile
    before it is coded (encoder only; ``on_refine_step(step)`` after each of its steps)."""
    from neuralcodec.container import Header, Substream, pack

    refine = refine if refine is not None and refine.steps else None
    if isinstance(model, StreamImageCodec):     # codecs with their own stream layout (trit-plane)
        if refine is not None:
            raise InputError(f"latent refinement is for latent codecs; {model.name} codes its own stream")
        return model.encode_image(pixels, quality, device)
    pixels = check_pixels(pixels)
    quality = check_quality(quality)
    device = device or next(model.parameters()).device
    h, w = pixels.shape[:2]
    x = pad_to_multiple(to_tensor(pixels, device), model.stride)
    y = analyse_tiled(model, x, quality)
    tiles = latent_tiles(y.shape[-2], y.shape[-1], model)
    streams = []
    for i, (r, c, th, tw) in enumerate(tiles):
        y_tile = y[..., r:r + th, c:c + tw]
        if refine is not None:
            y_tile = _refined(model, x, quality, y_tile, (r, c, th, tw), (h, w), refine, on_refine_step)
        compressed = model.compress_latent(y_tile)
        streams += [Substream(f"{name}.{i}", data) for name, data in compressed.streams.items()]
    header = Header(codec=model.name, weights_hash=model_hash(model), kind="image", width=w, height=h,
                    quality=quality, params={"tiles": len(tiles)})
    return pack(header, streams)


def _refined(model, x, quality, y_tile, tile, size, refine, on_step):
    """The refined latent of one latent tile, optimised against its pixels."""
    from neuralcodec.codecs.refine import refine_latent

    (r, c, th, tw), s = tile, model.latent_stride
    valid = (min(th * s, size[0] - r * s), min(tw * s, size[1] - c * s))
    x_tile = x[..., r * s:(r + th) * s, c * s:(c + tw) * s]
    return refine_latent(model, x_tile, quality, y_tile, refine, valid, on_step).y


def decode_with_model(model: ImageCodec, data, device=None, *,
                      max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a container bitstream (bytes, a path or a binary file) with a model in memory
    (its hash must match); a declared picture over ``max_pixels`` is refused unread."""
    from neuralcodec.codecs.image_decoder import ImageDecoder

    if isinstance(model, StreamImageCodec):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            data = data.read() if hasattr(data, "read") else Path(data).read_bytes()
        return model.decode_image(data, device, max_pixels=max_pixels)
    return ImageDecoder(model, data, max_pixels=max_pixels).pixels()


def encode_image(pixels: np.ndarray, codec: str, quality: float, device: str | None = None,
                 weights=None, refine=None) -> bytes:
    """Encode with a named codec and its shipped (or given) weights (``refine``: see
    :func:`encode_with_model`)."""
    device = device or default_device()
    return encode_with_model(get_model(codec, weights, device), pixels, quality, device, refine)


def decode_image(data: bytes, device: str | None = None, weights=None) -> np.ndarray:
    """Decode any image bitstream; the codec is read from its header."""
    from neuralcodec.container import read_header

    device = device or default_device()
    header = read_header(data)
    return decode_with_model(get_model(header.codec, weights, device), data, device)


_MODELS: dict[tuple, ImageCodec] = {}


def get_model(codec: str | None, weights=None, device: str = "cpu") -> ImageCodec:
    """Load (and cache) a codec with weights on a device."""
    key = (codec, str(weights) if weights else None, str(device))
    if key not in _MODELS:
        _MODELS[key] = load_model(codec, weights, device)
    return _MODELS[key]


__all__ = ["list_codecs", "encode_image", "decode_image", "encode_with_model", "decode_with_model",
           "get_model", "default_device", "ModelError"]
