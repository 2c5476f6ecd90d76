"""Reading image files as what the codecs code: 8-bit RGB.

Every reader of the package (encode, eval, video frame folders, training) goes through
:func:`read_rgb8`, so an image means the same pixels everywhere: grayscale, palette, CMYK and
alpha images are converted to RGB (alpha dropped), 16-bit samples are scaled to 8 bits with
rounding (``round(v * 255 / 65535)``, so 65535 -> 255 and the gradient keeps its shape), and
the picture size is checked against a pixel limit before a single pixel is decoded.
Needs only numpy and Pillow (imagecodecs for 16-bit colour files).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuralcodec.errors import InputError, reason
from neuralcodec.limits import DEFAULT_MAX_PIXELS

# 8-bit modes Pillow converts to RGB, and how a warning names them
_CONVERTED = {"1": "1-bit", "L": "grayscale", "LA": "grayscale with alpha", "La": "grayscale with alpha",
              "P": "palette", "PA": "palette with alpha", "RGBA": "RGBA", "RGBa": "RGBA", "RGBX": "RGBX",
              "CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "Lab", "HSV": "HSV"}


@dataclass(frozen=True)
class ReadImage:
    """The pixels of a file, (H, W, 3) uint8, and what was done to get them ("" if nothing)."""

    pixels: np.ndarray
    note: str = ""


def describe_limit(max_pixels: int) -> str:
    """'268435456 pixels (16384x16384)': a pixel limit in words."""
    side = int(max_pixels ** 0.5)
    square = f" ({side}x{side})" if side * side == max_pixels else ""
    return f"{max_pixels} pixels{square}"


def check_pixel_limit(path, width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """InputError when a ``width`` x ``height`` picture is empty or above ``max_pixels``."""
    if width < 1 or height < 1:
        raise InputError(f"{path}: the image is empty ({width}x{height})")
    if width * height > max_pixels:
        raise InputError(f"{path}: {width}x{height} is {width * height} pixels, above the limit of "
                         f"{describe_limit(max_pixels)}; --max-pixels N raises it")


def scale_16_to_8(samples: np.ndarray) -> np.ndarray:
    """16-bit samples (0..65535) to 8 bits, rounded to nearest: round(v * 255 / 65535)."""
    wide = samples.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def read_rgb8(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ReadImage:
    """Decode an image file to 8-bit RGB; InputError (one line) for anything unreadable."""
    from PIL import Image

    path = Path(path)
    try:
        with _pillow_limit_off(Image), Image.open(path) as img:
            check_pixel_limit(path, img.width, img.height, max_pixels)
            rawmode = _rawmode(img)     # read before load(), which clears the tile list
            img.load()
            return _to_rgb8(path, img, rawmode)
    except InputError:
        raise
    except MemoryError:
        raise InputError(f"{path}: not enough memory to decode the image") from None
    except Exception as exc:  # Pillow raises many types for broken files
        raise InputError(f"cannot read image {path}: {reason(exc, filename=False)}") from None


@contextlib.contextmanager
def _pillow_limit_off(image_module):
    """Pillow's own decompression-bomb check off: :func:`check_pixel_limit` is the one limit."""
    saved = image_module.MAX_IMAGE_PIXELS
    image_module.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        image_module.MAX_IMAGE_PIXELS = saved


def _rawmode(img) -> str:
    """The decoder's raw mode ('RGB;16B', 'I;16', ...): the sample depth in the file; netpbm
    files with more than 8 bits (which Pillow scales itself) read as 'RGB;16'."""
    tile = getattr(img, "tile", None) or []
    if not tile or len(tile[0]) < 4:
        return ""
    args = tile[0][3]
    if isinstance(args, tuple):
        maxval = args[1] if len(args) > 1 and isinstance(args[1], int) else 0
        args = args[0] if args and isinstance(args[0], str) else ""
        if getattr(img, "format", "") == "PPM" and maxval > 255:
            return f"{args};16 (netpbm)"
    return args if isinstance(args, str) else ""


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


def _to_rgb8(path: Path, img, rawmode: str) -> ReadImage:
    mode = img.mode
    if mode.startswith("I;16") or (mode == "I" and "16" in rawmode):
        gray = np.asarray(img).astype(np.uint16)
        return ReadImage(_gray_to_rgb(scale_16_to_8(gray)),
                         f"{path.name} is 16-bit grayscale; scaled to 8 bits and converted to RGB")
    if mode in ("I", "F"):
        kind = "32-bit integer" if mode == "I" else "floating-point"
        raise InputError(f"{path}: {kind} samples are not supported (use 8- or 16-bit images)")
    if rawmode.endswith("(netpbm)"):
        return ReadImage(np.array(img.convert("RGB"), dtype=np.uint8),
                         f"{path.name} has 16-bit samples; scaled to 8 bits")
    if ";16" in rawmode:
        return _read_16bit_colour(path, img, rawmode.split(";")[0])
    if mode == "RGB":
        return ReadImage(np.array(img, dtype=np.uint8))
    if mode not in _CONVERTED:
        raise InputError(f"{path}: unsupported image mode {mode}")
    extra = " (alpha dropped)" if "A" in mode or mode.endswith("a") else ""
    return ReadImage(np.array(img.convert("RGB"), dtype=np.uint8),
                     f"{path.name} is {_CONVERTED[mode]}; converting to RGB{extra}")


def _read_16bit_colour(path: Path, img, mode: str) -> ReadImage:
    """RGB/RGBA/LA files (``mode``: the file's) with 16-bit samples, which Pillow would cut to
    their high byte: decoded at full depth with imagecodecs, then scaled."""
    try:
        import imagecodecs

        samples = np.asarray(imagecodecs.imread(str(path)))
    except Exception:  # no imagecodecs, or a format it does not read: Pillow's 8 bits
        return ReadImage(np.array(img.convert("RGB"), dtype=np.uint8),
                         f"{path.name} has 16-bit samples; Pillow kept their high 8 bits "
                         "(not rounded)")
    if samples.dtype != np.uint16 or samples.shape[:2] != (img.height, img.width):
        raise InputError(f"{path}: unexpected 16-bit layout {samples.dtype} {samples.shape}")
    if samples.ndim == 2:
        samples = _gray_to_rgb(samples)
    elif samples.shape[2] == 2:           # gray + alpha
        samples = _gray_to_rgb(samples[..., 0])
    else:
        samples = samples[..., :3]
    alpha = " (alpha dropped)" if "A" in mode else ""
    return ReadImage(np.ascontiguousarray(scale_16_to_8(samples)),
                     f"{path.name} is {_CONVERTED.get(mode, mode)} with 16-bit samples; scaled to "
                     f"8 bits{alpha}")
