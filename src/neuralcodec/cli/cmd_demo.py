"""`neuralcodec demo`: round trip of the shipped sample image with the default codec."""
from __future__ import annotations

from neuralcodec.cli.runtime import add_runtime_options, apply_runtime
from neuralcodec.codecs.catalog import DEFAULT_CODEC, IMAGE_CODECS


def register(sub) -> None:
    p = sub.add_parser("demo", help="encode and decode the shipped sample image (Kodak kodim23 crop)")
    p.add_argument("--model", default=None,
                   help=f"image codec: {', '.join(IMAGE_CODECS)} (default {DEFAULT_CODEC})")
    p.add_argument("--quality", type=float, default=4.0, help="real number in [1, 8] (default 4)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write sample.ncb and sample_decoded.png here (default: nothing is written)")
    add_runtime_options(p, weights=False)
    p.set_defaults(func=run)


def run(args) -> int:
    import time
    from pathlib import Path

    from neuralcodec.cli import checks
    from neuralcodec.io.image_files import read_image, write_image
    from neuralcodec.io.outputs import write_bytes_atomic
    from neuralcodec.codecs.catalog import check_quality

    checks.check_runtime(args)
    name = checks.image_model(args.model) or DEFAULT_CODEC
    check_quality(args.quality)
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        from neuralcodec.errors import InputError
        raise InputError(f"--out {out} exists and is not a folder")
    sample = Path(__file__).resolve().parents[1] / "data" / "sample.png"
    pixels = read_image(sample)

    from neuralcodec.codecs.api import decode_with_model, encode_with_model, get_model, psnr

    device = apply_runtime(args)
    model = get_model(name, None, device)
    t0 = time.perf_counter()
    data = encode_with_model(model, pixels, args.quality, device)
    t1 = time.perf_counter()
    decoded = decode_with_model(model, data, device)
    t2 = time.perf_counter()
    h, w = pixels.shape[:2]
    print(f"demo: {sample.name} {w}x{h} with {model.name} at quality {args.quality:g} on {device}")
    print(f"  {len(data)} bytes, {8 * len(data) / (w * h):.4f} bpp, PSNR {psnr(decoded, pixels):.2f} dB, "
          f"encode {t1 - t0:.2f} s, decode {t2 - t1:.2f} s")
    if out is None:
        print("  (--out DIR keeps the bitstream and the decoded image)")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "sample.ncb", data)
    write_image(out / "sample_decoded.png", decoded)
    print(f"  wrote {out / 'sample.ncb'} and {out / 'sample_decoded.png'}")
    return 0
