"""Equal-compute comparisons: several codec variants trained side by side on the same crops.

Every step draws one batch from the shared :class:`~neuralcodec.train.data.ImageBank` and
each variant takes an optimiser step on it (or several on micro-batches of it, so that a
batch-16 recipe sees exactly the crops of a batch-64 one), so all variants see the same
crops in the same order. At the chosen fractions of the run every variant is validated
with real bitstreams; ``results.json`` in the output folder holds the loss history, the
validation points and BD-rates against a reference variant.

Usage: ``python -m neuralcodec.train.compare --spec SPEC.json --data DIR --out DIR ...``,
where SPEC.json lists the variants, e.g.::

    [{"name": "hyperprior", "codec": "hyperprior"},
     {"name": "gmm-k1-shift", "codec": "gmm-ctx", "kwargs": {"components": 1, "mean_shift": true}},
     {"name": "hp-b16-fp32", "codec": "hyperprior", "micro_batch": 16, "precision": "fp32"}]

Variant keys: ``name``, ``codec``, ``kwargs``, ``init`` (weights file), ``micro_batch``,
``precision`` (bf16 | fp32), ``channels_last``, ``compile``, ``lr`` (for batch 16),
``lr_scaling``, ``ema``, ``clip``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from neuralcodec.errors import InputError, NeuralCodecError, one_line_exit
from neuralcodec.train.step import Stepper, StepOptions, auto_warmup, scaled_lr

VARIANT_KEYS = {"name", "codec", "kwargs", "init", "init_partial", "micro_batch", "precision", "channels_last",
                "compile", "lr", "lr_scaling", "ema", "clip"}


@dataclass
class Variant:
    name: str
    codec: str
    kwargs: dict = field(default_factory=dict)
    init: str = ""
    init_partial: bool = False      # load only the init tensors whose names and shapes match
    micro_batch: int = 0            # 0: the whole batch in one step
    precision: str = "bf16"
    channels_last: bool = True
    compile: bool = False
    lr: float = 1e-4                # for a batch of 16, scaled by lr_scaling
    lr_scaling: str = "sqrt"
    ema: float = 0.0
    clip: float = 1.0


def read_spec(path: str, variant=None, keys=None, required=("name", "codec")) -> list:
    """Variants (``variant`` objects, default :class:`Variant`, from dicts with the ``keys``
    allowed and the ``required`` ones) from a JSON list; unknown keys and duplicate names are errors."""
    variant, keys = variant or Variant, keys or VARIANT_KEYS
    try:
        items = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the variant list {path}: {exc}") from None
    if not isinstance(items, list) or not items:
        raise InputError(f"{path}: expected a non-empty JSON list of variants")
    variants = []
    for item in items:
        if not isinstance(item, dict) or not set(required) <= set(item) or set(item) - keys:
            raise InputError(f"{path}: each variant needs {' and '.join(repr(k) for k in required)} and only "
                             f"the keys {', '.join(sorted(keys))}: {item!r}")
        variants.append(variant(**item))
    if len({v.name for v in variants}) != len(variants):
        raise InputError(f"{path}: variant names must be unique")
    return variants


def cosine_lr(base: float, progress: float, step: int, warmup: int, final: float = 0.0) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from ``base`` to ``final * base``
    over the run's progress in [0, 1]."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, max(0.0, progress))
    return base * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t)))


class RunningMeans:
    """Means of (loss, bpp, psnr) over the steps since the last ``take``."""

    def __init__(self, device):
        self.sums = torch.zeros(3, dtype=torch.float64, device=device)
        self.count = 0

    def add(self, loss: torch.Tensor, bpp: torch.Tensor, psnr: torch.Tensor) -> None:
        self.sums += torch.stack([loss.detach().double(), bpp.detach().double(), psnr.detach().double()])
        self.count += 1

    def take(self) -> dict:
        loss, bpp, psnr = (self.sums / max(1, self.count)).tolist()
        self.sums.zero_()
        self.count = 0
        return {"loss": loss, "bpp": bpp, "psnr": psnr}


class Runner:
    """One variant: its model, its stepper and its share of each batch."""

    def __init__(self, v: Variant, batch: int, warmup: int, device, warn):
        from neuralcodec.train.loop import load_init, registry_factory
        self.v = v
        model = registry_factory(v.codec, v.kwargs)()
        self.loaded = 0
        if v.init:
            self.loaded = load_init(model, v.init, partial=v.init_partial)
        self.micro = v.micro_batch or batch
        if batch % self.micro:
            raise InputError(f"variant {v.name}: micro_batch {self.micro} does not divide the batch {batch}")
        self.per_batch = batch // self.micro
        self.base_lr = scaled_lr(v.lr, self.micro, v.lr_scaling)
        self.warmup = warmup * self.per_batch    # the same crops in warm-up for every variant
        self.stepper = Stepper(model, StepOptions(lr=self.base_lr, clip=v.clip, bf16=v.precision == "bf16",
                                                  channels_last=v.channels_last, compile=v.compile, ema=v.ema),
                               device, warn=warn)
        self.opt_steps = 0
        self.means = RunningMeans(device)

    def step(self, x: torch.Tensor, quality: torch.Tensor, progress: float) -> None:
        for xs, qs in zip(x.split(self.micro), quality.split(self.micro)):
            lr = cosine_lr(self.base_lr, progress, self.opt_steps, self.warmup)
            m = self.stepper.step(xs, qs, lr)
            self.opt_steps += 1
            self.means.add(m["loss"], m["bpp"], m["psnr"])

    def take_means(self) -> dict:
        return self.means.take()


def _bd_rates(results: dict, reference: str) -> dict:
    """BD-rate (pchip, PSNR) of each variant's last validation against the reference's."""
    from neuralcodec.eval.bdrate import BDError, bd_rate
    ref = results[reference]["validation"][-1]["results"] if results.get(reference, {}).get("validation") else None
    out = {}
    for name, r in results.items():
        if not r.get("validation") or ref is None or len(ref) < 2:
            continue
        cur = r["validation"][-1]["results"]
        qs = sorted(set(ref) & set(cur), key=float)
        try:
            out[name] = bd_rate([ref[q]["bpp"] for q in qs], [ref[q]["psnr"] for q in qs],
                                [cur[q]["bpp"] for q in qs], [cur[q]["psnr"] for q in qs])
        except BDError as exc:
            out[name] = f"undefined: {exc}"
    return out


def run(args) -> dict:
    from neuralcodec.io.outputs import write_bytes_atomic
    from neuralcodec.codecs.base import rd_lambda
    from neuralcodec.train.data import build_bank, find_images, load_image
    from neuralcodec.train.validate import set_tf32, validate

    variants = read_spec(args.spec)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        set_tf32(True)
        torch.backends.cudnn.benchmark = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    runners = []
    for v in variants:
        torch.manual_seed(args.seed)           # every variant starts from the same generator state
        warmup = auto_warmup(args.steps, args.batch_size) if args.warmup_steps < 0 else args.warmup_steps
        runners.append(Runner(v, args.batch_size, warmup, device, say))
    bank = build_bank(args.data, args.crop, device, workers=4, log=say)
    val: list = []  # read at the first validation (the folder may arrive while training runs)
    results = {r.v.name: {"variant": vars(r.v), "params": sum(p.numel() for p in r.stepper.model.parameters()),
                          "init_tensors": r.loaded, "log": [], "validation": []} for r in runners}
    meta = {"steps_planned": args.steps, "minutes": args.minutes, "batch": args.batch_size, "crop": args.crop,
            "quality": args.quality, "data_images": len(bank), "data_mpixel": bank.num_pixels / 1e6,
            "reference": args.reference, "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else ""}

    def save():
        doc = {"meta": meta, "variants": results, "bd_rate_vs_reference": _bd_rates(results, args.reference)}
        write_bytes_atomic(out / "results.json", (json.dumps(doc, indent=1) + "\n").encode())

    def validate_all(step):
        if not val:
            val.extend(load_image(p) for p in find_images(args.val)[:args.val_max_images])
            meta["val_images"] = len(val)
        for r in runners:
            res = validate(r.stepper.shipping_model(), val, args.val_qualities, device, warn=say)
            results[r.v.name]["validation"].append({"step": step, "crops": step * args.batch_size, **res})
            text = "  ".join(f"q{q}: {x['bpp']:.4f} bpp {x['psnr']:.2f} dB" for q, x in res["results"].items())
            say(f"  {r.v.name:>18} {text}")
        save()

    t0 = time.monotonic()
    limit = args.minutes * 60 if args.minutes > 0 else math.inf
    checkpoints = sorted({f for f in args.val_fractions if 0 < f < 1})
    step = 0
    while step < args.steps:
        elapsed = time.monotonic() - t0
        progress = max(step / args.steps, elapsed / limit)
        if progress >= 1:
            break
        batch = bank.batch(args.seed, step, args.batch_size)
        q = batch.quality if args.quality is None else torch.full_like(batch.quality, args.quality)
        for r in runners:
            r.step(batch.x, q, progress)
        step += 1
        if step % args.log_every == 0:
            line = []
            for r in runners:
                means = r.take_means()
                if not math.isfinite(means["loss"]):
                    raise NeuralCodecError(f"variant {r.v.name} diverged at step {step}")
                results[r.v.name]["log"].append({"step": step, **means})
                line.append(f"{r.v.name} {means['loss']:.4f}")
            rate = step * args.batch_size / max(1e-9, time.monotonic() - t0)
            say(f"step {step} ({100 * progress:.0f}%, {rate:.0f} crops/s over all variants): " + ", ".join(line))
            save()
        while checkpoints and progress >= checkpoints[0]:
            checkpoints.pop(0)
            say(f"validation at step {step}")
            validate_all(step)
    meta.update(steps_done=step, crops_per_variant=step * args.batch_size, seconds=time.monotonic() - t0,
                lambda_fixed=None if args.quality is None else float(rd_lambda(args.quality)))
    say(f"final validation at step {step} ({step * args.batch_size} crops per variant)")
    if args.val:
        validate_all(step)
    if args.export:
        from neuralcodec.train.loop import export_weights
        for r in runners:
            export_weights(r.stepper.shipping_model(), out / f"{r.v.name}.safetensors",
                           {"step": step, "source": "neuralcodec.train.compare"}, "fp16", r.v.codec, r.v.kwargs)
    save()
    return results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m neuralcodec.train.compare", description=__doc__.split("\n\n")[0])
    a = p.add_argument
    a("--spec", required=True, help="JSON list of variants (see the module docstring)")
    a("--data", nargs="+", required=True, metavar="DIR")
    a("--out", required=True, metavar="DIR")
    a("--steps", type=int, required=True, help="steps (batches) at most")
    a("--minutes", type=float, default=0.0, help="stop after this wall time; the LR schedule follows "
                                                 "max(step / steps, time / minutes)")
    a("--warmup-steps", type=int, default=-1,
      help="warm-up steps (batches; default: train.step.auto_warmup of --steps)")
    a("--batch-size", type=int, default=64)
    a("--crop", type=int, default=256)
    a("--quality", type=float, default=None, help="fixed quality (fixed lambda); default U[1, 8] per crop")
    a("--val", nargs="*", default=[], metavar="DIR")
    a("--val-max-images", type=int, default=24)
    a("--val-qualities", type=float, nargs="+", default=[1.0, 3.0, 5.0, 8.0])
    add_common_options(p)
    return p


def add_common_options(p: argparse.ArgumentParser) -> None:
    """The options every equal-compute comparison tool shares (this one and video.compare)."""
    a = p.add_argument
    a("--val-fractions", type=float, nargs="*", default=[0.5], help="also validate at these run fractions")
    a("--reference", default="", help="variant the BD-rates refer to (default: the first)")
    a("--log-every", type=int, default=100)
    a("--export", action="store_true", help="write each variant's weights (fp16) to OUT")
    a("--device", default="auto", choices=["auto", "cpu", "cuda"])
    a("--seed", type=int, default=0)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def with_reference(args):
        if not args.reference:
            args.reference = read_spec(args.spec)[0].name
        run(args)
    return one_line_exit(with_reference, args)


if __name__ == "__main__":
    sys.exit(main())
