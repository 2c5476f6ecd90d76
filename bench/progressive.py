"""Progressive (trit-plane) benchmark on Kodak: one bitstream per image cut at many points
vs the `hyperprior` at several qualities (one encode per rate), the ablation without the
context modules, and the CPU decode time of a prefix vs a hyperprior decode.

    PYTHONPATH=src python bench/progressive.py [--images DIR] [--limit N] [--crop WxH]
        [--cuts 24] [--weights trit-plane.safetensors] [--threads 2] [--json out.json]

BD-rates use neuralcodec.eval.bdrate (pchip; negative = fewer bits than the anchor), both
per image (then averaged) and on the mean curves (the hyperprior averaged per quality, the
trit-plane per cut fraction).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuralcodec.codecs import api, registry  # noqa: E402
from neuralcodec.codecs.tritplane import TritPlaneCodec  # noqa: E402
from neuralcodec.container import truncate_container, unpack  # noqa: E402
from neuralcodec.eval.bdrate import BDError, bd_rate  # noqa: E402

QUALITIES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)


def load(path: Path, crop) -> np.ndarray:
    from PIL import Image
    img = np.asarray(Image.open(path).convert("RGB"))
    if crop:
        w, h = crop
        r, c = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        img = img[max(r, 0):max(r, 0) + h, max(c, 0):max(c, 0) + w]
    return np.ascontiguousarray(img)


def progressive_curve(model, img, fractions) -> tuple[list, list, bytes]:
    """Cut one stream at the fractions of its plane data (after the header and z)."""
    data = model.encode_image(img)
    fixed = len(truncate_container(data, len(data) - len(unpack(data)[1][1].data)))
    px = img.shape[0] * img.shape[1]
    bpp, psnr = [], []
    for f in fractions:
        cut = truncate_container(data, fixed + int(f * (len(data) - fixed))) if f < 1 else data
        bpp.append(8 * len(cut) / px)
        psnr.append(api.psnr(model.decode_image(cut), img))
    return bpp, psnr, data


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bd(anchor, test) -> float | None:
    try:
        return bd_rate(anchor[0], anchor[1], test[0], test[1])
    except BDError:
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="/work/shared/data/kodak")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--crop", default=None, help="centre crop WxH (default: whole images)")
    ap.add_argument("--cuts", type=int, default=24)
    ap.add_argument("--min-fraction", type=float, default=0.02,
                    help="smallest cut, as a fraction of the plane data")
    ap.add_argument("--weights", default=None, help="trit-plane weights (default: shipped)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="timing repetitions (best of)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    crop = tuple(int(v) for v in args.crop.split("x")) if args.crop else None
    files = sorted(Path(args.images).glob("*.png"))[:args.limit]
    base = registry.load_model("hyperprior")
    model = registry.load_model("trit-plane", args.weights)
    model.set_base(base)
    plain = TritPlaneCodec(**model.config)
    plain.load_state_dict(model.state_dict())
    plain.set_base(base).eval()
    plain.use_crr = plain.use_cdr = False
    plain.update()
    fractions = np.geomspace(args.min_fraction, 1.0, args.cuts)
    rows, times = [], []
    for path in files:
        img = load(path, crop)
        px = img.shape[0] * img.shape[1]
        hp = ([], [])
        for q in QUALITIES:
            d = api.encode_with_model(base, img, q)
            hp[0].append(8 * len(d) / px)
            hp[1].append(api.psnr(api.decode_with_model(base, d), img))
        tp_bpp, tp_psnr, data = progressive_curve(model, img, fractions)
        pl_bpp, pl_psnr, _ = progressive_curve(plain, img, fractions)
        d8 = api.encode_with_model(base, img, 8.0)
        t_hp = timed(lambda: api.decode_with_model(base, d8), args.repeat)
        t_full = timed(lambda: model.decode_image(data), args.repeat)
        t_half = timed(lambda: model.decode_image(data, max_bytes=len(data) // 2), args.repeat)
        times.append((t_hp, t_full, t_half))
        mono = sum(b < a for a, b in zip(tp_psnr, tp_psnr[1:]))
        row = {"image": path.name, "hyperprior": hp, "trit_plane": [tp_bpp, tp_psnr],
               "plain": [pl_bpp, pl_psnr], "bd_rate": bd(hp, (tp_bpp, tp_psnr)),
               "bd_rate_plain": bd(hp, (pl_bpp, pl_psnr)),
               "bd_rate_ctx_vs_plain": bd((pl_bpp, pl_psnr), (tp_bpp, tp_psnr)),
               "non_monotone_steps": mono, "decode_s": {"hyperprior_q8": t_hp, "full": t_full,
                                                        "half": t_half}}
        rows.append(row)
        fmt = lambda v: "n/a" if v is None else f"{v:+.2f}%"  # noqa: E731
        print(f"{path.name}: BD-rate vs hyperprior {fmt(row['bd_rate'])} (plain {fmt(row['bd_rate_plain'])}),"
              f" context vs plain {fmt(row['bd_rate_ctx_vs_plain'])}, full {tp_bpp[-1]:.3f} bpp "
              f"{tp_psnr[-1]:.2f} dB (hyperprior q8 {hp[0][-1]:.3f} bpp {hp[1][-1]:.2f} dB), "
              f"non-monotone steps {mono}, decode {t_half:.2f}/{t_full:.2f} s (half/full) vs "
              f"{t_hp:.2f} s", flush=True)
    mean = lambda key, i: np.mean([r[key][i] for r in rows], 0)  # noqa: E731
    curves = {k: (mean(k, 0), mean(k, 1)) for k in ("hyperprior", "trit_plane", "plain")}
    summary = {
        "images": len(rows), "crop": args.crop, "cuts": args.cuts,
        "bd_rate_mean_curve": bd(curves["hyperprior"], curves["trit_plane"]),
        "bd_rate_plain_mean_curve": bd(curves["hyperprior"], curves["plain"]),
        "bd_rate_ctx_vs_plain_mean_curve": bd(curves["plain"], curves["trit_plane"]),
        "bd_rate_per_image_mean": statistics.fmean(r["bd_rate"] for r in rows if r["bd_rate"] is not None),
        "bd_rate_plain_per_image_mean": statistics.fmean(r["bd_rate_plain"] for r in rows
                                                         if r["bd_rate_plain"] is not None),
        "non_monotone_steps": sum(r["non_monotone_steps"] for r in rows),
        "decode_ratio_half": statistics.median(t[2] / t[0] for t in times),
        "decode_ratio_full": statistics.median(t[1] / t[0] for t in times),
        "mean_curves": {k: [list(map(float, v[0])), list(map(float, v[1]))] for k, v in curves.items()},
    }
    print(f"\n{len(rows)} images, {args.cuts} cut points each ({args.crop or 'full size'})")
    print(f"BD-rate trit-plane vs hyperprior: {summary['bd_rate_mean_curve']:+.2f}% (mean curve), "
          f"{summary['bd_rate_per_image_mean']:+.2f}% (per-image mean)")
    print(f"BD-rate plain trit-plane (no CRR/CDR) vs hyperprior: {summary['bd_rate_plain_mean_curve']:+.2f}% "
          f"(mean curve), {summary['bd_rate_plain_per_image_mean']:+.2f}% (per-image mean)")
    print(f"BD-rate with context modules vs plain: {summary['bd_rate_ctx_vs_plain_mean_curve']:+.2f}%")
    print(f"PSNR decreases between consecutive cut points: {summary['non_monotone_steps']}")
    print(f"decode time ratio trit-plane / hyperprior (CPU, {args.threads} threads, median): "
          f"{summary['decode_ratio_half']:.2f}x for a half-size prefix, "
          f"{summary['decode_ratio_full']:.2f}x for the full stream")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "images": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
