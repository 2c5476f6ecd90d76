"""Streaming video coding with ``video-rt``: one container record per frame.

A ``.ncv`` file is the repo's container (docs/bitstream.md) with ``kind="video"``; each
frame is one substream named ``I`` (image codec streams of all latent tiles, packed) or
``P`` (hyper-latent, anchor and non-anchor streams, packed). Where the intra period puts
I-frames is fixed by the header; with ``adaptive_intra`` the encoder may also code any other
frame as an I-frame, where that costs less (rate + lambda * distortion) than a P-frame.
Encoder and decoder keep only the state of the last frame (reference frame, pixel context,
exact latent buffer), so memory does not depend on the sequence length.
"""
from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field

import numpy as np
import torch

from neuralcodec.codecs.pixels import pad_to_multiple, pixel_tensor, to_pixels, to_tensor
from neuralcodec.codecs.base import QUALITY_MAX, QUALITY_MIN, Compressed, check_quality, rd_lambda
from neuralcodec.codecs.framing import pack_streams, unpack_streams
from neuralcodec.codecs.tiling import analyse_tiled, latent_tiles, synthesise_tiled
from neuralcodec.entropy.exact import ExactNet
from neuralcodec.errors import BitstreamError, InputError, NeuralCodecError
from neuralcodec.limits import DEFAULT_MAX_PIXELS, check_picture_size
from neuralcodec.video.model import I_OFFSET, P_OFFSETS, STRIDE, VideoRT, frame_quality

MAX_VIDEO_PIXELS = 8192 * 4320


def amp(device, enabled: bool, dtype=torch.float16):
    """Autocast for the float (non-exact) networks on CUDA; a no-op elsewhere."""
    if enabled and torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


MAX_U32 = 0xFFFFFFFF
MAX_P_OFFSETS = 1024          # quality offsets a video header may list


def _offset(value) -> float:
    """A quality offset from params: a real number within +-(QUALITY_MAX - QUALITY_MIN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError
    value = float(value)                       # OverflowError for integers beyond a float
    if not abs(value) <= QUALITY_MAX - QUALITY_MIN:
        raise ValueError
    return value


@dataclass
class GopConfig:
    intra_period: int = 32              # 0: only the first frame is an I-frame
    p_offsets: list = field(default_factory=lambda: list(P_OFFSETS))
    i_offset: float = I_OFFSET
    frame_quality: bool = False         # each record starts with its frame's quality (rate control)
    adaptive_intra: bool = False        # any frame may be an I-frame (the encoder's RD choice)

    def is_intra(self, index: int) -> bool:
        """Whether frame ``index`` must be an I-frame."""
        return index == 0 or (self.intra_period > 0 and index % self.intra_period == 0)

    def allows(self, index: int, intra: bool) -> bool:
        """Whether frame ``index`` may be of this kind."""
        return intra == self.is_intra(index) or (intra and self.adaptive_intra)

    def quality(self, base: float, index_in_gop: int) -> float:
        return frame_quality(base, index_in_gop, self.p_offsets, self.i_offset)

    def params(self) -> dict:
        out = {"intra_period": self.intra_period, "p_offsets": [float(v) for v in self.p_offsets],
               "i_offset": float(self.i_offset)}
        if self.frame_quality:          # absent otherwise: streams without it are unchanged
            out["frame_quality"] = True
        if self.adaptive_intra:         # the same
            out["adaptive_intra"] = True
        return out

    @classmethod
    def from_params(cls, params: dict) -> "GopConfig":
        """The GOP of a video header's params; anything out of range is a BitstreamError."""
        try:
            period = params["intra_period"]
            offsets = [_offset(v) for v in params["p_offsets"]]
            i_off = _offset(params["i_offset"])
            per_frame = params.get("frame_quality", False)
            adaptive = params.get("adaptive_intra", False)
            if type(period) is not int or not 0 <= period <= MAX_U32 \
                    or not 1 <= len(offsets) <= MAX_P_OFFSETS or not isinstance(per_frame, bool) \
                    or not isinstance(adaptive, bool):
                raise ValueError
        except (KeyError, TypeError, ValueError, OverflowError):
            raise BitstreamError("video header lacks a valid GOP description") from None
        return cls(period, offsets, i_off, per_frame, adaptive)


# Per-frame quality (rate control): a big-endian u16 before the record payload,
# quality = 1 + code / QUALITY_STEPS, so encoder and decoder use the same value.
QUALITY_STEPS = 8192


def quantize_quality(q: float) -> tuple[float, bytes]:
    """The representable quality nearest ``q`` (clamped to [1, 8]) and its 2-byte code."""
    code = int(round((min(QUALITY_MAX, max(QUALITY_MIN, q)) - QUALITY_MIN) * QUALITY_STEPS))
    return QUALITY_MIN + code / QUALITY_STEPS, code.to_bytes(2, "big")


def split_quality(payload: bytes) -> tuple[float, bytes]:
    """(frame quality, rest of the payload) of a record that starts with its quality."""
    if len(payload) < 2:
        raise BitstreamError("video record too short for its frame quality")
    code = int.from_bytes(payload[:2], "big")
    if code > (QUALITY_MAX - QUALITY_MIN) * QUALITY_STEPS:
        raise BitstreamError(f"frame quality code {code} out of range")
    return QUALITY_MIN + code / QUALITY_STEPS, payload[2:]


def prepare_exact(model, device) -> None:
    """Freeze every integer-exact net of ``model`` (and of its I-frame codec) and keep the
    frozen integer weights on ``device``, so that coding does not copy them every frame.
    Values are unchanged (same float64 integers), so results are too."""
    device = torch.device(device)
    for net in list(model.modules()) + list(model.intra.modules()):
        if isinstance(net, ExactNet):
            net.frozen_layers(device)


class _State:
    """What both sides carry from frame to frame."""

    def __init__(self, model: VideoRT, width: int, height: int, quality: float, gop: GopConfig,
                 device, half: bool):
        self.model, self.width, self.height, self.quality, self.gop = model, width, height, quality, gop
        self.device, self.half = torch.device(device), half
        prepare_exact(model, self.device)
        self.index = 0          # frames coded so far
        self.gop_index = 0      # position in the current GOP
        self.x_ref = self.ctx = self.buf = None

    def _step_gop(self, intra: bool) -> None:
        """Move the GOP position past a frame of this kind (an I-frame starts a GOP)."""
        self.gop_index = 0 if intra else self.gop_index + 1

    def _frame_quality(self, intra: bool) -> float:
        self._step_gop(intra)
        return self.gop.quality(self.quality, self.gop_index)

    def _advance_buffer(self, intra: bool, y_hat) -> None:
        """Latent side of a frame (exact, feeds the coder of the next frame)."""
        self.buf = self.model.buffer_from_intra(y_hat) if intra else self.model.next_buffer(y_hat, self.buf)

    def _reconstruct(self, intra: bool, y_hat, q, with_context: bool = False):
        """The frame decoded from ``y_hat`` (float, clamped to [0, 1]), and with
        ``with_context`` its context features; no state changes."""
        model = self.model
        if intra:
            with amp(self.device, self.half, torch.bfloat16):
                x_hat = synthesise_tiled(model.intra, y_hat, q).float().clamp(0, 1)
            if not with_context:
                return x_hat
            with amp(self.device, self.half):
                return x_hat, model.context_from_frame(x_hat)
        with amp(self.device, self.half):
            x_hat, ctx = model.synthesise(y_hat, self.x_ref, self.ctx, q)
        x_hat = x_hat.float().clamp(0, 1)
        return (x_hat, ctx) if with_context else x_hat

    def _advance_pixels(self, intra: bool, y_hat, q, reconstruction=None) -> None:
        """Pixel side of a frame: reconstruction and context features (float; computed here
        unless given, as ``_reconstruct(..., with_context=True)`` returned them)."""
        self.x_ref, self.ctx = reconstruction or self._reconstruct(intra, y_hat, q, with_context=True)

    def _advance(self, intra: bool, y_hat, q, reconstruction=None) -> None:
        self._advance_pixels(intra, y_hat, q, reconstruction)
        self._advance_buffer(intra, y_hat)

    def _latent_hw(self) -> tuple[int, int]:
        s = self.model.intra.latent_stride
        return ((self.height + (-self.height) % STRIDE) // s, (self.width + (-self.width) % STRIDE) // s)

    def output(self) -> np.ndarray:
        return to_pixels(self.x_ref[..., :self.height, :self.width])


class VideoEncoder(_State):
    """Encode frames one at a time; ``encode(rgb)`` returns (record name, payload, y_hat).

    The steps of ``encode`` are public for rate control (video/rate_control.py):
    ``prepare`` the frame, ``code`` it at a quality as often as needed (no state changes),
    then ``commit`` the chosen result."""

    @torch.no_grad()
    def encode(self, pixels: np.ndarray, quality: float | None = None):
        """Code the next frame at ``quality`` (default: the base quality and the frame's offset;
        another quality only where the records carry it: ``GopConfig(frame_quality=True)``)."""
        if quality is not None and not self.gop.frame_quality:
            raise ValueError("a per-frame quality needs GopConfig(frame_quality=True)")
        x = self.prepare(pixels)
        intra = self.next_is_intra()
        q = self.gop.quality(self.quality, self.next_gop_index()) if quality is None else quality
        if intra or not self.gop.adaptive_intra:
            return self.commit(intra, *self.code(x, intra, q))
        lam = rd_lambda(q).item()
        p_cost, p_frame, p_rec = self.candidate(x, False, q, lam)
        i_cost, i_frame, i_rec = self.candidate(x, True, self.gop.quality(self.quality, 0), lam)
        if i_cost < p_cost:
            return self.commit(True, *i_frame, reconstruction=i_rec)
        return self.commit(False, *p_frame, reconstruction=p_rec)

    def candidate(self, x: torch.Tensor, intra: bool, q: float, lam: float):
        """(RD cost, ``code``'s result, reconstruction with context) of coding ``x`` as an I- or
        a P-frame; no state changes."""
        frame = self.code(x, intra, q)
        reconstruction = self._reconstruct(intra, frame[2], frame[0], with_context=True)
        return self.rd_cost(x, reconstruction[0], frame[1], lam), frame, reconstruction

    def rd_cost(self, x: torch.Tensor, x_hat: torch.Tensor, payload: bytes, lam: float) -> float:
        """``lam * 255^2 * MSE + bits per pixel`` of a coded frame (the training objective's
        form) from its reconstruction."""
        h, w = self.height, self.width
        mse = (x_hat[..., :h, :w].float() - x[..., :h, :w].float()).pow(2).mean().item()
        return lam * 255.0 ** 2 * mse + 8 * len(payload) / (h * w)

    def prepare(self, pixels: np.ndarray) -> torch.Tensor:
        if pixels.shape != (self.height, self.width, 3) or pixels.dtype != np.uint8:
            raise InputError(f"frame {self.index} is {pixels.shape[1]}x{pixels.shape[0]}, "
                             f"expected {self.width}x{self.height}")
        return pad_to_multiple(to_tensor(pixels, self.device), STRIDE)

    def next_is_intra(self) -> bool:
        return self.gop.is_intra(self.index)

    def next_gop_index(self) -> int:
        """Position of the next frame in its GOP (0: I-frame)."""
        return 0 if self.next_is_intra() else self.gop_index + 1

    @torch.no_grad()
    def code(self, x: torch.Tensor, intra: bool, q: float):
        """(quality used, record payload, y_hat) of frame ``x`` at quality ``q``; no state changes."""
        prefix = b""
        if self.gop.frame_quality:
            q, prefix = quantize_quality(q)
        if intra:
            codec = self.model.intra
            with amp(self.device, self.half, torch.bfloat16):
                y = analyse_tiled(codec, x, q).float()
            streams, y_hat = [], torch.zeros_like(y)
            for r, c, th, tw in latent_tiles(y.shape[-2], y.shape[-1], codec):
                comp = codec.compress_latent(y[..., r:r + th, c:c + tw])
                streams += [comp.streams["z"], comp.streams["y"]]
                y_hat[..., r:r + th, c:c + tw] = comp.latents
            payload = pack_streams(streams)
        else:
            with amp(self.device, self.half):
                y = self.model.analyse(x, self.x_ref, self.ctx, q).float()
            payload, y_hat = self.model.compress_p(y, self.buf)
        return q, prefix + payload, y_hat

    def commit(self, intra: bool, q: float, payload: bytes, y_hat: torch.Tensor, reconstruction=None):
        """Advance the state past a coded frame (``reconstruction``: its pixels and context
        if already computed); returns (record name, payload, y_hat)."""
        self._step_gop(intra)
        self._advance(intra, y_hat, q, reconstruction)
        self.index += 1
        return ("I" if intra else "P"), payload, y_hat


class VideoDecoder(_State):
    """Decode records one at a time; ``decode(name, payload)`` returns y_hat (exact)."""

    @torch.no_grad()
    def decode_latent(self, name: str, payload: bytes):
        intra = name == "I"
        if name not in ("I", "P"):
            raise BitstreamError(f"unexpected record {name!r} in a video bitstream")
        if not self.gop.allows(self.index, intra):
            raise BitstreamError(f"frame {self.index}: record {name} does not match the GOP structure")
        q = self._frame_quality(intra)
        if self.gop.frame_quality:
            q, payload = split_quality(payload)
        lh, lw = self._latent_hw()
        if intra:
            codec = self.model.intra
            tiles = latent_tiles(lh, lw, codec)
            streams = unpack_streams(payload, 2 * len(tiles))
            y_hat = None
            for i, (r, c, th, tw) in enumerate(tiles):
                part = codec.decode_latents(Compressed({"z": streams[2 * i], "y": streams[2 * i + 1]},
                                                       {"latent_hw": [th, tw]}))
                if y_hat is None:
                    y_hat = part.new_zeros(1, part.shape[1], lh, lw)
                y_hat[..., r:r + th, c:c + tw] = part
        else:
            y_hat = self._decode_p(payload)
        return intra, y_hat, q

    def _decode_p(self, payload: bytes):
        return self.model.decompress_p(payload, self.buf)

    @torch.no_grad()
    def decode(self, name: str, payload: bytes):
        intra, y_hat, q = self.decode_latent(name, payload)
        self._advance(intra, y_hat, q)
        self.index += 1
        return y_hat


class PipelinedDecoder(VideoDecoder):
    """CUDA decoder that overlaps frames: the latent chain (entropy decoding on the host and
    the exact networks) of frame t+1 runs while the GPU synthesises frame t on a second
    stream; with ``graphs`` the latent chain's device steps replay as CUDA graphs
    (video/graphs.py; off by default: on the H100 it helps only with the cuDNN exact convolutions,
    see docs/video.md). ``push(name, payload)`` returns the pixels of the previous frame (None
    for the first); ``flush()`` returns the last one. Latents are those of
    :class:`VideoDecoder`; pixels too where the float kernels are deterministic. On the CPU
    the same interface runs the steps one after the other (no overlap; it lets the CPU tests
    check the one-frame lag, flush and reset)."""

    def __init__(self, *args, graphs: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        cuda = self.device.type == "cuda"
        if graphs and not cuda:
            raise ValueError("CUDA graphs need a CUDA device")
        self.latent_stream = torch.cuda.Stream(self.device) if cuda else None
        self.pixel_stream = torch.cuda.Stream(self.device) if cuda else None
        self._pending = None            # (pinned host pixels, copy-done event) of the last frame
        self.graphs = graphs
        self._steps = self._update = None

    def reset(self) -> None:
        """Start again at frame 0 (same size and settings), keeping the captured graphs."""
        self.flush()
        self.index = self.gop_index = 0
        self.x_ref = self.ctx = self.buf = None

    def _decode_p(self, payload: bytes):
        if not self.graphs:
            return super()._decode_p(payload)
        if self._steps is None:
            from neuralcodec.video.graphs import graphed_latent_steps
            self._steps, self._update = graphed_latent_steps(self.model, self.buf)
        return self.model.decompress_p(payload, self.buf, self._steps).clone()

    def _advance_buffer(self, intra: bool, y_hat) -> None:
        if intra or self._update is None:
            super()._advance_buffer(intra, y_hat)
        else:
            self.buf = self._update(y_hat, self.buf)

    @torch.no_grad()
    def push(self, name: str, payload: bytes):
        if self.latent_stream is None:
            return self._push_serial(name, payload)
        with torch.cuda.stream(self.latent_stream):
            intra, y_hat, q = self.decode_latent(name, payload)
            self._advance_buffer(intra, y_hat)
            ready = torch.cuda.Event()
            ready.record(self.latent_stream)
        with torch.cuda.stream(self.pixel_stream):
            self.pixel_stream.wait_event(ready)
            y_hat.record_stream(self.pixel_stream)
            self._advance_pixels(intra, y_hat, q)
            host = torch.empty((self.height, self.width, 3), dtype=torch.uint8, pin_memory=True)
            host.copy_(pixel_tensor(self.x_ref[..., :self.height, :self.width]), non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.pixel_stream)
        self.index += 1
        previous, self._pending = self._pending, (host, done)
        return self._take(previous)

    def _push_serial(self, name: str, payload: bytes):
        """push() without streams (CPU): the sequential decoder's steps, one frame of lag."""
        self.decode(name, payload)
        previous, self._pending = self._pending, (self.output(), None)
        return self._take(previous)

    def flush(self):
        """Pixels of the last pushed frame (None if there is none)."""
        last, self._pending = self._pending, None
        return self._take(last)

    @staticmethod
    def _take(item):
        if item is None:
            return None
        host, done = item
        if done is None:            # the CPU path keeps the frame as a numpy array
            return host
        done.synchronize()
        return host.numpy()


def check_geometry(width: int, height: int) -> None:
    if width < 1 or height < 1 or width * height > MAX_VIDEO_PIXELS:
        raise InputError(f"unsupported video size {width}x{height}")


def make_header(model: VideoRT, width: int, height: int, fps, quality: float, gop: GopConfig,
                frames: int = 0, source: str = "", extra: dict | None = None):
    from neuralcodec.container import Header
    from neuralcodec.video.weights import video_hash
    params = dict(gop.params(), intra=model.config["intra"])
    if source:
        params["source_pix_fmt"] = source
    params.update(extra or {})
    return Header(codec=model.name, weights_hash=video_hash(model), kind="video", width=width,
                  height=height, frames=frames, fps=(int(fps[0]), int(fps[1])), pixel_format="rgb24",
                  quality=check_quality(quality), params=params)


def encode_frames(model: VideoRT, frames, fileobj, width: int, height: int, fps=(25, 1),
                  quality: float = 4.0, intra_period: int = 32, device=None, half: bool = False,
                  total: int = 0, source: str = "", on_frame=None, latents: list | None = None,
                  target_bits: float = 0.0, rate_stats: dict | None = None, rate_frames: int = 0,
                  adaptive_intra: bool = False) -> int:
    """Encode an iterable of RGB frames into a container written record by record.
    ``on_frame(index, name, nbytes)`` is called after each frame; ``latents``, if given,
    receives each frame's exact decoded latent (on the CPU), for checks. With ``target_bits``
    (bits per frame) a :class:`~neuralcodec.video.rate_control.RateController` chooses each
    frame's quality (``quality`` is then only the header's nominal value) and the records
    carry their qualities; ``rate_stats``, if given, receives its summary; ``rate_frames`` tells it
    the sequence length where ``total`` (the header's count) is not known. With ``adaptive_intra``
    every frame the intra period leaves to a P-frame is coded both ways and the cheaper one (rate +
    lambda * distortion) is kept (encode time 4-5x on a CPU). Returns the frame count."""
    from neuralcodec.container import ContainerWriter

    check_geometry(width, height)
    if intra_period < 0:
        raise InputError("--intra-period must be >= 0")
    device = device or next(model.parameters()).device
    if adaptive_intra and target_bits > 0:
        raise InputError("adaptive intra frames and rate control do not combine yet")
    gop = GopConfig(intra_period, frame_quality=target_bits > 0, adaptive_intra=adaptive_intra)
    rate = extra = None
    if target_bits > 0:
        from neuralcodec.video.rate_control import RateController
        rate = RateController(target_bits, width * height, gop, total or rate_frames)
        extra = {"target_bits_per_frame": round(float(target_bits), 3)}
    header = make_header(model, width, height, fps, quality, gop, total, source, extra)
    enc = VideoEncoder(model, width, height, header.quality, gop, device, half)
    if rate is not None:        # measure the content's I and P costs on the first two frames
        frames = iter(frames)
        head = list(itertools.islice(frames, 2))
        rate.calibrate(VideoEncoder(model, width, height, header.quality, gop, device, half), head)
        frames = itertools.chain(head, frames)
    with ContainerWriter(fileobj, header) as writer:
        for pixels in frames:
            name, payload, y_hat = enc.encode(pixels) if rate is None else rate.encode(enc, pixels)
            writer.add(name, payload)
            if rate is not None:
                rate.account(writer.bytes_written)
            if latents is not None:
                latents.append(y_hat.cpu())
            if on_frame:
                on_frame(enc.index - 1, name, len(payload))
        if enc.index == 0:
            raise InputError("the input holds no frames")
    if rate is not None and rate_stats is not None:
        rate_stats.update(rate.summary(), bytes=writer.bytes_written)
    return enc.index


def check_video_header(header, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Fields of a video header a decoder relies on: kind, rgb24, frame size (the codec's
    limit and the caller's), quality range; the GOP is checked by :class:`GopConfig`."""
    if header.kind != "video":
        raise BitstreamError(f"this bitstream holds a {header.kind}, not a video")
    if header.pixel_format != "rgb24":
        raise BitstreamError(f"pixel format {header.pixel_format} is not supported by "
                             f"{header.codec} (rgb24 only)")
    check_picture_size(header.width, header.height, max_pixels)
    if header.width * header.height > MAX_VIDEO_PIXELS:
        raise BitstreamError(f"video frames of {header.width}x{header.height} are larger than "
                             f"{header.codec} codes ({MAX_VIDEO_PIXELS} pixels)")
    if not QUALITY_MIN <= header.quality <= QUALITY_MAX:
        raise BitstreamError(f"header quality {header.quality!r} is outside "
                             f"[{QUALITY_MIN:g}, {QUALITY_MAX:g}]")


def open_decoder(model: VideoRT, header, device=None, half: bool = False,
                 pipelined: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS) -> VideoDecoder:
    """A decoder for ``header`` (checked against the model); on CUDA a :class:`PipelinedDecoder`
    unless ``pipelined`` is False."""
    from neuralcodec.container import check_weights
    from neuralcodec.video.weights import video_hash

    check_video_header(header, max_pixels)
    check_weights(header, model.name, video_hash(model))
    gop = GopConfig.from_params(header.params)
    device = torch.device(device or next(model.parameters()).device)
    cls = PipelinedDecoder if device.type == "cuda" and pipelined else VideoDecoder
    return cls(model, header.width, header.height, header.quality, gop, device, half)


def decode_frames(model: VideoRT, fileobj, device=None, half: bool = False,
                  max_pixels: int = DEFAULT_MAX_PIXELS):
    """Yield decoded RGB frames of a container, reading one record at a time. Every frame
    yielded is complete; a damaged or cut file raises after the last good one."""
    from neuralcodec.container import ContainerReader

    reader = ContainerReader(fileobj)
    try:
        dec = open_decoder(model, reader.header, device, half, max_pixels=max_pixels)
        pipelined = isinstance(dec, PipelinedDecoder)
        try:
            for sub in reader:
                if sub.truncatable:
                    raise BitstreamError(f"frame {dec.index}: record {sub.name} is flagged "
                                         "truncatable; video frames are not progressive")
                if pipelined:
                    frame = dec.push(sub.name, sub.data)
                    if frame is not None:
                        yield frame
                else:
                    dec.decode(sub.name, sub.data)
                    yield dec.output()
        except NeuralCodecError:
            last = dec.flush() if pipelined else None
            if last is not None:
                yield last                     # the frame before the error is complete
            raise
        if pipelined and dec.index:
            yield dec.flush()
        if reader.header.frames and dec.index != reader.header.frames:
            raise BitstreamError(f"header says {reader.header.frames} frames, file has {dec.index}")
    finally:
        reader.close() if hasattr(reader, "close") else None
