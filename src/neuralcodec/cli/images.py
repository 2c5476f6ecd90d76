"""Image file reading and writing for the CLI (Pillow), with clear errors."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from neuralcodec.cli.io_utils import atomic_path
from neuralcodec.errors import InputError

MAX_IMAGE_PIXELS = 16384 * 16384
WRITE_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP",
                 ".jpg": "JPEG", ".jpeg": "JPEG", ".ppm": "PPM"}


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as (H, W, 3) uint8; grayscale/RGBA/palette are converted with a warning."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise InputError(f"input {path} not found")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                mode = img.mode
                img.load()
                if mode != "RGB":
                    if mode not in ("L", "LA", "RGBA", "P", "I;16", "I", "CMYK", "YCbCr"):
                        raise InputError(f"{path}: unsupported image mode {mode}")
                    print(f"neuralcodec: warning: {path.name} is {mode}; converting to RGB", file=sys.stderr)
                    img = img.convert("RGB")
                pixels = np.asarray(img, dtype=np.uint8)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{path}: image too large ({exc})") from None
    except Exception as exc:  # PIL raises many types for broken files
        raise InputError(f"cannot read image {path}: {' '.join(str(exc).split()) or type(exc).__name__}") from None
    return np.ascontiguousarray(pixels)


def output_format(path: str | Path) -> str:
    """The Pillow format name of an output path's extension (InputError if unknown)."""
    suffix = Path(path).suffix
    fmt = WRITE_FORMATS.get(suffix.lower())
    if fmt is None:
        raise InputError(f"unsupported output format {suffix or '(none)'}; use one of "
                         + ", ".join(sorted(WRITE_FORMATS)))
    return fmt


def write_image(path: str | Path, pixels: np.ndarray, *, overwrite: bool = True) -> None:
    """Write pixels atomically; the format comes from the extension."""
    from PIL import Image

    path = Path(path)
    fmt = output_format(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(pixels).save(tmp, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))

