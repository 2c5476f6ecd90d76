"""Writing a decoded image block of rows by block of rows, so that memory follows one block,
not the picture: PNG (8-bit RGB, zlib level 6, adaptive per-row filters as libpng chooses
them) and binary PPM are written as the rows arrive; other formats, and pictures of a single
block, are assembled and saved by Pillow (memory: the whole picture)."""
from __future__ import annotations

import itertools
import struct
import zlib
from pathlib import Path

import numpy as np

from neuralcodec.io.image_files import image_format, write_image
from neuralcodec.io.outputs import atomic_path


FILTER_BYTES = 1 << 20        # bytes of pixel rows filtered together (~30 MB of temporaries)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_filter_rows(rows: np.ndarray, above: np.ndarray) -> bytes:
    """PNG scanlines (filter byte + filtered bytes) of ``rows`` (n, W*3) uint8, ``above``
    the row before them (zeros for the first). Each row takes the filter (None, Sub, Up,
    Average, Paeth) with the smallest sum of absolute signed bytes."""
    x = rows.astype(np.int16)
    b = np.concatenate([above[None].astype(np.int16), x[:-1]])          # up
    a = np.zeros_like(x)
    a[:, 3:] = x[:, :-3]                                                # left (3 bytes/pixel)
    c = np.zeros_like(x)
    c[:, 3:] = b[:, :-3]                                                # up-left
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    preds = (0, a, b, (a + b) >> 1, paeth)
    filtered = np.stack([(x - pred).astype(np.uint8) for pred in preds])  # (5, n, W*3)
    cost = np.abs(filtered.view(np.int8).astype(np.int16)).sum(-1, dtype=np.int64)  # (5, n)
    best = cost.argmin(0)
    chosen = filtered[best, np.arange(len(rows))]
    return np.concatenate([best.astype(np.uint8)[:, None], chosen], 1).tobytes()


def _write_png(f, width: int, height: int, rows) -> None:
    f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                                 8, 2, 0, 0, 0)))
    z = zlib.compressobj(6)
    above = np.zeros(width * 3, np.uint8)
    step = max(1, FILTER_BYTES // (width * 3))          # rows filtered at once: bounded memory
    for block in rows:
        flat = block.reshape(len(block), width * 3)
        for r in range(0, len(flat), step):
            data = z.compress(png_filter_rows(flat[r:r + step], above))
            above = flat[min(r + step, len(flat)) - 1]
            if data:
                f.write(_chunk(b"IDAT", data))
    f.write(_chunk(b"IDAT", z.flush()) + _chunk(b"IEND", b""))


def _write_ppm(f, width: int, height: int, rows) -> None:
    f.write(f"P6\n{width} {height}\n255\n".encode())
    for block in rows:
        f.write(np.ascontiguousarray(block).tobytes())


def write_image_rows(path: str | Path, width: int, height: int, rows, *,
                     overwrite: bool = True) -> None:
    """Write the (top_row, uint8 (h, width, 3)) blocks of ``rows`` (top to bottom, covering
    every row once) to ``path`` atomically; the format comes from the extension. A picture
    that comes in one block is saved by Pillow (faster; the memory is the block's anyway)."""
    path = Path(path)
    streamed = {"PNG": _write_png, "PPM": _write_ppm}.get(image_format(path))
    rows = iter(rows)
    top, first = next(rows)                   # decoding starts before any file is created
    if streamed is not None and len(first) < height:
        with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as f:
            streamed(f, width, height, itertools.chain([first], (block for _, block in rows)))
        return
    pixels = first
    if len(first) < height:
        pixels = np.empty((height, width, 3), np.uint8)
        for top, block in itertools.chain([(top, first)], rows):
            pixels[top:top + len(block)] = block
    write_image(path, pixels, overwrite=overwrite)
