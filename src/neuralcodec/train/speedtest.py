"""What the training-speed benchmarks (bench/train_speed.py, bench/video_train_speed.py) share:
their timing options and the device they measure on."""
from __future__ import annotations

import argparse

import torch


def add_timing_options(p: argparse.ArgumentParser, steps: int, warmup: int) -> None:
    """--steps per timed window, --repeats windows (median reported), --warmup untimed steps, --device."""
    p.add_argument("--steps", type=int, default=steps, help="steps per timed window")
    p.add_argument("--repeats", type=int, default=3, help="timed windows (median reported)")
    p.add_argument("--warmup", type=int, default=warmup, help="untimed steps first (compilation happens here)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def bench_device(choice: str, cpu_note: str) -> torch.device:
    """The device of ``choice`` (auto: CUDA when there is one), set up as training runs on it
    (TF32, cuDNN autotuning), announced in one line (``cpu_note`` says how the CPU run is scaled)."""
    from neuralcodec.train.validate import set_tf32
    device = torch.device("cuda" if choice == "auto" and torch.cuda.is_available() else
                          ("cpu" if choice == "auto" else choice))
    if device.type == "cuda":
        set_tf32(True)
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    else:
        print(f"device: CPU ({torch.get_num_threads()} threads), torch {torch.__version__}; {cpu_note}")
    return device
