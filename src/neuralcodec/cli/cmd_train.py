"""`neuralcodec train` and `neuralcodec train-export`."""
from __future__ import annotations

from neuralcodec.codecs.catalog import IMAGE_CODECS, WEIGHT_DTYPES
from neuralcodec.train.configs import TrainConfig
from neuralcodec.train.options import add_options, config_from_args


def register(sub) -> None:
    p = sub.add_parser("train", help="train a codec (one GPU, or many via torchrun)",
                       description="Train a learned image codec with a variable-rate RD loss. "
                                   "Multi-GPU: torchrun --nproc-per-node N -m neuralcodec train ... "
                                   "(see docs/training.md).")
    add_options(p, TrainConfig)
    p.add_argument("--codec-factory", default="", metavar="MODULE:FUNC",
                   help="build the model with this function instead of the registry (experiments, tests)")
    p.set_defaults(func=run_train)

    e = sub.add_parser("train-export", help="write shipping weights from a training run",
                       description="Load a run's latest (or given) checkpoint, call model.update() and "
                                   "write the weights and buffers as a standalone safetensors file.")
    e.add_argument("run_dir", metavar="RUN_DIR", help="folder of a `neuralcodec train` run")
    e.add_argument("-o", "--output", required=True, metavar="PATH", help="weights file to write (.safetensors)")
    e.add_argument("--checkpoint", default="", help="checkpoint file (default: the latest in RUN_DIR)")
    e.add_argument("--dtype", choices=WEIGHT_DTYPES, default="fp16",
                   help="storage type of the weights (default fp16; int8: large tensors as int8 "
                        "with per-channel scales, the rest fp16)")
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
    from neuralcodec.train.image_task import import_factory, train
    cfg = config_from_args(TrainConfig, args)
    factory = import_factory(args.codec_factory, cfg.codec_kwargs) if args.codec_factory else None
    train(cfg, factory, t_start=t_start)
    return 0


def run_export(args) -> int:
    from pathlib import Path

    from neuralcodec.errors import InputError
    from neuralcodec.train import checkpoint as ckpt
    from neuralcodec.train.image_task import export_weights, import_factory, registry_factory
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
