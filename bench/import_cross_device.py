#!/usr/bin/env python3
"""GPU encode -> CPU decode of an imported model (``neuralcodec import compressai``).

    python bench/import_cross_device.py --weights IMPORTED.safetensors [--images 24]
        [--qualities Q ...] [--encode-device cuda]

For every Kodak image and quality label, the bitstream encoded on the GPU is decoded on
the CPU: the latents must equal the ones the GPU encoder coded (and the container must
decode). No CompressAI checkpoint is needed here, only the imported weights file.
``--encode-device cpu`` runs the same check CPU to CPU (1 encoder thread, all for the
decoder), for a dry run on a machine without a GPU.
"""
import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")

from neuralcodec.codecs.api import decode_with_model, encode_with_model, psnr, to_tensor  # noqa: E402
from neuralcodec.codecs.base import Compressed  # noqa: E402
from neuralcodec.codecs.registry import load_model  # noqa: E402
from neuralcodec.entropy import coder  # noqa: E402

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="an imported model's safetensors file")
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--kodak", default=str(KODAK))
    parser.add_argument("--qualities", nargs="+", type=float, default=None,
                        help="default: the model's quality labels")
    parser.add_argument("--encode-device", default="cuda")
    args = parser.parse_args()
    if args.encode_device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("needs a CUDA device (or --encode-device cpu for a dry run)")
    from PIL import Image

    files = sorted(Path(args.kodak).glob("kodim*.*"))[:args.images]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    if any(side % 64 for img in images for side in img.shape[:2]):
        raise SystemExit("the images' sides must be multiples of 64 (Kodak's are)")
    enc, dec = load_model(None, args.weights, args.encode_device), load_model(None, args.weights, "cpu")
    if not hasattr(enc, "level_for"):
        raise SystemExit(f"{args.weights} is not an imported model ({enc.name})")
    where = torch.cuda.get_device_name() if args.encode_device.startswith("cuda") else "CPU (1 thread)"
    print(f"{enc.name} ({args.weights}): {len(images)} Kodak images, encode on {where}, decode on "
          f"the CPU ({torch.get_num_threads()} threads)")
    threads = torch.get_num_threads()
    for quality in args.qualities or enc.labels:
        (label, enc_level), (_, dec_level) = enc.level_for(quality), dec.level_for(quality)
        same, gaps, t_enc, t_dec = 0, [], [], []
        for img in images:
            if args.encode_device == "cpu":
                torch.set_num_threads(1)
                coder.set_num_threads(1)
            x = to_tensor(img, args.encode_device)
            coded = enc_level.compress(x, label)
            t0 = time.perf_counter()
            data = encode_with_model(enc, img, label, args.encode_device)
            t_enc.append(time.perf_counter() - t0)
            on_encoder = decode_with_model(enc, data, args.encode_device)
            torch.set_num_threads(threads)
            coder.set_num_threads(threads)
            latents = dec_level.decode_latents(Compressed(coded.streams, coded.params))
            same += bool(torch.equal(latents, coded.latents.cpu().to(latents.dtype)))
            t0 = time.perf_counter()
            on_cpu = decode_with_model(dec, data, "cpu")
            t_dec.append(time.perf_counter() - t0)
            gaps.append(abs(psnr(on_cpu, img) - psnr(on_encoder, img)))
        print(f"quality {label:g}: identical latents {args.encode_device} encode -> CPU decode in "
              f"{same}/{len(images)} images; max |PSNR(CPU decode) - PSNR({args.encode_device} decode)| "
              f"{max(gaps):.4f} dB; median encode {1e3 * np.median(t_enc):.0f} ms, CPU decode "
              f"{1e3 * np.median(t_dec):.0f} ms")


if __name__ == "__main__":
    main()
