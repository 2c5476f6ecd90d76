"""RGB <-> yuv420p frames (BT.709, limited range) through PyAV, as the video evaluation and
the video file readers and writers use them."""
from __future__ import annotations

import numpy as np


def even_crop(a: np.ndarray) -> np.ndarray:
    """The largest even-sized top-left part of an image (4:2:0 needs even sides)."""
    return a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2]


def rgb_to_yuv_frame(rgb: np.ndarray):
    """RGB uint8 -> yuv420p VideoFrame, BT.709 limited range."""
    import av

    f = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return f.reformat(format="yuv420p", src_colorspace="ITU709", dst_colorspace="ITU709",
                      dst_color_range="MPEG")


def yuv_frame_to_rgb(frame) -> np.ndarray:
    """yuv420p VideoFrame (BT.709 limited range) -> RGB uint8."""
    return frame.reformat(format="rgb24", src_colorspace="ITU709", dst_colorspace="ITU709",
                          src_color_range="MPEG").to_ndarray()


def yuv_planes(frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, U, V planes of a yuv420p frame as arrays."""
    h, w = frame.height, frame.width
    a = frame.to_ndarray()
    q = h // 4
    return a[:h], a[h:h + q].reshape(h // 2, w // 2), a[h + q:h + 2 * q].reshape(h // 2, w // 2)
