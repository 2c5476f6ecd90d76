"""The training loop: one process, or one rank of a torchrun data-parallel job."""
from __future__ import annotations

import json
import math
import os
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from neuralcodec.errors import InputError, ModelError
from neuralcodec.train import checkpoint as ckpt
from neuralcodec.train import distributed as D
from neuralcodec.train.data import build_bank, find_images, load_image
from neuralcodec.train.loss import lr_at
from neuralcodec.train.step import LR_SCALINGS, Stepper, StepOptions, auto_warmup, scaled_lr
from neuralcodec.train.validate import set_tf32, validate


@dataclass
class TrainConfig:
    """Everything that defines a run (``config.json`` in the run folder holds a copy)."""
    data: list[str]
    out: str
    codec: str = ""
    codec_kwargs: dict = field(default_factory=dict)
    init: str = ""                      # weights file to start from (fine-tuning)
    init_partial: bool = False          # take only the init tensors whose names and shapes match
    steps: int = 100_000
    batch_size: int = 0                 # per process (per GPU); 0: 64 on CUDA, 8 on the CPU
    crop: int = 256
    small_images: str = "pad"           # pad | skip
    jpeg_downsample: float = 1.0
    weighting: str = "image"            # image | area
    workers: int = 4
    lr: float = 1e-4                    # for a global batch of 16 crops, scaled by lr_scaling
    lr_scaling: str = "sqrt"            # sqrt | linear | none (see train.step.scaled_lr)
    aux_lr: float = 1e-3
    lr_schedule: str = "step"           # step | cosine | constant
    lr_drops: list[float] = field(default_factory=lambda: [0.8, 0.95])
    lr_drop_factor: float = 0.1
    warmup_steps: int = -1              # -1: automatic (train.step.auto_warmup)
    clip: float = 1.0                   # 0 disables
    distortion: str = "mse"             # mse | ms-ssim
    precision: str = "auto"             # auto (bf16 on CUDA, fp32 on the CPU) | bf16 | fp32
    channels_last: bool | None = None   # None: on for CUDA
    compile: bool | None = None         # torch.compile of forward + loss; None: on for CUDA
    compile_mode: str = "default"       # torch.compile mode (train.step.COMPILE_MODES)
    ema: float = 0.0                    # EMA decay of the weights (0: off); validated and exported
    tf32: bool = True
    deterministic: bool = False
    device: str = "auto"                # auto | cpu | cuda
    seed: int = 0
    val: list[str] = field(default_factory=list)
    val_every: int = 5000
    val_qualities: list[float] = field(default_factory=lambda: [1.0, 4.0, 8.0])
    val_max_images: int = 8
    ckpt_every: int = 5000
    keep: int = 3
    log_every: int = 100
    max_minutes: float = 0.0            # 0: no limit (this process)
    time_budget: float = 0.0            # minutes of training over the whole run (0: none), see train()
    resume: bool = False
    export: str = ""
    export_dtype: str = "fp16"
    progress: bool = True

    # fields that must match when resuming
    FIXED = ("codec", "codec_kwargs", "batch_size", "crop", "seed", "distortion")


def registry_factory(name: str, kwargs: dict) -> Callable[[], torch.nn.Module]:
    """A factory that builds ``name`` through ``neuralcodec.codecs.registry``."""
    def make():
        try:
            from neuralcodec.codecs import registry
        except ImportError as exc:
            raise ModelError(f"cannot create codec {name!r}: the codec registry is not available ({exc})") from None
        try:
            return registry.create(name, **kwargs)
        except (KeyError, ValueError, TypeError) as exc:
            msg = str(exc).strip("'\"") or type(exc).__name__
            raise ModelError(f"cannot create codec {name!r}: {msg}") from None
    return make


def import_factory(spec: str, kwargs: dict) -> Callable[[], torch.nn.Module]:
    """A factory from ``module:function`` (the function gets the codec kwargs)."""
    import importlib
    mod, _, fn = spec.partition(":")
    try:
        func = getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelError(f"cannot import codec factory {spec!r}: {exc}") from None
    return lambda: func(**kwargs)


class _Log:
    """Rank-0 console lines (through tqdm), a JSON-lines log and optional TensorBoard."""

    def __init__(self, run_dir: Path, main: bool, start_step: int):
        from neuralcodec.train.plots import TrainingPlot

        self.main, self.bar, self.tb, self.warned = main, None, None, set()
        self.path = run_dir / "train_log.jsonl"
        self.plotter = TrainingPlot(run_dir / "training.png", run_dir.name, self.warn_once)
        if not main:
            return
        _truncate_jsonl(self.path, start_step)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start_step or None)
        except Exception:  # tensorboard not installed (the module import fails)
            self.info("warning: tensorboard is not installed; TensorBoard logging is off")

    def warn_once(self, msg: str) -> None:
        if msg not in self.warned:
            self.warned.add(msg)
            self.info("warning: " + msg)

    def info(self, msg: str) -> None:
        if not self.main:
            return
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr, flush=True)

    def record(self, step: int, values: dict, prefix: str = "train") -> None:
        if not self.main:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **{f"{prefix}/{k}": v for k, v in values.items()}}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"{prefix}/{k}", v, step)

    def plot(self, force: bool = False) -> None:
        """Redraw ``training.png`` from the log (at most once a minute unless ``force``)."""
        if self.main:
            from neuralcodec.train.plots import read_jsonl
            self.plotter.update(lambda: read_jsonl(self.path), force)

    def close(self) -> None:
        self.plot(force=True)
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()


def _truncate_jsonl(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (left by a run that stopped before its next checkpoint)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
    path.write_text("".join(ln + "\n" for ln in keep))


def _pick_device(kind: str) -> str:
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    if kind not in ("cpu", "cuda"):
        raise InputError(f"unknown device {kind!r} (auto, cpu or cuda)")
    return kind


def _check_config(cfg: TrainConfig) -> None:
    if cfg.steps < 1 or cfg.batch_size < 0 or cfg.crop < 8:
        raise InputError("--steps must be >= 1, --batch-size >= 1 (0: automatic) and --crop >= 8")
    if cfg.precision not in ("auto", "bf16", "fp32"):
        raise InputError(f"unknown --precision {cfg.precision!r} (auto, bf16, fp32)")
    if cfg.lr_scaling not in LR_SCALINGS:
        raise InputError(f"unknown --lr-scaling {cfg.lr_scaling!r} ({', '.join(LR_SCALINGS)})")
    if cfg.time_budget < 0:
        raise InputError("--time-budget must be >= 0 minutes")
    if not (cfg.ema == 0 or 0 < cfg.ema < 1):
        raise InputError(f"--ema must be a decay in (0, 1) (0: off), got {cfg.ema:g}")
    if cfg.lr_schedule not in ("step", "cosine", "constant"):
        raise InputError(f"unknown --lr-schedule {cfg.lr_schedule!r} (step, cosine, constant)")
    if cfg.small_images not in ("pad", "skip"):
        raise InputError(f"unknown --small-images {cfg.small_images!r} (pad, skip)")
    if cfg.distortion == "ms-ssim" and cfg.crop <= 160:
        raise InputError("--distortion ms-ssim needs --crop > 160 (five MS-SSIM scales)")
    if cfg.export_dtype not in ("fp16", "bf16", "fp32"):
        raise InputError(f"unknown --export-dtype {cfg.export_dtype!r} (fp16, bf16, fp32)")
    for d in [*cfg.data, *cfg.val]:
        find_images([d])  # missing or empty folders fail here, before any work


def export_weights(model: torch.nn.Module, path: str | Path, info: dict, dtype: str = "fp16",
                   codec: str = "", config: dict | None = None) -> Path:
    """``model.update()``, then its weights file (:func:`neuralcodec.codecs.weights.save_weights`;
    ``info`` records ``dtype``), which ``registry.load_model`` reads."""
    from neuralcodec.codecs.weights import save_weights

    model.update()
    return save_weights(model, path, dtype=dtype, info={**info, "dtype": dtype}, codec=codec,
                        config=config)


def train(cfg: TrainConfig, model_factory: Callable[[], torch.nn.Module] | None = None,
          stop_after: int | None = None, t_start: float | None = None) -> dict:
    """Run (or continue) training. ``model_factory`` builds the codec (default: the registry);
    ``stop_after`` stops this call after that many steps (tests, chunking); ``t_start``
    (``time.monotonic()``) is when ``--max-minutes`` starts counting (default: now).
    With ``cfg.time_budget`` the run ends after that many minutes of training steps, summed over
    resumes, and the LR schedule follows max(step / steps, training time / budget), so that a
    run of fixed GPU time still ends with its decay (the schedule then depends on the speed).
    Returns ``{"step", "done", "checkpoint"}``."""
    t_start = time.monotonic() if t_start is None else t_start
    _check_config(cfg)
    run_dir = Path(cfg.out)
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is not None and not cfg.resume:
        raise InputError(f"{run_dir} already holds checkpoints; pass --resume to continue it "
                         "or choose another --out")
    kind = _pick_device(cfg.device)
    info, device = D.init(kind)
    try:
        return _train(cfg, model_factory, stop_after, info, device, run_dir, latest, t_start)
    finally:
        D.shutdown()


def resolve_auto(cfg: TrainConfig, device: torch.device, world_size: int = 1) -> TrainConfig:
    """``cfg`` with every automatic choice made for ``device``: the fast configuration on CUDA
    (batch 64, bf16, channels-last, torch.compile), the plain one on the CPU; warm-up steps."""
    cuda = device.type == "cuda"
    cfg = replace(cfg, batch_size=cfg.batch_size or (64 if cuda else 8),
                  precision=cfg.precision if cfg.precision != "auto" else ("bf16" if cuda else "fp32"),
                  channels_last=cuda if cfg.channels_last is None else cfg.channels_last,
                  compile=cuda if cfg.compile is None else cfg.compile)
    if cfg.warmup_steps < 0:
        cfg = replace(cfg, warmup_steps=auto_warmup(cfg.steps, cfg.batch_size * world_size))
    return cfg


def _train(cfg, model_factory, stop_after, info, device, run_dir, latest, t_start):
    cfg = resolve_auto(cfg, device, info.world_size)
    if device.type == "cuda":
        set_tf32(cfg.tf32)
        torch.backends.cudnn.benchmark = not cfg.deterministic
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)

    # model: identical initialisation on every rank, then per-rank generator streams
    random.seed(cfg.seed + info.rank)
    np.random.seed(cfg.seed + info.rank)
    torch.manual_seed(cfg.seed)
    factory = model_factory or registry_factory(cfg.codec, cfg.codec_kwargs)
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"codec factory returned {type(model).__name__}, not a torch module")
    if latest is None and cfg.init:
        loaded = load_init(model, cfg.init, partial=cfg.init_partial)
        if cfg.init_partial and info.is_main:
            print(f"--init-partial: {loaded} of {len(model.state_dict())} tensors from {cfg.init}", file=sys.stderr)
    torch.manual_seed(cfg.seed + 1 + info.rank)
    messages: list[str] = []
    base_lr = scaled_lr(cfg.lr, cfg.batch_size * info.world_size, cfg.lr_scaling)
    stepper = Stepper(model, StepOptions(lr=base_lr, aux_lr=cfg.aux_lr, clip=cfg.clip, bf16=cfg.precision == "bf16",
                                         channels_last=cfg.channels_last, compile=cfg.compile,
                                         compile_mode=cfg.compile_mode, ema=cfg.ema,
                                         distortion=cfg.distortion),
                      device, info, warn=messages.append)

    step = 0
    if latest is not None:
        step = _restore(latest, cfg, stepper, info, device)
    elif info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=1, sort_keys=True) + "\n")
    D.barrier(info)
    log = _Log(run_dir, info.is_main, step)
    stepper.warn = log.warn_once
    for msg in messages:
        log.warn_once(msg)
    if latest is not None:
        log.info(f"resuming {latest} at step {step}")
    if step >= cfg.steps:
        log.info(f"run already complete ({step}/{cfg.steps} steps)")
        if cfg.export and info.is_main:
            _export(cfg, stepper, step, log)
        log.close()
        return {"step": step, "done": True, "checkpoint": str(latest)}

    bank = build_bank(cfg.data, cfg.crop, device, cfg.jpeg_downsample, cfg.small_images, cfg.workers,
                      cfg.weighting, log=log.info)
    val_images = []
    if cfg.val and info.is_main:
        val_paths = find_images(cfg.val)[:max(1, cfg.val_max_images)]
        val_images = [load_image(p) for p in val_paths]
    log.info(f"batch {cfg.batch_size} x {info.world_size} process(es), lr {base_lr:.3g} ({cfg.lr:g} at "
             f"batch 16, {cfg.lr_scaling} scaling), warm-up {cfg.warmup_steps} steps, {cfg.precision}, "
             f"{'channels-last' if cfg.channels_last else 'contiguous'}, compile {'on' if cfg.compile else 'off'}, "
             + (f"EMA {cfg.ema:g}" if cfg.ema else "no EMA"))

    if info.is_main and cfg.progress:
        from tqdm import tqdm
        log.bar = tqdm(total=cfg.steps, initial=step, unit="step", dynamic_ncols=True, file=sys.stderr,
                       mininterval=0.5 if sys.stderr.isatty() else 30.0)
    limit_s = cfg.max_minutes * 60.0 if cfg.max_minutes > 0 else math.inf
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, bpp, psnr, count
    t_log, step_times, save_s = time.monotonic(), [], 5.0
    first_step = step
    path = latest
    stopped_early = False
    budget_s = cfg.time_budget * 60.0
    train_s = stepper.train_seconds
    signals = _StopSignals(log)
    try:
        while step < cfg.steps:
            t0 = time.monotonic()
            progress = max(step / cfg.steps, train_s / budget_s) if budget_s else None
            if progress is not None and progress >= 1.0:
                break  # the time budget is spent: the run is complete
            lr = lr_at(step, cfg.steps, base_lr, cfg.lr_schedule, cfg.lr_drops, cfg.lr_drop_factor, cfg.warmup_steps,
                       progress=progress)
            batch = bank.batch(cfg.seed, step, cfg.batch_size, info.world_size, info.rank)
            m = stepper.step(batch.x, batch.quality, lr)
            step += 1
            sums += torch.stack([m["loss"].detach().double(), m["bpp"].double(), m["psnr"].double(),
                                 torch.ones((), dtype=torch.float64, device=device)])
            step_times = step_times[-19:] + [time.monotonic() - t0]
            train_s += step_times[-1]
            stepper.train_seconds = train_s

            budget_done = bool(budget_s) and D.broadcast_flag(info, train_s >= budget_s, device)
            log_now = step % cfg.log_every == 0 or step == cfg.steps or budget_done
            if log_now or (log.bar is not None and step % 10 == 0):
                if log_now:  # the same steps on every rank: log the mean over all ranks
                    D.all_reduce_sum(info, sums)
                loss, bpp, psnr, n = (sums / sums[3].clamp_min(1)).tolist()[:3] + [sums[3].item() / info.world_size]
                if not math.isfinite(loss):
                    raise ModelError(f"training diverged: loss is {loss} at step {step}")
                if log.bar is not None:
                    log.bar.set_postfix(loss=f"{loss:.3f}", bpp=f"{bpp:.3f}", psnr=f"{psnr:.2f}", refresh=False)
                if log_now:
                    its = n / max(1e-9, time.monotonic() - t_log)
                    values = {"loss": loss, "bpp": bpp, "psnr": psnr, "lr": lr, "it_per_s": its,
                              "crops_per_s": its * cfg.batch_size * info.world_size}
                    if stepper.last_aux is not None:
                        values["aux_loss"] = float(stepper.last_aux)
                    log.record(step, values)
                    sums.zero_()
                    t_log = time.monotonic()
            if log.bar is not None:
                log.bar.update(1)

            last = step == cfg.steps or budget_done
            if val_images and (step % cfg.val_every == 0 or last):
                _run_validation(stepper, val_images, cfg, device, run_dir, step, log)
            if cfg.val and info.enabled and (step % cfg.val_every == 0 or last):
                D.barrier(info)

            recent = sorted(step_times)[len(step_times) // 2]
            out_of_time = info.is_main and time.monotonic() - t_start + 3 * recent + 2 * save_s + 5 > limit_s
            stop = D.any_flag(info, out_of_time or signals.requested
                              or (stop_after is not None and step - first_step >= stop_after), device)
            if stop or step % cfg.ckpt_every == 0 or last:
                t_save = time.monotonic()
                path = _save(run_dir, cfg, stepper, step, info, device)
                save_s = max(save_s, time.monotonic() - t_save)
                log.plot()
            if budget_done:
                break
            if stop and step < cfg.steps:
                stopped_early = True
                break
    finally:
        signals.restore()
    log.close()
    done = step >= cfg.steps or (bool(budget_s) and train_s >= budget_s)
    if info.is_main:
        if done:
            (run_dir / "COMPLETE").write_text(f"{step}\n")
        if cfg.export and (done or stopped_early):  # a chunk that ends early leaves weights too
            _export(cfg, stepper, step, log)
        if stopped_early:
            print(f"stopped at step {step}/{cfg.steps}; checkpoint {path}; run the same command with "
                  "--resume to continue", file=sys.stderr)
    return {"step": step, "done": done, "checkpoint": str(path) if path else None}


class _StopSignals:
    """SIGINT/SIGTERM ask for a checkpoint and a clean exit at the end of the current step;
    a second SIGINT interrupts at once."""

    def __init__(self, log):
        import signal
        self.requested, self.log, self.old = False, log, {}
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        import signal
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.log.info("stop requested: saving a checkpoint after this step (Ctrl-C again to abort)")

    def restore(self) -> None:
        import signal
        for sig, handler in self.old.items():
            signal.signal(sig, handler)


def load_init(model: torch.nn.Module, path: str, partial: bool = False) -> int:
    """Start from the weights of a weights file (e.g. shipped weights, for fine-tuning). With
    ``partial``, only the tensors whose names and shapes match the model are taken (a new
    architecture that shares transforms with a trained codec). Returns how many were loaded."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(path)
    except (OSError, SafetensorError) as exc:
        raise InputError(f"cannot read --init weights {path}: {exc}") from None
    if partial:
        own = model.state_dict()
        state = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(state, strict=False)
        return len(state)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"--init weights {path} do not fit the model: {str(exc).splitlines()[0]}") from None
    return len(state)


def _export(cfg, stepper: Stepper, step, log) -> None:
    info = {"step": step, "steps": cfg.steps, "run": str(Path(cfg.out).resolve()), "source": "neuralcodec train"}
    if cfg.ema:
        info["ema"] = cfg.ema
    path = export_weights(stepper.shipping_model(), cfg.export, info, cfg.export_dtype, cfg.codec, cfg.codec_kwargs)
    log.info(f"exported {cfg.export_dtype} {'EMA ' if cfg.ema else ''}weights to {path}")


def _run_validation(stepper: Stepper, images, cfg, device, run_dir, step, log) -> None:
    """Validate the shipping weights (the EMA when on) and, with EMA, the raw weights too."""
    entry = {"step": step}
    models = [("", stepper.shipping_model())] + ([("raw", stepper.model)] if stepper.ema is not None else [])
    for tag, model in models:
        res = validate(model, images, cfg.val_qualities, device, warn=log.warn_once)
        if tag:
            entry[tag] = res
        else:
            entry.update(res)
        text = "  ".join(f"q{q}: {r['bpp']:.3f} bpp {r['psnr']:.2f} dB" for q, r in res["results"].items())
        label = tag or ("EMA" if stepper.ema is not None else "")
        log.info(f"validation at step {step}{' (' + label + ')' if label else ''} ({res['mode']}, "
                 f"{res['images']} images): {text}")
        prefix = "val" + (f"_{tag}" if tag else "")
        for q, r in res["results"].items():
            log.record(step, {f"q{q}/bpp": r["bpp"], f"q{q}/psnr": r["psnr"]}, prefix=prefix)
    path = run_dir / "validation.json"
    history = json.loads(path.read_text()) if path.exists() else []
    history = [e for e in history if e["step"] < step] + [entry]
    from neuralcodec.io.outputs import write_bytes_atomic
    write_bytes_atomic(path, (json.dumps(history, indent=1) + "\n").encode())


def _save(run_dir, cfg, stepper: Stepper, step, info, device) -> Path:
    """Check that all ranks hold the same parameters; gather every rank's RNG state; rank 0
    writes the checkpoint (model, optimisers, EMA, RNG states) and prunes old ones."""
    model, opt, aux_opt = stepper.model, stepper.opt, stepper.aux_opt
    D.check_same_params(info, model, device, step)
    rngs = D.gather_tensors(info, ckpt.rng_capture(device), device)
    path = run_dir / "checkpoints" / ckpt.checkpoint_name(step)
    if info.is_main:
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update({f"ema.{k}": v for k, v in stepper.ema_state().items()})
        t_main, m_main = ckpt.optimizer_flatten(opt, "optim.main")
        tensors.update(t_main)
        meta = {"step": step, "world_size": info.world_size, "config": asdict(cfg),
                "train_seconds": stepper.train_seconds,
                "optim.main": m_main, "sampler": {"kind": "counter", "seed": cfg.seed, "step": step},
                "schedule": {"kind": cfg.lr_schedule, "base_lr": cfg.lr, "drops": cfg.lr_drops,
                             "factor": cfg.lr_drop_factor, "warmup": cfg.warmup_steps,
                             "total": cfg.steps, "last_step": step}}
        if aux_opt is not None:
            t_aux, meta["optim.aux"] = ckpt.optimizer_flatten(aux_opt, "optim.aux")
            tensors.update(t_aux)
        for r, st in enumerate(rngs):
            tensors.update({f"rng.{r}.{k}": v for k, v in st.items()})
        path.parent.mkdir(parents=True, exist_ok=True)
        ckpt.save(path, tensors, meta)
        ckpt.prune(run_dir, cfg.keep)
    D.barrier(info)
    return path


def _restore(path, cfg, stepper: Stepper, info, device) -> int:
    """Load model, optimizers, EMA and this rank's RNG state; return the step."""
    model, opt, aux_opt = stepper.model, stepper.opt, stepper.aux_opt
    tensors, meta = ckpt.load(path)
    old = meta.get("config", {})
    for key in TrainConfig.FIXED:
        if key in old and old[key] != getattr(cfg, key):
            raise InputError(f"--resume: {key} was {old[key]!r} in {path}, now {getattr(cfg, key)!r}")
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"checkpoint {path} does not fit the model: {' '.join(str(exc).split())[:300]}") from None
    opt.load_state_dict(ckpt.optimizer_unflatten(tensors, meta["optim.main"], "optim.main"))
    if aux_opt is not None and "optim.aux" in meta:
        aux_opt.load_state_dict(ckpt.optimizer_unflatten(tensors, meta["optim.aux"], "optim.aux"))
    stepper.align_optimizer_state()
    ema = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
    if stepper.ema is not None and not stepper.load_ema_state(ema) and info.is_main:
        print(f"warning: {path} holds no EMA weights: the EMA starts from the restored weights", file=sys.stderr)
    stepper.train_seconds = float(meta.get("train_seconds", 0.0))
    prefix = f"rng.{info.rank}."
    rng = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if meta.get("world_size") == info.world_size and rng:
        ckpt.rng_restore(rng, device)
    elif info.is_main:
        print(f"warning: {path} was written by {meta.get('world_size')} processes, not "
              f"{info.world_size}: random streams restart (not an exact resume)", file=sys.stderr)
    return int(meta["step"])
