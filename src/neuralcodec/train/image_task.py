"""Image-codec training, the engine's image task: random crops from a bank of decoded
images, one :class:`~neuralcodec.train.step.Stepper` step (bf16, channels-last,
torch.compile, fused Adam, EMA) per batch, validation through the real coder."""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from neuralcodec.codecs.catalog import WEIGHT_DTYPES
from neuralcodec.errors import InputError, ModelError
from neuralcodec.train import engine
from neuralcodec.train.configs import TrainConfig
from neuralcodec.train.data import build_bank, find_images, load_image
from neuralcodec.train.loss import lr_at
from neuralcodec.train.step import LR_SCALINGS, Stepper, StepOptions, auto_warmup, fast_defaults, scaled_lr
from neuralcodec.train.validate import set_tf32, validate

__all__ = ["TrainConfig", "ImageTask", "train", "export_weights", "load_init", "registry_factory",
           "import_factory", "resolve_auto"]


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


def export_weights(model: torch.nn.Module, path: str | Path, info: dict, dtype: str = "fp16",
                   codec: str = "", config: dict | None = None) -> Path:
    """``model.update()``, then its weights file (:func:`neuralcodec.codecs.weights.save_weights`;
    ``info`` records ``dtype``), which ``registry.load_model`` reads."""
    from neuralcodec.codecs.weights import save_weights

    model.update()
    return save_weights(model, path, dtype=dtype, info={**info, "dtype": dtype}, codec=codec,
                        config=config)


def load_init(model: torch.nn.Module, path: str, partial: bool = False) -> int:
    """Start from the weights of a weights file (e.g. shipped weights, for fine-tuning). With
    ``partial``, only the tensors whose names and shapes match the model are taken (a new
    architecture that shares transforms with a trained codec; an int8 file is dequantised
    first). Returns how many were loaded."""
    from neuralcodec.codecs.weights import load_state

    try:
        state = load_state(path)
    except ModelError as exc:
        raise InputError(f"--init: {exc}") from None
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


def resolve_auto(cfg: TrainConfig, device: torch.device, world_size: int = 1) -> TrainConfig:
    """``cfg`` with every automatic choice made for ``device``: the fast configuration on CUDA
    (batch 64, bf16, channels-last, torch.compile), the plain one on the CPU; warm-up steps."""
    cuda = device.type == "cuda"
    cfg = replace(fast_defaults(cfg, device, cuda_batch=64),
                  channels_last=cuda if cfg.channels_last is None else cfg.channels_last)
    if cfg.warmup_steps < 0:
        cfg = replace(cfg, warmup_steps=auto_warmup(cfg.steps, cfg.batch_size * world_size))
    return cfg


def check_config(cfg: TrainConfig) -> None:
    """One clear error for a bad config, before any device or data work."""
    if not cfg.data or not cfg.out:
        raise InputError("--data and --out are required")
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
    if cfg.export_dtype not in WEIGHT_DTYPES:
        raise InputError(f"unknown --export-dtype {cfg.export_dtype!r} ({', '.join(WEIGHT_DTYPES)})")
    for d in [*cfg.data, *cfg.val]:
        find_images([d])  # missing or empty folders fail here, before any work


class ImageTask(engine.Task):
    """Training of a registry image codec (or of any module ``model_factory`` builds)."""

    FIXED = TrainConfig.FIXED

    def __init__(self, cfg: TrainConfig, model_factory: Callable[[], torch.nn.Module] | None = None):
        super().__init__(cfg)
        self.factory = model_factory or registry_factory(cfg.codec, cfg.codec_kwargs)
        self.stepper: Stepper | None = None
        self.bank, self.val_images, self.base_lr = None, [], 0.0

    def check(self) -> None:
        check_config(self.cfg)

    def resolve(self, device, world_size) -> None:
        self.cfg = resolve_auto(self.cfg, device, world_size)

    def prepare_device(self, device) -> None:
        if device.type == "cuda":
            set_tf32(self.cfg.tf32)
            torch.backends.cudnn.benchmark = not self.cfg.deterministic
        if self.cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)

    def build_model(self, device, info, log):
        model = self.factory()
        if isinstance(model, torch.nn.Module) and not self.resuming and self.cfg.init:
            loaded = load_init(model, self.cfg.init, partial=self.cfg.init_partial)
            if self.cfg.init_partial:
                log(f"--init-partial: {loaded} of {len(model.state_dict())} tensors from {self.cfg.init}")
        return model

    def setup(self, device, info, warn) -> None:
        cfg = self.cfg
        self.base_lr = scaled_lr(cfg.lr, cfg.batch_size * info.world_size, cfg.lr_scaling)
        opts = StepOptions(lr=self.base_lr, aux_lr=cfg.aux_lr, clip=cfg.clip, bf16=cfg.precision == "bf16",
                           channels_last=cfg.channels_last, compile=cfg.compile, compile_mode=cfg.compile_mode,
                           ema=cfg.ema, distortion=cfg.distortion)
        self.warn = warn
        self.stepper = Stepper(self.model, opts, device, info, warn=lambda msg: self.warn(msg))
        self.ema = self.stepper.ema

    def optimizers(self):
        return {"main": self.stepper.opt, "aux": self.stepper.aux_opt}

    def checkpoint_meta(self, step: int) -> dict:
        cfg = self.cfg
        return {"sampler": {"kind": "counter", "seed": cfg.seed, "step": step},
                "schedule": {"kind": cfg.lr_schedule, "base_lr": cfg.lr, "drops": cfg.lr_drops,
                             "factor": cfg.lr_drop_factor, "warmup": cfg.warmup_steps,
                             "total": cfg.steps, "last_step": step}}

    def after_restore(self, meta: dict) -> None:
        self.stepper.align_optimizer_state()

    def load_data(self, device, info, log) -> None:
        cfg = self.cfg
        self.device = device
        self.bank = build_bank(cfg.data, cfg.crop, device, cfg.jpeg_downsample, cfg.small_images, cfg.workers,
                               cfg.weighting, log=log)
        if cfg.val and info.is_main:
            self.val_images = [load_image(p) for p in find_images(cfg.val)[:max(1, cfg.val_max_images)]]

    def describe(self, info) -> str:
        cfg = self.cfg
        return (f"batch {cfg.batch_size} x {info.world_size} process(es), lr {self.base_lr:.3g} ({cfg.lr:g} at "
                f"batch 16, {cfg.lr_scaling} scaling), warm-up {cfg.warmup_steps} steps, {cfg.precision}, "
                f"{'channels-last' if cfg.channels_last else 'contiguous'}, compile {'on' if cfg.compile else 'off'}, "
                + (f"EMA {cfg.ema:g}" if cfg.ema else "no EMA"))

    def lr(self, step, progress) -> float:
        cfg = self.cfg
        return lr_at(step, cfg.steps, self.base_lr, cfg.lr_schedule, cfg.lr_drops, cfg.lr_drop_factor,
                     cfg.warmup_steps, progress=progress)

    def step(self, step, lr, info):
        batch = self.bank.batch(self.cfg.seed, step, self.cfg.batch_size, info.world_size, info.rank)
        m = self.stepper.step(batch.x, batch.quality, lr)
        return {"loss": m["loss"], "bpp": m["bpp"], "psnr": m["psnr"]}

    def log_values(self, values, its, info) -> dict:
        out = {"it_per_s": its, "crops_per_s": its * self.cfg.batch_size * info.world_size}
        if self.stepper.last_aux is not None:
            out["aux_loss"] = float(self.stepper.last_aux)
        return out

    @property
    def validates(self) -> bool:
        return bool(self.cfg.val)

    def validate(self, step, log) -> None:
        """Validate the shipping weights (the EMA when on) and, with EMA, the raw weights too."""
        if not self.val_images:
            return
        cfg, entry = self.cfg, {"step": step}
        models = [("", self.shipping_model())] + ([("raw", self.model)] if self.ema is not None else [])
        for tag, model in models:
            res = validate(model, self.val_images, cfg.val_qualities, self.device, warn=log.warn_once)
            if tag:
                entry[tag] = res
            else:
                entry.update(res)
            text = "  ".join(f"q{q}: {r['bpp']:.3f} bpp {r['psnr']:.2f} dB" for q, r in res["results"].items())
            label = tag or ("EMA" if self.ema is not None else "")
            log.info(f"validation at step {step}{' (' + label + ')' if label else ''} ({res['mode']}, "
                     f"{res['images']} images): {text}")
            prefix = "val" + (f"_{tag}" if tag else "")
            for q, r in res["results"].items():
                log.record(step, {f"q{q}/bpp": r["bpp"], f"q{q}/psnr": r["psnr"]}, prefix=prefix)
        path = Path(cfg.out) / "validation.json"
        history = json.loads(path.read_text()) if path.exists() else []
        history = [e for e in history if e["step"] < step] + [entry]
        from neuralcodec.io.outputs import write_bytes_atomic
        write_bytes_atomic(path, (json.dumps(history, indent=1) + "\n").encode())

    def export(self, step, log) -> None:
        cfg = self.cfg
        info = {"step": step, "steps": cfg.steps, "run": str(Path(cfg.out).resolve()), "source": "neuralcodec train"}
        if cfg.ema:
            info["ema"] = cfg.ema
        path = export_weights(self.shipping_model(), cfg.export, info, cfg.export_dtype, cfg.codec, cfg.codec_kwargs)
        log.info(f"exported {cfg.export_dtype} {'EMA ' if cfg.ema else ''}weights to {path}")


def train(cfg: TrainConfig, model_factory: Callable[[], torch.nn.Module] | None = None,
          stop_after: int | None = None, t_start: float | None = None) -> dict:
    """Run (or continue) an image training run (see :func:`neuralcodec.train.engine.run`);
    ``model_factory`` builds the codec (default: the registry). Returns
    ``{"step", "done", "checkpoint"}``."""
    return engine.run(ImageTask(cfg, model_factory), stop_after=stop_after, t_start=t_start)

