"""Image file discovery (no torch import, so that pack-data starts fast)."""
from __future__ import annotations

import os
from pathlib import Path

from neuralcodec.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
JPEG_SUFFIXES = (".jpg", ".jpeg")


def find_images(dirs: list[str | os.PathLike]) -> list[Path]:
    """All images under ``dirs`` (recursively), in a deterministic order."""
    found: list[Path] = []
    for d in dirs:
        root = Path(d)
        if not root.exists():
            raise InputError(f"data folder {root} does not exist")
        if not root.is_dir():
            raise InputError(f"data path {root} is not a folder")
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"data folder {root} holds no images (*.png *.jpg *.jpeg *.webp)")
        found.extend(files)
    return found
