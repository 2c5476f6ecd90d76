"""The tensor layout of a model built in torch's fake-tensor mode: names, shapes and dtypes of
its state dict, without allocating its memory (the weights check of ``registry.build_checked``).

A constructor may compute a few numbers with tensors and read them back (CompressAI's channel
ramps: ``torch.linspace(...).floor().int().tolist()``), which fake tensors cannot answer. Such
ramps (``linspace``/``logspace`` of at most ``MAX_RAMP_STEPS`` values) are made for real, and
the operations that read them without growing them (indexing, rounding, clipping, ``tolist``)
run on them for real; any other use (``repeat`` into a parameter, arithmetic with a fake
tensor) gets fake copies, so every parameter and buffer stays fake.
"""
from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

MAX_RAMP_STEPS = 4096
_RAMPS = (torch.linspace, torch.logspace)
_READS = {getattr(torch.Tensor, name) for name in (
    "__getitem__", "__setitem__", "tolist", "item", "floor", "ceil", "round", "int", "long",
    "float", "clip", "clamp", "__len__", "dim", "size", "numel")}


def _leaves(value):
    """The tensors (and other leaves) of nested tuples, lists and dicts."""
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return [value]


def _mapped(fn, value):
    if type(value) in (tuple, list):
        return type(value)(_mapped(fn, item) for item in value)
    if isinstance(value, dict):
        return {k: _mapped(fn, v) for k, v in value.items()}
    return fn(value)


def _steps(args, kwargs):
    steps = kwargs.get("steps", args[2] if len(args) > 2 else None)
    return steps if type(steps) is int else None


class _RealRamps(TorchFunctionMode):
    """Real ramps inside a :class:`FakeTensorMode` (see the module docstring)."""

    def __init__(self, fake_mode):
        super().__init__()
        self.fake_mode = fake_mode
        self.ramps: dict[int, torch.Tensor] = {}    # id -> the real ramps and what was read of them

    def _real(self, out):
        for t in _leaves(out):
            if isinstance(t, torch.Tensor):
                self.ramps[id(t)] = t
        return out

    def _fake(self, value):
        if isinstance(value, torch.Tensor) and id(value) in self.ramps:
            return self.fake_mode.from_tensor(value)
        return value

    def __torch_function__(self, func, types, args=(), kwargs=None):
        from torch._subclasses.fake_tensor import unset_fake_temporarily

        kwargs = kwargs or {}
        tensors = [t for t in _leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        ramps = [t for t in tensors if id(t) in self.ramps]
        if not tensors and func in _RAMPS and 0 <= (_steps(args, kwargs) or -1) <= MAX_RAMP_STEPS:
            with unset_fake_temporarily():
                return self._real(func(*args, **kwargs))
        if ramps and len(ramps) == len(tensors) and func in _READS:
            with unset_fake_temporarily():
                return self._real(func(*args, **kwargs))
        if ramps:
            args, kwargs = _mapped(self._fake, (args, kwargs))
        return func(*args, **kwargs)


def fake_layout(build) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """``{name: (shape, dtype)}`` of the state dict of ``build()``'s model, built fake."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as fake_mode, _RealRamps(fake_mode):
        model = build()
        return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
