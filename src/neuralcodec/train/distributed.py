"""torchrun data-parallel helpers. A single process is world size 1 and needs none of this.

Gradients are averaged by :func:`average_grads` (one flat all-reduce per bucket after the
backward pass), not by ``DistributedDataParallel``: with torch 2.14 and the codecs' auxiliary
``quantiles`` excluded from DDP, its reducer left the gradients un-averaged without an error
(the ranks drifted apart from the first step; :func:`check_same_params`, run at every
checkpoint, now catches that)."""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device_kind: str) -> tuple[DistInfo, torch.device]:
    """Join the process group that torchrun describes in the environment, if any, and pick
    this rank's device (``cuda:LOCAL_RANK`` with NCCL, or CPU with gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        dev = torch.device("cuda" if device_kind == "cuda" else "cpu")
        return DistInfo(), dev
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device_kind == "cuda":
        if info.local_rank >= torch.cuda.device_count():
            from neuralcodec.errors import InputError
            raise InputError(f"rank {info.rank} needs GPU {info.local_rank}, but this machine has "
                             f"{torch.cuda.device_count()}: start at most that many processes per node")
        torch.cuda.set_device(info.local_rank)
        device = torch.device("cuda", info.local_rank)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        # torch 2.14: a process group created before torch._dynamo is first imported (the
        # Adam constructor imports it) is kept alive after destroy_process_group; its
        # gloo worker threads then outlive the run, and one releasing a finished collective's
        # tensors while Python shuts down aborts the rank ("terminate called without an
        # active exception"). Imported first, the group is destroyed with its threads.
        importlib.import_module("torch._dynamo")
        kwargs = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend, **kwargs)
    return info, device


def shutdown() -> None:
    """Destroy the process group; in debug mode (NEURALCODEC_DEBUG) say if gloo worker
    threads survive it (the shutdown abort described in :func:`init`)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        survivors = _gloo_threads() if os.environ.get("NEURALCODEC_DEBUG") else 0
        if survivors:
            print(f"warning: {survivors} gloo worker threads outlived destroy_process_group",
                  file=sys.stderr)


def _gloo_threads() -> int:
    """Number of this process's gloo worker threads (Linux; 0 where /proc is missing)."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0
    count = 0
    for t in tasks:
        try:
            with open(f"/proc/self/task/{t}/comm") as fh:
                count += fh.read().startswith("pt_gloo")
        except OSError:
            pass
    return count


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def any_flag(info: DistInfo, flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any rank."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def broadcast_flag(info: DistInfo, flag: bool, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(t, 0)
    return bool(t.item() > 0)


def all_reduce_sum(info: DistInfo, t: torch.Tensor) -> None:
    """In-place sum over ranks."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)


def gather_tensors(info: DistInfo, tensors: dict[str, torch.Tensor], device: torch.device) -> list[dict]:
    """Every rank's ``tensors`` (same names and shapes on all ranks), on the CPU."""
    if not info.enabled:
        return [{k: v.cpu() for k, v in tensors.items()}]
    out = [dict() for _ in range(info.world_size)]
    for name in sorted(tensors):
        t = tensors[name].to(device)
        parts = [torch.empty_like(t) for _ in range(info.world_size)]
        dist.all_gather(parts, t)
        for r, p in enumerate(parts):
            out[r][name] = p.cpu()
    return out


def check_same_params(info: DistInfo, model: torch.nn.Module, device: torch.device, step: int) -> None:
    """Raise ModelError on every rank if the ranks' parameters differ (a per-parameter digest
    is all-gathered; called at checkpoints, it catches gradients that were not averaged)."""
    if not info.enabled:
        return
    digest = torch.stack([p.detach().double().sum() for p in model.parameters()])
    digests = [d["digest"] for d in gather_tensors(info, {"digest": digest}, device)]
    if any(not torch.equal(d, digests[0]) for d in digests[1:]):
        from neuralcodec.errors import ModelError
        raise ModelError(f"data-parallel ranks hold different parameters at step {step}: "
                         "their gradients were not averaged alike")


def average_grads(info: DistInfo, params) -> None:
    """Replace each parameter's gradient by its mean over all ranks: one all-reduce per
    (device, dtype) bucket. A parameter without a gradient on some ranks counts as zero there;
    one without a gradient on every rank keeps none (the optimizer skips it, as in one process)."""
    if not info.enabled:
        return
    buckets: dict[tuple, list[torch.Tensor]] = {}
    for p in params:
        buckets.setdefault((str(p.device), str(p.dtype)), []).append(p)
    for key in sorted(buckets):  # the same order on every rank
        group = buckets[key]
        present = [p.grad is not None for p in group]
        flat = torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros_like(p).reshape(-1)
                          for p in group] + [torch.tensor(present, dtype=group[0].dtype, device=group[0].device)])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(info.world_size)
        anywhere = flat[flat.numel() - len(group):].tolist()  # one host sync per bucket
        offset = 0
        for p, has_grad in zip(group, anywhere):
            n = p.numel()
            if has_grad > 0:
                mean = flat[offset:offset + n].view_as(p)
                if p.grad is None:
                    p.grad = mean.clone()
                else:
                    p.grad.copy_(mean)
            offset += n
