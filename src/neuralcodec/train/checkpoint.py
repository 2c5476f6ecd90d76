"""Training checkpoints in safetensors: tensors in the file, everything else as JSON in
its metadata. No pickle anywhere, so a checkpoint can be inspected and loaded safely."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import torch

from neuralcodec.errors import InputError

FORMAT = "neuralcodec-train-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d{9})\.safetensors$")


# ---------------------------------------------------------------- RNG state (all tensors)
def rng_capture(device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """This process's python, numpy, torch CPU and (current) CUDA generator states as tensors."""
    version, mt, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has, np_cached = np.random.get_state()
    out = {
        "python_mt": torch.tensor(mt, dtype=torch.int64),
        "python_extra": torch.tensor([version, gauss is not None, gauss or 0.0], dtype=torch.float64),
        "numpy_mt": torch.from_numpy(np_keys.astype(np.int64)),
        "numpy_extra": torch.tensor([np_pos, np_has, np_cached], dtype=torch.float64),
        "torch_cpu": torch.get_rng_state(),
    }
    if device is not None and torch.device(device).type == "cuda":
        out["torch_cuda"] = torch.cuda.get_rng_state(torch.device(device))
    return out


def rng_restore(state: dict[str, torch.Tensor], device: torch.device | None = None) -> None:
    """Inverse of :func:`rng_capture`."""
    version, has_gauss, gauss = state["python_extra"].tolist()
    random.setstate((int(version), tuple(int(v) for v in state["python_mt"].tolist()),
                     gauss if has_gauss else None))
    pos, has, cached = state["numpy_extra"].tolist()
    np.random.set_state(("MT19937", state["numpy_mt"].numpy().astype(np.uint32), int(pos), int(has), cached))
    torch.set_rng_state(state["torch_cpu"].to(torch.uint8))
    if "torch_cuda" in state and device is not None and torch.device(device).type == "cuda":
        torch.cuda.set_rng_state(state["torch_cuda"].to(torch.uint8), torch.device(device))


# ---------------------------------------------------------------- optimizers
def param_names(opt: torch.optim.Optimizer, model: torch.nn.Module) -> list[str]:
    """The model's names of the optimizer's parameters, in the optimizer's order ("?" for a
    parameter the model does not name)."""
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [by_id.get(id(p), "?") for g in opt.param_groups for p in g["params"]]


def fit_optimizer_state(sd: dict, saved_names: list[str] | None, opt: torch.optim.Optimizer,
                        model: torch.nn.Module) -> tuple[dict | None, str]:
    """Make a saved optimizer state dict fit ``opt``: its per-parameter state is stored by
    position, so where the checkpoint recorded the parameter names and the model now orders
    them differently, the state moves to the new positions by name. Returns (state dict, "")
    or (None, why) when it cannot fit (other names, other shapes: the moments restart)."""
    current = param_names(opt, model)
    groups_now = opt.state_dict()["param_groups"]
    if saved_names is not None and saved_names != current:
        if "?" in current or sorted(saved_names) != sorted(current) or len(groups_now) != len(sd["param_groups"]):
            return None, "the model's parameters are not the ones it was saved with"
        for old, now in zip(sd["param_groups"], groups_now):
            if {saved_names[i] for i in old["params"]} != {current[i] for i in now["params"]}:
                return None, "the parameters sit in other optimizer groups"
        position = {n: i for i, n in enumerate(current)}
        sd = {"state": {position[saved_names[int(pid)]]: st for pid, st in sd["state"].items()},
              "param_groups": [dict(old, params=now["params"]) for old, now in zip(sd["param_groups"], groups_now)]}
    params = [p for g in opt.param_groups for p in g["params"]]
    for pid, st in sd["state"].items():
        for val in st.values():
            if torch.is_tensor(val) and val.dim() > 0 and (int(pid) >= len(params) or val.shape != params[int(pid)].shape):
                return None, "its state does not fit the parameters' shapes (their order changed)"
    return sd, ""


def optimizer_flatten(opt: torch.optim.Optimizer, prefix: str):
    """Split an optimizer state dict into tensors (named ``prefix.<param>.<key>``) and JSON."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"{prefix}.{pid}.{key}"] = val
            else:
                scalars.setdefault(str(pid), {})[key] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_unflatten(tensors: dict, meta: dict, prefix: str) -> dict:
    """Rebuild the state dict written by :func:`optimizer_flatten`."""
    state: dict[int, dict] = {}
    for name, val in tensors.items():
        if name.startswith(prefix + "."):
            pid, key = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(pid), {})[key] = val
    for pid, st in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(st)
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# ---------------------------------------------------------------- files
def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", copy=True).contiguous()


def save(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write tensors and JSON metadata atomically."""
    from safetensors.torch import save_file

    from neuralcodec.io.outputs import atomic_path
    header = {"format": FORMAT, "version": str(VERSION), "state": json.dumps(meta, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file({k: _cpu(v) for k, v in tensors.items()}, str(tmp), metadata=header)


def load(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by :func:`save`."""
    from safetensors import safe_open
    tensors = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"cannot read checkpoint {path}: {exc}") from None
    if header.get("format") != FORMAT:
        raise InputError(f"{path} is not a neuralcodec training checkpoint")
    if int(header.get("version", 0)) > VERSION:
        raise InputError(f"{path} is from a newer neuralcodec (checkpoint version {header['version']})")
    return tensors, json.loads(header["state"])


def checkpoint_name(step: int) -> str:
    return f"step_{step:09d}.safetensors"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints in ``run_dir/checkpoints``, oldest first."""
    d = Path(run_dir) / "checkpoints"
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if _NAME.match(p.name))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def prune(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    found = list_checkpoints(run_dir)
    for p in found[:max(0, len(found) - max(1, keep))]:
        p.unlink(missing_ok=True)
