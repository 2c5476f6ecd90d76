"""Training speed: crops per second and peak memory of one optimiser step per codec and
configuration, with the plain step the shipped models were trained with (batch 16, fp32 with
TF32, contiguous memory, eager, unfused Adam) as the baseline of the same run.

    python bench/train_speed.py                       # hyperprior and gmm-ctx, every configuration
    python bench/train_speed.py --codecs hyperprior --configs base default --steps 20

Configurations: base (the baseline), bf16-cl (batch 64, bf16 autocast, channels-last, fused
Adam), default (bf16-cl + torch.compile: what `neuralcodec train` runs on CUDA), default-b128.
Each step includes cutting the batch from an in-memory image bank, as in training. The time
is the median over --repeats windows of --steps steps after --warmup steps (compile included
in the warm-up, reported separately).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuralcodec.codecs import registry  # noqa: E402
from neuralcodec.train.data import ImageBank  # noqa: E402
from neuralcodec.train.step import Stepper, StepOptions, scaled_lr  # noqa: E402
from neuralcodec.train.speedtest import add_timing_options, bench_device, time_steps  # noqa: E402

CONFIGS = {
    "base": dict(batch=16, bf16=False, channels_last=False, compile=False, fused=False),
    "bf16-cl": dict(batch=64, bf16=True, channels_last=True, compile=False, fused=True),
    "default": dict(batch=64, bf16=True, channels_last=True, compile=True, fused=True),
    "default-b128": dict(batch=128, bf16=True, channels_last=True, compile=True, fused=True),
    "cudagraphs": dict(batch=64, bf16=True, channels_last=True, compile=True, fused=True,
                       compile_mode="reduce-overhead"),
}


def measure(codec: str, cfg: dict, device, crop: int, steps: int, warmup: int, repeats: int, bank) -> dict:
    torch.manual_seed(0)
    model = registry.create(codec)
    batch = cfg["batch"] if device.type == "cuda" else max(2, cfg["batch"] // 8)
    opts = StepOptions(lr=scaled_lr(1e-4, batch), bf16=cfg["bf16"], channels_last=cfg["channels_last"],
                       compile=cfg["compile"], compile_mode=cfg.get("compile_mode", "default"), fused=cfg["fused"])
    warnings = []
    st = Stepper(model, opts, device, warn=warnings.append)

    def one(step: int) -> None:
        b = bank.batch(0, step, batch)
        st.step(b.x, b.quality, opts.lr)

    t = time_steps(one, batch, device, steps, warmup, repeats)
    return {"crops_per_s": t["rate"], "spread": t["spread"], "batch": batch, "warmup_s": t["warmup_s"],
            "peak_gib": t["peak_gib"], "compiled": st.compiled if cfg["compile"] else False, "warnings": warnings}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--codecs", nargs="+", default=["hyperprior", "gmm-ctx"])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--crop", type=int, default=256)
    add_timing_options(p, steps=20, warmup=8)
    args = p.parse_args()
    device = bench_device(args.device, "batches are 1/8 of the CUDA ones")
    crop = args.crop if device.type == "cuda" else min(args.crop, 128)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8) for _ in range(8)]
    bank = ImageBank(images, [f"r{i}" for i in range(8)], crop, device)
    rows = []
    # The ratio is against `base` when it runs, else against the first config given.
    baseline = "base" if "base" in args.configs else args.configs[0]
    configs = [baseline] + [c for c in args.configs if c != baseline]
    for codec in args.codecs:
        base = None
        for name in configs:
            r = measure(codec, CONFIGS[name], device, crop, args.steps, args.warmup, args.repeats, bank)
            if name == baseline:
                base = r["crops_per_s"]
            ratio = r["crops_per_s"] / base if base else float("nan")
            rows.append((codec, name, r, ratio))
            note = "; ".join(r["warnings"])
            print(f"{codec:>11} {name:>12}: batch {r['batch']:>3}  {r['crops_per_s']:8.1f} crops/s "
                  f"(windows {r['spread'][0]:.1f}-{r['spread'][1]:.1f})  x{ratio:.2f} vs {baseline}  "
                  f"peak {r['peak_gib']:.2f} GiB  warm-up {r['warmup_s']:.1f} s{'  ' + note if note else ''}",
                  flush=True)
            del r
            if device.type == "cuda":
                torch.cuda.empty_cache()
    print(f"\ncodec        config        batch   crops/s   vs {baseline:<8} peak GiB")
    for codec, name, r, ratio in rows:
        print(f"{codec:<12} {name:<13} {r['batch']:>5} {r['crops_per_s']:>9.1f} {ratio:>8.2f}x "
              f"{r['peak_gib']:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
