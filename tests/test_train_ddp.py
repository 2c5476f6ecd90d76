"""The data-parallel paths: torchrun with 2 CPU processes (gloo): image training with an exact
resume, and video training."""
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
              "--val-every", "2", "--log-every", "1", "--resume", "--ema", "0.9",
              "--export", str(tmp_path / "w.safetensors")]
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
    # the EMA is kept across the resume and exported
    assert tensors["ema.n_averaged"].item() == 4
    from safetensors.torch import load_file
    exported = load_file(str(tmp_path / "w.safetensors"))
    assert torch.equal(exported["dec.2.weight"], tensors["ema.module.dec.2.weight"].half())
    assert not torch.equal(exported["dec.2.weight"], tensors["model.dec.2.weight"].half())
    # only rank 0 logged: one line per step
    lines = (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
    assert sum('"train/loss"' in ln for ln in lines) == 4


def test_train_video_two_cpu_processes(tmp_path):
    """train-video under torchrun: per-rank clips, averaged gradients (the parameter check at
    each checkpoint passes), one log, a checkpoint and weights that code a clip."""
    import io

    import numpy as np
    from PIL import Image

    from neuralcodec.video.codec import decode_frames, encode_frames
    from neuralcodec.video.weights import load

    rng = np.random.default_rng(0)
    clip = tmp_path / "clips" / "c"
    clip.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (72, 80, 3), dtype=np.uint8)).save(clip / f"f{i}.png")
    export = tmp_path / "v.safetensors"
    env = dict(os.environ, NEURALCODEC_DEBUG="1", PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "neuralcodec", "train-video", "--out", str(tmp_path / "run"), "--video", str(clip.parent),
           "--synthetic", "0", "--steps", "3", "--batch-size", "1", "--frames", "3", "--crop", "64",
           "--log-every", "1", "--ckpt-every", "2", "--device", "cpu", "--export", str(export)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("step 3:") == 1 and "exported" in run.stdout  # rank 0 only
    assert "outlived destroy_process_group" not in run.stderr
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run")] == [
        "step_000000002.safetensors", "step_000000003.safetensors"]
    model = load(None, export, "cpu")
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(2)]
    buf = io.BytesIO()
    encode_frames(model, frames, buf, 64, 48)
    buf.seek(0)
    assert len(list(decode_frames(model, buf))) == 2


def test_more_ranks_than_gpus_is_a_clear_error(monkeypatch):
    import pytest

    from neuralcodec.errors import InputError
    from neuralcodec.train import distributed as D
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", str(torch.cuda.device_count()))
    with pytest.raises(InputError, match="start at most that many processes"):
        D.init("cuda")
