"""`neuralcodec train` and `neuralcodec train-export`."""
from __future__ import annotations

import argparse
import json

from neuralcodec.codecs.catalog import IMAGE_CODECS
from neuralcodec.train import COMPILE_MODES


def _kv(text: str) -> tuple[str, object]:
    key, sep, val = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(val)
    except json.JSONDecodeError:
        return key, val


def register(sub) -> None:
    p = sub.add_parser("train", help="train a codec (one GPU, or many via torchrun)",
                       description="Train a learned image codec with a variable-rate RD loss. "
                                   "Multi-GPU: torchrun --nproc-per-node N -m neuralcodec train ... "
                                   "(see docs/training.md).")
    a = p.add_argument
    a("--codec", required=True, help=f"image codec to train: {', '.join(IMAGE_CODECS)} "
                                     "(video-rt: see train-video)")
    a("--codec-arg", type=_kv, action="append", default=[], metavar="KEY=VALUE",
      help="keyword argument for the codec constructor (VALUE parsed as JSON when it can be)")
    a("--codec-factory", default="", metavar="MODULE:FUNC",
      help="build the model with this function instead of the registry (experiments, tests)")
    a("--init", default="", metavar="FILE",
      help="start from these weights (a safetensors weights file, e.g. shipped ones; fine-tuning)")
    a("--init-partial", action="store_true",
      help="take from --init only the tensors whose names and shapes match (e.g. the transforms of another codec)")
    a("--data", nargs="+", required=True, metavar="DIR", help="folders of training images (recursive)")
    a("--out", required=True, metavar="RUN_DIR", help="run folder (config, logs, checkpoints)")
    a("--steps", type=int, default=100_000, help="total optimizer steps (default 100000)")
    a("--batch-size", type=int, default=0,
      help="crops per step and per GPU (default: 64 on CUDA, 8 on the CPU); the learning rate follows --lr-scaling")
    a("--crop", type=int, default=256, help="crop size (default 256)")
    a("--small-images", choices=["pad", "skip"], default="pad",
      help="images smaller than the crop: reflect-pad (default) or skip")
    a("--jpeg-downsample", type=float, default=1.0, metavar="F",
      help="downsample JPEG sources by F before cropping, hiding their artefacts (default 1: off)")
    a("--weighting", choices=["image", "area"], default="image",
      help="pick crops uniformly per image (default) or in proportion to image area")
    a("--workers", type=int, default=4, help="threads decoding the images at start (default 4)")
    a("--lr", type=float, default=1e-4,
      help="main learning rate for a global batch of 16 crops (default 1e-4); scaled to the real batch by --lr-scaling")
    a("--lr-scaling", choices=["sqrt", "linear", "none"], default="sqrt",
      help="how --lr follows the global batch B: sqrt (lr*sqrt(B/16), default), linear (lr*B/16) or none")
    a("--aux-lr", type=float, default=1e-3, help="learning rate of the *quantiles parameters (default 1e-3)")
    a("--lr-schedule", choices=["step", "cosine", "constant"], default="step",
      help="step: constant, then x--lr-drop-factor at each --lr-drops fraction; cosine: to 1%% of --lr")
    a("--lr-drops", type=float, nargs="*", default=[0.8, 0.95], metavar="FRAC",
      help="fractions of --steps where the step schedule drops (default 0.8 0.95)")
    a("--lr-drop-factor", type=float, default=0.1, help="step schedule factor (default 0.1)")
    a("--warmup-steps", type=int, default=-1,
      help="linear learning-rate warm-up steps (default: 2%% of --steps, at most 1000, for batches above 16; else 0)")
    a("--clip", type=float, default=1.0, help="gradient-norm clip of the main parameters (0: off)")
    a("--distortion", choices=["mse", "ms-ssim"], default="mse", help="distortion term (default mse)")
    a("--precision", choices=["auto", "bf16", "fp32"], default="auto",
      help="forward pass under bf16 autocast (likelihoods and loss stay fp32) or fp32; auto (default): bf16 on CUDA")
    a("--bf16", dest="precision", action="store_const", const="bf16", help="same as --precision bf16")
    a("--channels-last", dest="channels_last", action="store_true", default=None,
      help="channels-last memory format (default on CUDA)")
    a("--no-channels-last", dest="channels_last", action="store_false")
    a("--compile", dest="compile", action="store_true", default=None,
      help="torch.compile the forward pass and loss (default on CUDA; a compile failure falls back with a warning)")
    a("--no-compile", dest="compile", action="store_false")
    a("--compile-mode", choices=list(COMPILE_MODES), default="default",
      help="torch.compile mode: default, or reduce-overhead (CUDA graphs: fewer kernel launches, for models "
           "of many small layers), max-autotune, max-autotune-no-cudagraphs")
    a("--ema", type=float, default=0.0, metavar="DECAY",
      help="keep an exponential moving average of the weights (e.g. 0.999); it is validated and exported")
    a("--no-tf32", dest="tf32", action="store_false", help="disable TF32 matmuls/convolutions on CUDA")
    a("--deterministic", action="store_true", help="deterministic kernels (slower on CUDA)")
    a("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: cuda when available")
    a("--seed", type=int, default=0, help="random seed of the crops and the initialisation (default 0)")
    a("--val", nargs="*", default=[], metavar="DIR", help="validation image folders")
    a("--val-every", type=int, default=5000, help="validate every N steps and at the end")
    a("--val-qualities", type=float, nargs="+", default=[1.0, 4.0, 8.0], metavar="Q",
      help="qualities validated (default 1 4 8)")
    a("--val-max-images", type=int, default=8, help="use at most N validation images (default 8)")
    a("--ckpt-every", type=int, default=5000, help="checkpoint every N steps (and at the end / time limit)")
    a("--keep", type=int, default=3, help="checkpoints kept in RUN_DIR/checkpoints (default 3)")
    a("--log-every", type=int, default=100, help="log interval in steps (default 100)")
    a("--max-minutes", type=float, default=0.0,
      help="save and exit cleanly before this wall time; rerun the same command (with --resume) to go on")
    a("--time-budget", type=float, default=0.0, metavar="MIN",
      help="end the run after MIN minutes of training steps (summed over resumes); the LR schedule follows "
           "max(step/--steps, time/MIN), so it ends with its decay (default 0: no budget)")
    a("--resume", action="store_true", help="continue from the latest checkpoint in RUN_DIR (if any)")
    a("--export", default="", metavar="PATH", help="after the last step write shipping weights (safetensors)")
    a("--export-dtype", choices=["fp16", "bf16", "fp32"], default="fp16",
      help="floating-point type of the exported weights (default fp16)")
    a("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run_train)

    e = sub.add_parser("train-export", help="write shipping weights from a training run",
                       description="Load a run's latest (or given) checkpoint, call model.update() and "
                                   "write the weights and buffers as a standalone safetensors file.")
    e.add_argument("run_dir", metavar="RUN_DIR", help="folder of a `neuralcodec train` run")
    e.add_argument("-o", "--output", required=True, metavar="PATH", help="weights file to write (.safetensors)")
    e.add_argument("--checkpoint", default="", help="checkpoint file (default: the latest in RUN_DIR)")
    e.add_argument("--dtype", choices=["fp16", "bf16", "fp32"], default="fp16",
                   help="floating-point type of the weights (default fp16)")
    e.add_argument("--codec-factory", default="", metavar="MODULE:FUNC",
                   help="the function the run was trained with (--codec-factory of train)")
    e.add_argument("--raw", action="store_true",
                   help="export the trained weights even when the run keeps an EMA (default: the EMA weights)")
    e.set_defaults(func=run_export)


def _check_files(args) -> None:
    """Data folders and codec name, before torch is imported."""
    from pathlib import Path

    from neuralcodec.errors import InputError, ModelError
    from neuralcodec.train.files import find_images

    for folder in [*args.data, *args.val]:
        find_images([folder])
    if not args.codec_factory and args.codec not in IMAGE_CODECS:
        raise ModelError(f"unknown codec {args.codec!r} (available: {', '.join(IMAGE_CODECS)}; "
                         "video-rt trains with train-video)")
    if args.init and not Path(args.init).is_file():
        raise InputError(f"--init {args.init}: file not found")


def run_train(args) -> int:
    import time
    t_start = time.monotonic()  # --max-minutes counts the torch import too

    _check_files(args)
    from dataclasses import fields

    from neuralcodec.train.loop import TrainConfig, import_factory, train
    # every TrainConfig field has an option of the same name (dest); lists are copied
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    values = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in values.items()}
    cfg = TrainConfig(**values, codec_kwargs=dict(args.codec_arg))
    factory = import_factory(args.codec_factory, cfg.codec_kwargs) if args.codec_factory else None
    train(cfg, factory, t_start=t_start)
    return 0


def run_export(args) -> int:
    from pathlib import Path

    from neuralcodec.errors import InputError
    from neuralcodec.train import checkpoint as ckpt
    from neuralcodec.train.loop import export_weights, import_factory, registry_factory
    path = Path(args.checkpoint) if args.checkpoint else ckpt.latest_checkpoint(args.run_dir)
    if path is None or not path.is_file():
        raise InputError(f"no checkpoint found in {args.run_dir}/checkpoints"
                         if not args.checkpoint else f"checkpoint {path} does not exist")
    tensors, meta = ckpt.load(path)
    cfg = meta["config"]
    kwargs = cfg.get("codec_kwargs", {})
    factory = import_factory(args.codec_factory, kwargs) if args.codec_factory \
        else registry_factory(cfg["codec"], kwargs)
    model = factory()
    ema = {k[len("ema.module."):]: v for k, v in tensors.items() if k.startswith("ema.module.")}
    use_ema = bool(ema) and not args.raw
    state = ema if use_ema else {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(state, strict=True)
    info = {"step": meta["step"], "run": str(Path(args.run_dir).resolve()), "source": "neuralcodec train"}
    if use_ema:
        info["ema"] = cfg.get("ema")
    out = export_weights(model, args.output, info, args.dtype, cfg["codec"], kwargs)
    print(f"exported step {meta['step']} of {args.run_dir} ({'EMA' if use_ema else 'trained'} weights) to {out}")
    return 0
