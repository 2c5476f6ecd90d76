"""`video-rt`: a small DCVC-RT-style learned video codec (P-frame part).

* I-frames: the repo's ``hyperprior`` image codec (referenced by name + weights hash).
* P-frames: conditional coding with implicit temporal modelling. A pixel-domain context
  (features at 1/4 resolution: extracted from the decoded I-frame, then propagated from the
  P-frame synthesis) and the previous decoded frame condition the analysis and synthesis
  transforms; one latent at 1/16 resolution; hyperprior + checkerboard two-pass context.
* Entropy parameters only ever see exactly reproducible data: the P hyper-latent, the
  decoded latents and a latent-domain feature buffer updated with integer-exact networks
  (:class:`~neuralcodec.entropy.exact.ExactNet`) — never the float reconstruction.
* Variable rate through :class:`~neuralcodec.codecs.base.QualityGain` on the latent, with
  per-frame quality offsets in a hierarchical pattern (see :func:`frame_quality`).
* Options for larger variants: the widths (``m`` latent, ``f`` pixel context, ``n`` hidden,
  ``nz`` hyper-latent, ``buf`` latent buffer), ``ctx_scales`` (2, 3: multi-scale temporal
  context), ``warp`` (a learned warp of context and reference; ``warp_gate``: blended per position
  with the unwarped ones), ``motion`` (with the warp: a search radius; the encoder finds the motion
  by block matching, gives it with the reference moved by it to the analysis, and writes it,
  averaged to 1/16, into the latent, from which the decoder reads it back into the warp; training
  may pull the warp toward it, see :meth:`VideoRT.forward_p`), see video/context.py, and
  ``refine`` (channels of a full-resolution refinement of the reconstruction; 0: none) and
  ``blocks`` (residual bottleneck blocks after each stage of the analysis, at 1/4, 1/8 and 1/16,
  and of the synthesis, at 1/8 and 1/4; 0: none). The defaults are the shipped configuration.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from neuralcodec.codecs.base import QUALITY_MAX, QUALITY_MIN, QualityGain
from neuralcodec.codecs.framing import pack_streams, unpack_streams
from neuralcodec.codecs.gained import quality_tensor
from neuralcodec.codecs.transforms import ResidualBottleneck, conv, pointwise_net
from neuralcodec.entropy.exact import ExactNet, to_fixed
from neuralcodec.entropy.factorized import FactorizedPrior
from neuralcodec.latent.base import StoredLayout
from neuralcodec.latent.checkerboard import Checkerboard
from neuralcodec.latent.conditional import GaussianConditional
from neuralcodec.latent.factorized import Factorized
from neuralcodec.latent.hyperprior import Hyperprior
from neuralcodec.video.context import (LearnedWarp, MultiScaleContext, WarpGate, backward_warp, motion_search,
                                      zero_init)

NAME = "video-rt"
STRIDE = 64            # frames are padded to a multiple of this (latent /16, hyper-latent /64)
LATENT_STRIDE = 16
# Quality offsets of P-frames by position in the GOP (cycle of 4, DCVC-RT-like hierarchy:
# every 4th frame is coded better and limits error propagation), and of I-frames.
P_OFFSETS = (0.0, -0.75, -0.4, -0.75)
I_OFFSET = 0.5
# Symbols per coder chunk in P-frame streams: a 1080p pass (~261k symbols) splits into 16
# chunks that decode in parallel (~5 bytes per extra chunk; a 416x240 pass is one chunk).
P_CHUNK = 16384
# the latent codec's tensors keep the names of the weights files written before it was one
LATENT_LAYOUT = {"latent.h_a.": "h_a.", "latent.z.prior.": "z_prior.", "latent.h_s.": "h_s.",
                 "latent.inner.": "entropy."}


def frame_quality(base: float, index_in_gop: int, p_offsets=P_OFFSETS, i_offset: float = I_OFFSET) -> float:
    """Quality of a frame at ``index_in_gop`` (0 = I-frame) for a base quality, clamped to [1, 8]."""
    off = i_offset if index_in_gop == 0 else p_offsets[index_in_gop % len(p_offsets)]
    return float(min(QUALITY_MAX, max(QUALITY_MIN, base + off)))


def _act() -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=True)


def _full_res_refine(c: int) -> nn.Sequential:
    """A residual correction at full resolution from [reconstruction, reference] (the synthesis
    otherwise makes every pixel from 1/4-resolution features); starts as a no-op."""
    net = nn.Sequential(conv(6, c, 3, 1), _act(), conv(c, c, 3, 1), _act(), conv(c, 3, 3, 1))
    with torch.no_grad():
        net[-1].weight.zero_()
        net[-1].bias.zero_()
    return net


MOTION_STEP = 4.0     # latent units per 1/4-resolution pixel of motion (quantised to 1/4 px)


def _motion_pair(m: int) -> tuple[nn.Conv2d, nn.Conv2d]:
    """1x1 maps of the searched motion (at 1/16) into the latent and of the decoded latent back
    to a displacement, starting as a pair that writes the motion into the last two latent
    channels and reads it back (so that the warp starts from the motion, not from zero)."""
    enc, dec = nn.Conv2d(2, m, 1), nn.Conv2d(m, 2, 1)
    with torch.no_grad():
        for layer in (enc, dec):
            layer.weight.zero_()
            layer.bias.zero_()
        for i in range(2):
            enc.weight[m - 2 + i, i] = MOTION_STEP
            dec.weight[i, m - 2 + i] = 1 / MOTION_STEP
    return enc, dec


def _depth(n: int, blocks: int, stages: int) -> nn.ModuleList:
    """``stages`` stacks of ``blocks`` residual bottleneck blocks, each starting as the identity
    (last convolution zero), so that a model with them begins where one without them is."""
    out = nn.ModuleList()
    for _ in range(stages):
        stack = nn.Sequential(*(ResidualBottleneck(n) for _ in range(blocks)))
        for block in stack:
            nn.init.zeros_(block.body[-1].weight)
            nn.init.zeros_(block.body[-1].bias)
        out.append(stack)
    return out


def _run_with(seq: nn.Sequential, x: torch.Tensor, terms: dict, after: dict) -> torch.Tensor:
    """Run ``seq`` layer by layer, adding ``terms[i]`` to the output of layer ``i`` and then
    applying ``after[i]`` to it (with both empty: ``seq(x)``)."""
    for i, layer in enumerate(seq):
        x = layer(x)
        if i in terms:
            x = x + terms[i]
        if i in after:
            x = after[i](x)
    return x


class Up2(nn.Sequential):
    """x2 upsampling: 1x1 conv to 4x channels + pixel shuffle (cheap, DCVC-RT style)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, 4 * cout, 1), nn.PixelShuffle(2))


class VideoRT(nn.Module):
    """P-frame networks of ``video-rt`` (the I-frame codec is attached as ``self.intra``)."""

    name = NAME

    def __init__(self, m: int = 64, f: int = 48, n: int = 64, nz: int = 48, buf: int = 32,
                 intra_m: int = 192, intra: str = "hyperprior", ctx_scales: int = 1, warp: bool = False,
                 refine: int = 0, blocks: int = 0, warp_gate: bool = False, motion: int = 0):
        super().__init__()
        self.config = {"m": m, "f": f, "n": n, "nz": nz, "buf": buf, "intra_m": intra_m, "intra": intra}
        # structural options (video/context.py); recorded only when on, so the shipped
        # configuration (and its weights file) reads exactly as before
        if ctx_scales != 1:
            self.config["ctx_scales"] = ctx_scales
        if warp:
            self.config["warp"] = True
        if warp_gate and not warp:
            raise ValueError("warp_gate needs warp")
        if warp_gate:
            self.config["warp_gate"] = True
        if motion and not warp:
            raise ValueError("motion needs warp")
        if not 0 <= motion <= 16:
            raise ValueError("motion (the search radius) must be in [0, 16]")
        if motion:
            self.config["motion"] = motion
        if refine:
            self.config["refine"] = refine
        if blocks:
            self.config["blocks"] = blocks
        self.intra = None              # the image codec of I-frames: see set_intra
        u = 48                         # pixel-unshuffle(4) of RGB
        # pixel-domain context: decoded I-frame -> features at 1/4 resolution
        self.extract = nn.Sequential(nn.PixelUnshuffle(4), conv(u, f, 3, 1), _act(), conv(f, f, 3, 1))
        self.g_a = nn.Sequential(
            conv(2 * u + f, n, 3, 1), _act(),
            conv(n, n, 3, 2), _act(),
            conv(n, n, 3, 2), _act(),
            nn.Conv2d(n, m, 1))
        self.g_s = nn.Sequential(Up2(m, n), _act(), conv(n, n, 3, 1), _act(), Up2(n, n), _act())
        self.g_s_ctx = nn.Sequential(conv(n + f, n, 3, 1), _act(), conv(n, f, 3, 1))
        self.g_s_out = nn.Sequential(_act(), conv(f, u, 3, 1), nn.PixelShuffle(4))
        with torch.no_grad():          # start close to "copy the reference frame"
            self.g_s_out[1].weight.mul_(0.1)
            self.g_s_out[1].bias.zero_()
        self.gain = QualityGain(m, init_low=0.5, init_high=2.0)
        self.inv_gain = QualityGain(m, init_low=2.0, init_high=0.5)
        # entropy model (everything below feeds the coder: integer-exact): a Hyperprior whose
        # side input is the latent buffer, so the two checkerboard passes over y see
        # [hyper features, buffer]; built in the order the parameters were always initialised
        h_a = nn.Sequential(conv(m, n, 3, 1), _act(), conv(n, nz, 3, 2), _act(), conv(nz, nz, 3, 2))
        z = Factorized(nz)
        h_s = ExactNet(nn.ConvTranspose2d(nz, n, 3, 2, 1, 1), nn.ReLU(),
                       nn.ConvTranspose2d(n, n, 3, 2, 1, 1), nn.ReLU(), nn.Conv2d(n, n, 1))
        self.latent = Hyperprior(h_a, z, h_s, None, stride=4)
        self.buf_init = ExactNet(nn.Conv2d(intra_m, n, 1), nn.ReLU(), conv(n, buf, 3, 1))
        self.buf_update = ExactNet(conv(m + buf, n, 3, 1), nn.ReLU(), conv(n, buf, 3, 1))
        spatial, ctx = ExactNet(conv(m, 64, 3, 1)), 64
        self.latent.inner = Checkerboard(spatial, pointwise_net(n + buf + ctx, (128, 128), 2 * m),
                                         GaussianConditional(m), ctx)
        StoredLayout(LATENT_LAYOUT).install(self)
        self.ms_ctx = MultiScaleContext(f, n, m, ctx_scales) if ctx_scales != 1 else None
        self.warp = LearnedWarp(n, f) if warp else None
        self.warp_gate = WarpGate(n, f) if warp_gate else None
        # the searched motion and the reference moved by it, into the analysis at 1/4 (no-op start)
        self.motion_a = zero_init(conv(u + 2, n, 3, 1)) if motion else None
        self.motion_e, self.motion_s = _motion_pair(m) if motion else (None, None)
        self.motion_radius = motion
        self.refine = _full_res_refine(refine) if refine else None
        # depth: after the activations of g_a at 1/4, 1/8, 1/16 and of g_s at 1/8, 1/4
        self.depth_a = _depth(n, blocks, 3) if blocks else None
        self.depth_s = _depth(n, blocks, 2) if blocks else None

    @property
    def entropy(self) -> Checkerboard:
        """The checkerboard codec of y (the latent codec's inner piece)."""
        return self.latent.inner

    @property
    def z_prior(self) -> FactorizedPrior:
        return self.latent.z.prior

    def set_intra(self, intra) -> None:
        """Attach the I-frame image codec without making it part of this module's state."""
        object.__setattr__(self, "intra", intra)

    # -- shared pieces ----------------------------------------------------------
    def context_from_frame(self, x_hat: torch.Tensor) -> torch.Tensor:
        """Pixel-domain context features of a decoded (I-)frame (float)."""
        return self.extract(x_hat)

    def analyse(self, x, x_ref, ctx, quality):
        return self._analyse(x, x_ref, ctx, quality)[0]

    def _analyse(self, x, x_ref, ctx, quality):
        """(latent, the searched motion at 1/4 resolution or None)."""
        inp = torch.cat([F.pixel_unshuffle(x, 4), F.pixel_unshuffle(x_ref, 4), ctx], 1)
        terms, after, hint = {}, {}, None
        if self.ms_ctx is not None:     # context added after each stride-2 conv (layers 2: 1/8 and 4: 1/16)
            terms = dict(zip((2, 4), self.ms_ctx.analysis_terms(self.ms_ctx.pyramid(ctx))))
        if self.motion_a is not None:   # added to the first layer's output (1/4)
            hint = motion_search(x, x_ref, self.motion_radius)
            moved = F.pixel_unshuffle(backward_warp(x_ref.float(), hint), 4)
            terms[0] = self.motion_a(torch.cat([moved, hint / self.motion_radius], 1).to(inp.dtype))
        if self.depth_a is not None:    # after the activations at 1/4, 1/8, 1/16
            after = dict(zip((1, 3, 5), self.depth_a))
        y = _run_with(self.g_a, inp, terms, after) * self.gain(quality_tensor(quality, x))
        if hint is not None:
            y = y + self.motion_e(F.avg_pool2d(hint, 4).to(y.dtype))
        return y, hint

    def synthesise(self, y_hat, x_ref, ctx, quality):
        """(x_hat, next context features)."""
        return self._synthesise(y_hat, x_ref, ctx, quality)[:2]

    def _synthesise(self, y_hat, x_ref, ctx, quality):
        """(x_hat, next context features, the warp's displacement at 1/4 or None)."""
        feat = self._synthesis_features(y_hat, ctx, quality)
        ctx, x_ref, flow = self._align(feat, ctx, x_ref, y_hat)
        new_ctx = self.g_s_ctx(torch.cat([feat, ctx], 1))
        x_hat = x_ref + self.g_s_out(new_ctx)
        if self.refine is not None:
            x_hat = x_hat + self.refine(torch.cat([x_hat, x_ref], 1))
        return x_hat, new_ctx, flow

    def aligned_reference(self, y_hat, x_ref, ctx, quality):
        """The reference frame as the synthesis adds its residual to it: after the learned warp
        (``warp``), else as it is (a diagnostic: what the motion compensation alone gives)."""
        if self.warp is None:
            return x_ref
        return self._align(self._synthesis_features(y_hat, ctx, quality), ctx, x_ref, y_hat)[1]

    def _align(self, feat, ctx, x_ref, y_hat):
        """(context, reference, displacement) after the learned warp and its gate (as they are,
        and None, without them); with ``motion`` the displacement read from the latent is added."""
        if self.warp is None:
            return ctx, x_ref, None
        flow = self.warp(feat, ctx)
        if self.motion_s is not None:
            flow = flow + F.interpolate(self.motion_s(y_hat.to(flow.dtype)), size=flow.shape[-2:],
                                        mode="bilinear", align_corners=False)
        ctx_w, ref_w = backward_warp(ctx, flow).to(feat.dtype), backward_warp(x_ref, flow)
        if self.warp_gate is None:
            return ctx_w, ref_w, flow
        gate = self.warp_gate(feat, ctx)
        gate_full = F.interpolate(gate, size=x_ref.shape[-2:], mode="bilinear", align_corners=False)
        return ctx + gate * (ctx_w - ctx), x_ref + gate_full.to(x_ref.dtype) * (ref_w - x_ref), flow

    def _synthesis_features(self, y_hat, ctx, quality):
        """The synthesis up to 1/4 resolution (before the context fusion)."""
        y = y_hat * self.inv_gain(quality_tensor(quality, y_hat))
        terms, after = {}, {}
        if self.ms_ctx is not None:     # 1/16 context added to the latent, 1/8 after the first upsampling (layer 0)
            pyramid_terms = self.ms_ctx.synthesis_terms(self.ms_ctx.pyramid(ctx))
            if len(pyramid_terms) > 1:
                y = y + pyramid_terms[1]
            terms = {0: pyramid_terms[0]}
        if self.depth_s is not None:    # after the activations at 1/8 and 1/4
            after = dict(zip((3, 5), self.depth_s))
        return _run_with(self.g_s, y, terms, after)

    # -- training ---------------------------------------------------------------
    def forward_p(self, x, x_ref, ctx, buf, quality) -> dict:
        """One P-frame (training/float path). ``buf``: latent feature buffer (float). With
        ``motion``, ``flow_gap`` is the per-sample mean smooth-L1 distance (1/4-resolution
        pixels) of the warp's displacement from the encoder's searched motion, for a loss
        that guides the warp there (see video/train.py); else zero."""
        y, hint = self._analyse(x, x_ref, ctx, quality)
        y_hat, likelihoods = self.latent(y, buf)
        x_hat, new_ctx, flow = self._synthesise(y_hat, x_ref, ctx, quality)
        new_buf = self.buf_update(torch.cat([y_hat, buf], 1))
        gap = (F.smooth_l1_loss(flow.float(), hint, reduction="none").flatten(1).mean(1)
               if hint is not None else x.new_zeros(x.shape[0]))
        return {"x_hat": x_hat, "ctx": new_ctx, "buf": new_buf, "flow_gap": gap,
                "likelihoods": {"y": likelihoods["y"], "z": likelihoods["z"]}}

    def aux_loss(self) -> torch.Tensor:
        return self.latent.aux_loss()

    def update(self) -> None:
        self.latent.update()
        self.buf_init.freeze()
        self.buf_update.freeze()

    # -- coding (exact entropy path) ---------------------------------------------
    @torch.no_grad()
    def buffer_from_intra(self, y_hat_intra: torch.Tensor) -> torch.Tensor:
        """Latent feature buffer (fixed point) from a decoded I-frame latent."""
        return self.buf_init.exact(to_fixed(y_hat_intra))

    @torch.no_grad()
    def next_buffer(self, y_hat: torch.Tensor, buf_fx: torch.Tensor) -> torch.Tensor:
        return self.buf_update.exact(torch.cat([to_fixed(y_hat), buf_fx], 1))

    def p_steps(self, b: int, h: int, w: int):
        """The device steps of coding a P latent of shape (b, m, h, w), between the host's
        coder calls: pure tensor functions of fixed shapes (CUDA-graph capturable).

        * ``first(z_hat, buf_fx) -> (prior, means0, scales0)`` (pass 0: anchors)
        * ``second(prior, means0, symbols0) -> (y_hat, means1, scales1)`` (pass 1)
        * ``third(y_hat, means1, symbols1) -> y_hat`` (complete)
        """
        ent = self.entropy
        gaussian = ent.inner.model

        def first(z_hat, buf_fx):
            prior = self.latent.inner_side(z_hat, buf_fx)
            return (prior, *gaussian.coder_params(ent.pass_params(0, prior)))

        def second(prior, means0, symbols0):
            y_hat = prior.new_zeros(b, gaussian.channels, h, w, dtype=torch.float32)
            ent.place(y_hat, 0, symbols0 + means0)
            return (y_hat, *gaussian.coder_params(ent.pass_params(1, prior, y_hat)))

        def third(y_hat, means1, symbols1):
            return ent.place(y_hat, 1, symbols1 + means1)
        return first, second, third

    @torch.no_grad()
    def compress_p(self, y: torch.Tensor, buf_fx: torch.Tensor) -> tuple[bytes, torch.Tensor]:
        """Code a P latent given the (exact) buffer; returns (record payload, y_hat)."""
        z_streams, z_hat = self.latent.compress_z(y.float())
        b, _, h, w = buf_fx.shape
        first, second, third = self.p_steps(b, h, w)
        y, ent = y.float(), self.entropy
        gaussian = ent.inner.model
        prior, means, scales = first(z_hat, buf_fx)
        symbols0 = torch.round(ent.gather(y, 0).flatten() - means)
        y_hat, means, scales1 = second(prior, means, symbols0)
        symbols1 = torch.round(ent.gather(y, 1).flatten() - means)
        streams = [*z_streams, gaussian.encode_symbols(symbols0, scales, P_CHUNK),
                   gaussian.encode_symbols(symbols1, scales1, P_CHUNK)]
        return pack_streams(streams), third(y_hat, means, symbols1)

    @torch.no_grad()
    def decompress_p(self, data: bytes, buf_fx: torch.Tensor, steps=None) -> torch.Tensor:
        """Decode a P latent (bit-exact on every device) given the buffer. ``steps``: the
        functions of :meth:`p_steps` (or graphed equivalents, see video/graphs.py)."""
        streams = unpack_streams(data, 3)
        b, _, h, w = buf_fx.shape
        z_hat = self.latent.decompress_z(streams[:1], (b, self.latent.z_channels, h, w))
        first, second, third = steps or self.p_steps(b, h, w)
        gaussian = self.entropy.inner.model
        prior, means, scales = first(z_hat, buf_fx)
        y_hat, means, scales = second(prior, means, gaussian.decode_symbols(streams[1], scales))
        return third(y_hat, means, gaussian.decode_symbols(streams[2], scales))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
