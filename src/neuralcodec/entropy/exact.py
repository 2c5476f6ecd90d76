"""Integer-exact convolution networks for everything that feeds the entropy coder.

Training runs the float network. After :meth:`ExactNet.freeze`, :meth:`ExactNet.exact`
evaluates a fixed-point version of it whose result is the same on every device,
thread count and BLAS: weights are integers (per-output-channel power-of-two scales,
``WEIGHT_BITS`` bits), activations are integers with ``ACT_FRAC`` fractional bits,
and every convolution is computed in float64 on integer values whose partial sums
stay below 2**53, so every summation order gives the same exact integer. The
accumulator is rounded to the nearest integer once (which also absorbs the tiny
errors of transform-based convolution algorithms), then shifted back to
``ACT_FRAC`` bits with round-half-even: both are exact, deterministic operations.

Supported layers: ``nn.Conv2d``, ``nn.ConvTranspose2d`` (groups=1), ``nn.ReLU``,
``nn.LeakyReLU`` and ``nn.PixelShuffle`` (a permutation: exact). A leaky ReLU's slope is taken as the dyadic ``round(slope * 2**SLOPE_FRAC) /
2**SLOPE_FRAC`` (0.01 -> 655/65536) and negative inputs are scaled by it with round-half-even:
an exact product of integers and an exact shift, like a convolution's requantisation.
Convolutions run either as ``F.conv2d`` or as im2col + one float64 matrix product
(:func:`set_conv_impl`); both give the same integers (exact sums), only the speed differs.
The matrix product takes the integer bias in the same call (``addmm``: one kernel fewer per
layer): its sum is an exact integer, so rounding it equals rounding the product, then adding,
and the gemm path skips that rounding (a float64 product of integers whose partial sums stay
below 2**53 is exact in any order; only ``F.conv2d``'s algorithms may need it).
"""
from __future__ import annotations

import math
import os

import torch
from torch import nn
from torch.nn import functional as F

ACT_FRAC = 12          # fractional bits of activations
ACT_LIMIT = 2 ** 23    # activations are clamped to +-ACT_LIMIT (fixed point units)
WEIGHT_BITS = 14       # magnitude bits of integer weights (per output channel)
SLOPE_FRAC = 16        # fractional bits of leaky-ReLU slopes
CONV_IMPLS = ("conv", "gemm")
WEIGHTLESS = ("relu", "leaky_relu", "pixel_shuffle")    # frozen layer kinds without weights
_conv_impl = {"cpu": "conv", "cuda": os.environ.get("NEURALCODEC_EXACT_CONV", "gemm")}


def set_conv_impl(impl: str, device_type: str = "cuda") -> None:
    """Choose how exact convolutions run on a device type: ``conv`` (F.conv2d) or ``gemm``
    (im2col + float64 matmul). Results are identical; only the speed differs."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"exact conv implementation must be one of {CONV_IMPLS}, got {impl!r}")
    _conv_impl[device_type] = impl


def _conv_gemm(x: torch.Tensor, w: torch.Tensor, layer: nn.Conv2d, bias: torch.Tensor) -> torch.Tensor:
    """F.conv2d(x, w) + bias as im2col + one matrix product; exact on integer float64 data."""
    b, _, h, wd = x.shape
    kh, kw = layer.kernel_size
    out_h = (h + 2 * layer.padding[0] - layer.dilation[0] * (kh - 1) - 1) // layer.stride[0] + 1
    out_w = (wd + 2 * layer.padding[1] - layer.dilation[1] * (kw - 1) - 1) // layer.stride[1] + 1
    if (kh, kw) == (1, 1) and layer.stride == (1, 1) and layer.padding == (0, 0):
        cols = x.flatten(2)
    else:
        cols = F.unfold(x, (kh, kw), layer.dilation, layer.padding, layer.stride)
    if b == 1:
        out = torch.addmm(bias.view(-1, 1), w.flatten(1), cols[0])
    else:
        out = torch.baddbmm(bias.view(1, -1, 1), w.flatten(1).expand(b, -1, -1), cols)
    return out.view(b, w.shape[0], out_h, out_w)


def to_fixed(x: torch.Tensor) -> torch.Tensor:
    """Float tensor -> fixed point (float64 holding integers). Exact for values on a
    grid of 2**-ACT_FRAC or coarser (e.g. decoded latents)."""
    return torch.round(x.double() * (1 << ACT_FRAC))


def from_fixed(x: torch.Tensor) -> torch.Tensor:
    """Fixed point -> real value (float64, exact)."""
    return x * (1.0 / (1 << ACT_FRAC))


def _pow2(exponents: list[int]) -> torch.Tensor:
    """Exact powers of two as float64 (no libm involved)."""
    return torch.tensor([math.ldexp(1.0, e) for e in exponents], dtype=torch.float64)


def _weight_shifts(weight: torch.Tensor, out_dim: int) -> list[int]:
    """Per-output-channel exponents s with max|w| * 2**s < 2**WEIGHT_BITS (via frexp: exact)."""
    w = weight.transpose(0, out_dim) if out_dim else weight
    peak = w.abs().flatten(1).amax(1).double().clamp_min(2.0 ** -60)
    _, exponent = torch.frexp(peak)          # peak = m * 2**e, m in [0.5, 1)
    return [min(max(WEIGHT_BITS - int(e), -8), 24) for e in exponent]


def slope_numerator(layer: nn.LeakyReLU) -> int:
    """The leaky ReLU's slope in units of 2**-SLOPE_FRAC (the exact path's slope)."""
    return round(layer.negative_slope * (1 << SLOPE_FRAC))


def leaky_relu_exact(x: torch.Tensor, numerator: int) -> torch.Tensor:
    """Leaky ReLU on fixed-point float64 integers: negative values times
    numerator / 2**SLOPE_FRAC, rounded half to even (exact: |x * numerator| < 2**53)."""
    return torch.where(x < 0, torch.round(x * numerator * math.ldexp(1.0, -SLOPE_FRAC)), x)


class ExactNet(nn.Module):
    """A sequence of Conv2d / ConvTranspose2d / ReLU / LeakyReLU / PixelShuffle with a bit-exact
    inference path."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        for layer in layers:
            ok = isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.ReLU, nn.LeakyReLU, nn.PixelShuffle))
            if not ok or getattr(layer, "groups", 1) != 1:
                raise TypeError(f"ExactNet cannot make {type(layer).__name__} exact")
        self.layers = nn.Sequential(*layers)
        self._frozen: list[tuple] | None = None       # integer layers on the CPU
        self._frozen_on: dict[torch.device, list[tuple]] = {}   # copies on other devices

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float (training) path."""
        return self.layers(x)

    @torch.no_grad()
    def freeze(self) -> None:
        """Build integer weights from the current float weights."""
        frozen = []
        for layer in self.layers:
            if isinstance(layer, nn.ReLU):
                frozen.append(("relu",))
                continue
            if isinstance(layer, nn.LeakyReLU):
                frozen.append(("leaky_relu", slope_numerator(layer)))
                continue
            if isinstance(layer, nn.PixelShuffle):
                frozen.append(("pixel_shuffle", layer.upscale_factor))
                continue
            transposed = isinstance(layer, nn.ConvTranspose2d)
            w = layer.weight.detach().double().cpu()
            shifts = _weight_shifts(w, 1 if transposed else 0)
            view = (1, -1, 1, 1) if transposed else (-1, 1, 1, 1)
            w_int = torch.round(w * _pow2(shifts).view(view))
            b = (layer.bias.detach().double().cpu() if layer.bias is not None
                 else torch.zeros(len(shifts), dtype=torch.float64))
            b_int = torch.round(b * _pow2([s + ACT_FRAC for s in shifts]))
            unscale = _pow2([-s for s in shifts]).view(1, -1, 1, 1)
            frozen.append(("convT" if transposed else "conv", w_int, b_int, unscale, layer))
        self._frozen = frozen
        self._frozen_on = {}

    def frozen_layers(self, device="cpu") -> list[tuple]:
        """The integer layers (freezing first if needed), kept on ``device`` once copied there:
        ("relu",), ("leaky_relu", slope numerator), ("pixel_shuffle", factor) or
        (kind, w_int, b_int, unscale, layer)."""
        if self._frozen is None:
            self.freeze()
        device = torch.device(device)
        if device.type == "cpu":
            return self._frozen
        if device not in self._frozen_on:
            self._frozen_on[device] = [item if item[0] in WEIGHTLESS else
                                       (item[0], *(t.to(device) for t in item[1:4]), item[4])
                                       for item in self._frozen]
        return self._frozen_on[device]

    @torch.no_grad()
    def exact(self, x_fixed: torch.Tensor) -> torch.Tensor:
        """Fixed-point inference. ``x_fixed``: float64 integers with ACT_FRAC fractional bits."""
        x = x_fixed.double()
        layers = self.frozen_layers(x.device)
        gemm = _conv_impl.get(x.device.type, "conv") == "gemm"
        for i, item in enumerate(layers):
            if item[0] == "relu":
                if i == 0 or layers[i - 1][0] in WEIGHTLESS:    # else joined to the conv's clamp
                    x = x.clamp_min(0)
                continue
            if item[0] == "leaky_relu":
                x = leaky_relu_exact(x, item[1])
                continue
            if item[0] == "pixel_shuffle":
                x = F.pixel_shuffle(x, item[1])
                continue
            kind, w_int, b_int, unscale, layer = item
            if kind == "conv" and gemm and isinstance(layer.padding, tuple):
                acc = _conv_gemm(x, w_int, layer, b_int)    # already exact integers: no rounding
            elif kind == "conv":
                acc = torch.round(F.conv2d(x, w_int, None, layer.stride, layer.padding, layer.dilation))
                acc += b_int.view(1, -1, 1, 1)
            else:
                acc = torch.round(F.conv_transpose2d(x, w_int, None, layer.stride, layer.padding,
                                                     layer.output_padding, 1, layer.dilation))
                acc += b_int.view(1, -1, 1, 1)
            # a ReLU right after the requantisation joins its clamp (relu(clamp(v, -L, L)) ==
            # clamp(v, 0, L)): one kernel fewer per such pair, the same integers
            relu_next = i + 1 < len(layers) and layers[i + 1][0] == "relu"
            x = torch.round(acc.mul_(unscale)).clamp_(0 if relu_next else -ACT_LIMIT, ACT_LIMIT)
        return x

    def train(self, mode: bool = True):
        if mode:
            self._frozen, self._frozen_on = None, {}
        return super().train(mode)
