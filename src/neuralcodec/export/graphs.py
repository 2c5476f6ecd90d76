"""The ONNX graphs of a codec's float transforms: which modules (:func:`graph_specs`), made
exportable (GDN and sub-pixel rewrites) and written one per file (:func:`export_graph`);
used by the FP32 export (:mod:`.onnx_export`) and the INT8 one (:mod:`.int8`)."""
from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import torch
from compressai.layers import GDN
from torch import nn

OPSET = 17
DYNAMIC = {0: "batch", 2: "height", 3: "width"}


def graph_specs(model) -> dict[str, tuple[torch.nn.Module, str, str, int]]:
    """Exported float graphs: name -> (module, input name, output name, input channels), as
    the codec contract states them (``ImageCodec.float_graphs``: ``g_a``, ``g_s``, ``h_a``;
    ``levels.<i>.<graph>`` for a codec made of fixed-rate levels)."""
    return model.float_graphs()


class ExportGDN(nn.Module):
    """GDN / inverse GDN with its reparametrised beta and gamma computed once: a plain
    1x1 Conv (weight gamma, bias beta) on x**2, then (r)sqrt and a product, so the ONNX
    graph holds constant initializers that the quantiser can treat like any Conv."""

    def __init__(self, gdn: GDN):
        super().__init__()
        channels = gdn.beta.numel()
        self.norm = nn.Conv2d(channels, channels, 1)
        with torch.no_grad():
            self.norm.weight.copy_(gdn.gamma_reparam(gdn.gamma).reshape(channels, channels, 1, 1))
            self.norm.bias.copy_(gdn.beta_reparam(gdn.beta))
        self.inverse = gdn.inverse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.norm(x * x)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


class SubpixelDeconv(nn.Module):
    """A stride-s ConvTranspose2d rewritten as a Conv2d with s*s times the output channels
    followed by a pixel shuffle (ONNX DepthToSpace). Same function; ONNX Runtime has fused
    INT8 kernels for Conv (QLinearConv) but not for ConvTranspose."""

    def __init__(self, deconv: nn.ConvTranspose2d):
        super().__init__()
        w = deconv.weight.detach()                      # (Cin, Cout, k, k)
        cin, cout, k, _ = w.shape
        s, p, op = deconv.stride[0], deconv.padding[0], deconv.output_padding[0]
        if k + op - 2 * p != s or deconv.groups != 1 or deconv.dilation != (1, 1):
            raise ValueError("deconvolution does not map to a pixel shuffle")
        # out[s*m + a] = sum_d x[m - d] * w[s*d + a + p]; d spans [lo, hi] over all phases a
        lo = min(-((a + p) // s) for a in range(s))
        hi = max((k - 1 - a - p) // s for a in range(s))
        if lo != -hi:
            raise ValueError("deconvolution needs asymmetric padding as a sub-pixel conv")
        size = hi - lo + 1
        weight = w.new_zeros(cout, s, s, cin, size, size)
        for a in range(s):
            for b in range(s):
                for u in range(size):
                    for v in range(size):
                        ty, tx = s * (hi - u) + a + p, s * (hi - v) + b + p
                        if 0 <= ty < k and 0 <= tx < k:
                            weight[:, a, b, :, u, v] = w[:, :, ty, tx].t()
        self.conv = nn.Conv2d(cin, cout * s * s, size, 1, hi)
        with torch.no_grad():
            self.conv.weight.copy_(weight.reshape(cout * s * s, cin, size, size))
            bias = deconv.bias.detach() if deconv.bias is not None else w.new_zeros(cout)
            self.conv.bias.copy_(bias.repeat_interleave(s * s))
        self.shuffle = nn.PixelShuffle(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


def exportable(module: nn.Module, subpixel: bool | set = False) -> nn.Module:
    """A float32 CPU copy of ``module`` with GDN layers replaced by :class:`ExportGDN`
    (and, with ``subpixel``, transposed convolutions by :class:`SubpixelDeconv`: all of them,
    or those whose module paths are in the set)."""
    module = copy.deepcopy(module).eval().cpu().float()
    for name, child in list(module.named_modules()):
        replacement = None
        if isinstance(child, GDN):
            replacement = ExportGDN(child)
        elif isinstance(child, nn.ConvTranspose2d) and (name in subpixel if isinstance(subpixel, set)
                                                        else subpixel):
            try:
                replacement = SubpixelDeconv(child)
            except ValueError:
                pass
        if replacement is not None:
            parent, _, attr = name.rpartition(".")
            setattr(module.get_submodule(parent) if parent else module, attr, replacement)
    return module


def unshare_initializers(proto) -> None:
    """Give every node its own copy of each initializer. The exporter merges equal tensors
    (e.g. GDN layers still at their initial beta/gamma), and a bias shared by two Convs
    would be quantised with the first Conv's scales."""
    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    seen = set()
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name not in inits:
                continue
            if name in seen:
                copy_ = graph.initializer.add()
                copy_.CopyFrom(inits[name])
                copy_.name = f"{name}__{node.name or len(graph.initializer)}"
                node.input[i] = copy_.name
            seen.add(name)


def export_graph(module: torch.nn.Module, path: Path, input_name: str, output_name: str,
                 channels: int, opset: int = OPSET, subpixel: bool | set = False) -> None:
    """One FP32 graph with dynamic batch, height and width (TorchScript-based exporter:
    the dynamo exporter needs onnxscript, which is not a dependency)."""
    import onnx

    dummy = torch.rand(1, channels, 64, 64)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(exportable(module, subpixel), (dummy,), buf, dynamo=False, opset_version=opset,
                          input_names=[input_name], output_names=[output_name],
                          dynamic_axes={input_name: DYNAMIC, output_name: DYNAMIC},
                          do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    unshare_initializers(proto)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
