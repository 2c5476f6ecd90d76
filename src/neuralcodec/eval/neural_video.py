"""neuralcodec's own video codec (``video-rt``) in ``neuralcodec eval videos``.

The same sources and scores as the PyAV codecs (``neuralcodec.eval.video_codecs``): the frames
are encoded into a real ``.ncv`` container (its whole size is the rate, header included),
decoded back to RGB and scored against the references; PSNR-Y/U/V compare the BT.709 4:2:0
conversion of the decoded RGB with the source planes. The times cover the codec only (reading
the source frames is not counted).
"""
from __future__ import annotations

import io
import time
from fractions import Fraction

from neuralcodec.eval.image_codecs import CodecUnavailable

DEFAULT_QUALITIES = (2.0, 3.5, 5.0, 6.5, 8.0)
DEFAULT_INTRA_PERIOD = 32


class _Timed:
    """An iterator wrapper that adds the time spent in ``next()`` to ``spent``."""

    def __init__(self, iterable):
        self.it, self.spent = iter(iterable), 0.0

    def __iter__(self):
        return self

    def __next__(self):
        t0 = time.perf_counter()
        try:
            return next(self.it)
        finally:
            self.spent += time.perf_counter() - t0


class NeuralVideoCodec:
    """``video-rt`` with its shipped weights, or the file given (``--weights video-rt=FILE``),
    on ``device`` (fp16 on CUDA, as the CLI runs it)."""

    quality_param = "quality (1-8)"

    def __init__(self, name: str, device: str = "cpu", intra_period: int = DEFAULT_INTRA_PERIOD,
                 weights=None, adaptive_intra: bool = False):
        try:
            from neuralcodec.video.weights import load, video_hash

            self.model = load(name, weights, device)
        except Exception as exc:  # no torch, no weights, no such device
            raise CodecUnavailable(f"codec {name!r} not available: {type(exc).__name__}: "
                                   f"{' '.join(str(exc).split())}") from None
        self.name, self.device, self.intra_period = name, device, int(intra_period)
        self.adaptive_intra = bool(adaptive_intra)
        self.half = device == "cuda"
        self.qualities = DEFAULT_QUALITIES
        self.options: dict = {}
        self.settings = {"library": "neuralcodec", "weights": video_hash(self.model).hex()[:16],
                         **({"weights_file": str(weights)} if weights else {}),
                         "intra_period": self.intra_period,
                         **({"adaptive_intra": True} if self.adaptive_intra else {}), "device": device,
                         "precision": "fp16" if self.half else "fp32",
                         "rate": "whole .ncv file (header included)"}

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{self.name} ({self.quality_param} sweep; {opts})"

    def score(self, quality: float, path: str, fps: float, max_frames: int, metrics,
              threads: int = 0) -> dict:
        """One evaluation row: encode ``path`` at ``quality`` into a .ncv, decode, score."""
        from neuralcodec.eval.video_scores import frame_scores, summary_row
        from neuralcodec.io.frames import iter_source_frames
        from neuralcodec.io.colour import rgb_to_yuv_frame
        from neuralcodec.video.codec import decode_frames, encode_frames

        if threads:
            import torch

            torch.set_num_threads(threads)
        first = next(iter_source_frames(path, 1), None)
        if first is None:
            raise ValueError(f"{path} has no frames")
        h, w = first[0].shape[:2]
        rate = Fraction(fps).limit_denominator(1001)
        source = _Timed(rgb for rgb, _ in iter_source_frames(path, max_frames))
        buf = io.BytesIO()
        t0 = time.perf_counter()
        n = encode_frames(self.model, source, buf, w, h, (rate.numerator, rate.denominator), quality,
                          self.intra_period, self.device, self.half, adaptive_intra=self.adaptive_intra)
        t_enc = time.perf_counter() - t0 - source.spent
        buf.seek(0)
        decoded = _Timed(decode_frames(self.model, buf, self.device, self.half))
        scores = [frame_scores(ref_rgb, ref_yuv, rgb_to_yuv_frame(rec), metrics, rec_rgb=rec)
                  for (ref_rgb, ref_yuv), rec in zip(iter_source_frames(path, max_frames), decoded)]
        if len(scores) != n:
            raise RuntimeError(f"decoded {len(scores)} frames of {n} encoded")
        return summary_row(scores, w, h, fps, len(buf.getvalue()), t_enc, decoded.spent)
