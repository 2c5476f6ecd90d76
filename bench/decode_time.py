#!/usr/bin/env python3
"""Kodak encode and decode time of one codec through real bitstreams, with whatever
neuralcodec package is on the path (it uses only ``load_model``, ``encode_with_model`` and
``decode_with_model``), so that two commits can be timed on one machine (see
bench/gpu_decode_before_after.sh).

    python bench/decode_time.py --codec gmm-ctx [--weights FILE] [--kodak DIR] [--quality 4]
                                [--images 24] [--device cpu|cuda] [--threads N] [--json FILE]

Prints the median and mean time per image of each side, the time spent inside the native
coder's decode functions (every ``neuralcodec.entropy._rans.decode*``, timed by wrappers), the
mean rate and PSNR, and one SHA-256 over every bitstream (equal digests: the two versions wrote
the same streams).
"""
import argparse
import hashlib
import json
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")

from neuralcodec.codecs.api import decode_with_model, encode_with_model  # noqa: E402
from neuralcodec.codecs.registry import load_model  # noqa: E402

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def time_coder_decodes() -> list:
    """Wrap the native module's decode functions so that their time adds up in the returned
    one-element list (seconds); the Python wrappers look them up at every call."""
    from neuralcodec.entropy import _rans

    total = [0.0]

    def timed(fn):
        def call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                total[0] += time.perf_counter() - t0
        return call

    for name in dir(_rans):
        if name.startswith("decode") and callable(getattr(_rans, name)):
            setattr(_rans, name, timed(getattr(_rans, name)))
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec", required=True)
    parser.add_argument("--weights", help="weights file (default: the shipped ones)")
    parser.add_argument("--kodak", default=str(KODAK))
    parser.add_argument("--quality", type=float, default=4.0)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from PIL import Image

    files = sorted(Path(args.kodak).glob("kodim*.*"))[:args.images]
    if not files:
        raise SystemExit(f"no kodim*.* images in {args.kodak}")
    model = load_model(args.codec, args.weights, device=args.device)
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    digest, t_enc, t_dec, t_coder, bpp, psnr = hashlib.sha256(), [], [], [], [], []
    warm = np.asarray(Image.open(files[0]).convert("RGB"))
    decode_with_model(model, encode_with_model(model, warm, args.quality, args.device), args.device)
    coder_total = time_coder_decodes()
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        sync()
        t0 = time.perf_counter()
        data = encode_with_model(model, img, args.quality, args.device)
        sync()
        t1 = time.perf_counter()
        coder_before = coder_total[0]
        out = decode_with_model(model, data, args.device)
        sync()
        t2 = time.perf_counter()
        t_coder.append(coder_total[0] - coder_before)
        digest.update(data)
        t_enc.append(t1 - t0)
        t_dec.append(t2 - t1)
        bpp.append(8 * len(data) / (img.shape[0] * img.shape[1]))
        mse = np.mean((out.astype(np.float64) - img) ** 2)
        psnr.append(10 * np.log10(255 ** 2 / mse))
    result = {"codec": args.codec, "device": torch.cuda.get_device_name() if cuda else "cpu",
              "threads": torch.get_num_threads(), "images": len(files), "quality": args.quality,
              "decode_ms_median": 1e3 * statistics.median(t_dec), "decode_ms_mean": 1e3 * statistics.fmean(t_dec),
              "coder_decode_ms_median": 1e3 * statistics.median(t_coder),
              "coder_decode_ms_mean": 1e3 * statistics.fmean(t_coder),
              "encode_ms_median": 1e3 * statistics.median(t_enc), "encode_ms_mean": 1e3 * statistics.fmean(t_enc),
              "bpp": statistics.fmean(bpp), "psnr": statistics.fmean(psnr), "streams_sha256": digest.hexdigest()}
    print(f"{args.codec} on {result['device']} ({result['threads']} threads), {len(files)} images at q{args.quality:g}: "
          f"decode {result['decode_ms_median']:.1f} ms median ({result['decode_ms_mean']:.1f} mean; in the coder "
          f"{result['coder_decode_ms_median']:.1f} ms median), "
          f"encode {result['encode_ms_median']:.1f} ms median; {result['bpp']:.4f} bpp, {result['psnr']:.3f} dB; "
          f"streams {result['streams_sha256'][:16]}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
