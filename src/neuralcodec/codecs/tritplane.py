"""`trit-plane`: progressive (fine-granular scalable) coding of the `hyperprior` latents.

The base codec's latents are quantised at its finest quality and written as trit-planes,
most significant first; within a plane, elements go in rate-distortion priority order and
are coded in small segments of one truncatable substream, so a stream cut after any byte
still decodes (docs/progressive.md). Two small context modules sit on top of the shipped
base model (their weights are the only ones this codec ships):

* CRR (context-based rate reduction): an integer-exact per-element network refining the
  trit probabilities from the already decoded planes and neighbours;
* CDR (context-based distortion reduction): a float network refining partially decoded
  latents (beyond the Gaussian conditional expectation) before synthesis.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from neuralcodec.codecs.base import ImageCodec, StreamImageCodec, register_codec
from neuralcodec.entropy import tritplane as T
from neuralcodec.entropy.exact import ExactNet, to_fixed
from neuralcodec.entropy.param_grid import (SCALE_TABLE, mean_from_fixed, scale_index_from_fixed,
                                            weights_from_fixed)
from neuralcodec.errors import BitstreamError, InputError, ModelError
from neuralcodec.io.varint import encode_varint, read_varint
from neuralcodec.limits import DEFAULT_MAX_PIXELS

MAX_PLANES = 12                  # |s| <= (3^12 - 1) / 2
CRR_FEATURES = 9
CERTAIN = T.TOTAL - T.TOTAL // 64  # CRR runs where the likeliest Gaussian trit is below 63/64
MAX_LATENT_SIDE = 128            # one entropy tile (2048 pixels per side)
COUNT_SIGMAS = 2                 # predicted plane count of a channel: 2 sigma (count_freqs)


def interval_mean(lo: torch.Tensor, span: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """E[s | lo <= s <= lo + span - 1] for s = round(v), v ~ N(0, sigma) (continuous
    approximation, float64, clamped to the interval; exact for single values)."""
    a, b = (lo - 0.5) / sigma, (lo + span - 0.5) / sigma
    flip = (a + b) < 0
    a, b = torch.where(flip, -b, a), torch.where(flip, -a, b)           # now b >= |a|
    r = torch.exp(-(b * b - a * a).clamp_min(0) / 2)
    tail = a > 0
    k = 1 / math.sqrt(2)
    num = torch.where(tail, 1 - r, torch.exp(-a * a / 2) - torch.exp(-b * b / 2)) / math.sqrt(2 * math.pi)
    den = torch.where(tail, 0.5 * (torch.special.erfcx(a * k) - torch.special.erfcx(b * k) * r),
                      0.5 * (torch.erf(b * k) - torch.erf(a * k)))
    mean = num / den * sigma
    mid = lo + (span - 1) / 2
    mean = torch.where(torch.isfinite(mean) & (den > 0), torch.where(flip, -mean, mean), mid)
    return torch.minimum(torch.maximum(mean, lo), lo + span - 1)


def crr_features(lo: np.ndarray, sub: int, k: np.ndarray, g: np.ndarray,
                 active: np.ndarray | None = None, channels: int | None = None) -> np.ndarray:
    """Integer CRR inputs (N, 9) at the start of a plane (fixed point, 2^12 = 1).
    ``lo``, ``k``: (C', H, W) int64 of the channels coded in this plane; ``active``: the flat
    indices to return (default all), ``g``: their (N, 3) Gaussian log2-probabilities;
    ``channels``: the latent's channel count C >= C' (the channels not coded in this plane
    have interval centre 0, so they add nothing to the cross-channel mean)."""
    one = T.ONE
    span = 3 * sub
    c_, h, w = lo.shape
    idx = np.arange(lo.size) if active is None else active
    z = np.minimum((np.abs(lo + (span - 1) // 2) * T.INV_SIGMA[k]) >> 16, 16 * one)  # |centre| / sigma
    zp = np.pad(z, ((0, 0), (1, 1), (1, 1))).reshape(-1)
    cy, x = np.divmod(idx, w)                                     # cy = channel * h + row
    at = (cy + 2 * (cy // h) + 1) * (w + 2) + x + 1               # the same element in zp
    nb = sum(zp[at + dy * (w + 2) + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx) // 8
    ch = (z.sum(0) // (channels or c_)).reshape(-1)[idx % (h * w)]
    centre = lo.reshape(-1)[idx] + (span - 1) // 2
    cpos = np.clip(centre * one // span, -4 * one, 4 * one)
    rs = np.clip(k.reshape(-1)[idx] * 256 - 4 * one - (int(round(math.log(sub, 3))) * T.LOG2_3),
                 -8 * one, 8 * one)
    cols = [rs, cpos, np.abs(cpos), zp[at], nb, ch]
    return np.concatenate([g] + [v.reshape(-1, 1) for v in cols], 1)


def crr_inputs(lo: np.ndarray, sub: int, k: np.ndarray, masses: np.ndarray, active: np.ndarray,
               channels: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, Gaussian logits, CRR features) of the elements CRR refines in a plane, from
    :func:`neuralcodec.entropy.tritplane.gauss_plane`'s masses and active flags (shared by
    coding and training, so both see the same inputs)."""
    idx = np.flatnonzero(active)
    g = T.gauss_logits(masses[idx])
    return idx, g, crr_features(lo, sub, k, g, idx, channels)


def crr_apply(net: ExactNet, feats: torch.Tensor, exact: bool) -> torch.Tensor:
    """Per-element CRR on (N, 9) features (fixed point) -> (N, 3) logit corrections (fixed
    point when exact, else real). Elements are laid out along one spatial axis, where 1x1
    convolutions are fast."""
    x = feats.T[None, :, :, None]
    if exact:
        return net.exact(x.double())[0, :, :, 0].T
    return net(x.float() / T.ONE)[0, :, :, 0].T


def plane_start(s: np.ndarray, planes: int, p: int) -> np.ndarray:
    """Interval lows at the start of plane p (planes above decoded), from the symbols. The
    intervals of a plane do not depend on ``planes`` (>= p): the grid of plane p is the same."""
    half = (3 ** planes - 1) // 2
    return (s + half) // 3 ** p * 3 ** p - half


def planes_for(peak: int) -> int:
    """The smallest n with (3^n - 1) / 2 >= peak (0 for peak 0)."""
    n = 0
    while (3 ** n - 1) // 2 < peak:
        n += 1
    return n


def planes_needed(s: np.ndarray) -> int:
    peak = int(np.abs(s).max()) if s.size else 0
    n = max(planes_for(peak), 1)
    if n > MAX_PLANES:
        raise InputError(f"latent value {peak} exceeds the trit-plane range")
    return n


def channel_planes(s: np.ndarray) -> np.ndarray:
    """Plane count of every channel of s (C, H, W): 0 for an all-zero channel."""
    peaks = np.abs(s).reshape(len(s), -1).max(1, initial=0)
    return np.array([planes_for(int(v)) for v in peaks], np.int64)


def predicted_planes(k: np.ndarray) -> np.ndarray:
    """Per channel of the scale indices k (C, H, W): the planes that cover 2 sigma of the
    channel's widest Gaussian, the smallest n with (3^n - 1)/2 >= 2 sigma_max (integer:
    (3^n - 1)/2 * inv_k >= 2^29 with the coder's inv_k = round(2^28 / sigma_k))."""
    inv = T.INV_SIGMA[k.reshape(len(k), -1).max(1, initial=0)]
    half = (3 ** np.arange(MAX_PLANES, dtype=np.int64) - 1) // 2
    return (half[None] * inv[:, None] < COUNT_SIGMAS << 28).sum(1)


def count_freqs(k: np.ndarray, planes: int) -> np.ndarray:
    """Coder frequencies (C, planes + 1) of each channel's plane count 0..planes, from the
    difference to :func:`predicted_planes` (fixed table; an all-zero channel 2600/2^16)."""
    diff = np.arange(planes + 1)[None] - predicted_planes(k)[:, None]
    f = np.select([diff == 0, diff == -1, diff == 1, np.abs(diff) == 2], [52000, 7000, 2500, 400], 16)
    f[:, 0] = np.where(diff[:, 0] == 0, f[:, 0], 2600)
    return f.astype(np.int32)


def encode_channel_planes(counts: np.ndarray, k: np.ndarray, planes: int) -> bytes:
    """``varint(n) payload``: the counts as an n-byte categorical coder payload."""
    payload = T.encode_payload(counts.astype(np.int32), count_freqs(k, planes))
    return encode_varint(len(payload)) + payload


def split_side(side: bytes) -> tuple[bytes, bytes]:
    """Substream ``z`` -> (plane-count payload, hyper-latent stream)."""
    head = read_varint(side, 0, "trit-plane stream")
    if head is None or head[1] + head[0] > len(side):
        raise BitstreamError("corrupt trit-plane stream: bad channel plane counts")
    end = head[1] + head[0]
    return side[head[1]:end], side[end:]


def decode_channel_planes(payload: bytes, k: np.ndarray, planes: int) -> np.ndarray:
    counts = T.decode_payload(payload, count_freqs(k, planes)).astype(np.int64)
    if max(int(counts.max(initial=0)), 1) != planes:
        raise BitstreamError("corrupt trit-plane stream: bad channel plane counts")
    return counts


@register_codec
class TritPlaneCodec(StreamImageCodec):
    """Progressive codec over a mean-scale hyperprior base model (see module docstring)."""

    name = "trit-plane"

    def __init__(self, base: str = "hyperprior", base_sha256: str = "", quality: float = 8.0,
                 m: int = 192, crr_hidden: int = 8, cdr_hidden: int = 64):
        super().__init__()
        self.config = {"base": base, "base_sha256": base_sha256, "quality": quality, "m": m,
                       "crr_hidden": crr_hidden, "cdr_hidden": cdr_hidden}
        self.crr = ExactNet(nn.Conv2d(CRR_FEATURES, crr_hidden, 1), nn.ReLU(),
                            nn.Conv2d(crr_hidden, crr_hidden, 1), nn.ReLU(),
                            nn.Conv2d(crr_hidden, 3, 1))
        self.cdr = nn.Sequential(nn.Conv2d(3 * m, cdr_hidden, 1), nn.ReLU(),
                                 nn.Conv2d(cdr_hidden, cdr_hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(cdr_hidden, cdr_hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(cdr_hidden, m, 1))
        for last in (self.crr.layers[-1], self.cdr[-1]):       # start as the identity
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.use_crr = True
        self.use_cdr = True
        self._base: ImageCodec | None = None

    # ------------------------------------------------------------ base model and hash
    def set_base(self, model: ImageCodec) -> "TritPlaneCodec":
        from neuralcodec.codecs.hyperprior import MeanScaleHyperprior
        if not isinstance(model, MeanScaleHyperprior) or model.config["m"] != self.config["m"]:
            raise ModelError("trit-plane needs a mean-scale hyperprior base with "
                             f"{self.config['m']} latent channels")
        self.__dict__["_base"] = model.eval()      # not a submodule: its weights are not ours
        return self

    @property
    def base(self) -> ImageCodec:
        if self._base is None:
            from neuralcodec.codecs.registry import load_model, shipped_weights
            path = shipped_weights(self.config["base"])
            if path is None:
                raise ModelError(f"trit-plane needs the shipped {self.config['base']!r} weights")
            want = self.config.get("base_sha256")
            model = load_model(self.config["base"], path, self.device)
            if want and model.weights_hash.hex() != want:
                raise ModelError(f"trit-plane weights were trained on {self.config['base']} "
                                 f"weights {want[:12]}, the shipped ones are "
                                 f"{model.weights_hash.hex()[:12]}")
            self.set_base(model)
        return self._base

    @property
    def device(self) -> torch.device:
        """The device of this codec's weights (the base model follows them)."""
        return self.crr.layers[0].weight.device

    def _apply(self, fn, *args, **kwargs):
        # torch runs .to() / .cuda() / .half() through _apply; the base is no submodule, so
        # the same fn goes on to its _apply (torch's extension point, allowed by
        # tests/test_private_names.py)
        super()._apply(fn, *args, **kwargs)
        if self._base is not None:
            self._base._apply(fn, *args, **kwargs)
        return self

    @property
    def weights_hash(self) -> bytes:
        """SHA-256 over the base model's hash and this model's own weights hash."""
        from neuralcodec.codecs.weights import model_hash, state_dict_hash
        own = self.__dict__.get("_own_hash")
        if own is None:
            own = state_dict_hash(self).digest()
        return hashlib.sha256(b"trit-plane" + model_hash(self.base) + own).digest()

    @weights_hash.setter
    def weights_hash(self, value: bytes) -> None:
        self.__dict__["_own_hash"] = value

    def update(self) -> None:
        self.crr.freeze()

    # ------------------------------------------------------------ probability model
    def plane_model(self, lo: np.ndarray, sub: int, k: np.ndarray, channels: int | None = None):
        """Coder frequencies (N, 3) and the coding order of the next trit of every element.
        ``lo``, ``k``: (C', H, W) int64 at the start of the plane whose trits have size sub,
        of the channels coded in this plane (``channels``: the latent's C, default C')."""
        masses, active, order = T.gauss_plane(lo, sub, k, CERTAIN)
        freqs = masses + 1
        if self.use_crr:
            active, g, feats = crr_inputs(lo, sub, k, masses, active, channels)
            if active.size:
                delta = crr_apply(self.crr, torch.from_numpy(feats).to(self.device), exact=True)
                logits = torch.from_numpy(g).double().to(delta.device) + delta
                freqs[active] = weights_from_fixed(logits).cpu().numpy().astype(np.int64)
        return freqs, order

    # ------------------------------------------------------------ planes
    def code_planes(self, s: np.ndarray, k: np.ndarray, counts: np.ndarray) -> bytes:
        """Encode the trit-planes of the symbols s (C, H, W); channel c has counts[c] planes."""
        out = bytearray()
        for p in range(int(counts.max(initial=0)), 0, -1):
            sel = counts >= p
            lo = plane_start(s[sel], p, p)
            sub = 3 ** (p - 1)
            freqs, order = self.plane_model(lo, sub, k[sel], len(s))
            trits = ((s[sel] - lo) // sub).reshape(-1)
            out += T.encode_segments(trits[order], freqs[order])
        return bytes(out)

    def decode_planes(self, data: bytes, k: np.ndarray, counts: np.ndarray):
        """Decode the available trits; returns (lo, span) per element (int64, (C, H, W))."""
        span = np.broadcast_to((3 ** counts)[:, None, None], k.shape).copy()
        lo = -((span - 1) // 2)
        reader = T.SegmentReader(data)
        for p in range(int(counts.max(initial=0)), 0, -1):
            sel = counts >= p
            every = bool(sel.all())
            lo_p = lo if every else lo[sel]
            sub = 3 ** (p - 1)
            freqs, order = self.plane_model(lo_p, sub, k if every else k[sel], len(k))
            trits = reader.read_plane(freqs[order])
            idx = order[:len(trits)]
            if not every:
                idx = np.flatnonzero(np.repeat(sel, lo[0].size))[idx]
            lo.reshape(-1)[idx] += trits * sub
            span.reshape(-1)[idx] = sub
            if len(trits) < len(order):
                return lo, span
        if reader.pos != len(data):
            raise BitstreamError("corrupt trit-plane stream: data after the last plane")
        return lo, span

    # ------------------------------------------------------------ reconstruction
    def cdr_input(self, y_rec, span, sigma):
        return torch.cat([y_rec / 4, torch.log2(span) / 4, torch.log2(sigma) / 4], 1).float()

    def reconstruct(self, mu: torch.Tensor, sigma: torch.Tensor, lo: torch.Tensor,
                    span: torch.Tensor) -> torch.Tensor:
        """Latent estimate (B, C, H, W) from the decoded intervals of s = round(y - mu)."""
        y_rec = mu + interval_mean(lo, span, sigma)
        if not self.use_cdr:
            return y_rec.float()
        delta = self.cdr(self.cdr_input(y_rec, span, sigma)).double()
        gate = torch.minimum((span - 1) / 2, 2 * sigma)
        return (y_rec + delta * gate).float()

    # ------------------------------------------------------------ image I/O
    def gaussian_params(self, hyper: torch.Tensor):
        """(mu float64, scale indices k, sigma float64) of the latents from the fixed-point
        hyper-synthesis output."""
        means, log2_scales = hyper.chunk(2, dim=1)
        mu = mean_from_fixed(means).double()
        k = scale_index_from_fixed(log2_scales)
        return mu, k, SCALE_TABLE.to(k.device)[k].double()

    @torch.no_grad()
    def encode_image(self, pixels: np.ndarray, quality=None, device=None) -> bytes:
        """Full-quality progressive stream of uint8 pixels (H, W, 3); the quality of the base
        model is this codec's (``config["quality"]``), whatever ``quality`` says."""
        from neuralcodec.codecs.pixels import check_pixels, pad_to_multiple, to_tensor
        from neuralcodec.container import Header, Substream, pack

        base, q = self.base, float(self.config["quality"])
        pixels = check_pixels(pixels)
        h, w = pixels.shape[:2]
        if max(h, w) > MAX_LATENT_SIDE * base.latent_stride:
            raise InputError(f"trit-plane codes images up to {MAX_LATENT_SIDE * base.latent_stride}"
                             f" pixels per side, got {w}x{h}")
        y = base.analyse(pad_to_multiple(to_tensor(pixels, self.device), base.stride), q)
        z_stream, z_hat = base.z_prior.compress(base.h_a(y))
        mu, k, _ = self.gaussian_params(base.h_s.exact(to_fixed(z_hat)))
        s = np.ascontiguousarray(torch.round(y - mu.float())[0].cpu().numpy(), dtype=np.int64)
        kk = np.ascontiguousarray(k[0].cpu().numpy())
        planes = planes_needed(s)
        counts = channel_planes(s)
        data = self.code_planes(s, kk, counts)
        header = Header(codec=self.name, weights_hash=self.weights_hash, kind="image", width=w,
                        height=h, quality=q, params={"planes": planes})
        side = encode_channel_planes(counts, kk, planes) + z_stream
        return pack(header, [Substream("z", side), Substream("trits", data, truncatable=True)])

    @torch.no_grad()
    def decode_latent(self, data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS):
        """(latent estimate, header) of a stream or a prefix of one."""
        from neuralcodec.codecs.image_decoder import check_image_header
        from neuralcodec.container import check_weights, read_header, unpack

        header = read_header(data)
        check_image_header(header, max_pixels)
        check_weights(header, self.name, self.weights_hash)
        planes = header.params.get("planes")
        if set(header.params) != {"planes"} or type(planes) is not int \
                or not 1 <= planes <= MAX_PLANES:
            raise BitstreamError("not a trit-plane image stream")
        header, subs = unpack(data, allow_truncated=True)
        if [s.name for s in subs] == ["z", "planes"]:
            raise BitstreamError("trit-plane stream of an older layout (one plane count for "
                                 "all channels): re-encode it")
        if [(s.name, s.truncatable) for s in subs] != [("z", False), ("trits", True)]:
            raise BitstreamError("trit-plane stream needs substreams 'z' then 'trits' "
                                 "(only 'trits' truncatable)")
        base = self.base
        lh, lw = (-(-v // base.stride) * (base.stride // base.latent_stride)
                  for v in (header.height, header.width))
        if max(lh, lw) > MAX_LATENT_SIDE:
            raise BitstreamError("image too large for a trit-plane stream")
        shape = (1, base.z_prior.bottleneck.channels, lh // 4, lw // 4)
        count_payload, z_stream = split_side(subs[0].data)
        z_hat = base.z_prior.decompress(z_stream, shape, self.device)
        mu, k, sigma = self.gaussian_params(base.h_s.exact(to_fixed(z_hat)))
        kk = np.ascontiguousarray(k[0].cpu().numpy())
        counts = decode_channel_planes(count_payload, kk, planes)
        lo, span = self.decode_planes(subs[1].data, kk, counts)
        lo_t, span_t = (torch.from_numpy(v)[None].double().to(mu.device) for v in (lo, span))
        return self.reconstruct(mu, sigma, lo_t, span_t), header

    @torch.no_grad()
    def decode_image(self, data: bytes, device=None, max_bytes: int | None = None,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """Decode a stream, a prefix of one, or (``max_bytes``) its best prefix of that size;
        a declared picture over ``max_pixels`` is refused before decoding."""
        from neuralcodec.codecs.pixels import to_pixels
        from neuralcodec.container import truncate_container

        if max_bytes is not None:
            data = truncate_container(data, int(max_bytes))
        y, header = self.decode_latent(data, max_pixels)
        x = self.base.synthesise(y, header.quality).clamp(0, 1)
        return to_pixels(x[..., :header.height, :header.width])
