#!/usr/bin/env python3
"""Work of one image decode, split at the entropy-coder calls: aten ops (and how many of
them are kernels rather than views), host syncs, host<->device copies, per pass.

    python bench/gpu_decode_ops.py [--codecs elic hyperprior] [--image kodim01] [--quality 4]
                                   [--device cpu|cuda] [--exact-conv gemm|conv] [--repeat 20]
                                   [--json FILE]

The counts come from a TorchDispatchMode (every aten op the decode dispatches) and from
wrappers of the Python calls that move data between host and device (``Tensor.cpu``,
``Tensor.to(device)`` of a tensor made from numpy, ``item``/``tolist``), so they are the
same on the CPU as on a GPU: a GPU run would make each counted ``cpu()`` a device->host copy
(and a host sync), each counted ``to(device)`` a host->device copy, each sync op (nonzero,
boolean-mask indexing, ``_local_scalar_dense``) a stall. A segment is the work before one
coder call (the coder call ends it; "synthesis" is what follows the last one). The first
decode fills the caches (device copies of the integer nets, pass indices); the counts are of
the second. Runs with any version of the package that has ``encode_with_model`` and
``decode_with_model``, so two commits can be compared. On CUDA (``--device cuda``) it also
counts, with torch.profiler, the kernels, memcpy calls and stream/device synchronisations
of one decode and times ``--repeat`` decodes (median).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

warnings.filterwarnings("ignore")

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
aten = torch.ops.aten
SYNC_OPS = {aten.nonzero, aten._local_scalar_dense, aten.masked_select, aten.is_nonzero, aten.equal,
            aten.unique_consecutive, aten._unique2, aten.unique_dim, aten.repeat_interleave}
INDEX_OPS = {aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_}


class Segment:
    """The work before one coder call (``label``: that call)."""

    def __init__(self):
        self.label = "synthesis"
        self.ops, self.syncs, self.moves = Counter(), Counter(), Counter()
        self.kernels = 0
        self.bytes = Counter()

    def row(self) -> dict:
        return {"segment": self.label, "ops": sum(self.ops.values()), "kernels": self.kernels,
                "syncs": sum(self.syncs.values()), "d2h": self.moves["d2h"], "h2d": self.moves["h2d"],
                "d2h_bytes": self.bytes["d2h"], "h2d_bytes": self.bytes["h2d"],
                "sync_ops": dict(self.syncs), "top_ops": dict(self.ops.most_common(8))}


def _is_view(func) -> bool:
    """Whether an op's result aliases its input without writing (a view: no kernel on CUDA)."""
    rets = func._schema.returns
    return bool(rets) and all(r.alias_info is not None and not r.alias_info.is_write for r in rets)


def _bool_index(args) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(t, torch.Tensor) and t.dtype in (torch.bool, torch.uint8) for t in indices or ())


class DecodeCounter(TorchDispatchMode):
    """Counts ops into the current segment; :meth:`cut` starts the next one."""

    def __init__(self):
        super().__init__()
        self.segments = [Segment()]
        self.host: set[int] = set()     # storages made by torch.from_numpy (host memory)

    @property
    def now(self) -> Segment:
        return self.segments[-1]

    def cut(self, label: str) -> None:
        self.now.label = label
        self.segments.append(Segment())

    def move(self, kind: str, t: torch.Tensor, sync: bool = False) -> None:
        self.now.moves[kind] += 1
        self.now.bytes[kind] += t.numel() * t.element_size()
        if sync:        # a blocking copy to pageable host memory waits for the stream
            self.now.syncs[f"{kind} copy"] += 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        packet = func.overloadpacket
        seg = self.now
        seg.ops[packet.__name__] += 1
        seg.kernels += not _is_view(func)
        if packet in SYNC_OPS or (packet in INDEX_OPS and _bool_index(args)):
            seg.syncs[packet.__name__ + ("[bool]" if packet in INDEX_OPS else "")] += 1
        return func(*args, **(kwargs or {}))


def _device_target(args, kwargs) -> bool:
    """Whether a ``Tensor.to`` call names a device (else it is a dtype cast)."""
    targets = list(args[:1]) + [kwargs.get("device")]
    return any(isinstance(a, (torch.device, str, torch.Tensor)) for a in targets if a is not None)


class Hooks:
    """Python-level wrappers that report transfers and coder calls to a counter."""

    def __init__(self, counter: DecodeCounter):
        from neuralcodec.entropy import coder
        self.counter, self.coder, self.saved = counter, coder, []
        c = counter
        orig_cpu, orig_to, orig_item, orig_tolist = (torch.Tensor.cpu, torch.Tensor.to,
                                                     torch.Tensor.item, torch.Tensor.tolist)
        orig_from_numpy = torch.from_numpy

        def cpu(t, *a, **k):
            c.move("d2h", t, sync=True)
            return orig_cpu(t, *a, **k)

        def to(t, *a, **k):
            if _device_target(a, k) and t.untyped_storage().data_ptr() in c.host:
                c.move("h2d", t)
                c.host.discard(t.untyped_storage().data_ptr())   # (on the CPU ``to`` returns ``t``)
            return orig_to(t, *a, **k)

        def item(t):            # its _local_scalar_dense counts the sync
            c.move("d2h", t)
            return orig_item(t)

        def tolist(t):
            c.move("d2h", t, sync=True)
            return orig_tolist(t)

        def from_numpy(a):
            out = orig_from_numpy(a)
            c.host.add(out.untyped_storage().data_ptr())
            return out
        self._patch(torch.Tensor, cpu=cpu, to=to, item=item, tolist=tolist)
        self._patch(torch, from_numpy=from_numpy)
        wrappers = {}
        for name in dir(coder):
            if name.startswith("decode_") and callable(getattr(coder, name)):
                wrappers[name] = self._coder_call(name, getattr(coder, name))
        self._patch(coder, **wrappers)

    def _coder_call(self, name, fn):
        def call(data, *args, **kwargs):
            out = fn(data, *args, **kwargs)
            self.counter.cut(f"{name} ({np.asarray(out).size} symbols)")
            return out
        return call

    def _patch(self, owner, **new):
        for name, fn in new.items():
            self.saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, fn)

    def restore(self) -> None:
        for owner, name, fn in reversed(self.saved):
            setattr(owner, name, fn)


def count_decode(decode) -> list[dict]:
    """Rows (one per segment) for one call of ``decode()``."""
    counter = DecodeCounter()
    hooks = Hooks(counter)
    try:
        with counter:
            decode()
    finally:
        hooks.restore()
    return [s.row() for s in counter.segments]


def profile_cuda(decode) -> dict:
    """Kernels, memcpys and synchronisations of one ``decode()`` on CUDA (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        decode()
        torch.cuda.synchronize()
    calls = Counter(e.name for e in prof.events())
    kernels = sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    pick = ("cudaLaunchKernel", "cudaMemcpyAsync", "cudaStreamSynchronize", "cudaDeviceSynchronize",
            "cudaMemcpy", "cudaHostAlloc", "cudaGraphLaunch")
    return {"device_events": kernels, **{name: calls[name] for name in pick if calls[name]}}


def print_rows(name: str, rows: list[dict]) -> None:
    print(f"\n{name}: {len(rows) - 1} coder calls")
    print(f"{'segment (ends with)':42s} {'ops':>6s} {'kern':>6s} {'sync':>5s} {'d2h':>4s} {'h2d':>4s} "
          f"{'d2h KiB':>8s} {'h2d KiB':>8s}  sync ops")
    for r in rows:
        print(f"{r['segment'][:42]:42s} {r['ops']:6d} {r['kernels']:6d} {r['syncs']:5d} {r['d2h']:4d} "
              f"{r['h2d']:4d} {r['d2h_bytes'] / 1024:8.1f} {r['h2d_bytes'] / 1024:8.1f}  "
              f"{', '.join(f'{k} x{v}' for k, v in r['sync_ops'].items())}")
    keys = ("ops", "kernels", "syncs", "d2h", "h2d", "d2h_bytes", "h2d_bytes")
    total = {k: sum(r[k] for r in rows) for k in keys}
    print(f"{'total':42s} {total['ops']:6d} {total['kernels']:6d} {total['syncs']:5d} {total['d2h']:4d} "
          f"{total['h2d']:4d} {total['d2h_bytes'] / 1024:8.1f} {total['h2d_bytes'] / 1024:8.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codecs", nargs="+", default=["elic", "hyperprior"])
    parser.add_argument("--image", default="kodim01", help="a Kodak image name or a path")
    parser.add_argument("--quality", type=float, default=4.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=20, help="timed decodes on CUDA (0: none)")
    parser.add_argument("--exact-conv", choices=("conv", "gemm"), default="gemm",
                        help="how integer-exact convolutions run here (CUDA's default is gemm; "
                             "the CPU's is conv): the op counts follow it")
    parser.add_argument("--json", help="write the counts here")
    args = parser.parse_args()
    from neuralcodec.entropy.exact import set_conv_impl
    set_conv_impl(args.exact_conv, torch.device(args.device).type)
    from PIL import Image

    from neuralcodec.codecs.api import decode_with_model, encode_with_model
    from neuralcodec.codecs.registry import load_model

    path = Path(args.image)
    if not path.exists():
        path = KODAK / f"{args.image}.png"
    if not path.exists():
        raise SystemExit(f"neuralcodec: error: no image {args.image!r}")
    pixels = np.asarray(Image.open(path).convert("RGB"))
    cuda = torch.device(args.device).type == "cuda"
    print(f"{path.name} {pixels.shape[1]}x{pixels.shape[0]} q{args.quality:g} on {args.device}, exact convs "
          f"{args.exact_conv}; torch {torch.__version__}")
    report = {}
    for name in args.codecs:
        model = load_model(name, None, device=args.device)
        data = encode_with_model(model, pixels, args.quality, args.device)

        def decode():
            return decode_with_model(model, data, args.device)
        decode()                                     # fills the caches
        rows = count_decode(decode)
        print_rows(f"{name} ({len(data)} bytes)", rows)
        report[name] = {"bytes": len(data), "segments": rows}
        if cuda:
            report[name]["profiler"] = profile_cuda(decode)
            print("profiler, one decode:", report[name]["profiler"])
            times = []
            for _ in range(args.repeat):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                decode()
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            if times:
                report[name]["decode_ms_median"] = 1e3 * statistics.median(times)
                print(f"decode median of {len(times)}: {report[name]['decode_ms_median']:.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
