"""Maps the integer-exact network outputs onto the coder's parameter grid.

Networks predict, per latent element and component, a mean, a log2-scale and (for
mixtures) a base-2 logit, as fixed-point integers (see :mod:`.exact`). These are
turned into coder parameters with integer/exact operations only, so encoder and
decoder derive identical values on any device:

* mean  -> nearest multiple of 2**-MEAN_FRAC (the coder's mean grid);
* log2-scale -> index k of the grid sigma_k = 2**(k/SCALE_STEPS + LOG2_SCALE_MIN);
* logits -> integer weights 2**16 * 2**-(d/16) (d = distance to the largest logit
  in 1/16 steps) from a fixed integer table.
"""
from __future__ import annotations

import math

import torch

from neuralcodec.entropy.exact import ACT_FRAC

MEAN_FRAC = 8
SCALE_STEPS = 16
LOG2_SCALE_MIN = -4
NUM_SCALES = 12 * SCALE_STEPS + 1          # sigma from 2**-4 to 2**8
SCALE_MIN = 2.0 ** LOG2_SCALE_MIN
SCALE_MAX = 2.0 ** (LOG2_SCALE_MIN + (NUM_SCALES - 1) / SCALE_STEPS)
# round(2**16 * 2**(-j/16)), j = 0..15
_POW2_FRAC = (65536, 62757, 60097, 57549, 55109, 52773, 50535, 48393,
              46341, 44376, 42495, 40693, 38968, 37316, 35734, 34219)


def _scale_table() -> torch.Tensor:
    return torch.tensor([2.0 ** (LOG2_SCALE_MIN + k / SCALE_STEPS) for k in range(NUM_SCALES)],
                        dtype=torch.float32)


SCALE_TABLE = _scale_table()
_tables_on: dict[torch.device, torch.Tensor] = {}


def mean_from_fixed(m_fixed: torch.Tensor) -> torch.Tensor:
    """Fixed-point mean -> float32 on the 2**-MEAN_FRAC grid (exact)."""
    q = torch.round(m_fixed * math.ldexp(1.0, MEAN_FRAC - ACT_FRAC))
    return (q * math.ldexp(1.0, -MEAN_FRAC)).float()


def scale_index_from_fixed(log2_scale_fixed: torch.Tensor) -> torch.Tensor:
    """Fixed-point log2-scale -> grid index (int64, exact)."""
    k = torch.round(log2_scale_fixed * math.ldexp(SCALE_STEPS, -ACT_FRAC)) - LOG2_SCALE_MIN * SCALE_STEPS
    return k.clamp(0, NUM_SCALES - 1).long()


def scale_from_index(index: torch.Tensor) -> torch.Tensor:
    """Grid index -> float32 scale (the coder snaps it to the same index)."""
    if index.device.type == "cpu":
        return SCALE_TABLE[index]
    if index.device not in _tables_on:          # one copy per device (no copy per call)
        _tables_on[index.device] = SCALE_TABLE.to(index.device)
    return _tables_on[index.device][index]


def weights_from_fixed(logits_fixed: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Fixed-point base-2 logits -> unnormalised integer weights (as float32, exact)."""
    d = logits_fixed.amax(dim, keepdim=True) - logits_fixed            # >= 0, integer
    steps = torch.round(d * math.ldexp(16, -ACT_FRAC)).long()           # 1/16 octaves
    table = torch.tensor(_POW2_FRAC, dtype=torch.int64, device=steps.device)
    octave = steps // 16
    w = torch.where(octave > 16, torch.zeros_like(steps),
                    table[steps % 16] >> octave.clamp(max=16))
    return w.float()


def fixed_to_real(x_fixed: torch.Tensor) -> torch.Tensor:
    """Fixed point -> float32 (for the float fallback of training-time code)."""
    return (x_fixed * math.ldexp(1.0, -ACT_FRAC)).float()
