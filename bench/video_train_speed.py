"""video-rt training speed: clips per second of one optimiser step (the I-frame coded by the
frozen image codec, the P-frames unrolled, backward, Adam) per configuration, against the step
rounds 4-8 trained with (batch 8, fp32 with TF32, eager) as the baseline of the same run.

    python bench/video_train_speed.py                          # every configuration, the shipped structure
    python bench/video_train_speed.py --configs base bf16-b32 compile-b32 --config '{"warp": true, "n": 128, "f": 96}'

Configurations: base, b32 (batch 32), bf16 (autocast of the P-frame networks), bf16-b32,
compile (bf16 + torch.compile of the unroll), compile-b32, graphs and graphs-b32 (compile mode
reduce-overhead: CUDA graphs, for the launch-bound small networks). Each step draws its clips from an
in-memory set of moving random textures (as training draws from its clips). The rate is the
median over --repeats windows of --steps steps after --warmup steps (compilation happens there,
its time reported separately). On the CPU the batches are 1/8 (at least 1) and crops 128 px.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from neuralcodec.train.speedtest import add_timing_options, bench_device, time_steps  # noqa: E402
from neuralcodec.video.train import ClipSampler, FastClipLoss, build_model, make_optimizers, optimise  # noqa: E402
from neuralcodec.video.weights import intra_codec  # noqa: E402

CONFIGS = {
    "base": dict(batch=8, bf16=False, compile=False),
    "b32": dict(batch=32, bf16=False, compile=False),
    "bf16": dict(batch=8, bf16=True, compile=False),
    "bf16-b32": dict(batch=32, bf16=True, compile=False),
    "compile": dict(batch=8, bf16=True, compile=True),
    "compile-b32": dict(batch=32, bf16=True, compile=True),
    "graphs": dict(batch=8, bf16=True, compile=True, compile_mode="reduce-overhead"),
    "graphs-b32": dict(batch=32, bf16=True, compile=True, compile_mode="reduce-overhead"),
}


def moving_textures(n: int, frames: int, h: int, w: int) -> list[tuple[str, list[np.ndarray]]]:
    """``n`` clips of a random texture panning by a few pixels per frame."""
    rng = np.random.default_rng(0)
    clips = []
    for i in range(n):
        base = rng.integers(0, 256, (h + 4 * frames, w + 4 * frames, 3), dtype=np.uint8)
        dy, dx = rng.integers(0, 4, 2)
        clips.append((f"t{i}", [base[t * dy:t * dy + h, t * dx:t * dx + w] for t in range(frames)]))
    return clips


def measure(cfg: dict, config: dict, sampler, device, steps: int, warmup: int, repeats: int) -> dict:
    torch.manual_seed(0)
    intra = intra_codec("hyperprior", device)
    model = build_model("", False, config, device, intra=intra, log=lambda *a, **k: None)
    opt, aux_opt = make_optimizers(model, 2e-4)
    warnings: list[str] = []
    loss = FastClipLoss(cfg["bf16"], cfg["compile"], warnings.append, cfg.get("compile_mode", "default"))
    batch = cfg["batch"] if device.type == "cuda" else max(1, cfg["batch"] // 8)

    def one(step: int) -> None:
        clips, quality = sampler.batch(0, step, batch)
        res = loss(model, clips, quality)
        optimise(model, opt, aux_opt, res["loss"], 2e-4, 1.0)

    t = time_steps(one, batch, device, steps, warmup, repeats)
    return {"clips_per_s": t["rate"], "spread": t["spread"], "batch": batch, "warmup_s": t["warmup_s"],
            "peak_gib": t["peak_gib"], "compiled": loss.compiled, "warnings": warnings}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--config", default='{"warp": true}', help="P-frame model options (JSON; default: the shipped structure)")
    p.add_argument("--frames", type=int, default=7, help="frames per clip, I + P... (default 7, as video.compare)")
    p.add_argument("--crop", type=int, default=256)
    add_timing_options(p, steps=10, warmup=3)
    args = p.parse_args()
    device = bench_device(args.device, "batches are 1/8 of the CUDA ones, crops at most 128 px")
    crop = args.crop if device.type == "cuda" else min(args.crop, 128)
    config = json.loads(args.config)
    sampler = ClipSampler(moving_textures(4, max(args.frames, 8), crop + 64, crop + 128), [], crop, args.frames,
                          0.0, device)
    baseline = "base" if "base" in args.configs else args.configs[0]
    configs = [baseline] + [c for c in args.configs if c != baseline]
    rows, base = [], None
    print(f"model {config}, {args.frames}-frame clips at {crop} px")
    for name in configs:
        r = measure(CONFIGS[name], config, sampler, device, args.steps, args.warmup, args.repeats)
        base = r["clips_per_s"] if name == baseline else base
        ratio = r["clips_per_s"] / base
        rows.append((name, r, ratio))
        note = "; ".join(r["warnings"])
        print(f"{name:>12}: batch {r['batch']:>3}  {r['clips_per_s']:8.2f} clips/s "
              f"(windows {r['spread'][0]:.2f}-{r['spread'][1]:.2f})  x{ratio:.2f} vs {baseline}  "
              f"peak {r['peak_gib']:.2f} GiB  warm-up {r['warmup_s']:.1f} s{'  ' + note if note else ''}", flush=True)
    print(f"\nconfig        batch   clips/s  P-frames/s   vs {baseline:<8} peak GiB")
    for name, r, ratio in rows:
        print(f"{name:<13} {r['batch']:>5} {r['clips_per_s']:>9.2f} {r['clips_per_s'] * (args.frames - 1):>11.1f} "
              f"{ratio:>8.2f}x {r['peak_gib']:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
