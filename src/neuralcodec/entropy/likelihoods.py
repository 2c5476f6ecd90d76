"""Differentiable likelihoods of integer-quantised latents (training path)."""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from neuralcodec.entropy.param_grid import LOG2_SCALE_MIN, SCALE_MAX

LIKELIHOOD_BOUND = 1e-9
_LOG2_SCALE_LOW = math.log2(0.11)   # training lower bound of scales (coder grid reaches 2**-4)


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still flows where it would push x back above the bound."""

    @staticmethod
    def forward(ctx, x, bound: float):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x >= ctx.bound) | (grad < 0)).to(grad.dtype), None


def scale_from_log2(log2_scale: torch.Tensor) -> torch.Tensor:
    """Scales from predicted log2-scales, bounded like the coder's grid."""
    bounded = _LowerBound.apply(log2_scale.float(), _LOG2_SCALE_LOW)
    return torch.exp2(bounded.clamp(max=math.log2(SCALE_MAX)))


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(x * (-1.0 / math.sqrt(2.0)))


def gaussian_likelihood(values: torch.Tensor, means: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """P(round(v) = v) for v ~ N(mean, scale) integrated over [v-1/2, v+1/2] (float32 math)."""
    dist = (values.float() - means.float()).abs()
    scales = scales.float()
    upper = _std_normal_cdf((0.5 - dist) / scales)
    lower = _std_normal_cdf((-0.5 - dist) / scales)
    return (upper - lower).clamp_min(LIKELIHOOD_BOUND)


def gmm_likelihood(values: torch.Tensor, weights: torch.Tensor, means: torch.Tensor,
                   scales: torch.Tensor) -> torch.Tensor:
    """Mixture likelihood; mixture parameters have an extra trailing dimension K."""
    per_component = gaussian_likelihood(values.unsqueeze(-1), means, scales)
    return (per_component * weights.float()).sum(-1).clamp_min(LIKELIHOOD_BOUND)


def mixture_weights(logits_base2: torch.Tensor) -> torch.Tensor:
    """Softmax in base 2, matching the coder's integer weight table."""
    return torch.softmax(logits_base2.float() * math.log(2.0), dim=-1)


def bits_per_pixel(likelihoods: dict, num_pixels: int) -> torch.Tensor:
    """Sum of -log2(likelihood) over every latent of each sample, per image pixel. Shape (B,)."""
    total = None
    for lik in likelihoods.values():
        bits = -torch.log2(lik.float().clamp_min(1e-12)).flatten(1).sum(1)
        total = bits if total is None else total + bits
    return total / num_pixels


def noisy(x: torch.Tensor) -> torch.Tensor:
    """Additive uniform noise, the training proxy of rounding."""
    return x + torch.empty_like(x).uniform_(-0.5, 0.5)


#: the rounding relaxation that :func:`ste_round` applies instead, set by :func:`relaxed_rounding`
_relaxation = None


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Rounding with a straight-through gradient (exactly ``round(x)`` in value), or, inside
    :func:`relaxed_rounding`, that context's relaxation of it."""
    if _relaxation is not None:
        return _relaxation(x)
    return torch.round(x) + (x - x.detach())


@contextmanager
def relaxed_rounding(relax):
    """Within the block, every :func:`ste_round` of the latent codecs (decoded latents,
    hyper-latents, contexts) calls ``relax(x)`` instead: encoder-side latent refinement
    optimises through a soft rounding this way. Not thread-safe (one refinement at a time)."""
    global _relaxation
    previous, _relaxation = _relaxation, relax
    try:
        yield
    finally:
        _relaxation = previous


__all__ = ["gaussian_likelihood", "gmm_likelihood", "mixture_weights", "noisy", "ste_round",
           "relaxed_rounding", "bits_per_pixel", "scale_from_log2", "LOG2_SCALE_MIN"]
