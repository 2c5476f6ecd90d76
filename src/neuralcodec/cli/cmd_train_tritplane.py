"""`neuralcodec train-tritplane`: train the trit-plane context modules on a frozen base
(see docs/progressive.md)."""
from __future__ import annotations

from neuralcodec.train.configs import TritPlaneTrainConfig
from neuralcodec.train.options import add_options, config_from_args


def register(sub) -> None:
    p = sub.add_parser("train-tritplane", help="train the trit-plane CRR/CDR modules on a frozen hyperprior",
                       description="Train the context modules of the progressive trit-plane codec (CRR, "
                                   "CDR) on a frozen hyperprior base and write their weights.")
    add_options(p, TritPlaneTrainConfig)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from neuralcodec.errors import InputError

    cfg = config_from_args(TritPlaneTrainConfig, args)
    for path in [cfg.base_weights, cfg.init]:
        if path and not Path(path).is_file():
            raise InputError(f"{path}: file not found")

    from neuralcodec.train.tritplane_task import run as train   # imports torch
    train(cfg)
    return 0
