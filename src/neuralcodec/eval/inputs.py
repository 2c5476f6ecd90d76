"""Finding and loading evaluation inputs: image files and videos (files or PNG-frame folders)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuralcodec.errors import InputError, reason
from neuralcodec.io.frames import frame_files
from neuralcodec.io.images import read_rgb8
from neuralcodec.limits import DEFAULT_MAX_PIXELS

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
VIDEO_EXTS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".y4m", ".m4v", ".ts")


@dataclass(frozen=True)
class Source:
    """One input: display name, path, content digest and size (frames/fps for videos)."""

    name: str
    path: str
    digest: str
    width: int
    height: int
    frames: int = 1
    fps: float = 0.0
    pixels_digest: str = ""     # images: SHA-256 prefix of the decoded RGB pixels


def file_digest(paths) -> str:
    """SHA-1 of the contents of one or more files (cache key of an input)."""
    h = hashlib.sha1()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def pixels_digest(pixels: np.ndarray) -> str:
    """SHA-256 prefix of an image's RGB samples and shape (the same picture in any file format)."""
    h = hashlib.sha256(f"{pixels.shape}".encode())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return h.hexdigest()[:16]


def _expand(paths, exts, what: str) -> list[Path]:
    if not paths:
        raise InputError(f"no {what} given")
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found += sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in exts)
        elif p.is_file():
            found.append(p)
        else:
            raise InputError(f"input {p} does not exist")
    if not found:
        raise InputError(f"no {what} found in {', '.join(map(str, paths))} "
                         f"(looked for {' '.join(exts)})")
    return found


def _unique_names(paths: list[Path]) -> list[str]:
    names = [p.name for p in paths]
    return [str(p) if names.count(p.name) > 1 else p.name for p in paths]


def load_image(path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """8-bit RGB pixels of an image file, as every reader of the package reads them
    (:func:`neuralcodec.io.images.read_rgb8`); InputError if unreadable."""
    return read_rgb8(path, max_pixels).pixels


def scan_images(paths, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Readable images among ``paths`` (files or folders), the (path, reason) skipped, and the
    conversions made (grayscale, alpha, 16-bit samples scaled to 8 bits), one note per image."""
    files = _expand(paths, IMAGE_EXTS, "images")
    items, skipped, notes = [], [], []
    for path, name in zip(files, _unique_names(files)):
        try:
            image = read_rgb8(path, max_pixels)
        except InputError as exc:
            skipped.append((str(path), str(exc)))
            continue
        h, w = image.pixels.shape[:2]
        if image.note:
            notes.append(image.note)
        items.append(Source(name, str(path), file_digest([path]), w, h,
                            pixels_digest=pixels_digest(image.pixels)))
    if not items:
        raise InputError(f"none of the {len(files)} image file(s) could be read "
                         f"(first: {skipped[0][1]})")
    return items, skipped, notes


def probe_video(path, fps: float | None, max_frames: int) -> Source:
    """Describe a video file or PNG-frame folder (frames counted up to ``max_frames``)."""
    p = Path(path)
    if p.is_dir():
        frames = frame_files(p)
        if not frames:
            raise InputError(f"{p} holds no PNG frames")
        h, w = load_image(frames[0]).shape[:2]
        n = len(frames) if max_frames <= 0 else min(max_frames, len(frames))
        return Source(p.name, str(p), file_digest(frames[:n]), w, h, n, float(fps or 30.0))
    import av

    try:
        with av.open(str(p)) as c:
            if not c.streams.video:
                raise InputError(f"{p} has no video stream")
            st = c.streams.video[0]
            rate = float(fps or st.average_rate or st.guessed_rate or 30)
            n = 0
            for _ in c.decode(st):
                n += 1
                if 0 < max_frames <= n:
                    break
            w, h = st.codec_context.width, st.codec_context.height
    except av.FFmpegError as exc:
        raise InputError(f"cannot read video {p}: {reason(exc, filename=False)}") from None
    if n == 0:
        raise InputError(f"{p} has no decodable frames")
    return Source(p.name, str(p), file_digest([p]), w, h, n, rate)


def scan_videos(paths, fps: float | None, max_frames: int):
    """Readable videos (files, or folders of PNG frames) and the (path, reason) skipped."""
    items, skipped = [], []
    if not paths:
        raise InputError("no videos given")
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"input {p} does not exist")
        if p.is_dir() and not frame_files(p):
            subs = sorted(q for q in p.iterdir()
                          if q.suffix.lower() in VIDEO_EXTS or (q.is_dir() and frame_files(q)))
            if not subs:
                raise InputError(f"no videos or PNG-frame folders found in {p}")
        else:
            subs = [p]
        for s in subs:
            try:
                items.append(probe_video(s, fps, max_frames))
            except InputError as exc:
                skipped.append((str(s), str(exc)))
    if not items:
        raise InputError(f"no readable video among the inputs (first: {skipped[0][1]})")
    return items, skipped
