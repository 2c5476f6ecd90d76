"""`neuralcodec train-video`: train the `video-rt` P-frame networks (see docs/video.md)."""
from __future__ import annotations

from neuralcodec.train.configs import VideoTrainConfig
from neuralcodec.train.options import add_options, config_from_args


def register(sub) -> None:
    p = sub.add_parser("train-video", help="train the video-rt codec on clips and synthetic pans/zooms")
    add_options(p, VideoTrainConfig)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from neuralcodec.errors import InputError

    cfg = config_from_args(VideoTrainConfig, args)   # --config: a JSON object, else one error line
    if cfg.codec_kwargs and cfg.init and not cfg.init_partial:
        raise InputError("--config with --init needs --init-partial (the weights file holds its own configuration)")
    if cfg.bptt < 0:
        raise InputError("--bptt must be >= 0")
    if cfg.batch_size < 0:
        raise InputError("--batch-size must be >= 1 (0: automatic)")
    if cfg.frames < 2:
        raise InputError("--frames must be at least 2 (an I-frame and a P-frame)")
    if cfg.crop % 64:
        raise InputError("--crop must be a multiple of 64")
    for path in [*cfg.video, *cfg.images, *cfg.val]:
        if not Path(path).exists():
            raise InputError(f"training data {path} does not exist")
    if cfg.init and not Path(cfg.init).is_file():
        raise InputError(f"--init {cfg.init}: file not found")

    from neuralcodec.video.train import run as train   # imports torch
    train(cfg)
    return 0
