"""Export a codec's float transforms to ONNX, plus its integer entropy-parameter nets.

Folder layout (``neuralcodec export onnx``)::

    manifest.json        codec, config, weights hash, opset, graphs, quantization
    g_a.onnx, g_s.onnx   analysis / synthesis (FP32), dynamic batch/height/width
    h_a.onnx             hyper-analysis (codecs with a hyperprior)
    levels.<i>.*.onnx    the same per quality level of an imported model (FP32 only)
    *.int8.onnx          static QDQ INT8 versions (``--int8``), see :mod:`.int8`; their
                         transposed convolutions are sub-pixel Convs (:class:`.graphs.SubpixelDeconv`)
    integer_nets.npz     integer weights of every ExactNet (hyper-synthesis, context
                         and parameter networks), run by :mod:`.integer_path`

The quality gains are not part of the graphs: ``analyse`` multiplies the g_a output
by ``gain(q)`` and ``synthesise`` the g_s input by ``inv_gain(q)`` outside, so one
graph serves every quality.
"""
from __future__ import annotations

from pathlib import Path

import torch

from neuralcodec.codecs.weights import model_hash
from neuralcodec.export.graphs import OPSET, export_graph, graph_specs
from neuralcodec.export.integer_path import save_integer_nets
from neuralcodec.export.manifest import file_sha256, write_manifest


def export_onnx(model, folder, *, opset: int = OPSET, int8: bool = False, calibration=None,
                int8_options: dict | None = None, log=print) -> dict:
    """Export ``model`` (coding-ready: ``update()`` done) to ``folder``; returns the manifest."""
    import onnx
    import onnxruntime

    from neuralcodec import __version__

    from neuralcodec.codecs.base import LevelledImageCodec
    from neuralcodec.errors import ModelError

    if not graph_specs(model):
        raise ModelError(f"ONNX export supports the latent-domain codecs (factorized, hyperprior, "
                         f"gmm-ctx, elic) and imported models, not {model.name}")
    if int8 and isinstance(model, LevelledImageCodec):
        raise ModelError("INT8 export supports the shipped codecs; imported models export FP32 graphs")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    graphs = {}
    for name, (module, inp, out, channels) in graph_specs(model).items():
        path = folder / f"{name}.onnx"
        export_graph(module, path, inp, out, channels, opset)
        graphs[name] = {"inputs": [inp], "outputs": [out],
                        "fp32": {"file": path.name, "sha256": file_sha256(path)}}
        log(f"exported {path}")
    npz = folder / "integer_nets.npz"
    nets = save_integer_nets(model, npz)
    manifest = {
        "codec": model.name,
        "config": model.config,
        "weights_hash": model_hash(model).hex(),
        "opset": opset,
        "producer": {"neuralcodec": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__},
        "stride": model.stride,
        "latent_stride": model.latent_stride,
        "quality_gains": "applied outside the graphs: g_a output * gain(q), g_s input * inv_gain(q)",
        "graphs": graphs,
        "integer_path": {"file": npz.name, "sha256": file_sha256(npz), "nets": nets,
                         "arithmetic": "int64 accumulation, per-channel round-half-even shifts, "
                                       "12 fractional bits, clamp +-2**23 (docs/onnx.md)"},
        "quantization": None,
    }
    if int8:
        from neuralcodec.export.int8 import quantize_codec

        manifest["quantization"] = quantize_codec(model, folder, graphs, calibration, opset=opset, log=log,
                                                  **(int8_options or {}))
    write_manifest(folder, manifest)
    return manifest
