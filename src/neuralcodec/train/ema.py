"""An exponential moving average of a model's weights (validated and exported instead of
the raw weights), its checkpoint state and its restore."""
from __future__ import annotations

import torch


def make_ema(model: torch.nn.Module, decay: float):
    """A ``torch.optim.swa_utils.AveragedModel`` of ``model`` with EMA ``decay`` in (0, 1)."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    if not 0 < decay < 1:
        from neuralcodec.errors import InputError
        raise InputError(f"--ema must be a decay in (0, 1), got {decay:g}")
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))


def load_ema_state(ema, state: dict[str, torch.Tensor]) -> bool:
    """Restore ``ema`` from a checkpoint's ``ema.*`` tensors; False when there are none (the
    EMA then restarts from the current weights at its next update)."""
    if not state:
        ema.n_averaged.zero_()  # the next update copies the current weights
        return False
    ema.load_state_dict(state)
    return True
