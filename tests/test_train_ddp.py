"""The data-parallel path: torchrun with 2 CPU processes (gloo), then an exact resume."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from neuralcodec.train import checkpoint as ckpt

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def torchrun(args, timeout=150):
    env = dict(os.environ, NEURALCODEC_DEBUG="1", PYTHONPATH=os.pathsep.join([str(SRC), str(TESTS)]), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "neuralcodec", "train", "--codec", "tiny", "--codec-factory", "test_train:make_tiny",
           "--device", "cpu", "--crop", "32", "--batch-size", "2", "--no-progress", "--workers", "1", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def test_ddp_two_cpu_processes(tmp_path):
    from test_train import make_images
    data = make_images(tmp_path / "data", n=3)
    val = make_images(tmp_path / "val", n=1, size=(36, 28))
    common = ["--data", str(data), "--out", str(tmp_path / "run"), "--steps", "4", "--val", str(val),
              "--val-every", "2", "--log-every", "1", "--resume"]
    first = torchrun(common + ["--max-minutes", "0.0001"])  # stops after one step
    assert first.returncode == 0, first.stderr[-3000:]
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run")] == ["step_000000001.safetensors"]
    second = torchrun(common)
    assert second.returncode == 0, second.stderr[-3000:]
    tensors, meta = ckpt.load(ckpt.latest_checkpoint(tmp_path / "run"))
    assert meta["step"] == 4 and meta["world_size"] == 2
    assert "resuming" in second.stderr and "not an exact resume" not in second.stderr
    # the process group and its gloo threads are gone before Python shuts down
    assert "outlived destroy_process_group" not in first.stderr + second.stderr
    # each rank's generator state is kept, and the ranks drew different noise
    assert not torch.equal(tensors["rng.0.torch_cpu"], tensors["rng.1.torch_cpu"])
    assert (tmp_path / "run" / "validation.json").exists() and (tmp_path / "run" / "COMPLETE").exists()
    # only rank 0 logged: one line per step
    lines = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    assert sum('"train/loss"' in ln for ln in lines) == 4
