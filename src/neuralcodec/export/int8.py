"""Static post-training INT8 quantisation of the exported float transforms.

ONNX Runtime's ``quantize_static`` in QDQ format: per-channel symmetric INT8 weights,
UINT8 activations (ranges from calibration images), Conv/ConvTranspose quantised; GDN's
element-wise ops (square, square root, division) stay in float.

Mixed precision: after one calibration pass (cached), every quantisable node is
quantised alone and the graph's output SQNR against FP32 on the calibration data is
its sensitivity. Starting from the all-INT8 graph, the most sensitive nodes are kept
in FP32 one at a time until the graph's SQNR reaches its target (or a cap on float
nodes is hit). The manifest records the sensitivities, the float nodes and the final
SQNR of each graph.
"""
from __future__ import annotations

import contextlib
import logging
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from neuralcodec.errors import InputError

QUANT_OPS = ("Conv", "ConvTranspose")
#: output SQNR targets (dB) per graph: g_s drives distortion directly, g_a the latent
#: before rounding, h_a only the hyper-latent's rate
TARGET_DB = {"g_a": 36.0, "g_s": 40.0, "h_a": 30.0}
MAX_FLOAT_FRACTION = 0.5
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def calibration_images(folder, count: int = 12, crop: int = 256) -> list[np.ndarray]:
    """Centre crops (at most ``crop`` pixels a side) of the first ``count`` images in a folder."""
    from PIL import Image

    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if folder.is_dir() else []
    if not files:
        raise InputError(f"no calibration images (PNG/JPEG/...) in {folder}")
    images = []
    for path in files[:count]:
        try:
            img = np.asarray(Image.open(path).convert("RGB"))
        except OSError as exc:
            raise InputError(f"cannot read calibration image {path}: {exc}") from None
        h, w = img.shape[:2]
        top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        images.append(np.ascontiguousarray(img[top:top + crop, left:left + crop]))
    return images


@torch.no_grad()
def calibration_feeds(model, images: list[np.ndarray], qualities=(1.5, 4.5, 7.5)) -> dict[str, list[np.ndarray]]:
    """Inputs of each exported graph on the calibration images: g_a sees the padded image,
    h_a the gained latent, g_s the decoded latent times inv_gain (qualities cycle over images)."""
    from neuralcodec.codecs.api import _pad, to_tensor
    from neuralcodec.codecs.gained import quality_tensor

    feeds = {"g_a": [], "g_s": [], "h_a": []}
    for i, img in enumerate(images):
        q = qualities[i % len(qualities)]
        x = _pad(to_tensor(img, "cpu"), model.stride)
        y = model.analyse(x, q)
        y_hat = model.compress_latent(y).latents
        feeds["g_a"].append(x.numpy())
        feeds["h_a"].append(y.numpy())
        feeds["g_s"].append((y_hat * model.inv_gain(quality_tensor(q, y_hat))).float().numpy())
    return feeds


@contextlib.contextmanager
def _quiet_root_logger():
    """The quantiser logs advice ("consider pre-processing") on the root logger; hide it."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
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

    def __init__(self, fp32: Path, input_name: str, arrays: list[np.ndarray], workdir: Path):
        import onnx

        self.fp32, self.input_name, self.arrays = fp32, input_name, arrays
        self.cache = workdir / f"{fp32.stem}.calibration.json"
        self.tmp = workdir / f"{fp32.stem}.candidate.onnx"
        self.nodes = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type in QUANT_OPS]
        self.reference = _run(fp32, input_name, arrays)

    def quantize(self, out: Path, *, only=None, exclude=()) -> float:
        """Write a QDQ model (all quantisable nodes, or ``only`` these, minus ``exclude``);
        returns its output SQNR against FP32 on the calibration data."""
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        with _quiet_root_logger():
            quantize_static(str(self.fp32), str(out), _reader(self.input_name, self.arrays),
                            quant_format=QuantFormat.QDQ, op_types_to_quantize=list(QUANT_OPS),
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_quantize=list(only) if only else None, nodes_to_exclude=list(exclude),
                            calibrate_method=CalibrationMethod.MinMax,
                            calibration_cache_path=str(self.cache), extra_options={"WeightSymmetric": True})
        return sqnr_db(self.reference, _run(out, self.input_name, self.arrays))

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


def quantize_codec(model, folder: Path, graphs: dict, calibration, *, sources: dict | None = None,
                   count: int = 12, crop: int = 256, targets: dict | None = None,
                   max_float_fraction: float = MAX_FLOAT_FRACTION, log=print) -> dict:
    """Quantise every exported graph of ``folder`` (``graphs`` from the manifest, updated in
    place with the ``int8`` entries; ``sources`` may name another FP32 graph of the same
    function to quantise instead); returns the manifest's ``quantization`` section."""
    from neuralcodec.export.manifest import file_sha256

    if calibration is None:
        raise InputError("--int8 needs --calibration DIR (images; not the evaluation set)")
    images = calibration_images(calibration, count, crop)
    feeds = calibration_feeds(model, images)
    targets = {**TARGET_DB, **(targets or {})}
    report = {}
    with tempfile.TemporaryDirectory(prefix="neuralcodec-int8-") as work:
        for name, entry in graphs.items():
            fp32 = Path((sources or {}).get(name) or Path(folder) / entry["fp32"]["file"])
            out = Path(folder) / f"{name}.int8.onnx"
            quantizer = GraphQuantizer(fp32, entry["inputs"][0], feeds[name], Path(work))
            max_float = int(len(quantizer.nodes) * max_float_fraction)
            report[name] = quantizer.mixed_precision(out, targets[name], max_float, log)
            entry["int8"] = {"file": out.name, "sha256": file_sha256(out)}
            log(f"quantized {out}: {len(report[name]['int8_nodes'])} INT8 / "
                f"{len(report[name]['fp32_nodes'])} FP32 nodes, SQNR {report[name]['sqnr_db']} dB")
    return {"method": "onnxruntime.quantization.quantize_static, QDQ, MinMax calibration",
            "weights": "int8 per-channel symmetric", "activations": "uint8 per-tensor",
            "quantized_op_types": list(QUANT_OPS),
            "subpixel_graphs": sorted(sources or {}),
            "calibration": {"folder": str(calibration), "images": len(images), "crop": crop},
            "graphs": report}
