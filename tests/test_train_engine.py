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


@pytest.mark.parametrize("command", ["train", "train-video"])
def test_options_unchanged(command):
    """Every option of `train` / `train-video` as before the engine (names, defaults, nargs,
    choices, types), recorded in tests/data/train_options.json from main at 8d2d61f."""
    want = json.loads((DATA / "train_options.json").read_text())[command]
    key = lambda r: r["options"]  # noqa: E731
    got = json.loads(json.dumps(_option_spec(command)))  # tuples -> lists as in the file
    assert sorted(map(str, map(key, got))) == sorted(map(str, map(key, want)))
    assert sorted(got, key=lambda r: r["dest"] + str(r["options"])) == \
        sorted(want, key=lambda r: r["dest"] + str(r["options"]))
