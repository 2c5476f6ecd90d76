#!/usr/bin/env bash
# Rebuild, in a fresh checkout, everything a GPU round carries (all git-ignored):
#   .whl/                 compressai 1.2.8 (cp312), pytorch-msssim, pybind11 wheels for the device's Python 3.12
#   .carry/part-01..03    the 529 training images in three ~38 MiB parts (pack-data, ~1 min)
#   .carry/val4, val24    4 / 24 Kodak images, lossless WebP (validation, cross-device checks)
#   .carry/video-01, val-video-01, *-manifest.json   video training / held-out parts (~7 min)
#   .carry/gmm18/         the last shipped gmm-ctx weights and the package before the #18 coder
#                         work (commit e29c7e0), for bench/gpu_decode_before_after.sh
# Usage: bash scripts/make_carry.sh [--no-video]   (needs .venv; ../shared/data beside the checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python nc=.venv/bin/neuralcodec data=../shared/data
mkdir -p .whl .carry
python3 -m pip download -q --no-deps --python-version 3.12 --only-binary :all: \
    --platform manylinux_2_34_x86_64 -d .whl compressai==1.2.8
python3 -m pip download -q --no-deps -d .whl pytorch-msssim pybind11
if [ ! -d .carry/part-01 ]; then
    rm -rf /tmp/train_full
    $nc pack-data $data/train/wikipedia49 $data/train/bsds500 $data/train/sun_hays80 -o /tmp/train_full \
        --max-mib 400 --keep-jpeg --part-mib 40 --workers 2
    for p in /tmp/train_full/part-*; do cp -r "$p" .carry/; done
fi
[ -d .carry/val24 ] || $nc pack-data $data/kodak -o .carry/val24 --max-mib 100 --workers 2
if [ ! -d .carry/val4 ]; then
    rm -rf /tmp/k4 && mkdir -p /tmp/k4
    for i in 01 08 15 22; do cp $data/kodak/kodim$i.png /tmp/k4/; done
    $nc pack-data /tmp/k4 -o .carry/val4 --max-mib 100
fi
if [ ! -d .carry/gmm18 ]; then
    mkdir -p .carry/gmm18
    git show e29c7e0:src/neuralcodec/weights/gmm-ctx.safetensors >.carry/gmm18/gmm-ctx.safetensors
    git archive e29c7e0 src setup.py pyproject.toml | tar --delete --wildcards 'src/neuralcodec/weights/*.safetensors' \
        >.carry/gmm18/old.tar
fi
if [ "${1:-}" != --no-video ] && [ ! -d .carry/video-01 ]; then
    $py -m neuralcodec.video.pack --out .carry
fi
du -sh .whl .carry/* | sort -k2
