"""The training engine keeps what the loop before it did: the same option sets, the same
losses at equal seed, and checkpoints written before it still resume."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from test_train import cfg_for, make_tiny

from neuralcodec.train.loop import train

DATA = Path(__file__).parent / "data"

# losses, bpp and PSNR of 5 steps of test_train's tiny codec (cfg_for defaults), logged by
# train/loop.py before the engine (main at 8d2d61f)
OLD_LOOP_5_STEPS = [[1169.1024169921875, 0.5448013544082642, 5.1632585525512695],
                    [489.0542297363281, 0.5424394607543945, 4.573265075683594],
                    [614.2435302734375, 0.5423088073730469, 4.730982780456543],
                    [1487.2357177734375, 0.5441892147064209, 4.89400577545166],
                    [669.6047973632812, 0.5422719717025757, 4.769153118133545]]
# the loss at step 6 after resuming tests/data/train_checkpoint_v1 (written by that loop at
# step 3 of 6 with --ema 0.5) with the same loop
OLD_RESUMED_STEP_6 = 2078.46923828125


def _log(run: Path) -> list[dict]:
    return [json.loads(ln) for ln in open(run / "train_log.jsonl")]


def test_same_losses_as_the_old_loop(tmp_path):
    train(cfg_for(tmp_path, steps=5), make_tiny)
    rows = _log(tmp_path / "run")
    got = [[r["train/loss"], r["train/bpp"], r["train/psnr"]] for r in rows]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert got == [pytest.approx(v, rel=1e-5) for v in OLD_LOOP_5_STEPS]


def test_checkpoint_of_the_old_loop_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(DATA / "train_checkpoint_v1" / "step_000000003.safetensors", run / "checkpoints")
    res = train(cfg_for(tmp_path, steps=6, ema=0.5, resume=True), make_tiny)
    assert res["step"] == 6 and res["done"]
    err = capsys.readouterr().err
    assert "resuming" in err and "holds no EMA" not in err and "not an exact resume" not in err
    rows = _log(run)
    assert [r["step"] for r in rows] == [4, 5, 6]
    assert rows[-1]["train/loss"] == pytest.approx(OLD_RESUMED_STEP_6, rel=1e-5)


def _option_spec(command: str) -> list[dict]:
    from neuralcodec.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    rows = []
    for a in sub.choices[command]._actions:
        if not a.option_strings or "-h" in a.option_strings:
            continue
        rows.append({"options": a.option_strings, "dest": a.dest, "default": a.default, "nargs": a.nargs,
                     "choices": list(a.choices) if a.choices else None, "required": a.required,
                     "const": a.const, "type": getattr(a.type, "__name__", None) if a.type else None,
                     "action": type(a).__name__})
    return rows


# options the engine added: train-video gained EMA, validation and a checkpoint count; later a
# rate warm-up, bf16 autocast and torch.compile with its mode (automatic since round 9: on CUDA)
NEW_OPTIONS = {"train": set(), "train-video": {"--ema", "--val", "--val-every", "--val-qualities", "--keep",
                                               "--rate-warmup", "--precision", "--compile", "--no-compile",
                                               "--compile-mode", "--flow-guide", "--flow-guide-steps"}}
# choices widened since (every old choice kept): --export-dtype int8 (8-bit weights storage)
WIDENED_CHOICES = {"train": {"--export-dtype": ["fp16", "bf16", "fp32", "int8"]}, "train-video": {}}
# defaults changed on purpose since: train-video's batch became automatic (0: 32 on CUDA, 8 on the
# CPU as before) in round 9
CHANGED_DEFAULTS = {"train": {}, "train-video": {"--batch-size": (8, 0)}}


@pytest.mark.parametrize("command", ["train", "train-video"])
def test_options_unchanged(command):
    """Every option of `train` / `train-video` as before the engine (names, defaults, nargs,
    choices, types), recorded in tests/data/train_options.json from main at 8d2d61f, and
    only the new options named above besides."""
    want = json.loads((DATA / "train_options.json").read_text())[command]
    for row in want:
        widened = WIDENED_CHOICES[command].get(row["options"][0])
        if widened:
            assert set(row["choices"]) < set(widened)
            row["choices"] = widened
        if row["options"][0] in CHANGED_DEFAULTS[command]:
            was, now = CHANGED_DEFAULTS[command][row["options"][0]]
            assert row["default"] == was
            row["default"] = now
    got = json.loads(json.dumps(_option_spec(command)))  # tuples -> lists as in the file
    new = [r for r in got if r["options"][0] in NEW_OPTIONS[command]]
    old = [r for r in got if r not in new]
    assert {r["options"][0] for r in new} == NEW_OPTIONS[command]
    order = lambda r: r["dest"] + str(r["options"])  # noqa: E731
    assert sorted(old, key=order) == sorted(want, key=order)


# ------------------------------------------------------------------ the video task
def _video_cfg(tmp_path, out="vrun", **kw):
    import numpy as np
    from PIL import Image

    from neuralcodec.train.configs import VideoTrainConfig
    stills, clip = tmp_path / "stills", tmp_path / "val" / "clip"
    if not stills.exists():
        rng = np.random.default_rng(0)
        for folder, n in ((stills, 2), (clip, 3)):
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (72, 80, 3), dtype=np.uint8)).save(folder / f"f{i}.png")
    base = dict(out=str(tmp_path / out), images=[str(stills)], steps=3, batch_size=1, frames=3, crop=64,
                log_every=1, ckpt_every=1000, device="cpu", progress=False, warmup_steps=1)
    base.update(kw)
    return VideoTrainConfig(**base)


def test_video_defaults_are_the_fast_step_on_cuda_and_plain_on_the_cpu(tmp_path):
    """train-video's automatic choices: batch 32, bf16, compiled with CUDA graphs on CUDA (the
    fastest step bench/video_train_speed.py measured), batch 8, fp32, eager on the CPU; explicit
    options are kept."""
    import torch

    from neuralcodec.video.train import resolve_auto
    auto = _video_cfg(tmp_path, batch_size=0)
    assert (auto.precision, auto.compile, auto.compile_mode) == ("auto", None, "auto")
    gpu = resolve_auto(auto, torch.device("cuda"))
    assert (gpu.batch_size, gpu.precision, gpu.compile, gpu.compile_mode) == (32, "bf16", True, "reduce-overhead")
    cpu = resolve_auto(auto, torch.device("cpu"))
    assert (cpu.batch_size, cpu.precision, cpu.compile, cpu.compile_mode) == (8, "fp32", False, "default")
    mine = resolve_auto(_video_cfg(tmp_path, batch_size=4, precision="fp32", compile=False,
                                   compile_mode="default"), torch.device("cuda"))
    assert (mine.batch_size, mine.precision, mine.compile, mine.compile_mode) == (4, "fp32", False, "default")


def _model_tensors(run: Path) -> dict:
    from neuralcodec.train import checkpoint as ckpt
    tensors, _ = ckpt.load(ckpt.latest_checkpoint(run))
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "ema."))}


def test_video_task_resumes_exactly_with_ema_and_validation(tmp_path):
    """The video trainer through the engine: a run stopped after 1 step and resumed ends with
    the same weights (and EMA) as a straight run; validation and the export happen."""
    import torch

    from neuralcodec.video.train import run
    kw = dict(ema=0.5, val=[str(tmp_path / "val")], val_every=2, val_qualities=[3.0])
    run(_video_cfg(tmp_path, "straight", export=str(tmp_path / "s.safetensors"), **kw))
    assert not run(_video_cfg(tmp_path, "chunked", **kw), stop_after=1)["done"]
    assert run(_video_cfg(tmp_path, "chunked", resume=True, **kw))["step"] == 3
    a, b = _model_tensors(tmp_path / "straight"), _model_tensors(tmp_path / "chunked")
    assert a.keys() == b.keys() and any(k.startswith("ema.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = _log(tmp_path / "straight")
    assert [r["step"] for r in rows if "val/q3/bpp" in r] == [2, 3]
    assert (tmp_path / "s.safetensors").exists() and (tmp_path / "straight" / "history.json").exists()


def test_video_checkpoint_of_the_old_trainer_resumes(tmp_path, capsys):
    """A checkpoint in the layout video/train.py wrote before the engine (optimisers under
    ``opt.`` / ``aux.``, no RNG states) resumes, with a warning that the streams restart."""
    from dataclasses import asdict

    from neuralcodec.train import checkpoint as ckpt
    from neuralcodec.video.train import build_model, make_optimizers, run
    cfg = _video_cfg(tmp_path)
    model = build_model("", False, {}, "cpu")
    opt, aux = make_optimizers(model, cfg.lr)
    t_opt, m_opt = ckpt.optimizer_flatten(opt, "opt")
    t_aux, m_aux = ckpt.optimizer_flatten(aux, "aux")
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update(t_opt, **t_aux)
    path = Path(cfg.out) / "checkpoints" / ckpt.checkpoint_name(2)
    path.parent.mkdir(parents=True)
    ckpt.save(path, tensors, {"step": 2, "opt": m_opt, "aux_opt": m_aux, "config": asdict(cfg)})
    capsys.readouterr()
    assert run(_video_cfg(tmp_path, resume=True))["step"] == 3
    err = capsys.readouterr().err
    assert "resuming" in err and "holds no random states" in err


def test_optimizer_state_follows_parameter_names_across_a_reorder():
    """A checkpoint's optimiser state is stored by position: when the model registers its
    parameters in another order (as video-rt's did when its hyper path became a Hyperprior),
    the state moves by name; without names, a shape mismatch restarts the moments."""
    import torch
    from torch import nn

    from neuralcodec.train import checkpoint as ckpt

    def model(order):
        m = nn.Module()
        for name in order:
            m.add_module(name, nn.Linear(*{"a": (2, 3), "b": (3, 5)}[name]))
        return m

    torch.manual_seed(0)
    old = model("ab")
    opt = torch.optim.Adam(old.parameters(), lr=1e-2)
    old.b(old.a(torch.randn(4, 2))).sum().backward()
    opt.step()
    tensors, meta = ckpt.optimizer_flatten(opt, "optim.main")
    names = ckpt.param_names(opt, old)
    saved = {n: opt.state[p]["exp_avg"] for n, p in old.named_parameters()}

    new = model("ba")
    new.load_state_dict(old.state_dict())
    new_opt = torch.optim.Adam(new.parameters(), lr=1e-2)
    sd, why = ckpt.fit_optimizer_state(ckpt.optimizer_unflatten(tensors, meta, "optim.main"), names, new_opt, new)
    assert why == ""
    new_opt.load_state_dict(sd)
    for n, p in new.named_parameters():
        assert torch.equal(new_opt.state[p]["exp_avg"], saved[n]), n
    sd, why = ckpt.fit_optimizer_state(ckpt.optimizer_unflatten(tensors, meta, "optim.main"), None, new_opt, new)
    assert sd is None and "shapes" in why
