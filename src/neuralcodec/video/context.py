"""Optional temporal-context structures of the ``video-rt`` P-frame transforms (float side only).

* :class:`MultiScaleContext`: the propagated 1/4-resolution context features, downsampled to
  1/8 and 1/16 and added to the analysis and synthesis at those scales (multi-scale temporal
  context as in DCVC-TCM; at 1/16 the convolutions' receptive field covers large motion, the
  implicit alignment of DCVC-RT).
* :class:`LearnedWarp`: a displacement field at 1/4 resolution decoded from the latent's
  features and the context, which warps the context and the reference frame (bilinear) before
  they are fused: motion compensation learned end to end, with no flow sent separately.
* :class:`WarpGate` (with the warp): a per-position blend of the warped and the unwarped
  reference, so that still regions can keep the reference exactly.

Both start as no-ops (zero-initialised output layers), so a model with them begins exactly
where one without them does, and both act only on the float reconstruction: the entropy path
never sees them and stays integer-exact.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from neuralcodec.codecs.transforms import conv


def zero_init(layer: nn.Conv2d) -> nn.Conv2d:
    """``layer`` with weight and bias zero: an added term that starts as a no-op."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class MultiScaleContext(nn.Module):
    """Context features at 1/8 (``scales`` >= 2) and 1/16 (``scales`` = 3) and the 1x1
    fusions that add them to the transforms."""

    def __init__(self, f: int, n: int, m: int, scales: int):
        super().__init__()
        if scales not in (2, 3):
            raise ValueError("ctx_scales must be 1, 2 or 3")
        self.down = nn.ModuleList(nn.Sequential(conv(f, f, 3, 2), nn.LeakyReLU(0.1)) for _ in range(scales - 1))
        self.fuse_a = nn.ModuleList(zero_init(nn.Conv2d(f, n, 1)) for _ in range(scales - 1))
        # synthesis: 1/8 is added after the first upsampling (n channels), 1/16 to the latent (m)
        self.fuse_s = nn.ModuleList(zero_init(nn.Conv2d(f, c, 1)) for c in (n, m)[:scales - 1])

    def pyramid(self, ctx: torch.Tensor) -> list[torch.Tensor]:
        """[context at 1/8, at 1/16 (scales = 3)]."""
        out = []
        for down in self.down:
            ctx = down(ctx)
            out.append(ctx)
        return out

    def analysis_terms(self, pyramid) -> list[torch.Tensor]:
        return [fuse(c) for fuse, c in zip(self.fuse_a, pyramid)]

    def synthesis_terms(self, pyramid) -> list[torch.Tensor]:
        return [fuse(c) for fuse, c in zip(self.fuse_s, pyramid)]


def backward_warp(t: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Bilinear backward warp of ``t`` by ``flow`` (B, 2, h, w) in pixels of ``flow``'s grid;
    the field is upsampled (and scaled) to ``t``'s size first; borders are replicated."""
    b, _, h, w = t.shape
    if flow.shape[-2:] != (h, w):
        scale = w / flow.shape[-1]
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False) * scale
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=t.device, dtype=flow.dtype)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=t.device, dtype=flow.dtype)
    grid = torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)], -1)
    offset = torch.stack([flow[:, 0] * (2 / w), flow[:, 1] * (2 / h)], -1)
    return F.grid_sample(t, grid.unsqueeze(0) + offset, mode="bilinear", padding_mode="border",
                         align_corners=False)


class LearnedWarp(nn.Module):
    """A displacement field (pixels at 1/4 resolution) from synthesis features and context."""

    def __init__(self, n: int, f: int):
        super().__init__()
        self.head = zero_init(conv(n + f, 2, 3, 1))

    def forward(self, feat: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([feat, ctx.to(feat.dtype)], 1))


class WarpGate(nn.Module):
    """How much of the warped reference (and context) to take, per 1/4-resolution position, in
    [0, 1], the rest from the reference as it is: a way back to an exact copy where the warp's
    sub-pixel resampling only blurs. Starts at 1 (the plain learned warp)."""

    def __init__(self, n: int, f: int):
        super().__init__()
        self.head = zero_init(conv(n + f, 1, 3, 1))

    def forward(self, feat: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        return (1 + self.head(torch.cat([feat, ctx.to(feat.dtype)], 1))).clamp(0, 1)


def motion_search(x: torch.Tensor, x_ref: torch.Tensor, radius: int, scale: int = 4,
                  penalty: float = 0.002) -> torch.Tensor:
    """Encoder-side motion: for each position of the 1/``scale`` grid, the displacement
    (B, 2, h, w; x then y, in pixels of that grid, as :func:`backward_warp` takes it) within
    ``radius`` that best matches ``x`` in ``x_ref`` (sum of absolute differences of the
    average-pooled frames over a 3x3 window, plus ``penalty`` per pixel of displacement so that
    flat regions keep zero), refined to sub-pixel by a parabola through the neighbouring costs
    where the match is not already exact.
    Parameter-free and without gradient; only the encoder runs it (the decoder never needs it)."""
    with torch.no_grad():
        a = F.avg_pool2d(x.float(), scale)
        r = F.avg_pool2d(x_ref.float(), scale)
        b, c, h, w = a.shape
        k = 2 * radius + 1
        cand = F.unfold(F.pad(r, (radius,) * 4, mode="replicate"), k).view(b, c, k * k, h, w)
        cost = (cand - a.unsqueeze(2)).abs().sum(1)
        cost = F.avg_pool2d(cost, 3, 1, 1, count_include_pad=False)
        d = torch.arange(k, device=x.device, dtype=torch.float32) - radius
        dy, dx = d.repeat_interleave(k), d.repeat(k)          # candidate kk = ky * k + kx
        best = (cost + penalty * (dx.abs() + dy.abs()).view(1, -1, 1, 1)).argmin(1, keepdim=True)
        flow = torch.cat([dx[best], dy[best]], 1)
        c0 = cost.gather(1, best)                              # (b, 1, h, w)
        for axis, step in ((0, 1), (1, k)):                   # x neighbours: kk -+ 1, y: kk -+ k
            pos = (best % k) if axis == 0 else (best // k)
            lo = cost.gather(1, (best - step).clamp(0, k * k - 1))
            hi = cost.gather(1, (best + step).clamp(0, k * k - 1))
            curv = lo - 2 * c0 + hi
            usable = (pos > 0) & (pos < k - 1) & (c0 > 0.05 * torch.minimum(lo, hi)) & (curv > 1e-6)
            sub = torch.where(usable, (lo - hi) / (2 * curv.clamp_min(1e-6)), torch.zeros_like(c0))
            flow[:, axis:axis + 1] += sub.clamp(-0.5, 0.5)
        return flow
