#!/usr/bin/env python3
"""ONNX export benchmark: INT8 vs FP32 rate-distortion, ONNX Runtime vs torch speed, bad input.

    python bench/onnx.py [--codecs hyperprior gmm-ctx] [--images 8] [--speed-images 3]
                         [--threads 1] [--qualities 1 3 5 8] [--out DIR]

Per codec (shipped weights; untrained codecs are skipped unless --untrained):

1. export FP32 + INT8 graphs (calibration: CBSD68 centre crops, never Kodak);
2. RD on the first ``--images`` Kodak images at ``--qualities`` with the ONNX FP32 and
   INT8 backends; BD-rate (pchip, PSNR) of INT8 against FP32 on the mean curves;
3. speed on ``--speed-images`` images at quality 4, round-robin in one run: full encode
   (transforms + entropy coding to bytes) and decode (bytes to pixels), median time,
   torch CPU FP32 vs ONNX Runtime CPU FP32 and INT8, plus the transforms alone;
4. cross-backend decoding (torch <-> onnx latents identical) and the bad-input errors;
5. with onnxruntime-gpu and a GPU: the same speed rows on CUDAExecutionProvider.
"""
import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

# this file is named like the `onnx` package: keep its folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import torch  # noqa: E402

warnings.filterwarnings("ignore")

from neuralcodec.codecs.api import decode_with_model, encode_with_model, get_model, psnr  # noqa: E402
from neuralcodec.codecs.pixels import pad_to_multiple, to_tensor  # noqa: E402
from neuralcodec.codecs.registry import create, shipped_weights  # noqa: E402
from neuralcodec.entropy import coder  # noqa: E402
from neuralcodec.errors import ModelError  # noqa: E402
from neuralcodec.eval.bdrate import bd_rate  # noqa: E402
from neuralcodec.export.onnx_backend import load_onnx_codec  # noqa: E402
from neuralcodec.export.onnx_export import export_onnx  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_images(n):
    from PIL import Image

    files = sorted((SHARED / "kodak").glob("kodim*.png"))[:n]
    if not files:
        sys.exit(f"no Kodak images in {SHARED / 'kodak'}")
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def rd_curve(model, images, qualities):
    """Mean bpp and PSNR per quality."""
    bpp, quality = [], []
    for q in qualities:
        rates, psnrs = [], []
        for img in images:
            data = encode_with_model(model, img, q)
            rates.append(8 * len(data) / (img.shape[0] * img.shape[1]))
            psnrs.append(psnr(decode_with_model(model, data), img))
        bpp.append(float(np.mean(rates)))
        quality.append(float(np.mean(psnrs)))
    return bpp, quality


def speed(backends: dict, images, repeats: int) -> dict:
    """Round-robin timing; returns {backend: {"encode", "decode", "g_a", "g_s"}: median s}."""
    times = {name: {k: [] for k in ("encode", "decode", "g_a", "g_s")} for name in backends}
    for _ in range(repeats):
        for img in images:
            for name, model in backends.items():
                data, t_enc = timed(encode_with_model, model, img, 4.0)
                _, t_dec = timed(decode_with_model, model, data)
                x = pad_to_multiple(to_tensor(img, "cpu"), model.stride)
                with torch.no_grad():
                    y, t_ga = timed(model.g_a, x)
                    _, t_gs = timed(model.g_s, y)
                for key, value in (("encode", t_enc), ("decode", t_dec), ("g_a", t_ga), ("g_s", t_gs)):
                    times[name][key].append(value)
    return {name: {k: statistics.median(v) for k, v in d.items()} for name, d in times.items()}


def print_speed(label: str, result: dict, baseline: str = "torch"):
    base = result[baseline]
    print(f"  speed ({label}; median s, ratio = {baseline} time / backend time, >1 is faster):")
    for name, row in result.items():
        cells = "  ".join(f"{k} {row[k]:.3f}s (x{base[k] / row[k]:.2f})" for k in row)
        print(f"    {name:10s} {cells}")


def bad_input_checks(model, folder: Path, work: Path):
    """The one-line errors for a missing graph, a corrupt graph and another model's export."""
    cases = []
    bad = work / "bad"
    for what in ("missing g_s.onnx", "corrupt g_a.onnx", "manifest of other weights"):
        shutil.rmtree(bad, ignore_errors=True)
        shutil.copytree(folder, bad)
        if what.startswith("missing"):
            (bad / "g_s.onnx").unlink()
        elif what.startswith("corrupt"):
            raw = bytearray((bad / "g_a.onnx").read_bytes())
            raw[len(raw) // 3] ^= 0x5A
            (bad / "g_a.onnx").write_bytes(bytes(raw))
        else:
            manifest = json.loads((bad / "manifest.json").read_text())
            manifest["weights_hash"] = "0" * 64
            (bad / "manifest.json").write_text(json.dumps(manifest))
        try:
            load_onnx_codec(model, bad)
            cases.append((what, "NOT DETECTED"))
        except ModelError as exc:
            cases.append((what, f"ModelError: {exc}"))
    for what, message in cases:
        print(f"    {what}: {message}")


def cross_backend(model, others: dict, img) -> str:
    x = pad_to_multiple(to_tensor(img, "cpu"), model.stride)
    results = []
    for name, other in others.items():
        for enc, dec, label in ((model, other, f"torch->{name}"), (other, model, f"{name}->torch")):
            compressed = enc.compress(x, 4.0)
            same = torch.equal(dec.decode_latents(compressed).float(), compressed.latents.float())
            results.append(f"{label} {'identical' if same else 'DIFFERENT'}")
    return ", ".join(results)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--codecs", nargs="+", default=["factorized", "hyperprior", "gmm-ctx"])
    ap.add_argument("--images", type=int, default=8, help="Kodak images for the RD comparison")
    ap.add_argument("--qualities", type=float, nargs="+", default=[1.0, 3.0, 5.0, 8.0])
    ap.add_argument("--speed-images", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calibration", default=str(SHARED / "cbsd68"))
    ap.add_argument("--calibration-images", type=int, default=12)
    ap.add_argument("--int8-target", action="append", default=[], metavar="GRAPH=DB",
                    help="SQNR target of a graph for mixed precision (as `neuralcodec export onnx`)")
    ap.add_argument("--untrained", action="store_true", help="also run codecs without shipped weights")
    ap.add_argument("--out", default=None, help="keep the exports here (default: a temporary folder)")
    args = ap.parse_args()

    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    coder.set_num_threads(args.threads)
    targets = {g: float(v) for g, _, v in (t.partition("=") for t in args.int8_target)}
    images = load_images(max(args.images, args.speed_images))
    work = Path(args.out or tempfile.mkdtemp(prefix="bench-onnx-"))
    print(f"ONNX benchmark: torch {torch.__version__}, onnxruntime {ort.__version__} "
          f"(providers {', '.join(ort.get_available_providers())}), {args.threads} thread(s), "
          f"{len(images[:args.images])} Kodak images for RD at qualities {args.qualities}, "
          f"{args.speed_images} for speed x{args.repeats}"
          + (f", INT8 SQNR targets {targets}" if targets else ""))
    for name in args.codecs:
        if shipped_weights(name):
            model, weights = get_model(name, None, "cpu"), "shipped weights"
        elif args.untrained:
            torch.manual_seed(0)
            model, weights = create(name).eval(), "UNTRAINED"
            model.update()
        else:
            print(f"\n{name}: no shipped weights, skipped (--untrained to run it anyway)")
            continue
        folder = work / name
        print(f"\n{name} ({weights})")
        _, t_export = timed(export_onnx, model, folder, int8=True, calibration=args.calibration,
                            int8_options={"count": args.calibration_images, "targets": targets},
                            log=lambda *a: None)
        manifest = json.loads((folder / "manifest.json").read_text())
        print(f"  export FP32+INT8: {t_export:.1f} s")
        for graph, report in manifest["quantization"]["graphs"].items():
            print(f"    {graph}: {len(report['int8_nodes'])} INT8 / {len(report['fp32_nodes'])} FP32 nodes "
                  f"{report['fp32_nodes']}, SQNR {report['sqnr_db']} dB (all-INT8 {report['all_int8_sqnr_db']} dB)")
        fp32 = load_onnx_codec(model, folder, precision="fp32", device="cpu", threads=args.threads)
        int8 = load_onnx_codec(model, folder, precision="int8", device="cpu", threads=args.threads)

        rd = {}
        for label, m in (("onnx-fp32", fp32), ("onnx-int8", int8)):
            (rd[label]), t = timed(rd_curve, m, images[:args.images], args.qualities)
            pts = ", ".join(f"{b:.3f} bpp/{p:.2f} dB" for b, p in zip(*rd[label]))
            print(f"  RD {label:9s} ({t:.0f} s): {pts}")
        bd = bd_rate(*rd["onnx-fp32"], *rd["onnx-int8"])
        print(f"  BD-rate INT8 vs FP32 (PSNR, pchip): {bd:+.2f}%  (target <= +3%: {'met' if bd <= 3 else 'MISSED'})")

        result = speed({"torch": model, "onnx-fp32": fp32, "onnx-int8": int8},
                       images[:args.speed_images], args.repeats)
        print_speed(f"CPU, {args.threads} thread(s), quality 4", result)
        faster = result["onnx-int8"]["decode"] < result["torch"]["decode"]
        print(f"  INT8 decode faster than torch FP32 on CPU: {'yes' if faster else 'NO'}")
        print(f"  cross-backend latents: {cross_backend(model, {'onnx-fp32': fp32, 'onnx-int8': int8}, images[0])}")
        print("  bad input:")
        bad_input_checks(model, folder, work)

        if "CUDAExecutionProvider" in ort.get_available_providers() and torch.cuda.is_available():
            cuda = load_onnx_codec(model, folder, precision="fp32", device="cuda")
            gpu_model = get_model(name, None, "cuda") if shipped_weights(name) else model.cuda()
            runs = {}
            for label, m, dev in (("torch-cuda", gpu_model, "cuda"), ("ort-cuda", cuda, "cpu")):
                enc = [timed(encode_with_model, m, img, 4.0, dev) for img in images[:args.speed_images] * 2]
                dec = [timed(decode_with_model, m, d, dev)[1] for d, _ in enc]
                runs[label] = (statistics.median(t for _, t in enc), statistics.median(dec))
            print("  GPU (FP32; the entropy path runs on the CPU for ort-cuda):")
            for label, (te, td) in runs.items():
                print(f"    {label:10s} encode {te:.3f}s decode {td:.3f}s  providers "
                      f"{cuda.onnx_info['providers'] if label == 'ort-cuda' else 'torch'}")
        else:
            print("  GPU: CUDAExecutionProvider not available here (install neuralcodec[gpu] on a GPU machine)")


if __name__ == "__main__":
    main()
