"""The trit-plane context-module trainer: writes loadable weights, --init starts from a file."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from neuralcodec.codecs import tritplane_train
from neuralcodec.codecs.weights import read_metadata
from neuralcodec.codecs.registry import shipped_weights

pytestmark = pytest.mark.skipif(shipped_weights("hyperprior") is None, reason="needs the shipped hyperprior")


def test_train_then_init(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(data / "a.png")
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    common = ["--data", str(data), "--batch", "1", "--crop", "64", "--device", "cpu", "--log-every", "1"]
    assert tritplane_train.main(common + ["-o", str(first), "--steps", "2"]) == 0
    info = json.loads(read_metadata(first)["info"])
    assert info["steps"] == 2 and len(info["base_sha256"]) == 64
    # lr 0: starting from the first file, the weights must come out unchanged
    assert tritplane_train.main(common + ["-o", str(second), "--steps", "1", "--lr", "0", "--init", str(first)]) == 0
    a, b = load_file(str(first)), load_file(str(second))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], torch.zeros_like(a[k])) for k in a)


def test_resume_continues_exactly(tmp_path):
    """Through the engine: a run stopped after 2 steps and resumed writes the weights of a
    straight 3-step run (each step's draws depend on (seed, step) only)."""
    from neuralcodec.train.configs import TritPlaneTrainConfig
    from neuralcodec.train.tritplane_task import run

    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(data / "a.png")

    def cfg(name, **kw):
        return TritPlaneTrainConfig(data=[str(data)], export=str(tmp_path / f"{name}.safetensors"),
                                    out=str(tmp_path / name), steps=3, batch=1, crop=64, device="cpu",
                                    log_every=1, progress=False, **kw)
    run(cfg("straight"))
    assert not run(cfg("chunked"), stop_after=2)["done"]
    assert run(cfg("chunked", resume=True))["done"]
    a, b = load_file(str(tmp_path / "straight.safetensors")), load_file(str(tmp_path / "chunked.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], torch.zeros_like(a[k])) for k in a)
