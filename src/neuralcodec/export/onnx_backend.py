"""The ONNX Runtime backend: a codec whose float transforms run as ONNX graphs.

:func:`load_onnx_codec` takes the torch codec (for its quality gains, factorized-prior
tables and coding logic) and an export folder whose manifest matches its weights hash,
and returns a copy in which

* ``g_a``, ``g_s`` and ``h_a`` (those of each level, for imported models) are ONNX Runtime
  sessions (FP32 or INT8 graphs; CUDAExecutionProvider when onnxruntime-gpu is installed and
  a GPU is wanted);
* every ExactNet (hyper-synthesis, context and parameter networks) is replaced by the
  integer-only :class:`~neuralcodec.export.integer_path.IntegerNet` loaded from the
  folder's ``integer_nets.npz``.

The entropy parameters are therefore the same integers as in the torch backend, and
bitstreams decode across backends. The result is an ordinary ImageCodec: use it with
``encode_with_model``/``decode_with_model``.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from neuralcodec.codecs.weights import model_hash
from neuralcodec.errors import ModelError
from neuralcodec.export.integer_path import exact_nets, load_integer_nets
from neuralcodec.export.manifest import checked_file, read_manifest
from neuralcodec.export.graphs import graph_specs

PRECISIONS = ("auto", "fp32", "int8")


class OrtTransform(nn.Module):
    """An ONNX Runtime session behind a module interface (float32 NCHW in and out)."""

    def __init__(self, session, input_name: str, output_name: str, precision: str,
                 input_scale=None, output_scale=None):
        super().__init__()
        self.session, self.input_name, self.output_name = session, input_name, output_name
        self.precision = precision
        # per-channel equalisation of INT8 graphs: input / input_scale, output * output_scale
        self.input_scale = None if input_scale is None else torch.tensor(input_scale).view(1, -1, 1, 1)
        self.output_scale = None if output_scale is None else torch.tensor(output_scale).view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device
        x = x.detach().to("cpu", torch.float32)
        if self.input_scale is not None:
            x = x / self.input_scale
        out = torch.from_numpy(self.session.run([self.output_name], {self.input_name: x.contiguous().numpy()})[0])
        if self.output_scale is not None:
            out = out * self.output_scale
        return out.to(device)


class IntegerModule(nn.Module):
    """Stands in for an ExactNet: only the coding path (``exact``) exists."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def exact(self, x_fixed: torch.Tensor) -> torch.Tensor:
        return self.net.exact(x_fixed)

    def forward(self, x):
        raise RuntimeError("the ONNX backend has no float path for the entropy-parameter networks")


def providers(device: str | None = None) -> list[str]:
    """CUDA first when onnxruntime-gpu offers it and the device is not forced to CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device != "cpu" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise ModelError("--device cuda with --backend onnx needs onnxruntime-gpu (pip install neuralcodec[gpu])")
    return ["CPUExecutionProvider"]


def _session(path: Path, what: str, provider_list: list[str], threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), options, providers=provider_list)
    except Exception as exc:  # ORT raises its own exception types for bad graphs
        message = " ".join(str(exc).split())[:300]
        raise ModelError(f"{what}: ONNX Runtime cannot load {path}: {message}") from None


def _pick(entry: dict, precision: str, name: str) -> tuple[str, dict]:
    if precision == "auto":
        precision = "int8" if entry.get("int8") else "fp32"
    if not entry.get(precision):
        raise ModelError(f"the ONNX export has no {precision} graph for {name}")
    return precision, entry[precision]


def load_onnx_codec(model, folder, *, precision: str = "auto", device: str | None = None,
                    threads: int | None = None):
    """A copy of ``model`` running its transforms with ONNX Runtime (see the module docstring)."""
    if precision not in PRECISIONS:
        raise ModelError(f"unknown ONNX precision {precision!r} ({', '.join(PRECISIONS)})")
    manifest = read_manifest(folder)
    expected = model_hash(model)
    if manifest["codec"] != model.name or manifest["weights_hash"] != expected.hex():
        raise ModelError(f"ONNX export {folder} is for codec {manifest['codec']} with weights "
                         f"{str(manifest['weights_hash'])[:12]}, but the model is {model.name} with weights "
                         f"{expected.hex()[:12]}: export the matching weights")
    graphs = manifest["graphs"]
    if not isinstance(graphs, dict):
        raise ModelError(f"the manifest in {folder} is malformed (graphs)")
    for name, entry in graphs.items():       # a broken export fails as a whole, whatever is used
        for prec in ("fp32", "int8"):
            if isinstance(entry, dict) and entry.get(prec):
                checked_file(folder, entry[prec], f"ONNX graph {name} ({prec})")
    provider_list = providers(device)
    clone = copy.deepcopy(model).cpu().eval()
    clone.weights_hash = expected
    clone.onnx_info = {"folder": str(folder), "providers": provider_list, "precision": {}}
    for name in graph_specs(clone):
        if name not in graphs:
            raise ModelError(f"the ONNX export in {folder} lacks the graph {name}")
        entry = graphs[name]
        chosen, file_entry = _pick(entry, precision, name)
        path = checked_file(folder, file_entry, f"ONNX graph {name}")
        session = _session(path, f"ONNX graph {name}", provider_list, threads)
        clone.replace_module(name, OrtTransform(session, entry["inputs"][0], entry["outputs"][0], chosen,
                                                file_entry.get("input_scale"), file_entry.get("output_scale")))
        clone.onnx_info["precision"][name] = chosen
    info = manifest["integer_path"]
    npz = checked_file(folder, info, "integer nets")
    try:
        nets = load_integer_nets(npz, info["nets"])
    except (KeyError, ValueError, OSError) as exc:
        raise ModelError(f"integer nets {npz} do not match the manifest: {exc}") from None
    expected_nets = exact_nets(clone)
    if set(nets) != set(expected_nets):
        raise ModelError(f"integer nets in {npz} do not fit codec {model.name}")
    for name, net in nets.items():
        clone.replace_module(name, IntegerModule(net))
    return clone
