#!/usr/bin/env python3
"""Write src/neuralcodec/eval/published_kodak.json: published Kodak RD curves (numbers only)
and the pixel digests that recognise the 24 Kodak images.

    python scripts/make_published_kodak.py [--anchors ../shared/anchors/compressai-kodak]
                                           [--kodak ../shared/data/kodak]

The curves are CompressAI's published results files (InterDigitalInc/CompressAI, folder
results/, commit 869a9f5d4126d015b7de8f203fe60ee9e1608193): its pretrained MSE models
(inference with the ans coder on CUDA) and its VTM and AV1 runs. Only bpp, psnr-rgb and
ms-ssim-rgb are kept, with the file each came from.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from neuralcodec.eval.inputs import pixels_digest  # noqa: E402
from neuralcodec.io.images import read_rgb8  # noqa: E402

COMMIT = "869a9f5d4126d015b7de8f203fe60ee9e1608193"
CURVES = [  # (shown name, CompressAI results file)
    ("VTM", "vtm.json"),
    ("AV1", "av1.json"),
    ("CompressAI bmshj2018-factorized", "compressai-bmshj2018-factorized_mse_cuda.json"),
    ("CompressAI bmshj2018-hyperprior", "compressai-bmshj2018-hyperprior_mse_cuda.json"),
    ("CompressAI mbt2018-mean", "compressai-mbt2018-mean_mse_cuda.json"),
    ("CompressAI mbt2018", "compressai-mbt2018_mse_cuda.json"),
    ("CompressAI cheng2020-anchor", "compressai-cheng2020-anchor_mse_cuda.json"),
    ("CompressAI cheng2020-attn", "compressai-cheng2020-attn_mse_cuda.json"),
]
KEYS = ("bpp", "psnr-rgb", "ms-ssim-rgb")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--anchors", default=str(ROOT.parent / "shared" / "anchors" / "compressai-kodak"))
    ap.add_argument("--kodak", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    ap.add_argument("-o", "--output", default=str(ROOT / "src" / "neuralcodec" / "eval" / "published_kodak.json"))
    args = ap.parse_args()
    images = sorted(Path(args.kodak).glob("kodim*.png"))
    if len(images) != 24:
        raise SystemExit(f"expected the 24 Kodak images in {args.kodak}, found {len(images)}")
    curves = []
    for name, file in CURVES:
        res = json.loads((Path(args.anchors) / file).read_text())["results"]
        curves.append({"name": name, "source": f"CompressAI results/image/kodak/{file}",
                       "results": {k: res[k] for k in KEYS}})
    out = {
        "dataset": "Kodak PhotoCD, kodim01-kodim24 (24 images, 768x512 and 512x768)",
        "attribution": f"CompressAI (InterDigitalInc/CompressAI), folder results/, commit {COMMIT}: "
                       "their measurements on their machines; numbers only",
        "kodak_pixels": {p.stem: pixels_digest(read_rgb8(p).pixels) for p in images},
        "curves": curves,
    }
    Path(args.output).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.output}: {len(curves)} curves, {len(images)} image digests")


if __name__ == "__main__":
    main()
