"""Static post-training INT8 quantisation of the exported float transforms.

ONNX Runtime's ``quantize_static`` in QDQ format: per-channel symmetric INT8 weights,
UINT8 activations (ranges: 99.999th percentile on calibration images), Conv and
ConvTranspose quantised; GDN's element-wise ops (square, square root, division) stay
in float. Graphs are quantised from an equalised copy (:func:`equalised`) with
sub-pixel convolutions in place of transposed ones.

Mixed precision: after one calibration pass (cached), every quantisable node is
quantised alone and the graph's output SQNR against FP32 on the calibration data is
its sensitivity. Starting from the all-INT8 graph, the most sensitive nodes are kept
in FP32 one at a time until the graph's SQNR reaches its target (or a cap on float
nodes is hit); transposed convolutions kept in FP32 return to ConvTranspose form (the
graph is calibrated again). The manifest records the sensitivities (of the sub-pixel
form), the float nodes and the final SQNR of each graph.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neuralcodec.errors import InputError

QUANT_OPS = ("Conv", "ConvTranspose")
#: output SQNR targets (dB) per graph: g_s drives distortion directly, g_a the latent
#: before rounding, h_a only the hyper-latent's rate
TARGET_DB = {"g_a": 36.0, "g_s": 46.0, "h_a": 34.0}
MAX_FLOAT_FRACTION = 0.5
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def calibration_images(folder, count: int = 12, crop: int = 256) -> list[np.ndarray]:
    """Centre crops (at most ``crop`` pixels a side) of the first ``count`` images in a folder."""
    from neuralcodec.io.images import read_rgb8

    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if folder.is_dir() else []
    if not files:
        raise InputError(f"no calibration images (PNG/JPEG/...) in {folder}")
    images = []
    for path in files[:count]:
        img = read_rgb8(path).pixels
        h, w = img.shape[:2]
        top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        images.append(np.ascontiguousarray(img[top:top + crop, left:left + crop]))
    return images


@torch.no_grad()
def calibration_feeds(model, images: list[np.ndarray], qualities=(1.5, 4.5, 7.5)) -> dict[str, list[np.ndarray]]:
    """Inputs of each exported graph on the calibration images: g_a sees the padded image,
    h_a the gained latent, g_s the decoded latent times inv_gain (qualities cycle over images)."""
    from neuralcodec.codecs.pixels import pad_to_multiple, to_tensor

    feeds = {"g_a": [], "g_s": [], "h_a": []}
    for i, img in enumerate(images):
        q = qualities[i % len(qualities)]
        x = pad_to_multiple(to_tensor(img, "cpu"), model.stride)
        y = model.analyse(x, q)
        y_hat = model.compress_latent(y).latents
        feeds["g_a"].append(x.numpy())
        feeds["h_a"].append(y.numpy())
        feeds["g_s"].append(model.synthesis_input(y_hat, q).float().numpy())
    return feeds


@contextlib.contextmanager
def _quiet_root_logger():
    """The quantiser logs advice ("consider pre-processing") on the root logger and prints
    calibration progress; hide both."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def _reader(input_name: str, arrays: list[np.ndarray]):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{input_name: a} for a in arrays])

        def get_next(self):
            return next(self.items, None)

    return Reader()


def _run(path: Path, input_name: str, arrays: list[np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return [session.run(None, {input_name: a})[0] for a in arrays]


def sqnr_db(reference: list[np.ndarray], test: list[np.ndarray]) -> float:
    """Signal-to-quantisation-noise ratio over a list of outputs, in dB."""
    signal = sum(float(np.sum(r.astype(np.float64) ** 2)) for r in reference)
    noise = sum(float(np.sum((r.astype(np.float64) - t) ** 2)) for r, t in zip(reference, test))
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


class GraphQuantizer:
    """Quantises one FP32 graph with a shared calibration cache and scores variants."""

    def __init__(self, fp32: Path, input_name: str, arrays: list[np.ndarray], workdir: Path,
                 calibrate_method: str = "Percentile", in_scale=None, out_scale=None):
        import onnx

        self.fp32, self.input_name = fp32, input_name
        self.arrays = [a / in_scale.reshape(1, -1, 1, 1) if in_scale is not None else a for a in arrays]
        self.out_scale = out_scale.reshape(1, -1, 1, 1) if out_scale is not None else 1.0
        self.calibrate_method = calibrate_method
        self.cache = workdir / f"{fp32.stem}.calibration.json"
        self.tmp = workdir / f"{fp32.stem}.candidate.onnx"
        self.nodes = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type in QUANT_OPS]
        self.reference = self._outputs(fp32)

    def _outputs(self, path: Path) -> list[np.ndarray]:
        """Graph outputs in the original (unequalised) units."""
        return [out * self.out_scale for out in _run(path, self.input_name, self.arrays)]

    def quantize(self, out: Path, *, only=None, exclude=()) -> float:
        """Write a QDQ model (all quantisable nodes, or ``only`` these, minus ``exclude``);
        returns its output SQNR against FP32 on the calibration data."""
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        with _quiet_root_logger():
            quantize_static(str(self.fp32), str(out), _reader(self.input_name, self.arrays),
                            quant_format=QuantFormat.QDQ, op_types_to_quantize=list(QUANT_OPS),
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_quantize=list(only) if only else None, nodes_to_exclude=list(exclude),
                            calibrate_method=CalibrationMethod[self.calibrate_method],
                            calibration_cache_path=str(self.cache), extra_options={"WeightSymmetric": True})
        return sqnr_db(self.reference, self._outputs(out))

    def mixed_precision(self, out: Path, target_db: float, max_float: int, log=print) -> dict:
        """All-INT8 first; keep the most sensitive nodes in FP32 until ``target_db`` is met."""
        all_int8 = self.quantize(out)
        sensitivity = {n: self.quantize(self.tmp, only=[n]) for n in self.nodes}
        order = sorted(self.nodes, key=lambda n: sensitivity[n])
        excluded, score = [], all_int8
        while score < target_db and len(excluded) < max_float:
            excluded.append(order[len(excluded)])
            score = self.quantize(out, exclude=excluded)
            log(f"  {self.fp32.stem}: {excluded[-1]} kept in FP32 -> {score:.1f} dB")
        self.tmp.unlink(missing_ok=True)
        return {"sqnr_db": round(score, 2), "all_int8_sqnr_db": round(all_int8, 2), "target_db": target_db,
                "sensitivity_db": {n: round(v, 2) for n, v in sensitivity.items()},
                "int8_nodes": [n for n in self.nodes if n not in excluded], "fp32_nodes": excluded}


def _convs(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def _peaks(arrays: list[np.ndarray]) -> np.ndarray:
    return np.max([np.abs(a).max(axis=(0, 2, 3)) for a in arrays], axis=0).astype(np.float64)


@torch.no_grad()
def equalised(module: nn.Module, inputs: list[np.ndarray]):
    """(copy of module, in_scale, out_scale): the graph input is divided per channel by
    ``in_scale`` and the output multiplied by ``out_scale`` outside the graph (where the
    quality gains are applied anyway); the first layer's input channels and the last
    layer's output channels absorb them. Per-tensor activation quantisation then sees
    channels of balanced range (cross-layer equalisation at the graph boundaries: input
    scales balance activation and weight ranges, sqrt(act/weight); output scales equalise
    the output channels, which per-channel weight quantisation absorbs exactly)."""
    module = copy.deepcopy(module).eval().float()
    first, last = _convs(module)[0], _convs(module)[-1]
    in_axis = 0 if isinstance(first, nn.ConvTranspose2d) else 1
    act = _peaks(inputs)
    w = first.weight.abs().transpose(0, in_axis).flatten(1).amax(1).double().numpy()
    r_in = np.sqrt(np.maximum(act, 1e-8) / np.maximum(w, 1e-8))
    r_in = np.clip(r_in / r_in.max(), 1e-3, 1).astype(np.float32)
    view = [1] * 4
    view[in_axis] = -1
    first.weight.mul_(torch.from_numpy(r_in).view(view))
    out = [module(torch.from_numpy(a / r_in.reshape(1, -1, 1, 1))).numpy() for a in inputs]
    r_out = np.clip(_peaks(out) / _peaks(out).max(), 1e-3, 1).astype(np.float32)
    out_axis = 1 if isinstance(last, nn.ConvTranspose2d) else 0
    view = [1] * 4
    view[out_axis] = -1
    last.weight.div_(torch.from_numpy(r_out).view(view))
    if last.bias is not None:
        last.bias.div_(torch.from_numpy(r_out))
    return module, r_in, r_out


def _deconv_path(module: nn.Module, node: str) -> str | None:
    """Module path of the transposed convolution behind a sub-pixel Conv node
    (``/4/conv/Conv`` -> ``4``), or None."""
    parts = node.strip("/").split("/")
    if len(parts) < 3 or parts[-2] != "conv":
        return None
    path = ".".join(parts[:-2])
    try:
        return path if isinstance(module.get_submodule(path), nn.ConvTranspose2d) else None
    except AttributeError:
        return None


def quantize_codec(model, folder: Path, graphs: dict, calibration, *, count: int = 12, crop: int = 256,
                   targets: dict | None = None, max_float_fraction: float = MAX_FLOAT_FRACTION,
                   opset: int | None = None, log=print) -> dict:
    """Quantise every exported graph of ``folder`` (``graphs`` from the manifest, updated in
    place with the ``int8`` entries); returns the manifest's ``quantization`` section.
    Each graph is quantised from an equalised FP32 copy (:func:`equalised`) exported with
    sub-pixel convolutions instead of transposed ones (fused INT8 kernels exist for Conv)."""
    from neuralcodec.export.manifest import file_sha256
    from neuralcodec.export.graphs import OPSET, export_graph, graph_specs

    if calibration is None:
        raise InputError("--int8 needs --calibration DIR (images; not the evaluation set)")
    images = calibration_images(calibration, count, crop)
    feeds = calibration_feeds(model, images)
    targets = {**TARGET_DB, **(targets or {})}
    report = {}
    with tempfile.TemporaryDirectory(prefix="neuralcodec-int8-") as work:
        for name, (module, inp, outp, channels) in graph_specs(model).items():
            entry = graphs[name]
            source = Path(work) / f"{name}.onnx"
            module, r_in, r_out = equalised(module, feeds[name])
            export_graph(module, source, inp, outp, channels, opset or OPSET, subpixel=True)
            out = Path(folder) / f"{name}.int8.onnx"
            quantizer = GraphQuantizer(source, inp, feeds[name], Path(work), in_scale=r_in, out_scale=r_out)
            max_float = int(len(quantizer.nodes) * max_float_fraction)
            report[name] = quantizer.mixed_precision(out, targets[name], max_float, log)
            float_deconvs = {_deconv_path(module, n) for n in report[name]["fp32_nodes"]} - {None}
            if float_deconvs:   # FP32 layers run faster as ConvTranspose than in sub-pixel form
                deconvs = {n for n, m in module.named_modules() if isinstance(m, nn.ConvTranspose2d)}
                final = Path(work) / f"{name}.final.onnx"
                export_graph(module, final, inp, outp, channels, opset or OPSET, subpixel=deconvs - float_deconvs)
                requant = GraphQuantizer(final, inp, feeds[name], Path(work), in_scale=r_in, out_scale=r_out)
                fp32_nodes = [n for n in requant.nodes if n.endswith("ConvTranspose")
                              or n in report[name]["fp32_nodes"]]
                report[name].update(sqnr_db=round(requant.quantize(out, exclude=fp32_nodes), 2),
                                    fp32_nodes=fp32_nodes,
                                    int8_nodes=[n for n in requant.nodes if n not in fp32_nodes])
            entry["int8"] = {"file": out.name, "sha256": file_sha256(out),
                             "input_scale": [float(v) for v in r_in], "output_scale": [float(v) for v in r_out]}
            log(f"quantized {out}: {len(report[name]['int8_nodes'])} INT8 / "
                f"{len(report[name]['fp32_nodes'])} FP32 nodes, SQNR {report[name]['sqnr_db']} dB")
    return {"method": "onnxruntime.quantization.quantize_static, QDQ, Percentile calibration (99.999%)",
            "weights": "int8 per-channel symmetric", "activations": "uint8 per-tensor",
            "quantized_op_types": list(QUANT_OPS),
            "graph_form": "sub-pixel Conv + DepthToSpace for transposed convs; boundary channel "
                          "equalisation (input_scale/output_scale applied outside the graph)",
            "calibration": {"folder": str(calibration), "images": len(images), "crop": crop},
            "graphs": report}
