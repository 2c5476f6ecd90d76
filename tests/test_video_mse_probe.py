"""scripts/video_mse_probe.py end to end on tiny synthetic clips (CPU): variants side by side,
per-variant learning rate and clipping, the history written as JSON."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _clip(folder: Path, frames: int, size: int, seed: int) -> Path:
    """A moving random texture: frame k is the texture shifted by k pixels."""
    folder.mkdir(parents=True)
    texture = np.random.default_rng(seed).integers(0, 256, (size, size + frames, 3), dtype=np.uint8)
    for k in range(frames):
        Image.fromarray(np.ascontiguousarray(texture[:, k:k + size])).save(folder / f"f{k:03d}.png")
    return folder


def test_probe_trains_variants_side_by_side(tmp_path):
    train = [_clip(tmp_path / f"train{i}", 4, 64, i) for i in range(2)]
    held = _clip(tmp_path / "held", 3, 64, 9)
    out = tmp_path / "probe.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "video_mse_probe.py"), "--minutes", "0.01",
           "--batch-size", "2", "--crop", "64", "--size", "64", "64", "--frames", *map(str, train),
           "--held", str(held), "--config", "{}", "--config", '{"lr": 1e-5, "clip": 0.5, "refine": 4}',
           "--config", "shipped", "--config", '{"shipped": true, "warp": true, "blocks": 1}', "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    specs = [v["spec"] for v in result["variants"]]
    assert specs[:2] == ["{}", '{"lr": 1e-5, "clip": 0.5, "refine": 4}'] and len(specs) == 4
    assert [v["lr"] for v in result["variants"]] == [3e-4, 1e-5, 3e-4, 3e-4]
    shipped, deeper = result["variants"][2:]
    assert deeper["params"] > shipped["params"]
    first = [{k: v for k, v in run["history"][0].items() if k != "seconds"} for run in (shipped, deeper)]
    assert json.dumps(first[0]) == json.dumps(first[1])     # the added blocks start as no-ops (NaN-safe)
    for v in result["variants"]:
        first, last = v["history"][0], v["history"][-1]
        assert first["step"] == 0 and last["step"] >= 1          # trained at least one step
        assert last["step"] == result["variants"][0]["history"][-1]["step"]   # equal data
        assert 0 < last["unquantised"] < 99
        assert 0 < last["unquantised_moving"] < 99 and "aligned_still" in last     # the region split


def test_probe_refuses_a_crop_larger_than_the_frames(tmp_path):
    clip = _clip(tmp_path / "c", 2, 64, 0)
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "video_mse_probe.py"), "--crop", "128",
                          "--size", "64", "64", "--frames", str(clip), "--held", str(clip)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "larger than the frames" in run.stderr and "Traceback" not in run.stderr
