"""Training subsystem tests on CPU with a tiny codec defined here."""
from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from neuralcodec.codecs.base import ImageCodec, QualityGain
from neuralcodec.train import checkpoint as ckpt
from neuralcodec.train.loop import TrainConfig, train


class TinyCodec(ImageCodec):
    """Two-conv analysis/synthesis, uniform-noise quantisation, per-channel Gaussian prior."""
    name = "tiny"
    stride = 4

    def __init__(self, ch: int = 6):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(3, ch, 3, 2, 1), nn.ReLU(), nn.Conv2d(ch, ch, 3, 2, 1))
        self.dec = nn.Sequential(nn.ConvTranspose2d(ch, ch, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(ch, 3, 4, 2, 1))
        self.gain = QualityGain(ch)
        self.log_scale = nn.Parameter(torch.zeros(ch))
        self.quantiles = nn.Parameter(torch.tensor([-1.0, 0.0, 1.0]).repeat(ch, 1))
        self.register_buffer("table", torch.zeros(4, dtype=torch.int32))
        self.updated = 0

    def forward(self, x, quality):
        g = self.gain(quality)
        y = self.enc(x) * g
        y = y + torch.empty_like(y).uniform_(-0.5, 0.5) if self.training else torch.round(y)
        s = self.log_scale.exp()[None, :, None, None]
        cdf = lambda v: 0.5 * (1 + torch.erf(v / (s * math.sqrt(2))))  # noqa: E731
        lik = (cdf(y + 0.5) - cdf(y - 0.5)).clamp_min(1e-9)
        return {"x_hat": self.dec(y / g), "likelihoods": {"y": lik}}

    def aux_loss(self):
        target = torch.tensor([-3.0, 0.0, 3.0], device=self.log_scale.device) * self.log_scale.detach().exp()[:, None]
        return (self.quantiles - target).abs().sum()

    def update(self):
        self.updated += 1
        self.table += 1


def make_tiny(**kwargs):
    return TinyCodec(**kwargs)


def make_images(folder, n=4, size=(48, 40), seed=0, ext="png"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = size[1] + 8 * i, size[0]
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([np.sin(xx / (3 + i + c)) + np.cos(yy / (4 + c)) for c in range(3)], -1)
        img = np.clip(127 + 60 * base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"im{i}.{ext}")
    return folder


def cfg_for(tmp_path, out="run", **kw):
    data = tmp_path / "data"
    if not data.exists():
        make_images(data)
    base = dict(data=[str(data)], out=str(tmp_path / out), codec="tiny", steps=8, batch_size=2, crop=32,
                lr=1e-3, lr_scaling="none", ckpt_every=1000, log_every=1, progress=False, device="cpu", workers=1)
    base.update(kw)
    return TrainConfig(**base)


def final_tensors(run):
    tensors, meta = ckpt.load(ckpt.latest_checkpoint(run))
    return tensors, meta


def test_loss_decreases(tmp_path):
    cfg = cfg_for(tmp_path, steps=30, batch_size=4, lr=3e-3)
    res = train(cfg, make_tiny)
    assert res["done"] and res["step"] == 30
    losses = [json.loads(ln)["train/loss"] for ln in open(tmp_path / "run" / "train_log.jsonl")]
    assert len(losses) == 30
    assert np.mean(losses[-8:]) < 0.7 * np.mean(losses[:8])
    assert (tmp_path / "run" / "COMPLETE").exists()
    from PIL import Image
    assert Image.open(tmp_path / "run" / "training.png").size[0] > 500  # the curves


def test_resume_is_bit_identical(tmp_path):
    train(cfg_for(tmp_path, "straight"), make_tiny)
    res = train(cfg_for(tmp_path, "chunked"), make_tiny, stop_after=3)
    assert res == {"step": 3, "done": False, "checkpoint": str(tmp_path / "chunked/checkpoints/step_000000003.safetensors")}
    # disturb every generator: the checkpoint must restore them
    torch.manual_seed(999), np.random.seed(999)
    import random
    random.seed(999)
    assert train(cfg_for(tmp_path, "chunked", resume=True), make_tiny)["step"] == 8
    a, ma = final_tensors(tmp_path / "straight")
    b, mb = final_tensors(tmp_path / "chunked")
    assert a.keys() == b.keys()
    assert any(k.startswith("optim.aux.") for k in a) and any(k.startswith("rng.0.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert ma["step"] == mb["step"] == 8
    assert ma["optim.main"] == mb["optim.main"]
    # the train log of the chunked run has each step once
    steps = [json.loads(ln)["step"] for ln in open(tmp_path / "chunked" / "train_log.jsonl")]
    assert steps == list(range(1, 9))


def test_existing_run_needs_resume_and_max_minutes(tmp_path):
    cfg = cfg_for(tmp_path, steps=5, max_minutes=1e-4, resume=True, export=str(tmp_path / "e.safetensors"))
    res = train(cfg, make_tiny)  # the limit stops it after the first step
    assert res["step"] == 1 and not res["done"]
    from neuralcodec.codecs.weights import read_metadata
    assert json.loads(read_metadata(tmp_path / "e.safetensors")["info"])["step"] == 1  # exported anyway
    from neuralcodec.errors import InputError
    with pytest.raises(InputError, match="--resume"):
        train(cfg_for(tmp_path, steps=5), make_tiny)
    cfg.max_minutes = 0
    assert train(cfg, make_tiny) == {"step": 5, "done": True,
                                     "checkpoint": str(tmp_path / "run/checkpoints/step_000000005.safetensors")}
    assert train(cfg, make_tiny)["done"]  # already complete: nothing to do


def test_checkpoint_format_and_export(tmp_path):
    from safetensors import safe_open
    out = tmp_path / "w.safetensors"
    train(cfg_for(tmp_path, steps=3, keep=2, ckpt_every=1, export=str(out)), make_tiny)
    found = ckpt.list_checkpoints(tmp_path / "run")
    assert [p.name for p in found] == ["step_000000002.safetensors", "step_000000003.safetensors"]
    with safe_open(str(found[-1]), "pt") as f:
        meta = f.metadata()
        state = json.loads(meta["state"])
        assert meta["format"] == ckpt.FORMAT and state["step"] == 3 and state["sampler"]["step"] == 3
    with safe_open(str(out), "pt") as f:
        assert f.metadata()["codec"] == "tiny" and json.loads(f.metadata()["info"])["step"] == 3
        assert f.get_tensor("enc.0.weight").dtype == torch.float16
        assert f.get_tensor("table").dtype == torch.int32 and f.get_tensor("table")[0] == 1  # after update()


def test_train_export_command(tmp_path, capsys, monkeypatch):
    from neuralcodec.cli import main
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    train(cfg_for(tmp_path, steps=2), make_tiny)
    out = tmp_path / "e.safetensors"
    assert main(["train-export", str(tmp_path / "run"), "-o", str(out), "--codec-factory", "test_train:make_tiny"]) == 0
    from safetensors.torch import load_file
    assert load_file(str(out))["dec.2.weight"].dtype == torch.float16


def test_validation_estimate_fallback(tmp_path, monkeypatch):
    import neuralcodec.codecs as codecs
    monkeypatch.setitem(sys.modules, "neuralcodec.codecs.api", None)  # import fails
    monkeypatch.delattr(codecs, "api", raising=False)
    val = make_images(tmp_path / "val", n=2, size=(36, 28), seed=3)
    train(cfg_for(tmp_path, steps=4, val=[str(val)], val_every=2, val_qualities=[1, 8]), make_tiny)
    log = json.loads((tmp_path / "run" / "validation.json").read_text())
    assert [e["step"] for e in log] == [2, 4]
    assert log[0]["mode"] == "estimate" and set(log[0]["results"]) == {"1", "8"}
    assert "bitstream_error" not in log[0]
    r = log[-1]["results"]
    assert r["8"]["bpp"] > r["1"]["bpp"] > 0 and r["1"]["psnr"] > 0


def test_validation_real_bitstreams(tmp_path, monkeypatch):
    calls = []

    def encode_with_model(model, pixels, quality, device):
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and model.updated >= 1
        calls.append(quality)
        return bytes(pixels.shape[:2]) + bytes(int(quality) * 10)

    def decode_with_model(model, data, device):
        return np.full((data[0], data[1], 3), 128, np.uint8)

    fake = types.ModuleType("neuralcodec.codecs.api")
    fake.encode_with_model, fake.decode_with_model = encode_with_model, decode_with_model
    monkeypatch.setitem(sys.modules, "neuralcodec.codecs.api", fake)
    import neuralcodec.codecs as codecs
    monkeypatch.setattr(codecs, "api", fake, raising=False)
    val = make_images(tmp_path / "val", n=2, size=(36, 28), seed=3)
    model_holder = []

    def factory():
        model_holder.append(TinyCodec())
        return model_holder[-1]
    train(cfg_for(tmp_path, steps=2, val=[str(val)], val_every=2, val_qualities=[2, 5]), factory)
    entry = json.loads((tmp_path / "run" / "validation.json").read_text())[-1]
    assert entry["mode"] == "bitstream" and entry["images"] == 2
    assert entry["results"]["2"]["bpp"] == pytest.approx(np.mean([8 * 22 / (h * 36) for h in (28, 36)]))
    assert calls == [2, 2, 5, 5]
    assert model_holder[0].updated == 0  # validation ran on a copy


def test_validation_survives_a_failing_coder(tmp_path):
    # TinyCodec has no compress(): the real API fails, training goes on with the estimate
    from neuralcodec.train.validate import validate
    img = np.zeros((20, 24, 3), np.uint8)
    fake = types.ModuleType("api")

    def broken(*a):
        raise NotImplementedError("no coder")
    fake.encode_with_model = fake.decode_with_model = broken
    import neuralcodec.train.validate as V
    orig, V._load_api = V._load_api, lambda: fake
    try:
        said = []
        res = validate(TinyCodec(), [img], [3.0], torch.device("cpu"), warn=said.append)
    finally:
        V._load_api = orig
    assert res["mode"] == "estimate" and "NotImplementedError: no coder" in res["bitstream_error"]
    assert len(said) == 1 and res["results"]["3"]["bpp"] > 0


def test_msssim_loss_runs():
    from neuralcodec.train.loss import MSSSIM_FACTOR, RateDistortionLoss
    x = torch.rand(2, 3, 176, 176)
    lik = {"y": torch.full((2, 4, 11, 11), 0.5)}
    m = RateDistortionLoss("ms-ssim")({"x_hat": x, "likelihoods": lik}, x, torch.tensor([0.1, 0.1]))
    assert m["bpp"].item() == pytest.approx(4 * 121 / 176**2)
    assert m["loss"].item() == pytest.approx(m["bpp"].item(), abs=1e-4) and MSSSIM_FACTOR > 0


def test_bank_crops_pad_flip_and_determinism(tmp_path):
    from neuralcodec.train.data import build_bank
    d = make_images(tmp_path / "d", n=3, size=(20, 24))
    make_images(tmp_path / "d" / "sub", n=1, size=(64, 64), ext="jpg")
    bank = build_bank([str(d)], crop=32, device="cpu", workers=1, log=lambda m: None)
    assert len(bank) == 4 and all(h >= 32 and w >= 32 for h, w in bank.shapes)
    b1, b2 = bank.batch(5, 7, 4, 2, 1), bank.batch(5, 7, 4, 2, 1)
    assert b1.x.shape == (4, 3, 32, 32) and torch.equal(b1.x, b2.x) and torch.equal(b1.quality, b2.quality)
    assert not torch.equal(bank.batch(5, 7, 4, 2, 0).x, b1.x)
    assert ((b1.quality >= 1) & (b1.quality <= 8)).all()
    skipping = build_bank([str(d)], crop=32, device="cpu", small="skip", workers=1, log=lambda m: None)
    assert len(skipping) == 1
    half = build_bank([str(d / "sub")], crop=16, device="cpu", jpeg_downsample=2, workers=1, log=lambda m: None)
    assert half.shapes == [(32, 32)]


def test_bank_gather_equals_per_crop_slicing(tmp_path):
    """The one-gather batch equals cutting each planned crop out of its image (flips included),
    is channels-last, and the plan depends only on (seed, step)."""
    from neuralcodec.train.data import build_bank, load_image, find_images
    d = make_images(tmp_path / "d", n=3, size=(40, 52))
    make_images(tmp_path / "d" / "b", n=2, size=(70, 33))
    bank = build_bank([str(d)], crop=24, device="cpu", workers=1, log=lambda m: None)
    images = [load_image(p) for p in find_images([str(d)])]
    for step in range(6):
        plan, quality = bank.plan(3, step, 8, 2, 1)
        batch = bank.batch(3, step, 8, 2, 1)
        assert batch.x.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(batch.quality, quality)
        for k, (i, y, x, hf, vf) in enumerate(plan):
            ref = images[i][y:y + 24, x:x + 24]
            ref = ref[::-1] if vf else ref
            ref = ref[:, ::-1] if hf else ref
            want = torch.from_numpy(ref.copy()).permute(2, 0, 1).float() / 255
            assert torch.equal(batch.x[k], want)
    flips = [f for s in range(20) for (_, _, _, hf, vf) in bank.plan(3, s, 8)[0] for f in (hf, vf)]
    assert any(flips) and not all(flips)


@pytest.mark.parametrize("case", ["missing", "empty", "codec"])
def test_cli_errors_are_one_line(tmp_path, capsys, case):
    from neuralcodec.cli import main
    data = make_images(tmp_path / "ok", n=1)
    (tmp_path / "empty").mkdir()
    folder = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "codec": data}[case]
    rc = main(["train", "--codec", "no-such-codec", "--data", str(folder), "--out", str(tmp_path / "r"),
               "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and err.startswith("neuralcodec: error:")
    assert {"missing": "does not exist", "empty": "holds no images", "codec": "no-such-codec"}[case] in err


def test_sigterm_saves_and_stops(tmp_path):
    import os
    import signal

    class Stopper(TinyCodec):
        calls = 0

        def forward(self, x, quality):
            Stopper.calls += 1
            if Stopper.calls == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            return super().forward(x, quality)
    before = signal.getsignal(signal.SIGTERM)
    res = train(cfg_for(tmp_path, steps=6), Stopper)
    assert res["step"] == 2 and not res["done"] and res["checkpoint"].endswith("step_000000002.safetensors")
    assert signal.getsignal(signal.SIGTERM) == before


def test_init_weights_start_from_a_weights_file(tmp_path):
    """--init loads a weights file before the first step (fine-tuning)."""
    import torch

    from neuralcodec.codecs.registry import create
    from neuralcodec.codecs.weights import save_weights
    from neuralcodec.train.loop import TrainConfig, train

    data = tmp_path / "data"
    data.mkdir()
    from PIL import Image
    import numpy as np
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(data / "a.png")
    torch.manual_seed(7)
    source = create("factorized").eval()
    source.update()
    weights = tmp_path / "w.safetensors"
    save_weights(source, weights, dtype="fp32")
    cfg = TrainConfig(data=[str(data)], out=str(tmp_path / "run"), codec="factorized", init=str(weights),
                      steps=1, lr=0.0, batch_size=1, crop=32, device="cpu", progress=False,
                      export=str(tmp_path / "e.safetensors"))
    train(cfg)
    from safetensors.torch import load_file
    exported = load_file(str(tmp_path / "e.safetensors"))
    ref = source.state_dict()["g_a.0.weight"].half()
    assert torch.equal(exported["g_a.0.weight"], ref)


# ---------------------------------------------------------------- fast-training options
def test_lr_scaling_and_auto_warmup():
    from neuralcodec.train.step import auto_warmup, scaled_lr
    assert scaled_lr(1e-4, 16) == pytest.approx(1e-4)
    assert scaled_lr(1e-4, 64) == pytest.approx(2e-4)            # sqrt(64/16)
    assert scaled_lr(1e-4, 64, "linear") == pytest.approx(4e-4)
    assert scaled_lr(1e-4, 64, "none") == pytest.approx(1e-4)
    with pytest.raises(ValueError):
        scaled_lr(1e-4, 64, "cubic")
    assert auto_warmup(100_000, 64) == 1000 and auto_warmup(10_000, 64) == 200 and auto_warmup(10_000, 16) == 0


def test_auto_choices_on_cpu_and_cuda():
    from neuralcodec.train.loop import resolve_auto
    base = TrainConfig(data=["d"], out="o", steps=5000)
    cpu = resolve_auto(base, torch.device("cpu"))
    assert (cpu.batch_size, cpu.precision, cpu.channels_last, cpu.compile, cpu.warmup_steps) == (8, "fp32", False, False, 0)
    gpu = resolve_auto(base, torch.device("cuda"), world_size=2)
    assert (gpu.batch_size, gpu.precision, gpu.channels_last, gpu.compile, gpu.warmup_steps) == (64, "bf16", True, True, 100)
    mine = resolve_auto(TrainConfig(data=["d"], out="o", batch_size=16, precision="fp32", compile=False,
                                    warmup_steps=7), torch.device("cuda"))
    assert (mine.batch_size, mine.precision, mine.compile, mine.warmup_steps) == (16, "fp32", False, 7)


def test_ema_is_validated_exported_and_resumed(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file
    val = make_images(tmp_path / "val", n=1, size=(36, 28), seed=3)
    kw = dict(steps=6, ema=0.8, val=[str(val)], val_every=3, val_qualities=[1, 8])
    train(cfg_for(tmp_path, "straight", export=str(tmp_path / "s.safetensors"), **kw), make_tiny)
    train(cfg_for(tmp_path, "chunked", **kw), make_tiny, stop_after=2)
    train(cfg_for(tmp_path, "chunked", resume=True, export=str(tmp_path / "c.safetensors"), **kw), make_tiny)
    a, _ = final_tensors(tmp_path / "straight")
    b, _ = final_tensors(tmp_path / "chunked")
    assert a["ema.n_averaged"].item() == 6
    for k in a:  # the EMA resumes exactly like everything else
        assert torch.equal(a[k], b[k]), k
    # the exported weights are the EMA's (which differ from the trained ones)
    w = load_file(str(tmp_path / "s.safetensors"))
    assert torch.equal(w["dec.2.weight"], a["ema.module.dec.2.weight"].half())
    assert not torch.equal(a["ema.module.dec.2.weight"], a["model.dec.2.weight"])
    with safe_open(str(tmp_path / "s.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["info"])["ema"] == 0.8
    # EMA and raw weights are both validated
    log = json.loads((tmp_path / "straight" / "validation.json").read_text())
    assert [e["step"] for e in log] == [3, 6] and set(log[-1]["raw"]["results"]) == {"1", "8"}
    assert log[-1]["results"] != log[-1]["raw"]["results"]


def test_train_export_takes_ema_unless_raw(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from neuralcodec.cli import main
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    train(cfg_for(tmp_path, steps=3, ema=0.5), make_tiny)
    t, _ = final_tensors(tmp_path / "run")
    for flag, key in ((), "ema.module.dec.2.weight"), (("--raw",), "model.dec.2.weight"):
        out = tmp_path / f"e{len(flag)}.safetensors"
        assert main(["train-export", str(tmp_path / "run"), "-o", str(out), "--codec-factory",
                     "test_train:make_tiny", *flag]) == 0
        assert torch.equal(load_file(str(out))["dec.2.weight"], t[key].half())


def test_compile_failure_falls_back_with_one_warning(tmp_path, monkeypatch, capsys):
    """A compiler error at the first step gives one warning; training then runs eagerly and
    reaches the same weights as a run without compile."""
    def broken_compile(fn, *a, **k):
        def call(*args, **kwargs):
            raise RuntimeError("inductor exploded")
        return call
    train(cfg_for(tmp_path, "eager", steps=3, compile=False), make_tiny)
    monkeypatch.setattr(torch, "compile", broken_compile)
    train(cfg_for(tmp_path, "compiled", steps=3, compile=True), make_tiny)
    err = capsys.readouterr().err
    assert err.count("torch.compile failed (RuntimeError: inductor exploded)") == 1
    a, _ = final_tensors(tmp_path / "eager")
    b, _ = final_tensors(tmp_path / "compiled")
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("model."))


def test_channels_last_and_cli_options():
    from neuralcodec.cli import build_parser
    from neuralcodec.train.step import Stepper, StepOptions
    st = Stepper(make_tiny(), StepOptions(channels_last=True), torch.device("cpu"))
    assert st.model.enc[0].weight.is_contiguous(memory_format=torch.channels_last)
    base = ["train", "--codec", "hyperprior", "--data", "d", "--out", "o"]
    args = build_parser().parse_args(base)
    assert (args.precision, args.compile, args.channels_last, args.ema, args.lr_scaling, args.batch_size,
            args.warmup_steps) == ("auto", None, None, 0.0, "sqrt", 0, -1)
    args = build_parser().parse_args(base + ["--bf16", "--no-compile", "--ema", "0.999", "--lr-scaling", "linear",
                                             "--no-channels-last"])
    assert (args.precision, args.compile, args.channels_last, args.ema, args.lr_scaling) == (
        "bf16", False, False, 0.999, "linear")


def test_compile_mode_is_checked_and_passed_to_torch(monkeypatch):
    """--compile-mode reaches torch.compile (None for the default mode); an unknown mode is one
    InputError; the CLI offers exactly the modes the stepper accepts."""
    from neuralcodec.cli import build_parser
    from neuralcodec.errors import InputError
    from neuralcodec.train import COMPILE_MODES
    from neuralcodec.train.step import Stepper, StepOptions
    seen = []
    monkeypatch.setattr(torch, "compile", lambda fn, mode=None: seen.append(mode) or fn)
    for mode in ("default", "reduce-overhead"):
        st = Stepper(make_tiny(), StepOptions(compile=True, compile_mode=mode), torch.device("cpu"))
        assert st.compiled
    assert seen == [None, "reduce-overhead"]
    with pytest.raises(InputError, match="compile mode must be one of"):
        Stepper(make_tiny(), StepOptions(compile=True, compile_mode="fastest"), torch.device("cpu"))
    args = build_parser().parse_args(["train", "--codec", "hyperprior", "--data", "d", "--out", "o",
                                      "--compile-mode", "reduce-overhead"])
    assert args.compile_mode == "reduce-overhead"
    assert "max-autotune-no-cudagraphs" in COMPILE_MODES


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graph_steps_match_the_default_compile():
    """Steps under CUDA graphs (reduce-overhead) give the losses of the default compiled steps, and
    the returned loss terms stay valid after the next step (copied out of the graph's buffers)."""
    from neuralcodec.train.step import Stepper, StepOptions
    x = torch.rand(4, 3, 64, 64, device="cuda")
    q = torch.full((4,), 4.0, device="cuda")
    losses = {}
    for mode in ("default", "reduce-overhead"):
        torch.manual_seed(0)
        st = Stepper(make_tiny(), StepOptions(compile=True, compile_mode=mode, fused=False), torch.device("cuda"))
        out = [st.step(x, q, 1e-4) for _ in range(3)]
        losses[mode] = [float(o["loss"]) for o in out]
    assert losses["reduce-overhead"] == pytest.approx(losses["default"], rel=1e-3)


@pytest.mark.parametrize("codec", ["factorized", "hyperprior", "gmm-ctx", "elic"])
def test_training_forward_is_one_graph(codec):
    """torch.compile sees the training forward and loss of every image codec as one graph
    (no graph breaks in the hot path)."""
    from neuralcodec.codecs import registry
    from neuralcodec.train.step import Stepper, StepOptions
    st = Stepper(registry.create(codec), StepOptions(), torch.device("cpu"))
    q = torch.tensor([1.0, 6.0])
    explained = torch._dynamo.explain(st._forward_loss)(torch.rand(2, 3, 64, 64), q, st.rd_lambda(q))
    assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons


def test_factorized_forward_equals_bottleneck():
    from neuralcodec.entropy.factorized import FactorizedPrior
    torch.manual_seed(0)
    fp = FactorizedPrior(8)
    with torch.no_grad():
        for p in fp.bottleneck.parameters():
            p.add_(0.1 * torch.randn_like(p))
    z = 3 * torch.randn(2, 8, 5, 7)
    for mode in (False, True):
        fp.train(mode)
        torch.manual_seed(1)
        ours = fp(z)
        torch.manual_seed(1)
        ref = fp.bottleneck(z)
        assert all(torch.equal(a, b) for a, b in zip(ours, ref))


def test_compare_variants_see_the_same_crops(tmp_path):
    """The equal-compute tool: variants train on the same batches (a micro-batched copy of a
    variant makes 4x the optimiser steps on the same crops), are validated with real
    bitstreams, and BD-rates refer to the reference variant."""
    from neuralcodec.train import compare
    data = make_images(tmp_path / "data", n=3, size=(64, 72))
    val = make_images(tmp_path / "val", n=1, size=(64, 64), seed=2)
    from neuralcodec.codecs.registry import create
    from neuralcodec.codecs.weights import save_weights
    hp_init = tmp_path / "hp.safetensors"
    save_weights(create("hyperprior", n=16, m=24), hp_init)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([
        {"name": "hp", "codec": "hyperprior", "kwargs": {"n": 16, "m": 24}, "precision": "fp32",
         "channels_last": False},
        {"name": "hp-micro", "codec": "hyperprior", "kwargs": {"n": 16, "m": 24}, "micro_batch": 1,
         "precision": "fp32", "channels_last": False, "init": str(hp_init), "init_partial": True},
        {"name": "gmm-k1", "codec": "gmm-ctx", "kwargs": {"n": 16, "m": 24, "groups": [8, 16], "components": 1,
                                                        "mean_shift": True}, "precision": "fp32"}]))
    rc = compare.main(["--spec", str(spec), "--data", str(data), "--out", str(tmp_path / "out"), "--steps", "3",
                       "--batch-size", "4", "--crop", "64", "--val", str(val), "--val-qualities", "1", "8",
                       "--val-fractions", "--log-every", "1", "--device", "cpu", "--export"])
    assert rc == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["meta"]["steps_done"] == 3 and doc["meta"]["crops_per_variant"] == 12
    for name in ("hp", "hp-micro", "gmm-k1"):
        v = doc["variants"][name]
        assert [e["step"] for e in v["log"]] == [1, 2, 3]
        assert v["validation"][-1]["mode"] == "bitstream" and set(v["validation"][-1]["results"]) == {"1", "8"}
        assert (tmp_path / "out" / f"{name}.safetensors").exists()
    assert doc["bd_rate_vs_reference"]["hp"] == pytest.approx(0.0, abs=1e-9)
    assert doc["variants"]["hp-micro"]["init_tensors"] == len(create("hyperprior", n=16, m=24).state_dict())
    assert set(doc["bd_rate_vs_reference"]) == {"hp", "hp-micro", "gmm-k1"}
    spec.write_text(json.dumps([{"name": "x", "codec": "hyperprior", "bogus": 1}]))
    assert compare.main(["--spec", str(spec), "--data", str(data), "--out", str(tmp_path / "o2"),
                         "--steps", "1"]) == 1


def test_time_budget_ends_the_run_with_its_decay(tmp_path, monkeypatch):
    """--time-budget: the run stops after that much training time (summed over resumes), the
    cosine schedule reaches its end, the weights are exported and the run is complete. The clock
    is simulated (each reading advances it 0.05 s), so the test does not depend on the load."""
    import itertools

    import neuralcodec.train.engine as engine
    ticks = itertools.count()
    monkeypatch.setattr(engine.time, "monotonic", lambda: 0.05 * next(ticks))
    kw = dict(steps=100_000, lr_schedule="cosine", time_budget=0.03, export=str(tmp_path / "w.safetensors"),
              ckpt_every=5)
    first = train(cfg_for(tmp_path, **kw), make_tiny, stop_after=3)
    assert not first["done"]
    res = train(cfg_for(tmp_path, resume=True, **kw), make_tiny)
    assert res["done"] and 3 < res["step"] < 100_000
    lrs = [json.loads(ln)["train/lr"] for ln in open(tmp_path / "run" / "train_log.jsonl")]
    assert lrs[-1] < 0.1 * lrs[0]           # decayed by the end of the budget
    _, meta = final_tensors(tmp_path / "run")
    assert meta["train_seconds"] >= 0.03 * 60 and (tmp_path / "w.safetensors").exists()
    assert (tmp_path / "run" / "COMPLETE").exists()


def test_resume_in_channels_last_keeps_layouts(tmp_path, monkeypatch):
    """A channels-last run resumes bit-identically, and the restored optimiser state has its
    parameters' memory format (fused Adam on CUDA rejects mixed layouts)."""
    from neuralcodec.train.step import Stepper
    seen = {}
    real = Stepper.align_optimizer_state

    def spy(self):
        real(self)
        seen["ok"] = all(v.stride() == p.stride() for p, st in self.opt.state.items()
                         for v in st.values() if torch.is_tensor(v) and v.shape == p.shape)
        seen["cl"] = any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
                         and not p.is_contiguous() for p in self.opt.state)
    monkeypatch.setattr(Stepper, "align_optimizer_state", spy)
    train(cfg_for(tmp_path, "straight", channels_last=True), make_tiny)
    train(cfg_for(tmp_path, "chunked", channels_last=True), make_tiny, stop_after=3)
    train(cfg_for(tmp_path, "chunked", channels_last=True, resume=True), make_tiny)
    assert seen == {"ok": True, "cl": True}
    a, _ = final_tensors(tmp_path / "straight")
    b, _ = final_tensors(tmp_path / "chunked")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_init_partial_takes_the_matching_tensors(tmp_path):
    """--init-partial starts a factorized codec from a hyperprior's transforms (names and shapes
    that match); a strict --init of the same file is one clear error."""
    from safetensors.torch import load_file

    from neuralcodec.codecs.registry import create
    from neuralcodec.codecs.weights import save_weights
    from neuralcodec.errors import ModelError
    hp = tmp_path / "hp.safetensors"
    save_weights(create("hyperprior", n=16, m=24), hp)
    data = make_images(tmp_path / "data", n=2, size=(64, 72))
    cfg = cfg_for(tmp_path, codec="factorized", codec_kwargs={"n": 16, "m": 24}, init=str(hp), init_partial=True,
                  steps=1, lr=0.0, crop=64, data=[str(data)], export=str(tmp_path / "f.safetensors"))
    train(cfg)
    f, h = load_file(str(tmp_path / "f.safetensors")), load_file(str(hp))
    assert torch.equal(f["g_a.0.weight"], h["g_a.0.weight"]) and torch.equal(f["inv_gain.log_gain"], h["inv_gain.log_gain"])
    with pytest.raises(ModelError, match="do not fit"):
        train(cfg_for(tmp_path, "strict", codec="factorized", codec_kwargs={"n": 16, "m": 24}, init=str(hp),
                      steps=1, crop=64, data=[str(data)]))
