#!/usr/bin/env bash
# Start one training run in the background on the GPU machine (survives between calls).
# Usage: scripts/device_train.sh CODEC STEPS MINUTES [extra train options]
# LAUNCH overrides the launcher, e.g. LAUNCH="torchrun --nproc-per-node 1" (DDP, one process per GPU).
# Data: .carry/train (made by `neuralcodec pack-data`), validation: .carry/val.
set -eu
codec=$1 steps=$2 minutes=$3
shift 3
mkdir -p runs
launch=${LAUNCH:-python3}
setsid nohup $launch -m neuralcodec train --codec "$codec" --data .carry/train --out "runs/$codec" \
    --steps "$steps" --batch-size 16 --crop 256 --lr 2e-4 --lr-schedule cosine --warmup-steps 500 \
    --clip 1.0 --val .carry/val --val-every 2500 --val-qualities 1 3 5 8 --val-max-images 4 \
    --max-minutes "$minutes" --ckpt-every 2500 --keep 2 --resume --no-progress --log-every 250 \
    --export "runs/$codec.safetensors" "$@" >"runs/$codec.log" 2>&1 < /dev/null &
echo "started $codec (pid $!)"
