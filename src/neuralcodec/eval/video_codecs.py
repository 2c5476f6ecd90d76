"""Video codecs through PyAV (libx264, libx265, libsvtav1, libvpx-vp9) and their evaluation.

Frames are converted to 8-bit 4:2:0 BT.709 limited range (for PNG frames) or kept in their
coded 4:2:0 form (for video files), encoded at a CRF sweep with a recorded preset, decoded
from the coded packets, and scored: PSNR per Y/U/V plane, PSNR-YUV weighted 6:1:1, PSNR-RGB
and MS-SSIM on RGB (the reconstruction converted back with BT.709). The rate is the sum of
the coded packet sizes.
"""
from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction


from neuralcodec.errors import error_row
from neuralcodec.eval.image_codecs import CodecUnavailable
from neuralcodec.eval.video_scores import frame_scores, summary_row
from neuralcodec.io.frames import iter_source_frames

CODECS = ("x264", "x265", "svtav1", "vp9")


@dataclass
class VideoCodec:
    """A PyAV encoder/decoder pair, its CRF sweep and fixed options."""

    name: str
    encoder: str
    decoder: str
    qualities: tuple[float, ...]
    options: dict
    quality_param: str = "crf"
    settings: dict = field(default_factory=dict)

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{self.name} ({self.quality_param} sweep; {opts})"

    def encoder_options(self, quality: float) -> dict:
        return {**self.options, self.quality_param: str(int(quality))}

    def score(self, quality: float, path: str, fps: float, max_frames: int, metrics,
              threads: int = 0) -> dict:
        """One evaluation row: encode ``path`` at ``quality``, decode, score every frame."""
        return encode_and_score(self, quality, path, fps, max_frames, metrics, threads)


_SPECS = {
    "x264": ("libx264", ("h264",), (22, 27, 32, 37), {"preset": "medium"}),
    "x265": ("libx265", ("hevc",), (22, 27, 32, 37),
             {"preset": "medium", "x265-params": "log-level=error"}),
    "svtav1": ("libsvtav1", ("libdav1d", "av1"), (27, 35, 43, 51), {"preset": "8"}),
    "vp9": ("libvpx-vp9", ("vp9", "libvpx-vp9"), (27, 35, 43, 51),
            {"deadline": "good", "cpu-used": "4", "row-mt": "1", "b": "0"}),
}


def _available(name: str, mode: str) -> bool:
    import av

    try:
        av.codec.Codec(name, mode)
        return True
    except Exception:
        return False


def get_video_codec(name: str, device: str = "cpu", options: dict | None = None):
    """The video codec called ``name`` (PyAV's, or neuralcodec's own on ``device``);
    CodecUnavailable with one clear line otherwise."""
    from neuralcodec.codecs.catalog import VIDEO_CODECS

    if name in VIDEO_CODECS:
        from neuralcodec.eval.neural_video import NeuralVideoCodec

        return NeuralVideoCodec(name, device, **(options or {}))
    if name not in _SPECS:
        raise CodecUnavailable(f"unknown video codec {name!r}; available: "
                               f"{', '.join(CODECS + VIDEO_CODECS)}")
    import av

    encoder, decoders, qualities, options = _SPECS[name]
    if not _available(encoder, "w"):
        raise CodecUnavailable(f"codec {name!r}: encoder {encoder} not available in this PyAV build")
    decoder = next((d for d in decoders if _available(d, "r")), None)
    if decoder is None:
        raise CodecUnavailable(f"codec {name!r}: no decoder ({', '.join(decoders)}) in this PyAV build")
    lib = av.library_versions.get("libavcodec", ())
    settings = {"encoder": encoder, "decoder": decoder, **options, "pix_fmt": "yuv420p",
                "library": f"PyAV {av.__version__} (libavcodec {'.'.join(map(str, lib))})"}
    return VideoCodec(name, encoder, decoder, qualities, options, settings=settings)


def encode_and_score(codec: VideoCodec, quality: float, path: str, fps: float,
                     max_frames: int, metrics, threads: int = 0) -> dict:
    """Encode a source at one quality, decode its packets and score every frame."""
    import av

    rate = Fraction(fps).limit_denominator(1001)
    enc = dec = None
    pending: deque = deque()
    scores: list[dict] = []
    size = n = 0
    t_enc = t_dec = 0.0

    def decode(pkt):
        """Decode one packet (None flushes) and score the frames against their sources."""
        nonlocal t_dec
        t0 = time.perf_counter()
        frames = dec.decode(pkt)
        t_dec += time.perf_counter() - t0
        for fr in frames:
            ref_rgb, ref_yuv = pending.popleft()
            scores.append(frame_scores(ref_rgb, ref_yuv, fr, metrics))

    def consume(packets):
        nonlocal size
        for pkt in packets:
            size += pkt.size
            decode(pkt)

    for rgb, yuv in iter_source_frames(path, max_frames):
        if enc is None:
            enc = av.CodecContext.create(codec.encoder, "w")
            enc.width, enc.height, enc.pix_fmt = yuv.width, yuv.height, "yuv420p"
            enc.time_base, enc.framerate = 1 / rate, rate
            enc.thread_count = threads
            enc.options = codec.encoder_options(quality)
            dec = av.CodecContext.create(codec.decoder, "r")
            dec.thread_count = threads
        yuv.pts = n
        n += 1
        pending.append((rgb, yuv))
        t0 = time.perf_counter()
        packets = enc.encode(yuv)
        t_enc += time.perf_counter() - t0
        consume(packets)
    t0 = time.perf_counter()
    packets = enc.encode(None)
    t_enc += time.perf_counter() - t0
    consume(packets)
    decode(None)
    if len(scores) != n:
        raise RuntimeError(f"decoder returned {len(scores)} frames for {n} encoded")
    return summary_row(scores, enc.width, enc.height, fps, size, t_enc, t_dec)


def evaluate_video_job(job: dict) -> list[dict]:
    """Worker: one video through one codec at one quality (errors become rows)."""
    os.environ.setdefault("SVT_LOG", "1")
    src, name, (q,) = job["source"], job["codec"], job["qualities"]
    row = {"source": src.name, "codec": name, "quality": q}
    try:
        codec = get_video_codec(name, job.get("device", "cpu"), job.get("options"))
        row.update(codec.score(q, src.path, src.fps, job["max_frames"], job["metrics"],
                               job.get("threads", 0)))
        row["preset"] = codec.options.get("preset", codec.options.get("cpu-used", ""))
        row["error"] = None
    except Exception as exc:
        row["error"] = error_row(exc)
    return [row]
