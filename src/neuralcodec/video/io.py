"""Reading and writing video frames one at a time: video files through PyAV, PNG frame
folders, and .y4m; decoded video goes to .y4m (4:2:0), a PNG folder, or lossless
.mkv (FFV1, RGB) / .mp4 (x264 qp 0)."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from neuralcodec.errors import InputError, reason

VIDEO_INPUT_EXTS = (".mp4", ".mkv", ".mov", ".webm", ".y4m", ".avi", ".m4v")
VIDEO_OUTPUT_EXTS = (".y4m", ".mkv", ".mp4")
FOLDER_FPS = Fraction(25)


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frames: int          # 0 = unknown
    pix_fmt: str
    estimated_frames: int = 0    # the container's frame count when it has one (progress only)


def frame_to_rgb(frame) -> np.ndarray:
    """A PyAV frame as RGB uint8; 4:2:0 frames are converted as BT.709 limited range (as in eval)."""
    from neuralcodec.io.colour import yuv_frame_to_rgb
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        return np.ascontiguousarray(yuv_frame_to_rgb(frame))
    return np.ascontiguousarray(frame.to_ndarray(format="rgb24"))


def _av():
    """PyAV, or a clear error where it is not installed (PNG folders and .y4m output work without)."""
    try:
        import av
    except ImportError:
        raise InputError("video files need PyAV (pip install av); "
                         "a folder of PNG frames or .y4m output works without it") from None
    return av


def _av_error(path, exc) -> InputError:
    return InputError(f"cannot read video {path}: {reason(exc, filename=False)}")


def _folder_frames(path: Path) -> list[Path]:
    from neuralcodec.io.frames import frame_files
    files = frame_files(path)
    if not files:
        raise InputError(f"{path} holds no PNG frames")
    return files


def probe(path: str | os.PathLike, max_frames: int = 0) -> VideoInfo:
    """Size, rate and (when known) frame count of a video file or PNG frame folder."""
    p = Path(path)
    if p.is_dir():
        from neuralcodec.io.image_files import read_image
        files = _folder_frames(p)
        h, w = read_image(files[0]).shape[:2]
        n = len(files) if not max_frames else min(max_frames, len(files))
        return VideoInfo(w, h, FOLDER_FPS, n, "rgb24")
    if not p.is_file():
        raise InputError(f"input {p} not found")
    av = _av()
    try:
        with av.open(str(p)) as c:
            if not c.streams.video:
                raise InputError(f"{p} has no video stream")
            s = c.streams.video[0]
            rate = s.average_rate or s.guessed_rate or FOLDER_FPS
            cc = s.codec_context
            w, h, fmt = cc.width, cc.height, (cc.pix_fmt or "")
            counted = int(s.frames or 0)
            if not (w and h):
                first = next(c.decode(video=0))
                w, h, fmt = first.width, first.height, first.format.name
    except InputError:
        raise
    except (av.error.FFmpegError, StopIteration, ValueError, UnicodeDecodeError) as exc:
        raise _av_error(p, exc) from None
    estimate = min(counted, max_frames) if counted and max_frames else (counted or max_frames)
    return VideoInfo(w, h, Fraction(rate).limit_denominator(1 << 20), 0, fmt, estimate)


def iter_frames(path: str | os.PathLike, max_frames: int = 0):
    """Yield RGB uint8 frames (H, W, 3) one at a time."""
    p = Path(path)
    if p.is_dir():
        from neuralcodec.io.image_files import read_image
        files = _folder_frames(p)
        for f in files[:max_frames] if max_frames else files:
            yield read_image(f, quiet=True)     # probe() warned about the first frame
        return
    av = _av()
    try:
        with av.open(str(p)) as c:
            for i, frame in enumerate(c.decode(video=0)):
                if max_frames and i >= max_frames:
                    break
                yield frame_to_rgb(frame)
    except (av.error.FFmpegError, ValueError) as exc:
        raise _av_error(p, exc) from None


# ----------------------------------------------------------------- writers
class FrameWriter:
    """Write RGB frames to ``path`` atomically: a temporary file/folder renamed on close."""

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: Fraction,
                 overwrite: bool = True):
        self.path = Path(path)
        self.overwrite = overwrite
        self.width, self.height = width, height
        self.fps = fps if fps and fps > 0 else FOLDER_FPS
        self.kind = output_kind(self.path)
        parent = self.path.parent if str(self.path.parent) else Path(".")
        self.count = 0
        if self.kind == "png":
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=parent))
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=self.path.suffix, dir=parent)
        os.close(fd)
        self.tmp = Path(tmp)
        try:
            self._open(width, height)
        except BaseException:           # also Ctrl-C / SIGTERM: no temporary file is left
            self.abort()
            raise

    def _open(self, width: int, height: int) -> None:
        if self.kind == "y4m":
            self.file = open(self.tmp, "wb")
            f = Fraction(self.fps)
            self.file.write(f"YUV4MPEG2 W{width} H{height} F{f.numerator}:{f.denominator} Ip A1:1 "
                            f"C420mpeg2 XCOLORRANGE=LIMITED\n".encode())
        else:
            av = _av()
            self.container = av.open(str(self.tmp), "w", format="matroska" if self.kind == "mkv" else "mp4")
            if self.kind == "mkv":
                self.stream = self.container.add_stream("ffv1", rate=self.fps)
                self.stream.pix_fmt = "bgr0"
            else:
                self.stream = self.container.add_stream("libx264rgb", rate=self.fps)
                self.stream.pix_fmt = "rgb24"
                self.stream.options = {"qp": "0", "preset": "medium"}
            self.stream.width, self.stream.height = width, height

    def write(self, rgb: np.ndarray) -> None:
        if self.kind == "png":
            from PIL import Image
            Image.fromarray(rgb).save(self.tmp / f"f{self.count + 1:05d}.png")
        elif self.kind == "y4m":
            self.file.write(b"FRAME\n")
            for plane in yuv420_planes(rgb):
                self.file.write(plane.tobytes())
        else:
            av = _av()
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if self.stream.pix_fmt != "rgb24":
                frame = frame.reformat(format=self.stream.pix_fmt)
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
        self.count += 1

    def close(self) -> None:
        if self.kind == "y4m":
            self.file.close()
        elif self.kind in ("mkv", "mp4"):
            for packet in self.stream.encode(None):
                self.container.mux(packet)
            self.container.close()
        from neuralcodec.io.outputs import finish_output
        if self.kind == "png" and self.path.exists():
            if not self.overwrite:
                raise InputError(f"output {self.path} exists (-n/--no-overwrite given)")
            self.path.rmdir()    # only an empty folder is ever replaced (checked before decoding)
        finish_output(self.tmp, self.path, self.overwrite)

    def abort(self) -> None:
        try:
            if self.kind == "y4m":
                self.file.close()
            elif self.kind in ("mkv", "mp4"):
                self.container.close()
        except Exception:
            pass
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)


def yuv420_planes(rgb: np.ndarray):
    """Y, U, V planes (BT.709 limited range, chroma rounded up for odd sizes) of an RGB frame."""
    h, w = rgb.shape[:2]
    ph, pw = h + h % 2, w + w % 2
    if (ph, pw) != (h, w):
        rgb = np.pad(rgb, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    from neuralcodec.io.colour import rgb_to_yuv_frame, yuv_planes
    y, u, v = yuv_planes(rgb_to_yuv_frame(rgb))
    return y[:h, :w], u[:(h + 1) // 2, :(w + 1) // 2], v[:(h + 1) // 2, :(w + 1) // 2]


def output_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in VIDEO_OUTPUT_EXTS:
        return suffix[1:]
    if suffix == "" or path.is_dir():
        return "png"
    raise InputError(f"unsupported video output {path.name}: use .y4m, .mkv, .mp4 or a folder (PNG frames)")


def check_video_output(output: str | os.PathLike, source: str | os.PathLike,
                       overwrite: bool = True) -> Path:
    """Refuse to overwrite the input or a non-empty folder; the parent must exist; an existing
    output follows the rules of ``io.outputs.check_replaceable``."""
    from neuralcodec.io.outputs import check_replaceable, refuse_input_overwrite, require_parent

    out = Path(output)
    refuse_input_overwrite(out, source)
    kind = output_kind(out)
    if kind == "png":
        if out.is_file():
            raise InputError(f"output {out} is a file; a PNG frame folder needs a folder name")
        if out.is_dir() and any(out.iterdir()):
            raise InputError(f"output folder {out} is not empty")
    elif out.is_dir():
        raise InputError(f"output {out} is a directory")
    require_parent(out)
    check_replaceable(out, overwrite)
    return out
