"""Image files for the commands (Pillow): reading with conversion warnings, atomic writing, with clear errors."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from neuralcodec.io.outputs import atomic_path
from neuralcodec.errors import InputError
from neuralcodec.io.images import read_rgb8
from neuralcodec.limits import DEFAULT_MAX_PIXELS

WRITE_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP",
                 ".jpg": "JPEG", ".jpeg": "JPEG", ".ppm": "PPM"}


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, quiet: bool = False) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 (:func:`neuralcodec.io.images.read_rgb8`); what was
    converted (grayscale, alpha, 16-bit samples) is a warning on stderr unless ``quiet``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input {path} not found")
    image = read_rgb8(path, max_pixels)
    if image.note and not quiet:
        print(f"neuralcodec: warning: {image.note}", file=sys.stderr)
    return image.pixels


def image_format(path: str | Path) -> str:
    """The Pillow format written for ``path``'s extension; InputError for one we do not write."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise InputError(f"unsupported output format {suffix or '(none)'}; use one of "
                         + ", ".join(sorted(WRITE_FORMATS)))
    return WRITE_FORMATS[suffix]


def write_image(path: str | Path, pixels: np.ndarray, *, overwrite: bool = True) -> None:
    """Write pixels atomically; the format comes from the extension."""
    from PIL import Image

    path = Path(path)
    fmt = image_format(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(pixels).save(tmp, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))

