"""CUDA graphs for the latent chain of ``video-rt`` decoding at a fixed frame size.

Between its host coder calls, decoding a P latent runs a few hundred small kernels (the
integer-exact networks, the parameter grid, gathers and scatters); launching them one by one
costs more host time than they take on the GPU. Each step of :meth:`VideoRT.p_steps` and the
buffer update is captured once and replayed. Values are unchanged (same kernels, same inputs).
"""
from __future__ import annotations

import torch


class GraphedStep:
    """``fn(*inputs)`` captured in a CUDA graph for inputs shaped like ``examples``. A call
    copies its inputs into the graph's static tensors and replays on the current stream; the
    outputs are the graph's static tensors, overwritten by the next call (clone to keep)."""

    def __init__(self, fn, *examples: torch.Tensor):
        self.inputs = [x.clone() for x in examples]
        side = torch.cuda.Stream(examples[0].device)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):       # warm-up: lazy caches, cuDNN/cuBLAS set-up
            for _ in range(2):
                fn(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = fn(*self.inputs)

    def __call__(self, *inputs: torch.Tensor):
        for static, value in zip(self.inputs, inputs):
            if static is not value:
                static.copy_(value)
        self.graph.replay()
        return self.outputs


def graphed_latent_steps(model, buf_fx: torch.Tensor):
    """((first, second, third), buffer update) of ``model`` as graphs for ``buf_fx``'s shape."""
    b, _, h, w = buf_fx.shape
    first, second, third = model.p_steps(b, h, w)
    z_hat = buf_fx.new_zeros(b, model.z_prior.bottleneck.channels, h // 4, w // 4, dtype=torch.float32)
    g1 = GraphedStep(first, z_hat, buf_fx)
    prior, means0, _ = g1.outputs
    g2 = GraphedStep(second, prior, means0, torch.zeros_like(means0))
    y_hat, means1, _ = g2.outputs
    g3 = GraphedStep(third, y_hat, means1, torch.zeros_like(means1))
    update = GraphedStep(model.next_buffer, g3.outputs, buf_fx)
    return (g1, g2, g3), update
