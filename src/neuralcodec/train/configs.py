"""The config dataclass of each training task (torch-free: the CLI builds its options from
them, see :mod:`neuralcodec.train.options`)."""
from __future__ import annotations

from dataclasses import dataclass, field


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
