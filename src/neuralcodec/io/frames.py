"""Frame sources: PNG frame folders and video files, read as (RGB, yuv420p) pairs."""
from __future__ import annotations

import os
from pathlib import Path

from neuralcodec.io.colour import even_crop, rgb_to_yuv_frame, yuv_frame_to_rgb
from neuralcodec.io.images import read_rgb8


def frame_files(folder) -> list[Path]:
    """The PNG frames of a frame folder, in name order."""
    return sorted(q for q in Path(folder).iterdir() if q.suffix.lower() == ".png")


def iter_source_frames(path: str, max_frames: int):
    """Yield (RGB array, yuv420p frame) pairs of a video file or PNG-frame folder."""
    if os.path.isdir(path):
        files = frame_files(path)
        for f in files[:max_frames] if max_frames > 0 else files:
            rgb = even_crop(read_rgb8(f).pixels)
            yield rgb, rgb_to_yuv_frame(rgb)
        return
    import av

    with av.open(path) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if 0 < max_frames <= i:
                break
            if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
                yuv = av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")
                yield yuv_frame_to_rgb(yuv), yuv
            else:
                rgb = even_crop(frame.to_ndarray(format="rgb24"))
                yield rgb, rgb_to_yuv_frame(rgb)
