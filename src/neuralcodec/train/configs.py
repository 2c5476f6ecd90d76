"""The config dataclass of each training task. Torch-free: the CLI generates its options
from the fields (:mod:`neuralcodec.train.options`), and ``config.json`` in a run folder and
every checkpoint hold a copy."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field

from neuralcodec.codecs.catalog import IMAGE_CODECS, WEIGHT_DTYPES
from neuralcodec.train import COMPILE_MODES
from neuralcodec.train.options import option


def _kv(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` (VALUE parsed as JSON when it can be)."""
    key, sep, val = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(val)
    except json.JSONDecodeError:
        return key, val


def json_object(text: str) -> dict:
    """A JSON object given on the command line."""
    from neuralcodec.errors import InputError
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--config is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError("--config must be a JSON object of model options")
    return value


def _opt(value, help: str | None = None, **kw):
    """A field with the default ``value`` and an option (``kw``: :func:`option`'s keywords)."""
    meta = option(help, **kw)
    if isinstance(value, (list, dict)):
        return field(default_factory=lambda: type(value)(value), metadata=meta)
    return field(default=value, metadata=meta)


@dataclass
class TrainConfig:
    """An image-codec training run (``neuralcodec train``)."""
    data: list[str] = _opt([], "folders of training images (recursive)", nargs="+", required=True, metavar="DIR")
    out: str = _opt("", "run folder (config, logs, checkpoints)", required=True, metavar="RUN_DIR")
    codec: str = _opt("", f"image codec to train: {', '.join(IMAGE_CODECS)} (video-rt: see train-video)",
                      required=True)
    codec_kwargs: dict = _opt({}, "keyword argument for the codec constructor (VALUE parsed as JSON when it can be)",
                              flag="--codec-arg", dest="codec_arg", type=_kv, action="append", default=[],
                              metavar="KEY=VALUE", convert=dict)
    init: str = _opt("", "start from these weights (a safetensors weights file, e.g. shipped ones; fine-tuning)",
                     metavar="FILE")
    init_partial: bool = _opt(False, "take from --init only the tensors whose names and shapes match "
                                     "(e.g. the transforms of another codec)")
    steps: int = _opt(100_000, "total optimizer steps (default 100000)")
    batch_size: int = _opt(0, "crops per step and per GPU (default: 64 on CUDA, 8 on the CPU); "
                              "the learning rate follows --lr-scaling")
    crop: int = _opt(256, "crop size (default 256)")
    small_images: str = _opt("pad", "images smaller than the crop: reflect-pad (default) or skip",
                             choices=["pad", "skip"])
    jpeg_downsample: float = _opt(1.0, "downsample JPEG sources by F before cropping, hiding their artefacts "
                                       "(default 1: off)", metavar="F")
    weighting: str = _opt("image", "pick crops uniformly per image (default) or in proportion to image area",
                          choices=["image", "area"])
    workers: int = _opt(4, "threads decoding the images at start (default 4)")
    lr: float = _opt(1e-4, "main learning rate for a global batch of 16 crops (default 1e-4); "
                           "scaled to the real batch by --lr-scaling")
    lr_scaling: str = _opt("sqrt", "how --lr follows the global batch B: sqrt (lr*sqrt(B/16), default), "
                                   "linear (lr*B/16) or none", choices=["sqrt", "linear", "none"])
    aux_lr: float = _opt(1e-3, "learning rate of the *quantiles parameters (default 1e-3)")
    lr_schedule: str = _opt("step", "step: constant, then x--lr-drop-factor at each --lr-drops fraction; "
                                    "cosine: to 1%% of --lr", choices=["step", "cosine", "constant"])
    lr_drops: list[float] = _opt([0.8, 0.95], "fractions of --steps where the step schedule drops "
                                              "(default 0.8 0.95)", nargs="*", metavar="FRAC")
    lr_drop_factor: float = _opt(0.1, "step schedule factor (default 0.1)")
    warmup_steps: int = _opt(-1, "linear learning-rate warm-up steps (default: 2%% of --steps, at most 1000, "
                                 "for batches above 16; else 0)")
    clip: float = _opt(1.0, "gradient-norm clip of the main parameters (0: off)")
    distortion: str = _opt("mse", "distortion term (default mse)", choices=["mse", "ms-ssim"])
    precision: str = _opt("auto", "forward pass under bf16 autocast (likelihoods and loss stay fp32) or fp32; "
                                  "auto (default): bf16 on CUDA", choices=["auto", "bf16", "fp32"],
                          aliases=(("--bf16", {"action": "store_const", "const": "bf16",
                                               "help": "same as --precision bf16"}),))
    channels_last: bool | None = _opt(None, "channels-last memory format (default on CUDA)")
    compile: bool | None = _opt(None, "torch.compile the forward pass and loss (default on CUDA; "
                                      "a compile failure falls back with a warning)")
    compile_mode: str = _opt("default", "torch.compile mode: default, or reduce-overhead (CUDA graphs: fewer "
                                        "kernel launches, for models of many small layers), max-autotune, "
                                        "max-autotune-no-cudagraphs", choices=list(COMPILE_MODES))
    ema: float = _opt(0.0, "keep an exponential moving average of the weights (e.g. 0.999); "
                           "it is validated and exported", metavar="DECAY")
    tf32: bool = _opt(True, "disable TF32 matmuls/convolutions on CUDA", flag="--no-tf32")
    deterministic: bool = _opt(False, "deterministic kernels (slower on CUDA)")
    device: str = _opt("auto", "default: cuda when available", choices=["auto", "cpu", "cuda"])
    seed: int = _opt(0, "random seed of the crops and the initialisation (default 0)")
    val: list[str] = _opt([], "validation image folders", nargs="*", metavar="DIR")
    val_every: int = _opt(5000, "validate every N steps and at the end")
    val_qualities: list[float] = _opt([1.0, 4.0, 8.0], "qualities validated (default 1 4 8)", metavar="Q")
    val_max_images: int = _opt(8, "use at most N validation images (default 8)")
    ckpt_every: int = _opt(5000, "checkpoint every N steps (and at the end / time limit)")
    keep: int = _opt(3, "checkpoints kept in RUN_DIR/checkpoints (default 3)")
    log_every: int = _opt(100, "log interval in steps (default 100)")
    max_minutes: float = _opt(0.0, "save and exit cleanly before this wall time; rerun the same command "
                                   "(with --resume) to go on")
    time_budget: float = _opt(0.0, "end the run after MIN minutes of training steps (summed over resumes); "
                                   "the LR schedule follows max(step/--steps, time/MIN), so it ends with its "
                                   "decay (default 0: no budget)", metavar="MIN")
    resume: bool = _opt(False, "continue from the latest checkpoint in RUN_DIR (if any)")
    export: str = _opt("", "after the last step write shipping weights (safetensors)", metavar="PATH")
    export_dtype: str = _opt("fp16", "storage type of the exported weights (default fp16; int8: large "
                                     "tensors as int8 with per-channel scales, the rest fp16)",
                             choices=list(WEIGHT_DTYPES))
    progress: bool = _opt(True, "no progress bar", flag="--no-progress")

    # fields that must match when resuming
    FIXED = ("codec", "codec_kwargs", "batch_size", "crop", "seed", "distortion")


@dataclass
class VideoTrainConfig:
    """A video-rt P-frame training run (``neuralcodec train-video``; task: ``video.train``)."""
    out: str = _opt("", "run folder (checkpoints, config.json, train_log.jsonl, history.json)",
                    required=True, metavar="RUN_DIR")
    video: list[str] = _opt([], "frame folders / video files (searched recursively)", nargs="*", metavar="PATH")
    images: list[str] = _opt([], "still images for synthetic camera motion", nargs="*", metavar="DIR")
    synthetic: float = _opt(0.5, "fraction of synthetic clips (default 0.5)")
    steps: int = _opt(20000, "optimizer steps (default 20000)")
    batch_size: int = _opt(0, "clips per step and per process (default: 32 on CUDA, 8 on the CPU)")
    frames: int = _opt(4, "frames per training clip: I + P... (default 4)")
    crop: int = _opt(256, "crop size, a multiple of 64 (default 256)")
    lr: float = _opt(2e-4, "learning rate (default 2e-4)")
    warmup_steps: int = _opt(200, "linear learning-rate warm-up steps (default 200)")
    clip: float = _opt(1.0, "gradient norm clip (0: off)")
    video_scale: float = _opt(1.0, "downscale decoded video files by this factor")
    max_clip_frames: int = _opt(300, "read at most N frames of each clip (default 300)")
    device: str = _opt("auto", "default: cuda when available", choices=["auto", "cpu", "cuda"])
    seed: int = _opt(0, "random seed (default 0)")
    max_minutes: float = _opt(0.0, "stop after this many minutes of this process (0: no limit); the cosine "
                                   "learning-rate schedule is fitted to them")
    ckpt_every: int = _opt(1000, "checkpoint every N steps (default 1000)")
    log_every: int = _opt(100, "log interval in steps (default 100)")
    resume: bool = _opt(False, "continue from the latest checkpoint in RUN_DIR")
    export: str = _opt("", "write fp16 video-rt weights here at the end", metavar="PATH")
    init: str = _opt("", "start from these video-rt weights", metavar="PATH")
    init_partial: bool = _opt(False, "with --init: load only the tensors whose names and shapes fit the "
                                     "--config model")
    codec_kwargs: dict = _opt({}, "P-frame model options, e.g. '{\"ctx_scales\": 3, \"warp\": true, \"f\": 64}' "
                                  "(see docs/video.md)", flag="--config", dest="config", default="{}",
                              metavar="JSON", convert=json_object)
    bptt: int = _opt(0, "cut the gradient through the propagated reference every N P-frames (0: never)",
                     metavar="N")
    rate_warmup: int = _opt(0, "ramp the rate term's weight from 0 to 1 over the first N steps: distortion "
                               "first, so that the transforms learn to carry detail (0: off)", metavar="N")
    flow_guide: float = _opt(0.0, "with a 'motion' model: weight of a loss pulling the warp's displacement "
                                  "toward the encoder's searched motion (0: off)", metavar="W")
    flow_guide_steps: int = _opt(0, "decay --flow-guide linearly to 0 over the first N steps (0: constant)",
                                 metavar="N")
    precision: str = _opt("auto", "P-frame networks under bf16 autocast (likelihoods and loss stay fp32) or "
                                  "fp32; auto (default): bf16 on CUDA", choices=["auto", "bf16", "fp32"])
    compile: bool | None = _opt(None, "torch.compile the clip unroll (default on CUDA; a compile failure falls "
                                      "back with a warning)")
    compile_mode: str = _opt("auto", "torch.compile mode with --compile: reduce-overhead (CUDA graphs: fewer "
                                     "kernel launches for the small P-frame networks; auto, the default, on "
                                     "CUDA), default, max-autotune, max-autotune-no-cudagraphs",
                             choices=["auto", *COMPILE_MODES])
    progress: bool = _opt(True, "no progress bar", flag="--no-progress")
    ema: float = _opt(0.0, "keep an exponential moving average of the weights (e.g. 0.999); "
                           "it is validated and exported", metavar="DECAY")
    val: list[str] = _opt([], "validation clips (frame folders / video files)", nargs="*", metavar="PATH")
    val_every: int = _opt(1000, "validate every N steps and at the end (default 1000)")
    val_qualities: list[float] = _opt([2.0, 5.0, 8.0], "qualities validated (default 2 5 8)", metavar="Q")
    keep: int = _opt(2, "checkpoints kept in RUN_DIR/checkpoints (default 2)")

    # fields that must match when resuming (the checkpoint would not fit another model)
    FIXED = ("codec_kwargs",)


@dataclass
class TritPlaneTrainConfig:
    """Training of the trit-plane context modules on a frozen hyperprior base
    (``neuralcodec train-tritplane``; task: ``train.tritplane_task``)."""
    data: list[str] = _opt([], "training image folders", nargs="+", required=True, metavar="DIR")
    export: str = _opt("", "weights file to write (.safetensors)", flag=("-o", "--output"), required=True,
                       metavar="PATH")
    out: str = _opt("", "run folder (checkpoints, train_log.jsonl; default: a temporary one, removed at the end)",
                    metavar="RUN_DIR")
    base_weights: str = _opt("", "base hyperprior weights (default: shipped)", metavar="FILE")
    init: str = _opt("", "start from these trit-plane weights (context modules only; any base)", metavar="FILE")
    quality: float = _opt(8.0, "quality of the base latents (default 8)")
    steps: int = _opt(3000, "optimizer steps (default 3000)")
    batch: int = _opt(8, "crops per step (default 8)")
    crop: int = _opt(256, "crop size (default 256)")
    lr: float = _opt(1e-3, "learning rate of CDR; CRR gets 5x (default 1e-3)")
    max_images: int = _opt(0, "use at most N training images, drawn at random (default 0: all)", metavar="N")
    device: str = _opt("auto", "default: cuda when available", choices=["auto", "cpu", "cuda"])
    seed: int = _opt(0, "random seed (default 0)")
    log_every: int = _opt(50, "log interval in steps (default 50)")
    minutes: float = _opt(0.0, "end the run after this many minutes of training steps; the LR drop follows "
                               "max(step/--steps, time/MIN) (default 0: no limit)", metavar="MIN")
    ckpt_every: int = _opt(500, "checkpoint every N steps (default 500)")
    keep: int = _opt(2, "checkpoints kept in RUN_DIR/checkpoints (default 2)")
    resume: bool = _opt(False, "continue from the latest checkpoint in RUN_DIR (needs --out)")
    progress: bool = _opt(True, "no progress bar", flag="--no-progress")

    FIXED = ("batch", "crop", "seed", "quality")
