"""Video data packing: splits, parts under the size limit, lossless held-out clips, refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from neuralcodec.errors import InputError
from neuralcodec.video.pack import HELD_OUT_DAVIS, Clip, default_plan, pack_video


def _clip_folder(root, name, n, w=96, h=64, seed=0, suffix=".png"):
    d = root / name
    d.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / f"{i:05d}{suffix}")
    return d


def test_default_plan_holds_out_the_named_clips(tmp_path):
    for seq in ("blackswan", HELD_OUT_DAVIS[0]):
        _clip_folder(tmp_path / "davis2016_480p", seq, 3, suffix=".jpg")
    _clip_folder(tmp_path, "hevc_classD_BasketballPass", 3)
    _clip_folder(tmp_path, "vid4_city", 3)
    plan = {c.name: c for c in default_plan(tmp_path, val_frames=2)}
    assert set(plan) == {"davis_blackswan", f"davis_{HELD_OUT_DAVIS[0]}", "hevc_classD_BasketballPass", "vid4_city"}
    assert plan[f"davis_{HELD_OUT_DAVIS[0]}"].held_out and plan["hevc_classD_BasketballPass"].held_out
    assert not plan["davis_blackswan"].held_out and plan["davis_blackswan"].size == (640, 360)
    assert plan["vid4_city"].size == "half" and plan["hevc_classD_BasketballPass"].frames == 2
    with pytest.raises(InputError, match="does not exist"):
        default_plan(tmp_path / "missing")


def test_pack_parts_and_manifests(tmp_path):
    src = tmp_path / "src"
    plan = [Clip(f"train{i}", str(_clip_folder(src, f"t{i}", 4, seed=i)), (64, 48), 0, False) for i in range(3)]
    val = _clip_folder(src, "v", 5, w=48, h=32, seed=9)
    plan.append(Clip("val0", str(val), None, 3, True))
    out = tmp_path / "carry"
    one = pack_video(plan, tmp_path / "one", part_mib=1, train_fmt="webp", log=lambda m: None)
    largest = max(c["bytes"] for doc in one.values() for c in doc["clips"])
    mans = pack_video(plan, out, part_mib=(1.5 * largest + 8192) / 2**20, train_fmt="webp", log=lambda m: None)
    train, held = mans["train"], mans["val"]
    assert len(train["parts"]) >= 2 and [p["dir"] for p in held["parts"]] == ["val-video-01"]
    for doc in (train, held):
        for part in doc["parts"]:
            size = sum(f.stat().st_size for f in (out / part["dir"]).rglob("*") if f.is_file())
            assert size <= mans["train"]["settings"]["part_mib"] * 2**20
            own = json.loads((out / part["dir"] / "MANIFEST.json").read_text())
            assert {c["dir"] for c in own["clips"]} == {c["dir"] for c in doc["clips"] if c["part"] == part["dir"]}
    assert json.loads((out / "val-video-manifest.json").read_text()) == held
    names = sorted(p.name for p in out.glob("video-*/train*"))
    assert names == ["train0", "train1", "train2"]          # every clip whole in one part
    frames = sorted((out / "val-video-01" / "val0").iterdir())
    assert [f.name for f in frames] == ["f001.webp", "f002.webp", "f003.webp"]    # --val-frames
    src_frames = sorted(val.iterdir())
    for a, b in zip(frames, src_frames):                      # held out: lossless
        assert np.array_equal(np.asarray(Image.open(a).convert("RGB")), np.asarray(Image.open(b)))
    assert Image.open(out / "video-01" / train["clips"][0]["dir"] / "f001.webp").size == (64, 48)
    with pytest.raises(InputError, match="already holds"):
        pack_video(plan, out, part_mib=1, log=lambda m: None)
    again = pack_video(plan, out, part_mib=1, force=True, train_fmt="webp", log=lambda m: None)  # one part each
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["val-video-01", "video-01"]
    assert len(again["train"]["parts"]) == 1


def test_pack_errors(tmp_path):
    d = _clip_folder(tmp_path, "one", 1)
    with pytest.raises(InputError, match="fewer than 2 frames"):
        pack_video([Clip("one", str(d), None, 0, True)], tmp_path / "o", log=lambda m: None)
    with pytest.raises(InputError, match="unknown frame format"):
        pack_video([Clip("x", str(_clip_folder(tmp_path, "two", 2)), None, 0, True, "gif")], tmp_path / "o",
                   log=lambda m: None)
    skipped = pack_video([Clip("one", str(d), None, 0, False), Clip("ok", str(tmp_path / "two"), None, 0, False)],
                         tmp_path / "o2", log=lambda m: None)
    assert [s["name"] for s in skipped["train"]["skipped"]] == ["one"]
