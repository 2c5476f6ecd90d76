"""CompressAI's scale-table rule on the integer-exact path.

CompressAI codes a Gaussian latent element with the smallest entry of a table of scales
(by default 64 log-spaced values from 0.11 to 256) that is at least its predicted scale,
after a lower bound (``GaussianConditional.build_indexes``). Models imported from CompressAI
keep that rule, so they code the distributions they were trained and tabulated for.

Here the predicted scale is a fixed-point integer ``s`` (``ACT_FRAC`` fractional bits) and a
table entry ``t`` is a float32, so ``s * 2**-ACT_FRAC <= t`` exactly when
``s <= floor(t * 2**ACT_FRAC)``: the index is a count of integer thresholds below ``s``, the
same on every device. The coder then snaps the chosen table value to its own scale grid
(docs/coder.md), a deterministic float32 comparison.
"""
from __future__ import annotations

import math

import torch

from neuralcodec.entropy.exact import ACT_FRAC


def check_table(table: torch.Tensor) -> None:
    """Raise ValueError unless ``table`` is a strictly increasing, positive 1-D scale table."""
    if table.dim() != 1 or table.numel() < 2 or not torch.isfinite(table).all() or table[0] <= 0 \
            or not bool((table[1:] > table[:-1]).all()):
        raise ValueError("the scale table must hold at least two increasing positive scales")


def table_scales(scales_fixed: torch.Tensor, table: torch.Tensor, bound: float) -> torch.Tensor:
    """Float32 table scales for fixed-point predicted scales: CompressAI's index
    (the number of entries, all but the last, below ``max(scale, bound)``) looked up in ``table``."""
    table = table.to(scales_fixed.device, torch.float32)
    thresholds = torch.floor(table[:-1].double() * math.ldexp(1.0, ACT_FRAC))     # exact
    index = torch.searchsorted(thresholds, scales_fixed.double().contiguous())
    floor_index = int((table[:-1] < bound).sum())
    return table[index.clamp_min(floor_index)]
