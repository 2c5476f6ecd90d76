"""What the training-speed benchmarks (bench/train_speed.py, bench/video_train_speed.py) share:
their timing options, the device they measure on and the timed windows."""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

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


def time_steps(one_step: Callable[[int], None], items: int, device: torch.device, steps: int, warmup: int,
               repeats: int) -> dict:
    """Run ``one_step(step)`` ``warmup`` times untimed, then ``repeats`` windows of ``steps``;
    ``items`` per step (crops, clips). Returns the median and spread of items/s over the windows,
    the warm-up time and the peak CUDA memory (GiB; NaN on the CPU) since the call."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0, step = time.perf_counter(), 0
    for _ in range(warmup):
        one_step(step)
        step += 1
    sync()
    warm_s = time.perf_counter() - t0
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            one_step(step)
            step += 1
        sync()
        rates.append(steps * items / (time.perf_counter() - t))
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"rate": statistics.median(rates), "spread": (min(rates), max(rates)), "warmup_s": warm_s,
            "peak_gib": peak}
