#!/usr/bin/env python3
"""Image codec speed: neuralcodec vs CompressAI 1.2.8 with equal channel counts, same input.

    python bench/image_codec.py [--images N] [--threads T] [--device cpu|cuda]

Baselines measured in the same run on the same Kodak images: CompressAI's
`mbt2018_mean` (mean-scale hyperprior, N=128, M=192) against our `hyperprior`, and
`bmshj2018_hyperprior` (N=128, M=192) for reference; `gmm-ctx` is timed too. Times are
the median over images of full encode (net + entropy coding to bytes) and decode (bytes
to pixels). On the CPU our models run in the channels-last memory format (as loaded); the
run also times CompressAI's model in that format and our hyperprior in NCHW. CompressAI's models are randomly initialised (no weights can be downloaded
here): network time does not depend on the weights; its entropy-coding time grows with the
rate, so its bpp is printed beside ours.
"""
import argparse
import copy
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")

from neuralcodec.codecs.api import decode_with_model, encode_with_model, get_model, to_tensor  # noqa: E402
from neuralcodec.codecs.registry import create, shipped_weights  # noqa: E402

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def load_images(n):
    from PIL import Image

    files = sorted(KODAK.glob("kodim*.png"))[:n]
    if not files:
        sys.exit(f"no Kodak images in {KODAK}")
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def ours(name, device):
    if shipped_weights(name):
        return get_model(name, None, device), "shipped weights"
    torch.manual_seed(0)
    model = create(name).to(device).eval()
    model.update()
    return model, "untrained"


class Ours:
    def __init__(self, model, device, quality=4.0):
        self.model, self.device, self.quality = model, device, quality

    def encode(self, img):
        return encode_with_model(self.model, img, self.quality, self.device)

    def decode(self, data):
        return decode_with_model(self.model, data, self.device)

    @staticmethod
    def size(data):
        return len(data)


class CompressAI:
    def __init__(self, factory, device, channels_last=False):
        torch.manual_seed(0)
        self.net = factory(quality=3, pretrained=False).to(device).eval()
        self.net.update(force=True)
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.device = device

    @torch.no_grad()
    def encode(self, img):
        x = to_tensor(img, self.device)
        h, w = x.shape[-2:]
        xp = torch.nn.functional.pad(x, (0, (-w) % 64, 0, (-h) % 64), mode="replicate")
        return self.net.compress(xp), (h, w)

    @torch.no_grad()
    def decode(self, enc):
        out, (h, w) = enc
        rec = self.net.decompress(out["strings"], out["shape"])["x_hat"][..., :h, :w]
        return (rec.clamp(0, 1) * 255).round().byte().cpu()

    @staticmethod
    def size(enc):
        return sum(len(s[0]) for s in enc[0]["strings"])


def measure(codecs, images, reps=2):
    """Round-robin over codecs for every image (so load changes hit all alike); median times."""
    times = {name: ([], [], []) for name in codecs}
    for codec in codecs.values():          # warm-up
        codec.decode(codec.encode(images[0]))
    for _ in range(reps):
        for img in images:
            for name, codec in codecs.items():
                t0 = time.perf_counter()
                enc = codec.encode(img)
                t1 = time.perf_counter()
                codec.decode(enc)
                t2 = time.perf_counter()
                times[name][0].append(t1 - t0)
                times[name][1].append(t2 - t1)
                times[name][2].append(8 * codec.size(enc) / (img.shape[0] * img.shape[1]))
    return {n: (statistics.median(e), statistics.median(d), float(np.mean(b))) for n, (e, d, b) in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from compressai.zoo import bmshj2018_hyperprior, mbt2018_mean

    images = load_images(args.images)
    dev = args.device
    print(f"{len(images)} Kodak images, device {dev}, torch threads {torch.get_num_threads()}")
    codecs = {"compressai mbt2018_mean (N128 M192)": CompressAI(mbt2018_mean, dev),
              "compressai bmshj2018_hyperprior (N128 M192)": CompressAI(bmshj2018_hyperprior, dev)}
    if dev == "cpu":    # the memory format our CPU models use, applied to the baseline too
        codecs["compressai mbt2018_mean, channels-last"] = CompressAI(mbt2018_mean, dev, channels_last=True)
    for name in ("hyperprior", "gmm-ctx"):
        model, source = ours(name, dev)
        codecs[f"neuralcodec {name} ({source})"] = Ours(model, dev)
    if dev == "cpu":    # what the channels-last layout gains (same weights, NCHW)
        model, source = ours("hyperprior", dev)
        nchw = copy.deepcopy(model).to(memory_format=torch.contiguous_format)  # get_model caches
        codecs[f"neuralcodec hyperprior ({source}), NCHW"] = Ours(nchw, dev)
    rows = measure(codecs, images)
    print(f"{'codec':<48} {'encode s':>9} {'decode s':>9} {'bpp':>7}")
    for name, (e, d, b) in rows.items():
        print(f"{name:<48} {e:>9.3f} {d:>9.3f} {b:>7.3f}")
    for base_name in ("compressai mbt2018_mean (N128 M192)", "compressai mbt2018_mean, channels-last"):
        if base_name not in rows:
            continue
        base = rows[base_name]
        for name, (e, d, _) in rows.items():
            if name.startswith("neuralcodec"):
                print(f"ratio {name} / {base_name[11:]}: encode {e / base[0]:.2f}x time, decode "
                      f"{d / base[1]:.2f}x time (<= 1.00 means as fast or faster)")


if __name__ == "__main__":
    main()
