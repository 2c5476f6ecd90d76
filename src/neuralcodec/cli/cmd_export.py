"""`neuralcodec export onnx`: ONNX graphs (FP32, optionally INT8) of a codec's transforms."""
from __future__ import annotations

from neuralcodec.cli.runtime import add_runtime_options, apply_runtime
from neuralcodec.codecs.catalog import DEFAULT_CODEC, IMAGE_CODECS


def register(sub) -> None:
    p = sub.add_parser("export", help="export a codec for other runtimes (ONNX)")
    formats = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    o = formats.add_parser("onnx", help="ONNX graphs of the transforms + integer entropy-parameter nets")
    o.add_argument("--model", default=None,
                   help=f"image codec: {', '.join(IMAGE_CODECS)} (default {DEFAULT_CODEC})")
    o.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    o.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    o.add_argument("--int8", action="store_true",
                   help="also write static INT8 (QDQ, per-channel) graphs, mixed precision")
    o.add_argument("--calibration", default=None, metavar="DIR",
                   help="--int8: folder of calibration images (keep the evaluation set out)")
    o.add_argument("--calibration-images", type=int, default=12, metavar="N",
                   help="--int8: number of calibration images (256x256 centre crops; default 12)")
    o.add_argument("--int8-target", action="append", default=[], metavar="GRAPH=DB",
                   help="--int8: output SQNR target of a graph (g_a, g_s, h_a; defaults 36, 46, 34 dB); "
                        "lower keeps fewer layers in FP32 (faster, larger RD loss)")
    add_runtime_options(o)
    o.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from neuralcodec.cli import checks
    from neuralcodec.errors import InputError

    checks.check_runtime(args)
    name = checks.image_model(args.model) or (None if args.weights else DEFAULT_CODEC)
    checks.require_module("onnx", "export onnx")
    if args.int8:
        checks.require_module("onnxruntime", "export onnx --int8 (calibration runs the graphs)")
    if args.calibration and not Path(args.calibration).is_dir():
        raise InputError(f"--calibration {args.calibration}: no such folder")
    if args.calibration and not args.int8:
        raise InputError("--calibration is used with --int8")
    if args.int8 and not args.calibration:
        raise InputError("--int8 needs --calibration DIR")
    targets = {}
    for item in args.int8_target:
        graph, _, value = item.partition("=")
        try:
            targets[graph] = float(value)
        except ValueError:
            raise InputError(f"--int8-target wants GRAPH=DB, got {item!r}") from None
        if graph not in ("g_a", "g_s", "h_a"):
            raise InputError(f"--int8-target: unknown graph {graph!r} (g_a, g_s, h_a)")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")

    from neuralcodec.codecs.api import get_model
    from neuralcodec.export.onnx_export import OPSET, export_onnx

    apply_runtime(args)
    model = get_model(name, args.weights, "cpu")
    manifest = export_onnx(model, out, opset=args.opset or OPSET, int8=args.int8,
                           calibration=args.calibration,
                           int8_options={"count": args.calibration_images, "targets": targets})
    graphs = ", ".join(f"{name} ({'+'.join(p for p in ('fp32', 'int8') if entry.get(p))})"
                       for name, entry in manifest["graphs"].items())
    print(f"{out}: codec {manifest['codec']}, weights {manifest['weights_hash'][:12]}, "
          f"opset {manifest['opset']}, graphs {graphs}")
    return 0
