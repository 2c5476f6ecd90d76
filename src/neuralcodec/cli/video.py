"""Video branches of `neuralcodec encode/decode/info` (called from the image commands)."""
from __future__ import annotations

import sys
import time
from fractions import Fraction
from pathlib import Path

from neuralcodec.errors import InputError


def is_video_input(path: str) -> bool:
    from neuralcodec.video.io import VIDEO_INPUT_EXTS
    p = Path(path)
    return p.is_dir() or p.suffix.lower() in VIDEO_INPUT_EXTS


def _progress(total: int, desc: str):
    from tqdm import tqdm
    return tqdm(total=total or None, desc=desc, unit="frame", file=sys.stderr, dynamic_ncols=True,
                disable=None, leave=False)


def encode_if_video(args) -> int | None:
    """Handle `encode` for video inputs (a folder or a video extension); None otherwise."""
    if not is_video_input(args.input):
        return None
    from neuralcodec.cli import checks
    from neuralcodec.io.outputs import check_output_path
    from neuralcodec.codecs.catalog import check_quality
    from neuralcodec.video import io as vio

    # arguments and files first: no torch import for a mistake
    if getattr(args, "target_psnr", None) is not None:
        raise InputError("--target-psnr is for images; use --quality, --target-kbps or --target-bpp for video")
    target_kbps, target_bpp = getattr(args, "target_kbps", None), getattr(args, "target_bpp", None)
    checks.check_positive("--target-kbps", target_kbps)
    checks.check_positive("--target-bpp", target_bpp)
    name = checks.video_model(args.model)
    if args.quality is not None:
        check_quality(args.quality)
    limit = getattr(args, "frames", None)
    if limit is not None and limit < 1:
        raise InputError(f"--frames must be at least 1, got {limit} (leave it out to encode every frame)")
    limit = limit or 0
    if getattr(args, "intra_period", None) is not None and args.intra_period < 0:
        raise InputError("--intra-period must be >= 0")
    src = Path(args.input)
    if not src.exists():
        raise InputError(f"input {src} not found")
    checks.check_suffix(args.output, "video")
    out = Path(args.output)
    if out.resolve() == src.resolve():
        raise InputError(f"output {out} would overwrite the input {src}")
    check_output_path(out, *((src,) if src.is_file() else ()), overwrite=args.overwrite)
    if src.is_dir() and out.exists() and out.resolve().is_relative_to(src.resolve()):
        raise InputError(f"output {out} would overwrite a file of the input folder {src}")
    info = vio.probe(src, limit)

    from neuralcodec.io.outputs import atomic_path
    from neuralcodec.cli.runtime import apply_runtime
    from neuralcodec.video.codec import check_geometry, encode_frames
    from neuralcodec.video.weights import load

    check_geometry(info.width, info.height)
    device = apply_runtime(args)
    model = load(name, args.weights, device)
    quality = 4.0 if args.quality is None else args.quality
    period = 32 if getattr(args, "intra_period", None) is None else args.intra_period
    fps = Fraction(info.fps)
    rate = float(fps) if fps else 25.0
    target_bits = 0.0           # rate control: bits per frame
    if target_kbps is not None:
        target_bits = target_kbps * 1000 / rate
    elif target_bpp is not None:
        target_bits = target_bpp * info.width * info.height
    half = device == "cuda" and not getattr(args, "fp32", False)
    adaptive = getattr(args, "adaptive_intra", False)
    if target_bits and adaptive:
        raise InputError("--adaptive-intra does not combine with --target-kbps / --target-bpp yet")
    sizes, stats, kinds = [], {}, []
    bar = _progress(info.frames or info.estimated_frames, "encode")
    start = time.perf_counter()

    def on_frame(i, kind, nbytes):
        sizes.append(nbytes)
        kinds.append(kind)
        bar.update(1)
        bar.set_postfix_str(f"{kind} {8 * nbytes / 1000:.1f} kbit")

    try:
        with atomic_path(out, overwrite=args.overwrite) as tmp:
            n = encode_frames(model, vio.iter_frames(src, limit), tmp, info.width, info.height,
                              (fps.numerator, fps.denominator), quality, period, device, half,
                              info.frames if src.is_dir() else 0, info.pix_fmt, on_frame,
                              target_bits=target_bits, rate_stats=stats, rate_frames=limit,
                              adaptive_intra=adaptive)
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    total = out.stat().st_size
    kbps = 8 * total * rate / n / 1000
    quality_text = f"quality {quality:g}"
    if target_bits:
        target = target_bits * rate / 1000
        quality_text = (f"rate control: target {target:.1f} kbit/s, achieved {kbps:.1f} kbit/s "
                        f"({100 * (kbps / target - 1):+.1f}%), frame qualities {stats['quality_min']:.2f}.."
                        f"{stats['quality_max']:.2f} (mean {stats['quality_mean']:.2f})")
        if stats["quality_max"] <= 1.0 and kbps > target:
            quality_text += " (the target is below this clip's lowest rate: every frame at quality 1)"
        elif stats["quality_min"] >= 8.0 and kbps < target:
            quality_text += " (the target is above this clip's highest rate: every frame at quality 8)"
    print(f"{out}: {n} frames {info.width}x{info.height}, {total} bytes, "
          f"{8 * total / (n * info.width * info.height):.4f} bpp, {kbps:.1f} kbit/s, "
          f"codec {model.name}, {quality_text}, intra period {period}"
          f"{adaptive_text(kinds) if adaptive else ''}, "
          f"{n / elapsed:.2f} fps on {device}")
    return 0


def adaptive_text(kinds: list[str]) -> str:
    """The summary's note on the encoder's I/P choices."""
    return f" (adaptive: {kinds.count('I')} I-frames, {kinds.count('P')} P-frames)"


def decode_if_video(args) -> int | None:
    """Handle `decode` for video bitstreams; None for anything else (images, unreadable)."""
    from neuralcodec.container import read_header
    from neuralcodec.errors import BitstreamError

    src = Path(args.input)
    if not src.is_file():
        return None
    try:
        header = read_header(src)
    except (BitstreamError, OSError):
        return None
    if header.kind != "video":
        return None
    from neuralcodec.video import io as vio

    if any(getattr(args, k, None) is not None for k in ("bytes", "fraction", "target_bpp")):
        raise InputError("--bytes/--fraction/--target-bpp decode a prefix of a progressive image "
                         f"stream; {src} is a video")
    out = vio.check_video_output(args.output, src, overwrite=args.overwrite)

    from neuralcodec.cli.runtime import apply_runtime
    from neuralcodec.errors import NeuralCodecError
    from neuralcodec.video.codec import check_video_header, decode_frames
    from neuralcodec.video.weights import load

    check_video_header(header, args.max_pixels)             # before loading anything
    device = apply_runtime(args)
    model = load(header.codec if header.codec != "" else None, args.weights, device)
    fps = Fraction(header.fps[0], header.fps[1]) if header.fps[0] else vio.FOLDER_FPS
    bar = _progress(header.frames, "decode")
    start = time.perf_counter()
    writer = None
    try:
        writer = vio.FrameWriter(out, header.width, header.height, fps, overwrite=args.overwrite)
        for rgb in decode_frames(model, src, device, device == "cuda", args.max_pixels):
            writer.write(rgb)
            bar.update(1)
    except NeuralCodecError as exc:     # damaged or cut file: keep the complete frames
        if writer is None:
            raise
        if args.all_or_nothing or not writer.count:
            writer.abort()
            raise
        writer.close()
        raise type(exc)(f"{exc}; the {writer.count} complete frames before it were written to "
                        f"{out} (--all-or-nothing: write none)") from None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    else:
        writer.close()
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    print(f"{out}: {writer.count} frames {header.width}x{header.height} @ {float(fps):.3f} fps, "
          f"codec {header.codec}, quality {header.quality:g}, {writer.count / elapsed:.2f} fps on {device}")
    return 0


def video_summary(substreams: list[dict], header: dict) -> dict:
    """Frames, GOPs and bits per frame of a video container's substream list (for `info`)."""
    frames = [s for s in substreams if s["name"] in ("I", "P")]
    bits = [8 * s["bytes"] for s in frames]
    w, h = header["width"], header["height"]
    num, den = header["fps"]
    gops = sum(1 for s in frames if s["name"] == "I")
    return {"frames": len(frames), "gops": gops, "intra_period": header["params"].get("intra_period"),
            "bits_per_frame": bits, "mean_bits_per_frame": sum(bits) / len(bits) if bits else 0.0,
            "bpp": sum(bits) / (len(bits) * w * h) if bits else 0.0,
            "kbps": (sum(bits) / len(bits) * num / den / 1000) if bits and num else None}


def video_lines(summary: dict) -> list[str]:
    bits = summary["bits_per_frame"]
    lines = [f"video:      {summary['frames']} frames, {summary['gops']} GOPs "
             f"(intra period {summary['intra_period']}), {summary['mean_bits_per_frame']:.0f} bits/frame mean, "
             f"{summary['bpp']:.4f} bpp" + (f", {summary['kbps']:.1f} kbit/s" if summary["kbps"] else "")]
    shown = bits[:64]
    lines.append("bits/frame: " + " ".join(str(b) for b in shown) + (" ..." if len(bits) > len(shown) else ""))
    return lines
