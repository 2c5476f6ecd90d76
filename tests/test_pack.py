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


def test_pack_parts_and_kept_jpegs(tmp_path, sources):
    """--part-mib splits the whole set into balanced parts under the part budget (a training run
    on the parts' parent folder sees every image); --keep-jpeg copies high-quality JPEGs."""
    hq = tmp_path / "hq"
    hq.mkdir()
    for i in range(3):
        Image.fromarray(noisy(150, 200, 20 + i)).save(hq / f"h{i}.jpg", quality=95)
    srcs = sources + [str(hq)]
    man = pack(srcs, str(tmp_path / "o"), max_mib=5, min_side=48, keep_jpeg=True, part_mib=0.12,
               log=lambda m: None)
    out = tmp_path / "o"
    parts = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert parts == [p["dir"] for p in man["parts"]] and len(parts) >= 2
    for p in parts:
        size = sum(f.stat().st_size for f in (out / p).rglob("*") if f.is_file())
        assert size <= 0.12 * 2**20
        own = json.loads((out / p / "MANIFEST.json").read_text())
        assert own["part"] == int(p[-2:]) and own["of"] == len(parts)
    files = {i["file"]: i for i in man["images"]}
    assert len(files) == 10 and all((out / f).is_file() for f in files)
    # high-quality JPEGs are the source bytes; q75 ones are still halved and re-encoded
    kept = [i for i in files.values() if i["file"].endswith(".jpg")]
    assert len(kept) == 3 and all(i["copied"] and i["scale"] == 1.0 for i in kept)
    for i in kept:
        assert (out / i["file"]).read_bytes() == Path(i["source"]).read_bytes()
    assert all(i["scale"] <= 0.5 and not i["copied"] for i in files.values() if "/lowq/" in "/" + i["file"])
    from neuralcodec.train.data import find_images
    assert len(find_images([str(out)])) == 10
    # balanced: no part holds more than ~2/3 of the bytes
    assert max(p["bytes"] for p in man["parts"]) < 0.67 * sum(p["bytes"] for p in man["parts"])


def test_split_parts_is_balanced_and_bounded():
    from neuralcodec.errors import InputError
    from neuralcodec.train.pack import split_parts
    sizes = [9, 7, 6, 5, 5, 4, 3, 1]
    parts = split_parts(sizes, 15)
    assert sorted(i for p in parts for i in p) == list(range(8))
    assert all(sum(sizes[i] for i in p) <= 15 for p in parts) and len(parts) == 3
    with pytest.raises(InputError):
        split_parts([20], 15)
