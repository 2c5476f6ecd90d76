"""Equal-data comparisons of ``video-rt`` variants trained side by side on the same clips.

Every step draws one batch of clips (:class:`~neuralcodec.video.train.ClipSampler`, ``--frames``
frames each) and every variant takes one optimiser step on it (on its first ``frames``
frames where it unrolls fewer), so all variants see the same clips in the same order. Each
variant's training time is measured apart (synchronised on CUDA), so a variant that costs
more per step shows it. At the chosen fractions of the run and at the end every variant is
validated with real bitstreams on held-out clips (:func:`neuralcodec.video.rd.clip_rd`):
rate and PSNR-RGB at each quality, the cost of a P-frame relative to an I-frame at equal
PSNR, and BD-rates against the reference variant; ``results.json`` in the output folder
holds them with the loss history.

Usage: ``python -m neuralcodec.video.compare --spec SPEC.json --video DIR... --val DIR... --out DIR``
with SPEC.json a list of variants, e.g.::

    [{"name": "shipped", "init": "src/neuralcodec/weights/video-rt.safetensors"},
     {"name": "ms3-warp", "config": {"ctx_scales": 3, "warp": true},
      "init": "src/neuralcodec/weights/video-rt.safetensors", "init_partial": true},
     {"name": "long-unroll", "init": "src/neuralcodec/weights/video-rt.safetensors", "frames": 9, "bptt": 4}]

Variant keys: ``name``, ``config`` (VideoRT options), ``init`` (weights file), ``init_partial``,
``lr``, ``frames`` (unroll length, at most ``--frames``; 0: all), ``bptt``, ``clip``,
``rate_warmup`` (steps over which the rate term's weight ramps from 0 to 1), ``flow_guide`` and
``flow_guide_steps`` (weight of the loss pulling a ``motion`` model's warp toward the searched
motion, and the steps over which it decays to 0).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from neuralcodec.errors import InputError, NeuralCodecError, one_line_exit
from neuralcodec.train import COMPILE_MODES

VARIANT_KEYS = {"name", "config", "init", "init_partial", "lr", "frames", "bptt", "clip", "rate_warmup",
                "flow_guide", "flow_guide_steps"}


@dataclass
class Variant:
    name: str
    config: dict = field(default_factory=dict)
    init: str = ""
    init_partial: bool = False
    lr: float = 2e-4
    frames: int = 0                 # 0: every frame of the batch
    bptt: int = 0
    clip: float = 1.0
    rate_warmup: int = 0            # steps over which the rate term's weight ramps 0 -> 1
    flow_guide: float = 0.0         # weight of the warp's distance from the searched motion
    flow_guide_steps: int = 0       # steps over which it decays to 0 (0: constant)


def read_spec(path: str) -> list[Variant]:
    """Variants from a JSON list (unknown keys and duplicate names are errors)."""
    from neuralcodec.train.compare import read_spec as read_variants
    return read_variants(path, Variant, VARIANT_KEYS, ("name",))


def shipping_copy(model):
    """A frozen copy of a model in training (eval mode, coding tables, exact nets), for
    validation with real bitstreams; the I-frame codec is shared, not copied."""
    intra = model.intra
    object.__setattr__(model, "intra", None)
    try:
        twin = copy.deepcopy(model)
    finally:
        model.set_intra(intra)
    twin.set_intra(intra)
    twin.eval()
    twin.update()
    return twin


class Runner:
    """One variant: its model, optimisers, clock and running means."""

    def __init__(self, v: Variant, max_frames: int, warmup: int, device, intra, log, bf16: bool = False,
                 compile: bool = False, compile_mode: str = "default"):
        from neuralcodec.train.compare import RunningMeans
        from neuralcodec.video.train import FastClipLoss, build_model, make_optimizers
        if v.frames < 0 or v.frames == 1 or v.frames > max_frames or v.bptt < 0:
            raise InputError(f"variant {v.name}: frames must be 0 or in [2, {max_frames}], bptt >= 0")
        self.v, self.warmup, self.device = v, warmup, device
        self.frames = v.frames or max_frames
        self.model = build_model(v.init, v.init_partial, v.config, device, intra=intra, log=log)
        self.opt, self.aux_opt = make_optimizers(self.model, v.lr)
        self.loss = FastClipLoss(bf16, compile, log, compile_mode)
        self.steps, self.seconds = 0, 0.0
        self.means = RunningMeans(device)

    def step(self, clips: torch.Tensor, quality: torch.Tensor, progress: float) -> None:
        from neuralcodec.train.compare import cosine_lr
        from neuralcodec.video.train import guide_weight, optimise, rate_weight
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        sync()
        t0 = time.perf_counter()
        res = self.loss(self.model, clips[:, :self.frames], quality, self.v.bptt,
                        rate_weight(self.steps, self.v.rate_warmup),
                        guide_weight(self.steps, self.v.flow_guide, self.v.flow_guide_steps))
        lr = cosine_lr(self.v.lr, progress, self.steps, self.warmup, final=0.05)
        optimise(self.model, self.opt, self.aux_opt, res["loss"], lr, self.v.clip)
        sync()
        self.seconds += time.perf_counter() - t0
        self.steps += 1
        self.means.add(res["loss"], res["bpp"], res["psnr"])


def _mean(values):
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def _summary(entry: dict) -> str:
    """'bpp/dB ...' at each quality and the P-frame cost of one clip's validation."""
    ratio = entry["p_frame_cost"]["ratio"]
    return (" ".join(f"{x['bpp']:.3f}/{x['psnr']:.2f}" for x in entry["rows"])
            + (f", P/I {ratio:.3f}" if ratio is not None else ", P/I undefined"))


def bd_rates(results: dict, reference: str) -> dict:
    """Per clip and mean BD-rate (pchip, PSNR-RGB) of each variant's last validation against
    the reference variant's."""
    from neuralcodec.eval.bdrate import BDError, bd_rate
    ref = results.get(reference, {}).get("validation")
    if not ref:
        return {}
    out = {}
    for name, r in results.items():
        if not r.get("validation"):
            continue
        per_clip = {}
        for clip, entry in r["validation"][-1]["clips"].items():
            base = ref[-1]["clips"].get(clip)
            if base is None:
                continue
            try:
                per_clip[clip] = bd_rate([x["bpp"] for x in base["rows"]], [x["psnr"] for x in base["rows"]],
                                         [x["bpp"] for x in entry["rows"]], [x["psnr"] for x in entry["rows"]])
            except BDError as exc:
                per_clip[clip] = f"undefined: {exc}"
        out[name] = {"clips": per_clip, "mean": _mean(per_clip.values())}
    return out


def run(args) -> dict:
    from neuralcodec.io.outputs import write_bytes_atomic
    from neuralcodec.train.data import load_image
    from neuralcodec.train.files import find_images
    from neuralcodec.train.validate import set_tf32
    from neuralcodec.video.rd import clip_rd
    from neuralcodec.video.train import ClipSampler, export, find_clips
    from neuralcodec.video.weights import intra_codec

    variants = read_spec(args.spec)
    if args.frames < 2 or args.crop % 64 or args.batch_size < 1:
        raise InputError("--frames must be >= 2, --crop a multiple of 64, --batch-size >= 1")
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        set_tf32(True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    intra = intra_codec("hyperprior", device)
    runners = []
    for v in variants:
        torch.manual_seed(args.seed)           # every variant starts from the same generator state
        runners.append(Runner(v, args.frames, args.warmup_steps, device, intra, say, args.precision == "bf16",
                              args.compile, args.compile_mode))
    clips = find_clips(args.video, 1.0, args.max_clip_frames) if args.video else []
    stills = [load_image(p) for p in find_images(args.images)] if args.images else []
    sampler = ClipSampler(clips, stills, args.crop, args.frames, args.synthetic, device)
    say(f"data: {len(sampler.clips)} clips ({sum(c.shape[0] for c in sampler.clips)} frames), "
        f"{len(sampler.stills)} stills, synthetic fraction {sampler.synthetic:g}")
    val: list = []        # read at the first validation
    intra_cache: dict = {}
    results = {r.v.name: {"variant": asdict(r.v), "params": sum(p.numel() for p in r.model.parameters()),
                          "frames": r.frames, "log": [], "validation": []} for r in runners}
    meta = {"steps_planned": args.steps, "minutes": args.minutes, "batch": args.batch_size, "crop": args.crop,
            "frames": args.frames, "synthetic": sampler.synthetic, "reference": args.reference or variants[0].name,
            "data_clips": [n for n, _ in clips], "stills": len(stills), "device": str(device),
            "val_qualities": args.val_qualities, "intra_period": args.intra_period,
            "precision": args.precision, "compile": args.compile and args.compile_mode,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else ""}

    def save():
        doc = {"meta": meta, "variants": results, "bd_rate_vs_reference": bd_rates(results, meta["reference"])}
        write_bytes_atomic(out / "results.json", (json.dumps(doc, indent=1) + "\n").encode())

    def validate_all(step):
        missing = [d for d in args.val if not Path(d).exists()]
        if missing:         # a validation part may arrive while training runs (one part per transfer)
            say(f"no validation at step {step}: {', '.join(missing)} not there (yet)")
            return
        if not val:
            val.extend(find_clips(args.val, 1.0, args.val_frames))
            meta["val_clips"] = {Path(n).name: len(f) for n, f in val}
        half = device.type == "cuda"
        for r in runners:
            model = shipping_copy(r.model)
            entry = {}
            for name, frames in val:
                key = Path(name).name
                res = clip_rd(model, frames, args.val_qualities, args.intra_period, device, half,
                              intra_cache.get(key))
                intra_cache[key] = res["intra_rows"]        # the same I-frame codec for every variant
                entry[key] = {k: res[k] for k in ("size", "frames", "rows", "p_frame_cost")}
            ratio = _mean(e["p_frame_cost"]["ratio"] for e in entry.values())
            results[r.v.name]["validation"].append({"step": step, "seconds": r.seconds, "clips": entry,
                                                    "mean_p_frame_cost": ratio})
            say(f"  {r.v.name}: " + "; ".join(f"{k} {_summary(e)}" for k, e in entry.items()))
        save()

    t0 = time.monotonic()
    limit = args.minutes * 60 if args.minutes > 0 else math.inf
    checkpoints = sorted({f for f in args.val_fractions if 0 < f < 1})
    step = 0
    while step < args.steps:
        progress = max(step / args.steps, (time.monotonic() - t0) / limit)
        if progress >= 1:
            break
        clips_b, quality = sampler.batch(args.seed, step, args.batch_size)
        for r in runners:
            r.step(clips_b, quality, progress)
        step += 1
        progress = max(step / args.steps, (time.monotonic() - t0) / limit)
        if step % args.log_every == 0:
            line = []
            for r in runners:
                means = r.means.take()
                if not math.isfinite(means["loss"]):
                    raise NeuralCodecError(f"variant {r.v.name} diverged at step {step}")
                results[r.v.name]["log"].append({"step": step, "seconds": r.seconds, **means})
                line.append(f"{r.v.name} {means['loss']:.3f} ({means['bpp']:.3f} bpp {means['psnr']:.2f} dB)")
            say(f"step {step} ({100 * progress:.0f}%): " + ", ".join(line))
            save()
        while checkpoints and progress >= checkpoints[0]:
            checkpoints.pop(0)
            if args.val:
                say(f"validation at step {step}")
                validate_all(step)
    meta.update(steps_done=step, clips_per_variant=step * args.batch_size, seconds=time.monotonic() - t0,
                train_seconds={r.v.name: r.seconds for r in runners})
    if args.val:
        say(f"final validation at step {step}")
        validate_all(step)
    if args.export:
        for r in runners:
            export(r.model, str(out / f"{r.v.name}.safetensors"),
                   {"steps": step, "source": "neuralcodec.video.compare", "variant": asdict(r.v)})
    save()
    return results


def build_parser() -> argparse.ArgumentParser:
    from neuralcodec.train.compare import add_common_options

    p = argparse.ArgumentParser(prog="python -m neuralcodec.video.compare", description=__doc__.split("\n\n")[0])
    a = p.add_argument
    a("--spec", required=True, help="JSON list of variants (see the module docstring)")
    a("--video", nargs="*", default=[], metavar="DIR", help="training clips: frame folders / video files")
    a("--images", nargs="*", default=[], metavar="DIR", help="stills for synthetic camera motion")
    a("--synthetic", type=float, default=0.25, help="fraction of synthetic clips (default 0.25)")
    a("--out", required=True, metavar="DIR")
    a("--steps", type=int, required=True, help="steps (batches) at most")
    a("--minutes", type=float, default=0.0, help="stop after this wall time (training and validation); "
                                                 "the LR schedule follows max(step / steps, time / minutes)")
    a("--warmup-steps", type=int, default=100)
    a("--batch-size", type=int, default=8)
    a("--frames", type=int, default=7, help="frames per training clip, I + P... (default 7)")
    a("--crop", type=int, default=256)
    a("--max-clip-frames", type=int, default=300)
    a("--val", nargs="*", default=[], metavar="DIR", help="held-out clips (frame folders)")
    a("--val-frames", type=int, default=30)
    a("--val-qualities", type=float, nargs="+", default=[2.0, 4.0, 6.0, 8.0])
    a("--intra-period", type=int, default=32)
    a("--precision", default="fp32", choices=["fp32", "bf16"], help="P-frame networks under bf16 autocast "
      "(likelihoods and loss fp32) or fp32 (default)")
    a("--compile", action="store_true", help="torch.compile each variant's clip unroll")
    a("--compile-mode", default="default", choices=list(COMPILE_MODES), help="torch.compile mode with --compile "
      "(reduce-overhead: CUDA graphs)")
    add_common_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    return one_line_exit(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
