"""One optimisation step of a codec, set up for speed on the device it runs on.

:class:`Stepper` owns the model's optimisers, the precision (bf16 autocast with the
likelihoods and the loss in fp32), the memory format (channels-last), an optional
``torch.compile`` of the forward pass and loss (a compile failure falls back to eager with
one warning), the gradient all-reduce of data-parallel runs and an exponential moving
average of the weights. The training loop and the equal-compute comparison tool
(:mod:`neuralcodec.train.compare`) both step models through it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import torch

from neuralcodec.train import COMPILE_MODES
from neuralcodec.train import distributed as D
from neuralcodec.train.loss import RateDistortionLoss

#: the batch size the base learning rate refers to (what the shipped models were trained with)
LR_REFERENCE_BATCH = 16
LR_SCALINGS = ("sqrt", "linear", "none")


def scaled_lr(lr: float, global_batch: int, scaling: str = "sqrt", reference: int = LR_REFERENCE_BATCH) -> float:
    """The learning rate for ``global_batch`` crops per step, from ``lr`` given for ``reference``:
    square-root scaling (Adam's usual rule; the default), linear, or none."""
    if scaling not in LR_SCALINGS:
        raise ValueError(f"unknown learning-rate scaling {scaling!r} ({', '.join(LR_SCALINGS)})")
    ratio = global_batch / reference
    return lr * {"sqrt": math.sqrt(ratio), "linear": ratio, "none": 1.0}[scaling]


def auto_warmup(steps: int, global_batch: int, reference: int = LR_REFERENCE_BATCH) -> int:
    """Warm-up steps when none are given: 2 % of the run (at most 1000) for batches above the
    reference, none otherwise."""
    return min(1000, max(1, steps // 50)) if global_batch > reference else 0


def fast_defaults(cfg, device: torch.device, cuda_batch: int, cpu_batch: int = 8):
    """``cfg`` (a training config with ``batch_size``, ``precision`` and ``compile``) with the
    automatic ones chosen for ``device``: batch 0 -> ``cuda_batch`` on CUDA, ``cpu_batch``
    elsewhere; precision auto -> bf16 on CUDA, fp32 elsewhere; compile None -> on CUDA only."""
    cuda = device.type == "cuda"
    return replace(cfg, batch_size=cfg.batch_size or (cuda_batch if cuda else cpu_batch),
                   precision=cfg.precision if cfg.precision != "auto" else ("bf16" if cuda else "fp32"),
                   compile=cuda if cfg.compile is None else cfg.compile)


@dataclass
class StepOptions:
    lr: float = 1e-4
    aux_lr: float = 1e-3
    clip: float = 1.0                # gradient-norm clip of the main parameters (0: off)
    bf16: bool = False               # bf16 autocast of the forward pass
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"    # torch.compile mode: default | reduce-overhead (CUDA graphs) | max-autotune...
    ema: float = 0.0                 # EMA decay of the weights (0: off)
    distortion: str = "mse"
    fused: bool = True               # fused Adam kernels on CUDA


def _fused_ok(device: torch.device) -> bool:
    return device.type == "cuda"


class CompiledOrEager:
    """``fn`` (returning a dict of tensors) under ``torch.compile`` in ``mode`` when ``enabled``;
    the first compiler failure is reported once through ``warn`` and ``fn`` runs eagerly from
    then on. Under CUDA graphs (reduce-overhead, max-autotune) the returned tensors are copied,
    since a replay reuses its output buffers. An unknown mode is an InputError."""

    def __init__(self, fn, enabled: bool, mode: str = "default", warn: Callable[[str], None] = print):
        if mode not in COMPILE_MODES:
            from neuralcodec.errors import InputError
            raise InputError(f"compile mode must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
        self.fn, self.warn = fn, warn
        self._graphs = mode in ("reduce-overhead", "max-autotune")
        self._compiled = torch.compile(fn, mode=None if mode == "default" else mode) if enabled else None

    @property
    def active(self) -> bool:
        """Whether calls run compiled (False when not asked, or after a compile failure)."""
        return self._compiled is not None

    def __call__(self, *args) -> dict:
        if self._compiled is not None:
            try:
                if self._graphs:
                    torch.compiler.cudagraph_mark_step_begin()
                    return {k: v.clone() for k, v in self._compiled(*args).items()}
                return self._compiled(*args)
            except Exception as exc:  # any compiler failure: eager from here on
                self._compiled = None
                msg = " ".join(str(exc).split())[:200]
                self.warn(f"torch.compile failed ({type(exc).__name__}: {msg}); training continues without it")
        return self.fn(*args)


class Stepper:
    """Optimiser steps of one model (see the module docstring). ``warn`` reports a message once."""

    def __init__(self, model: torch.nn.Module, opts: StepOptions, device: torch.device,
                 info: D.DistInfo | None = None, warn: Callable[[str], None] = print):
        from neuralcodec.codecs.base import rd_lambda

        self.opts, self.device, self.info, self.warn = opts, torch.device(device), info or D.DistInfo(), warn
        self.rd_lambda = rd_lambda
        memory = torch.channels_last if opts.channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=memory)
        self.memory_format = memory
        named = dict(model.named_parameters())
        self.aux_names = [n for n in named if n.endswith("quantiles")]
        self.main_params = [p for n, p in named.items() if n not in self.aux_names and p.requires_grad]
        self.aux_params = [named[n] for n in self.aux_names]
        fused = {"fused": True} if opts.fused and _fused_ok(self.device) else {}
        self.opt = torch.optim.Adam(self.main_params, lr=opts.lr, **fused)
        self.aux_opt = torch.optim.Adam(self.aux_params, lr=opts.aux_lr, **fused) if self.aux_params else None
        self.ema = None
        if opts.ema > 0:
            from neuralcodec.train.ema import make_ema
            self.ema = make_ema(model, opts.ema)
        self.loss_fn = RateDistortionLoss(opts.distortion)
        self._run = CompiledOrEager(self._forward_loss, opts.compile, opts.compile_mode, warn)
        self.last_aux = None
        self.train_seconds = 0.0   # time spent in training steps (kept by the loop's checkpoints)

    @property
    def compiled(self) -> bool:
        """Whether the forward pass runs compiled (False after a compile failure fell back)."""
        return self._run.active

    # -- forward ---------------------------------------------------------------
    def _forward_loss(self, x: torch.Tensor, quality: torch.Tensor, lam: torch.Tensor) -> dict:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.opts.bf16):
            out = self.model(x, quality)
        return self.loss_fn(out, x, lam)

    def forward_loss(self, x: torch.Tensor, quality: torch.Tensor) -> dict:
        """The loss terms of a batch (training mode), compiled when asked and possible."""
        return self._run(x, quality, self.rd_lambda(quality).to(self.device))

    # -- one step --------------------------------------------------------------
    def step(self, x: torch.Tensor, quality: torch.Tensor, lr: float) -> dict:
        """One optimiser step on a batch; returns the loss terms (tensors, not synchronised)."""
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        if self.aux_opt is not None:
            self.aux_opt.zero_grad(set_to_none=True)
        x = x.to(self.device, memory_format=self.memory_format)
        m = self.forward_loss(x, quality.to(self.device))
        m["loss"].backward()
        D.average_grads(self.info, self.main_params)
        if self.opts.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.main_params, self.opts.clip)
        self.opt.step()
        if self.aux_opt is not None:
            aux = self.model.aux_loss()
            aux.backward()
            D.average_grads(self.info, self.aux_params)
            self.aux_opt.step()
            self.last_aux = aux.detach()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return m

    def align_optimizer_state(self) -> None:
        """Lay optimiser state tensors out like their parameters. A checkpoint stores them
        contiguous and ``load_state_dict`` keeps that, but fused Adam needs each parameter and
        its state in one memory format (channels-last weights failed the first resume on CUDA)."""
        for opt in (self.opt, self.aux_opt):
            for p, st in (opt.state.items() if opt is not None else ()):
                for key, value in st.items():
                    if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                        st[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)

    # -- weights ---------------------------------------------------------------
    def shipping_model(self) -> torch.nn.Module:
        """The weights to validate and export: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def ema_state(self) -> dict[str, torch.Tensor]:
        return {} if self.ema is None else {k: v for k, v in self.ema.state_dict().items()}

    def load_ema_state(self, state: dict[str, torch.Tensor]) -> bool:
        """Restore the EMA from a checkpoint; False when there is no EMA state to restore
        (it then restarts from the current weights)."""
        from neuralcodec.train.ema import load_ema_state
        return self.ema is not None and load_ema_state(self.ema, state)
