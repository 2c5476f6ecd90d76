"""pack-data: budget, determinism, JPEG handling, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuralcodec.cli import main
from neuralcodec.train.pack import jpeg_quality, pack


def noisy(h, w, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / (5 + c + seed)) * np.cos(yy / (7 - c)) for c in range(3)], -1)
    return np.clip(128 + 70 * base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture()
def sources(tmp_path):
    a, b = tmp_path / "clean", tmp_path / "lowq"
    (a / "sub").mkdir(parents=True)
    b.mkdir()
    for i in range(4):
        Image.fromarray(noisy(120 + 10 * i, 160, i)).save(a / ("sub" if i == 3 else ".") / f"p{i}.png")
    Image.fromarray(noisy(40, 60, 9)).save(a / "tiny.png")  # short side < --min-side: skipped
    (a / "SOURCES.md").write_text("attribution\n")
    for i in range(3):
        Image.fromarray(noisy(128, 192, 10 + i)).save(b / f"j{i}.jpg", quality=75)
    return [str(a), str(b)]


def tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_pack_budget_and_determinism(tmp_path, sources):
    m1 = pack(sources, str(tmp_path / "o1"), max_mib=0.35, min_side=48, log=lambda m: None)
    m2 = pack(sources, str(tmp_path / "o2"), max_mib=0.35, min_side=48, workers=2, log=lambda m: None)
    t1, t2 = tree(tmp_path / "o1"), tree(tmp_path / "o2")
    assert t1 == t2 and m1 == m2
    assert sum(map(len, t1.values())) <= 0.35 * 2**20
    man = json.loads(t1["MANIFEST.json"])
    assert man["count"] == 7 and man["sources"][0]["skipped_small"] == ["tiny.png"]
    assert "clean/sub/p3.webp" in t1 and "clean/SOURCES.md" in t1
    assert [i["file"] for i in man["images"]][:2] == ["clean/p0.webp", "clean/p1.webp"]
    lowq = [i for i in man["images"] if i["file"].startswith("lowq/")]
    assert all(abs(i["jpeg_quality"] - 75) < 3 and i["scale"] <= 0.5 for i in lowq)  # q75 JPEGs halved
    assert man["total_bytes"] == sum(len(v) for k, v in t1.items() if k != "MANIFEST.json")
    img = Image.open(tmp_path / "o1" / "clean" / "p0.webp")
    assert img.format == "WEBP" and min(img.size) >= 48


def test_pack_shrinks_then_drops(tmp_path, sources):
    big = pack(sources, str(tmp_path / "big"), max_mib=5, min_side=48, log=lambda m: None)
    assert all(i["scale"] == 1.0 for i in big["images"] if i["file"].startswith("clean/"))
    small = pack(sources, str(tmp_path / "small"), max_mib=0.06, min_side=64, fmt="png", log=lambda m: None)
    assert 0 < small["count"] < 7 and sum(len(s["dropped"]) for s in small["sources"]) == 7 - small["count"]
    assert sum(p.stat().st_size for p in (tmp_path / "small").rglob("*") if p.is_file()) <= 0.06 * 2**20
    assert all(min(i["size"]) == 64 for i in small["images"])


def test_jpeg_quality_estimate(tmp_path):
    for q in (50, 75, 95):
        Image.fromarray(noisy(32, 32, 1)).save(tmp_path / f"q{q}.jpg", quality=q)
        assert abs(jpeg_quality(Image.open(tmp_path / f"q{q}.jpg")) - q) < 2


def test_pack_cli_errors(tmp_path, sources, capsys):
    assert main(["pack-data", str(tmp_path / "none"), "-o", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert main(["pack-data", *sources, "-o", str(tmp_path / "full")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not empty" in err
    assert main(["pack-data", *sources, "-o", str(tmp_path / "ok"), "--max-mib", "1", "--min-side", "48",
                 "--workers", "1"]) == 0
    assert (tmp_path / "ok" / "MANIFEST.json").is_file()
