#!/usr/bin/env python3
"""GPU-encode -> CPU-decode check on Kodak: the latents decoded on the CPU must equal the
ones the GPU encoder coded, for every image and quality; also times both sides.

    python bench/cross_device.py [--codecs hyperprior gmm-ctx] [--weights CODEC=FILE ...]
                                 [--qualities 1 4 8] [--images 24]
                                 [--video-frames 9] [--video-size 1920x1080]

Then the same for video-rt: frames (as bench/video.py picks them) encoded on the GPU with
half-precision networks, decoded on the CPU in fp32; the latents must be identical.
"""
import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")

from neuralcodec.codecs.api import decode_with_model, encode_with_model, psnr  # noqa: E402
from neuralcodec.codecs.pixels import pad_to_multiple, to_tensor  # noqa: E402
from neuralcodec.codecs.base import Compressed  # noqa: E402
from neuralcodec.codecs.registry import load_model  # noqa: E402

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codecs", nargs="+", default=["hyperprior", "gmm-ctx"])
    parser.add_argument("--weights", nargs="*", default=[], metavar="CODEC=FILE",
                        help="weights to use instead of a codec's shipped ones")
    parser.add_argument("--qualities", nargs="+", type=float, default=[1.0, 4.0, 8.0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--kodak", default=str(KODAK))
    parser.add_argument("--video-frames", type=int, default=9, help="0: skip the video check")
    parser.add_argument("--video-size", default="1920x1080")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA device")
    from PIL import Image

    files = sorted(Path(args.kodak).glob("kodim*.*"))[:args.images]
    if args.images and not files:
        raise SystemExit(f"no kodim*.* images in {args.kodak}")
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    print(f"{len(images)} Kodak images on {torch.cuda.get_device_name()} -> CPU "
          f"({torch.get_num_threads()} threads)")
    weights = dict(spec.split("=", 1) for spec in args.weights)
    for name in args.codecs:
        gpu = load_model(name, weights.get(name), device="cuda")
        cpu = load_model(name, weights.get(name), device="cpu")
        same, total, t_enc, t_dec_gpu, t_dec_cpu, psnr_gap = 0, 0, [], [], [], []
        for img in images:
            for q in args.qualities:
                x = pad_to_multiple(to_tensor(img, "cuda"), gpu.stride)
                comp = gpu.compress(x, q)
                decoded = cpu.decode_latents(Compressed(comp.streams, comp.params))
                total += 1
                same += bool(torch.equal(decoded, comp.latents.cpu()))
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                data = encode_with_model(gpu, img, q, "cuda")
                torch.cuda.synchronize()
                t1 = time.perf_counter()
                on_gpu = decode_with_model(gpu, data, "cuda")
                torch.cuda.synchronize()
                t2 = time.perf_counter()
                on_cpu = decode_with_model(cpu, data, "cpu")
                t3 = time.perf_counter()
                t_enc.append(t1 - t0)
                t_dec_gpu.append(t2 - t1)
                t_dec_cpu.append(t3 - t2)
                psnr_gap.append(abs(psnr(on_gpu, img) - psnr(on_cpu, img)))
        print(f"{name}: identical latents GPU-encode -> CPU-decode in {same}/{total} (image, quality) pairs; "
              f"median ms per image: GPU encode {1e3 * np.median(t_enc):.1f}, GPU decode "
              f"{1e3 * np.median(t_dec_gpu):.1f}, CPU decode {1e3 * np.median(t_dec_cpu):.1f}; "
              f"max |PSNR(GPU decode) - PSNR(CPU decode)| {max(psnr_gap):.4f} dB")
    if args.video_frames:
        check_video(args.video_frames, *map(int, args.video_size.split("x")))


def check_video(n: int, width: int, height: int) -> None:
    """video-rt: GPU (fp16/bf16 networks) encode -> CPU (fp32) decode gives the same latents."""
    import io

    from video import load_frames     # bench/video.py

    from neuralcodec.container import ContainerReader
    from neuralcodec.video.codec import encode_frames, open_decoder
    from neuralcodec.video.weights import load
    frames = load_frames(None, n, width, height)   # a real clip where one is found
    latents = []
    gpu, cpu = load(None, None, "cuda"), load(None, None, "cpu")
    buf = io.BytesIO()
    encode_frames(gpu, frames, buf, width, height, quality=4, intra_period=4, device="cuda", half=True,
                  latents=latents)
    buf.seek(0)
    reader = ContainerReader(buf)
    dec = open_decoder(cpu, reader.header, "cpu")
    same = sum(bool(torch.equal(dec.decode(s.name, s.data), ref)) for s, ref in zip(reader, latents))
    print(f"video-rt {width}x{height}: identical latents GPU-encode (half) -> CPU-decode (fp32) in "
          f"{same}/{len(latents)} frames ({len(buf.getvalue())} bytes)")


if __name__ == "__main__":
    main()
