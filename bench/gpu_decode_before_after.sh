#!/usr/bin/env bash
# Kodak encode/decode times of one codec with the current package and with the package of an
# older commit (its own coder build), same weights, same machine: the before/after of a coder
# change, on the GPU machine or on the CPU.
#
#   git archive OLD src setup.py pyproject.toml > old.tar        (weights may be left out)
#   bash bench/gpu_decode_before_after.sh old.tar CODEC WEIGHTS KODAK_DIR [bench/decode_time.py args]
#   e.g. ... --device cuda     or     ... --device cpu --threads 2
#
# Both sides run this checkout's bench/decode_time.py (only load_model, encode_with_model and
# decode_with_model, which every version has) and print the SHA-256 of their streams.
set -euo pipefail
old_tar=$1 codec=$2 weights=$3 kodak=$4; shift 4
python=${PYTHON:-python3}
old=${OLD_DIR:-/tmp/old-package}
rm -rf "$old" && mkdir -p "$old" && tar xf "$old_tar" -C "$old"
mkdir -p "$old/src/neuralcodec/weights"
cp "$weights" "$old/src/neuralcodec/weights/$codec.safetensors"
(cd "$old" && PYTHONPATH=${SITE:-/tmp/site} $python setup.py -q build_ext --inplace >"$old/build.log" 2>&1) \
    || { tail -n 20 "$old/build.log"; exit 1; }
echo "== before: the package of $old_tar (its own coder build)"
PYTHONPATH=${SITE:-/tmp/site}:$old/src $python bench/decode_time.py --codec "$codec" --weights "$weights" \
    --kodak "$kodak" "$@"
echo "== after: this checkout"
PYTHONPATH=${SITE:-/tmp/site}:$PWD/src $python bench/decode_time.py --codec "$codec" --weights "$weights" \
    --kodak "$kodak" "$@"
