"""The training engine: one loop for every training task.

A :class:`Task` says what one kind of training is (its model, optimisers, batches, loss,
validation and export); :func:`run` does the rest, the same way for every task: devices and
torchrun processes, seeds, checkpoints in one layout (:mod:`neuralcodec.train.checkpoint`)
and exact resume (model, optimisers, EMA, every rank's random state), SIGINT/SIGTERM ->
checkpoint and clean exit, ``--max-minutes`` (save and exit before a wall-time limit),
``--time-budget`` (the learning-rate schedule fitted to a training-time budget), validation
at fixed intervals, ``train_log.jsonl`` / TensorBoard logging, ``training.png`` and the
progress bar. The tasks: :mod:`neuralcodec.train.image_task` (image codecs),
:mod:`neuralcodec.video.train` (video-rt P-frames), :mod:`neuralcodec.train.tritplane_task`.

The engine reads these fields of a task's config: ``out``, ``steps``, ``seed``, ``device``,
``resume``, ``ckpt_every``, ``keep``, ``log_every``, ``val_every``, ``progress``, ``export``
(and, unless the task says otherwise, ``max_minutes`` and ``time_budget``).
"""
from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from neuralcodec.errors import InputError, ModelError
from neuralcodec.train import checkpoint as ckpt
from neuralcodec.train import distributed as D

#: checkpoint keys of optimisers in runs written before the engine by ``video/train.py``
#: (engine name -> (metadata key, tensor prefix))
_LEGACY_OPTIMIZERS = {"main": ("opt", "opt"), "aux": ("aux_opt", "aux")}


class Task:
    """One kind of training. Subclasses set :attr:`model` in :meth:`build_model` and their
    optimisers in :meth:`setup`; the engine calls the methods in the order they appear here."""

    #: config fields a resumed run must share with the run that wrote the checkpoint
    FIXED: tuple[str, ...] = ()
    #: what ``time_budget`` counts: "train" (seconds of training steps, summed over resumes)
    #: or "wall" (wall time of this process, data loading included)
    budget_clock = "train"
    #: a title for ``training.png``
    title = ""

    def __init__(self, cfg):
        self.cfg = cfg
        self.model: torch.nn.Module | None = None
        self.ema = None          # a torch.optim.swa_utils.AveragedModel, or None
        self.resuming = False    # set by the engine before build_model
        self.warn = print        # the engine's warn-once (after set-up)

    # -- before any work --------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`InputError` for a bad config (before devices or data)."""

    def resolve(self, device: torch.device, world_size: int) -> None:
        """Make the config's automatic choices for ``device`` (``self.cfg`` may be replaced)."""

    def prepare_device(self, device: torch.device) -> None:
        """Backend switches (TF32, deterministic kernels)."""

    def wall_limit_minutes(self) -> float:
        """Save and exit before this much wall time of this process (0: none)."""
        return self.cfg.max_minutes

    def budget_minutes(self) -> float:
        """The time budget of the run (0: none): the run ends when it is spent, and the LR
        schedule is fitted to it."""
        return self.cfg.time_budget

    # -- model, optimisers -------------------------------------------------------
    def build_model(self, device: torch.device, info: D.DistInfo, log) -> torch.nn.Module:
        """The model, built from the config seed (identical on every rank); ``init`` weights
        are loaded here unless :attr:`resuming`. ``log`` takes lines shown at the start."""
        raise NotImplementedError

    def setup(self, device: torch.device, info: D.DistInfo, warn) -> None:
        """Optimisers (and EMA) for :attr:`model`; ``warn`` takes warnings of the set-up."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer | None]:
        """The optimisers by checkpoint name: ``main`` and, where there is one, ``aux``."""
        raise NotImplementedError

    def checkpoint_meta(self, step: int) -> dict:
        """Task information written with each checkpoint."""
        return {}

    def after_restore(self, meta: dict) -> None:
        """Called after a checkpoint was loaded into the model and optimisers."""

    # -- data and steps ------------------------------------------------------------
    def load_data(self, device: torch.device, info: D.DistInfo, log) -> None:
        """Training (and, on rank 0, validation) data."""
        raise NotImplementedError

    def describe(self, info: D.DistInfo) -> str:
        """A line about the run's set-up, logged before the first step."""
        return ""

    def lr(self, step: int, progress: float | None) -> float:
        """The learning rate of ``step``; ``progress`` (0..1) is given under a time budget."""
        raise NotImplementedError

    def step(self, step: int, lr: float, info: D.DistInfo) -> dict[str, torch.Tensor]:
        """One optimiser step; returns the scalars to log (``loss`` first), unsynchronised."""
        raise NotImplementedError

    def log_values(self, values: dict, its: float, info: D.DistInfo) -> dict:
        """Values added to a logged row (``values`` holds the means and ``lr``)."""
        return {}

    def log_line(self, step: int, values: dict) -> str | None:
        """A console line (stdout) for a logged row, or None."""
        return None

    # -- validation, export ----------------------------------------------------------
    @property
    def validates(self) -> bool:
        """Whether :meth:`validate` has data (the engine also syncs ranks around it)."""
        return False

    def validate(self, step: int, log: "Log") -> None:
        """Validate on rank 0 (records go through ``log.record``)."""

    def shipping_model(self) -> torch.nn.Module:
        """The weights to validate and export: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def export(self, step: int, log: "Log") -> None:
        """Write the shipping weights to ``cfg.export`` (rank 0)."""

    def finish(self, step: int, done: bool, log: "Log") -> None:
        """Called on rank 0 after the last step of this process."""


# ------------------------------------------------------------------ logging
class Log:
    """Rank-0 console lines (through tqdm), a JSON-lines log and optional TensorBoard."""

    def __init__(self, run_dir: Path, main: bool, start_step: int, title: str = ""):
        from neuralcodec.train.plots import TrainingPlot

        self.main, self.bar, self.tb, self.warned = main, None, None, set()
        self.path = run_dir / "train_log.jsonl"
        self.plotter = TrainingPlot(run_dir / "training.png", title or run_dir.name, self.warn_once)
        if not main:
            return
        truncate_jsonl(self.path, start_step)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=start_step or None)
        except Exception:  # tensorboard not installed (the module import fails)
            self.info("warning: tensorboard is not installed; TensorBoard logging is off")

    def warn_once(self, msg: str) -> None:
        if msg not in self.warned:
            self.warned.add(msg)
            self.info("warning: " + msg)

    def info(self, msg: str, file=None) -> None:
        if not self.main:
            return
        file = file or sys.stderr
        if self.bar is not None:
            self.bar.write(msg, file=file)
        else:
            print(msg, file=file, flush=True)

    def record(self, step: int, values: dict, prefix: str = "train") -> None:
        if not self.main:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **{f"{prefix}/{k}": v for k, v in values.items()}}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"{prefix}/{k}", v, step)

    def rows(self) -> list[dict]:
        from neuralcodec.train.plots import read_jsonl
        return read_jsonl(self.path) if self.main else []

    def plot(self, force: bool = False) -> None:
        """Redraw ``training.png`` from the log (at most once a minute unless ``force``)."""
        if self.main:
            self.plotter.update(self.rows, force)

    def close(self) -> None:
        self.plot(force=True)
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (left by a run that stopped before its next checkpoint)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
    path.write_text("".join(ln + "\n" for ln in keep))


class StopSignals:
    """SIGINT/SIGTERM ask for a checkpoint and a clean exit at the end of the current step;
    a second SIGINT interrupts at once."""

    def __init__(self, log: Log):
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


def pick_device(kind: str) -> str:
    """``auto`` -> cuda when available; a clear error for an unavailable or unknown device."""
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    if kind not in ("cpu", "cuda"):
        raise InputError(f"unknown device {kind!r} (auto, cpu or cuda)")
    return kind


# ------------------------------------------------------------------ the loop
def run(task: Task, stop_after: int | None = None, t_start: float | None = None) -> dict:
    """Run (or continue) ``task``'s training. ``stop_after`` stops this call after that many
    steps (tests, chunking); ``t_start`` (``time.monotonic()``) is when ``--max-minutes`` and
    a wall-clock budget start counting (default: now). With ``time_budget`` the run ends after
    that many minutes (see :attr:`Task.budget_clock`) and the LR schedule gets
    progress = max(step / steps, time / budget), so that a run of fixed GPU time still ends
    with its decay. Returns ``{"step", "done", "checkpoint"}``."""
    t_start = time.monotonic() if t_start is None else t_start
    task.check()
    run_dir = Path(task.cfg.out)
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is not None and not task.cfg.resume:
        raise InputError(f"{run_dir} already holds checkpoints; pass --resume to continue it "
                         "or choose another --out")
    info, device = D.init(pick_device(task.cfg.device))
    try:
        return _run(task, stop_after, info, device, run_dir, latest, t_start)
    finally:
        D.shutdown()


def _run(task: Task, stop_after, info, device, run_dir, latest, t_start):
    task.resolve(device, info.world_size)
    task.prepare_device(device)
    cfg = task.cfg

    # model: identical initialisation on every rank, then per-rank generator streams
    random.seed(cfg.seed + info.rank)
    np.random.seed(cfg.seed + info.rank)
    torch.manual_seed(cfg.seed)
    notes: list[str] = []
    warnings: list[str] = []
    task.resuming = latest is not None
    model = task.build_model(device, info, notes.append)
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"codec factory returned {type(model).__name__}, not a torch module")
    task.model = model
    torch.manual_seed(cfg.seed + 1 + info.rank)
    task.setup(device, info, warnings.append)
    train_s = 0.0
    step = 0
    if latest is not None:
        step, train_s = _restore(latest, task, info, device)
    elif info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=1, sort_keys=True) + "\n")
    D.barrier(info)
    log = Log(run_dir, info.is_main, step, task.title)
    for msg in notes:
        log.info(msg)
    task.warn = log.warn_once
    for msg in warnings:
        log.warn_once(msg)
    if latest is not None:
        log.info(f"resuming {latest} at step {step}")
    if step >= cfg.steps:
        log.info(f"run already complete ({step}/{cfg.steps} steps)")
        if cfg.export and info.is_main:
            task.export(step, log)
        log.close()
        return {"step": step, "done": True, "checkpoint": str(latest)}

    task.load_data(device, info, log.info)
    line = task.describe(info)
    if line:
        log.info(line)
    if info.is_main and cfg.progress:
        from tqdm import tqdm
        log.bar = tqdm(total=cfg.steps, initial=step, unit="step", dynamic_ncols=True, file=sys.stderr,
                       mininterval=0.5 if sys.stderr.isatty() else 30.0)
    limit_s = task.wall_limit_minutes() * 60.0 if task.wall_limit_minutes() > 0 else math.inf
    budget_s = task.budget_minutes() * 60.0
    wall_budget = task.budget_clock == "wall"
    keys: list[str] = []
    sums = None                       # the logged scalars summed since the last log, and a count
    t_log, step_times, save_s = time.monotonic(), [], 5.0
    first_step, path, stopped_early = step, latest, False
    signals = StopSignals(log)

    def spent() -> float:
        return time.monotonic() - t_start if wall_budget else train_s

    try:
        while step < cfg.steps:
            t0 = time.monotonic()
            progress = max(step / cfg.steps, spent() / budget_s) if budget_s else None
            if progress is not None and progress >= 1.0:
                break  # the time budget is spent: the run is complete
            lr = task.lr(step, progress)
            m = task.step(step, lr, info)
            step += 1
            if sums is None:
                keys = list(m)
                sums = torch.zeros(len(keys) + 1, dtype=torch.float64, device=device)
            sums += torch.stack([m[k].detach().double() for k in keys]
                                + [torch.ones((), dtype=torch.float64, device=device)])
            step_times = step_times[-19:] + [time.monotonic() - t0]
            train_s += step_times[-1]

            budget_done = bool(budget_s) and D.broadcast_flag(info, spent() >= budget_s, device)
            log_now = step % cfg.log_every == 0 or step == cfg.steps or budget_done
            if log_now or (log.bar is not None and step % 10 == 0):
                if log_now:  # the same steps on every rank: log the mean over all ranks
                    D.all_reduce_sum(info, sums)
                means = (sums[:-1] / sums[-1].clamp_min(1)).tolist()
                n = sums[-1].item() / info.world_size
                values = dict(zip(keys, means))
                if not math.isfinite(values["loss"]):
                    raise ModelError(f"training diverged: loss is {values['loss']} at step {step}")
                if log.bar is not None:
                    log.bar.set_postfix({k: f"{values[k]:.{2 if k == 'psnr' else 3}f}" for k in keys[:3]},
                                        refresh=False)
                if log_now:
                    its = n / max(1e-9, time.monotonic() - t_log)
                    values["lr"] = lr
                    values.update(task.log_values(values, its, info))
                    log.record(step, values)
                    text = task.log_line(step, {**values, "minutes": (time.monotonic() - t_start) / 60})
                    if text:
                        log.info(text, file=sys.stdout)
                    sums.zero_()
                    t_log = time.monotonic()
            if log.bar is not None:
                log.bar.update(1)

            last = step == cfg.steps or budget_done
            if task.validates and info.is_main and (step % cfg.val_every == 0 or last):
                task.validate(step, log)
            if task.validates and info.enabled and (step % cfg.val_every == 0 or last):
                D.barrier(info)

            recent = sorted(step_times)[len(step_times) // 2]
            out_of_time = info.is_main and time.monotonic() - t_start + 3 * recent + 2 * save_s + 5 > limit_s
            stop = D.any_flag(info, out_of_time or signals.requested
                              or (stop_after is not None and step - first_step >= stop_after), device)
            if stop or step % cfg.ckpt_every == 0 or last:
                t_save = time.monotonic()
                path = _save(run_dir, task, step, train_s, info, device)
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
    done = step >= cfg.steps or (bool(budget_s) and spent() >= budget_s)
    if info.is_main:
        if done:
            (run_dir / "COMPLETE").write_text(f"{step}\n")
        if cfg.export and (done or stopped_early):  # a chunk that ends early leaves weights too
            task.export(step, log)
        task.finish(step, done, log)
        if stopped_early:
            print(f"stopped at step {step}/{cfg.steps}; checkpoint {path}; run the same command with "
                  "--resume to continue", file=sys.stderr)
    D.barrier(info)
    return {"step": step, "done": done, "checkpoint": str(path) if path else None}


# ------------------------------------------------------------------ checkpoints
def _save(run_dir: Path, task: Task, step: int, train_s: float, info, device) -> Path:
    """Check that all ranks hold the same parameters; gather every rank's RNG state; rank 0
    writes the checkpoint (model, optimisers, EMA, RNG states, task metadata) and prunes."""
    D.check_same_params(info, task.model, device, step)
    rngs = D.gather_tensors(info, ckpt.rng_capture(device), device)
    path = run_dir / "checkpoints" / ckpt.checkpoint_name(step)
    if info.is_main:
        tensors = {f"model.{k}": v for k, v in task.model.state_dict().items()}
        if task.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in task.ema.state_dict().items()})
        meta = {"step": step, "world_size": info.world_size, "config": asdict(task.cfg),
                "train_seconds": train_s, **task.checkpoint_meta(step)}
        for name, opt in task.optimizers().items():
            if opt is not None:
                t_opt, meta[f"optim.{name}"] = ckpt.optimizer_flatten(opt, f"optim.{name}")
                meta[f"optim.{name}"]["names"] = ckpt.param_names(opt, task.model)
                tensors.update(t_opt)
        for r, st in enumerate(rngs):
            tensors.update({f"rng.{r}.{k}": v for k, v in st.items()})
        path.parent.mkdir(parents=True, exist_ok=True)
        ckpt.save(path, tensors, meta)
        ckpt.prune(run_dir, task.cfg.keep)
    D.barrier(info)
    return path


def _restore(path: Path, task: Task, info, device) -> tuple[int, float]:
    """Load model, optimisers, EMA and this rank's RNG state; return (step, training seconds)."""
    tensors, meta = ckpt.load(path)
    old = meta.get("config", {})
    for key in task.FIXED:
        if key in old and old[key] != getattr(task.cfg, key):
            raise InputError(f"--resume: {key} was {old[key]!r} in {path}, now {getattr(task.cfg, key)!r}")
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        task.model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"checkpoint {path} does not fit the model: {' '.join(str(exc).split())[:300]}") from None
    for name, opt in task.optimizers().items():
        meta_key, prefix = f"optim.{name}", f"optim.{name}"
        if meta_key not in meta and _LEGACY_OPTIMIZERS.get(name, ("", ""))[0] in meta:
            meta_key, prefix = _LEGACY_OPTIMIZERS[name]
        if opt is not None and meta_key in meta:
            sd, why = ckpt.fit_optimizer_state(ckpt.optimizer_unflatten(tensors, meta[meta_key], prefix),
                                               meta[meta_key].get("names"), opt, task.model)
            if sd is not None:
                opt.load_state_dict(sd)
            elif info.is_main:
                print(f"warning: {path}: the {name} optimiser state is not restored ({why}): "
                      "its moments restart", file=sys.stderr)
    task.after_restore(meta)
    ema = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
    if task.ema is not None:
        from neuralcodec.train.ema import load_ema_state
        if not load_ema_state(task.ema, ema) and info.is_main:
            print(f"warning: {path} holds no EMA weights: the EMA starts from the restored weights",
                  file=sys.stderr)
    prefix = f"rng.{info.rank}."
    rng = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if meta.get("world_size") == info.world_size and rng:
        ckpt.rng_restore(rng, device)
    elif info.is_main:
        why = (f"was written by {meta['world_size']} processes, not {info.world_size}" if rng
               else "holds no random states")
        print(f"warning: {path} {why}: random streams restart (not an exact resume)", file=sys.stderr)
    return int(meta["step"]), float(meta.get("train_seconds", 0.0))
