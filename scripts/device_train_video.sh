#!/usr/bin/env bash
# Train video-rt on the GPU machine in the background (survives between calls); see docs/video.md.
# Usage: scripts/device_train_video.sh MINUTES [extra train-video options]
# LAUNCH overrides the launcher, e.g. LAUNCH="torchrun --standalone --nproc-per-node 2" (one rank per GPU).
# Needs .carry/train/{sun_hays80,wikipedia49} (stills) and .carry/video-01
# (python -m neuralcodec.video.pack); the hyperprior weights come with the tree.
# scripts/device_round.sh video-train does the same within a GPU round.
set -eu
minutes=${1:-9}
shift || true
mkdir -p runs
launch=${LAUNCH:-python3}
setsid nohup $launch -m neuralcodec train-video --out runs/video-rt --video .carry/video-01 \
    --images .carry/train/sun_hays80 .carry/train/wikipedia49 --synthetic 0.25 --steps 200000 --batch-size 8 --frames 9 --crop 256 \
    --lr 3e-4 --warmup-steps 200 --max-minutes "$minutes" --log-every 200 --ckpt-every 1000 \
    --resume --export runs/video-rt.safetensors "$@" >runs/video-rt.log 2>&1 </dev/null &
echo "started video-rt training (pid $!), log runs/video-rt.log"
