"""torchrun / DDP helpers. A single process is world size 1 and needs none of this."""
from __future__ import annotations

import os
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
        torch.cuda.set_device(info.local_rank)
        device = torch.device("cuda", info.local_rank)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        kwargs = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend, **kwargs)
    return info, device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


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


def average_grads(info: DistInfo, params) -> None:
    """All-reduce (mean) the gradients of parameters that DDP does not manage."""
    if not info.enabled:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(info.world_size)
