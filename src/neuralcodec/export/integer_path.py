"""Integer-only evaluation of the entropy-parameter networks.

:class:`IntegerNet` computes the same integer function as
:meth:`neuralcodec.entropy.exact.ExactNet.exact`, but in int64 arithmetic only:

* inputs: activations ``a`` as integers with ``ACT_FRAC`` fractional bits, |a| <= 2**23;
* per layer: integer weights ``W`` (|W| < 2**14) and integer biases ``b`` at scale
  ``2**(s + ACT_FRAC)``, where ``s`` is the layer's per-output-channel weight exponent;
* accumulate ``acc = sum(W * a) + b`` exactly in int64 (no overflow: the float64
  path bounds every partial sum below 2**53);
* requantise with a dyadic scale ``2**-s``: a round-half-to-even right shift by ``s``
  (a left shift when ``s < 0``), then clamp to +-ACT_LIMIT; ReLU is ``max(a, 0)``; a leaky
  ReLU multiplies negative ``a`` by its slope numerator and shifts right by ``SLOPE_FRAC``
  with round-half-even; a pixel shuffle only moves values.

Integer addition is associative, so the result does not depend on the summation
order, the thread count or the library; it equals ExactNet's float64 path, whose
sums of integers are exact, bit for bit. Transposed convolutions are evaluated as
one matrix product whose per-tap results are added at their output positions.

The weights come from :func:`integer_weights` (a frozen ExactNet) or from the
``integer_nets.npz`` file of an ONNX export (:func:`save_integer_nets`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from neuralcodec.entropy.exact import ACT_LIMIT, SLOPE_FRAC, ExactNet

# arrays per layer in the npz file: "<net>/<i>/<field>" (convolutions; leaky ReLUs: "slope";
# pixel shuffles: "factor")
_CONV_FIELDS = ("weight", "bias", "shift", "geometry")
_FIELDS = _CONV_FIELDS + ("slope", "factor")
_SCALAR_FIELD = {"leaky_relu": "slope", "pixel_shuffle": "factor"}


def integer_weights(net: ExactNet) -> list[dict]:
    """Layer list of a frozen ExactNet: ReLUs and convolutions as plain integer arrays.

    ``weight`` is int64 in PyTorch's layout ((Cout, Cin, k, k), transposed: (Cin, Cout, k, k));
    ``geometry`` = (transposed, stride, padding, output_padding); a leaky ReLU's ``slope`` is
    its numerator over 2**SLOPE_FRAC.
    """
    layers = []
    for item in net.frozen_layers("cpu"):
        if item[0] == "relu":
            layers.append({"kind": "relu"})
            continue
        if item[0] in _SCALAR_FIELD:
            layers.append({"kind": item[0], _SCALAR_FIELD[item[0]]: np.array(item[1], dtype=np.int64)})
            continue
        kind, w_int, b_int, unscale, layer = item
        _, exponent = torch.frexp(unscale.flatten())       # unscale = 2**-s = 0.5 * 2**(1 - s)
        shift = (1 - exponent).long().numpy()
        square = (layer.kernel_size[0] == layer.kernel_size[1] and layer.stride[0] == layer.stride[1]
                  and layer.padding[0] == layer.padding[1] and layer.dilation == (1, 1))
        if not square:
            raise TypeError("integer path: square kernels, equal strides/padding, no dilation")
        transposed = kind == "convT"
        geometry = (int(transposed), layer.stride[0], layer.padding[0],
                    layer.output_padding[0] if transposed else 0)
        layers.append({"kind": "conv", "weight": w_int.long().numpy(), "bias": b_int.long().numpy(),
                       "shift": shift, "geometry": np.array(geometry, dtype=np.int64)})
    return layers


def _shift_terms(shift: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-channel (right, left, half - 1, is_right) int64 terms of :func:`_round_shift`."""
    s = shift.view(1, -1, 1, 1).long()
    right, left = s.clamp(min=0), (-s).clamp(min=0)
    is_right = (right > 0).long()
    return right, left, ((1 << (right - 1).clamp(min=0)) - 1) * is_right, is_right


def _round_shift(acc: torch.Tensor, terms) -> torch.Tensor:
    """acc * 2**-shift rounded half to even, integer ops only: for a right shift s,
    floor((acc + 2**(s-1) - 1 + (floor(acc / 2**s) & 1)) / 2**s); a left shift is exact."""
    right, left, half_minus_one, is_right = terms
    odd = ((acc >> right) & 1) * is_right
    return ((acc + half_minus_one + odd) >> right) << left


def _conv(x: torch.Tensor, weight: torch.Tensor, geometry) -> torch.Tensor:
    """Integer convolution: patch gathering and one int64 matrix product."""
    _, stride, pad, _ = geometry
    b, c, h, w = x.shape
    x = F.pad(x, (pad, pad, pad, pad))
    cout, _, k, _ = weight.shape
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    patches = [x[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
               for i in range(k) for j in range(k)]
    cols = torch.stack(patches, 2).reshape(b, c * k * k, ho * wo)
    return torch.matmul(weight.reshape(cout, -1), cols).view(b, cout, ho, wo)


def _conv_transposed(x: torch.Tensor, weight: torch.Tensor, geometry) -> torch.Tensor:
    """Integer transposed convolution: one int64 matrix product, then each kernel tap's
    products are added at their output positions (exact in any order)."""
    _, stride, pad, out_pad = geometry
    b, c, h, w = x.shape
    _, cout, k, _ = weight.shape
    taps = torch.matmul(weight.reshape(c, -1).t(), x.reshape(b, c, h * w)).view(b, cout, k, k, h, w)
    full_h, full_w = (h - 1) * stride + k + out_pad, (w - 1) * stride + k + out_pad
    out = x.new_zeros(b, cout, full_h, full_w)
    for i in range(k):
        for j in range(k):
            out[:, :, i:i + stride * (h - 1) + 1:stride, j:j + stride * (w - 1) + 1:stride] += taps[:, :, i, j]
    return out[:, :, pad:full_h - pad, pad:full_w - pad]


class IntegerNet:
    """Integer-only twin of a frozen ExactNet (see the module docstring)."""

    def __init__(self, layers: list[dict]):
        self.layers = [dict(layer, **{k: torch.from_numpy(np.asarray(v)) for k, v in layer.items()
                                      if k in ("weight", "bias")})
                       for layer in layers]
        for layer in self.layers:
            if layer["kind"] == "conv":
                layer["shift"] = _shift_terms(torch.from_numpy(np.asarray(layer["shift"])))
            elif layer["kind"] in _SCALAR_FIELD:
                field = _SCALAR_FIELD[layer["kind"]]
                layer[field] = int(layer[field])
        self._slope_shift = _shift_terms(torch.tensor([SLOPE_FRAC]))

    @classmethod
    def from_exact(cls, net: ExactNet) -> "IntegerNet":
        return cls(integer_weights(net))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """int64 activations (B, C, H, W) -> int64 activations."""
        if x.dtype != torch.int64:
            raise TypeError("IntegerNet.run takes int64 activations")
        for layer in self.layers:
            if layer["kind"] == "relu":
                x = x.clamp_min(0)
                continue
            if layer["kind"] == "leaky_relu":
                x = torch.where(x < 0, _round_shift(x * layer["slope"], self._slope_shift), x)
                continue
            if layer["kind"] == "pixel_shuffle":
                x = F.pixel_shuffle(x, layer["factor"])
                continue
            geometry = [int(v) for v in layer["geometry"]]
            acc = (_conv_transposed if geometry[0] else _conv)(x, layer["weight"], geometry)
            acc = acc + layer["bias"].view(1, -1, 1, 1)
            x = _round_shift(acc, layer["shift"]).clamp(-ACT_LIMIT, ACT_LIMIT)
        return x

    def exact(self, x_fixed: torch.Tensor) -> torch.Tensor:
        """Drop-in for ExactNet.exact: float64 integers in and out (conversions are exact)."""
        device = x_fixed.device
        out = self.run(x_fixed.detach().cpu().to(torch.int64))
        return out.to(torch.float64).to(device)


def exact_nets(model) -> dict[str, ExactNet]:
    """The codec's ExactNets by stored name (e.g. ``h_s``, ``slices.0.params``; see
    ``ImageCodec.exact_nets``)."""
    return model.exact_nets()


def save_integer_nets(model: torch.nn.Module, path) -> dict:
    """Write the integer weights of every ExactNet of ``model`` to an npz file;
    returns a summary {net: [layer kinds]} for the manifest."""
    arrays, summary = {}, {}
    for name, net in exact_nets(model).items():
        layers = integer_weights(net)
        summary[name] = [layer["kind"] for layer in layers]
        for i, layer in enumerate(layers):
            for field in _FIELDS:
                if field in layer:
                    arrays[f"{name}/{i}/{field}"] = layer[field]
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return summary


def load_integer_nets(path, summary: dict) -> dict[str, IntegerNet]:
    """Read the nets written by :func:`save_integer_nets` (``summary`` from the manifest)."""
    with np.load(path, allow_pickle=False) as data:
        nets = {}
        for name, kinds in summary.items():
            layers = []
            for i, kind in enumerate(kinds):
                layer = {"kind": kind}
                if kind == "conv":
                    layer.update({f: data[f"{name}/{i}/{f}"] for f in _CONV_FIELDS})
                elif kind in _SCALAR_FIELD:
                    layer[_SCALAR_FIELD[kind]] = data[f"{name}/{i}/{_SCALAR_FIELD[kind]}"]
                layers.append(layer)
            nets[name] = IntegerNet(layers)
    return nets
