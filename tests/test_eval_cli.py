"""`neuralcodec eval images`: outputs, resume from the cache, and one-line errors on bad input."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralcodec.cli import main
from conftest import synthetic as shared_synthetic

SRC = Path(__file__).resolve().parents[1] / "src"


def synthetic(h: int, w: int, seed: int = 0) -> np.ndarray:
    return shared_synthetic(h, w, seed, box=50)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("imgs")
    for i, (h, w) in enumerate([(176, 200), (192, 168), (170, 171)]):
        Image.fromarray(synthetic(h, w, i)).save(d / f"im{i}.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    return d


def far_curve(tmp_path) -> Path:
    """A published-style curve far above anything measured (no PSNR overlap)."""
    p = tmp_path / "far.json"
    p.write_text(json.dumps({"name": "far", "description": "test", "results": {
        "bpp": [0.1, 0.2, 0.4, 0.8], "psnr-rgb": [70, 72, 74, 76], "ms-ssim-rgb": [0.99991] * 4}}))
    return p


def run(args, capsys):
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_images_end_to_end_outputs(image_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["eval", "images", str(image_dir), "--codecs", "jpeg,webp", "--out", str(out),
            "--qualities", "jpeg=15,40,70,90", "--qualities", "webp=10,40,70,90",
            "--workers", "2", "--include-results", str(far_curve(tmp_path))]
    rc, stdout, err = run(args, capsys)
    assert rc == 0, err
    assert "skipping" in err and "broken.png" in err
    assert "BD-rate (psnr-rgb, pchip) of webp vs jpeg" in stdout
    for codec in ("jpeg", "webp"):
        res = json.loads((out / "results" / f"{codec}.json").read_text())
        r = res["results"]
        assert res["name"] == codec and len(r["bpp"]) == 4
        for key in ("psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"):
            assert len(r[key]) == 4
        assert r["bpp"] == sorted(r["bpp"]) and r["psnr-rgb"] == sorted(r["psnr-rgb"])
    with open(out / "rows.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 8 and {r["image"] for r in rows} == {"im0.png", "im1.png", "im2.png"}
    one = next(r for r in rows if r["image"] == "im0.png" and r["codec"] == "jpeg" and r["quality"] == "40.0")
    assert float(one["bpp"]) == pytest.approx(int(one["bytes"]) * 8 / (176 * 200))
    for metric in ("psnr-rgb", "ms-ssim-db-rgb"):
        for ext in ("png", "svg"):
            assert (out / "plots" / f"rd-{metric}.{ext}").stat().st_size > 1000
    html = (out / "report.html").read_text()
    for marker in ('class="rd-plot"', 'class="bd-table"', 'class="per-image"', 'class="times"',
                   'class="crop"', "do not overlap", "broken.png"):
        assert marker in html, marker
    assert "http://" not in html and "https://" not in html  # self-contained


def test_resume_uses_the_cache(image_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    args = ["eval", "images", str(image_dir / "im0.png"), str(image_dir / "im1.png"),
            "--codecs", "jpeg", "--out", str(out), "--qualities", "jpeg=20,50,80",
            "--metrics", "psnr"]
    assert run(args, capsys)[0] == 0
    first = json.loads((out / "results" / "jpeg.json").read_text())["results"]
    cached = sorted((out / "cache" / "jpeg").iterdir())
    assert len(cached) == 6
    from neuralcodec.eval.image_codecs import PillowCodec

    real_encode = PillowCodec.encode

    def boom(self, pixels, quality):
        if pixels.shape[:2] == (64, 64):  # the codec probe before the run
            return real_encode(self, pixels, quality)
        raise AssertionError("encoder called although the result is cached")
    monkeypatch.setattr(PillowCodec, "encode", boom)
    cached[0].unlink()  # as if interrupted before the last result: only that one reruns
    rc, _, err = run(args, capsys)
    assert rc == 0, err
    assert "encoder called" in err  # the one missing run was attempted (and failed here)
    cached[0].unlink(missing_ok=True)
    monkeypatch.undo()
    rc, _, err = run(args, capsys)
    again = json.loads((out / "results" / "jpeg.json").read_text())["results"]
    assert rc == 0 and again["bpp"] == first["bpp"] and again["psnr-rgb"] == first["psnr-rgb"]


def one_error_line(rc: int, err: str, pattern: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 1, err
    assert len(lines) == 1 and lines[0].startswith("neuralcodec: error:"), err
    assert pattern in lines[0], lines[0]


@pytest.mark.parametrize("case, pattern", [
    ("empty", "no images found"),
    ("missing", "does not exist"),
    ("unreadable", "could be read"),
    ("codec", "unknown codec 'nosuchcodec'"),
    ("metric", "unknown metric"),
    ("anchor", "--anchor 'webp'"),
    ("include", "not a CompressAI results file"),
])
def test_bad_input_is_one_clear_line(case, pattern, image_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{}")
    inputs = {"empty": str(empty), "missing": str(tmp_path / "nope"),
              "unreadable": str(image_dir / "broken.png")}.get(case, str(image_dir / "im0.png"))
    args = ["eval", "images", inputs, "--codecs", "nosuchcodec" if case == "codec" else "jpeg",
            "--out", str(tmp_path / "o")]
    args += {"metric": ["--metrics", "psnr,vmaf"], "anchor": ["--anchor", "webp"],
             "include": ["--include-results", str(bad_json)]}.get(case, [])
    rc, _, err = run(args, capsys)
    one_error_line(rc, err, pattern)


def test_missing_codec_library_is_one_clear_line(image_dir, tmp_path, capsys, monkeypatch):
    _avif = pytest.importorskip("PIL._avif", reason="this Pillow has no AVIF module")
    monkeypatch.setattr(_avif, "encoder_codec_available", lambda name: False)
    rc, _, err = run(["eval", "images", str(image_dir / "im0.png"), "--codecs", "jpeg,avif",
                      "--out", str(tmp_path / "o")], capsys)
    one_error_line(rc, err, "no libaom encoder")


def test_real_cli_exit_status(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "neuralcodec", "eval", "images", str(tmp_path / "empty"),
                           "--codecs", "jpeg", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "no images found" in proc.stderr


def test_interrupted_parallel_run_resumes(image_dir, tmp_path, capsys, monkeypatch):
    from neuralcodec.eval import runner

    out = tmp_path / "out"
    args = ["eval", "images", str(image_dir), "--codecs", "jpeg,webp", "--out", str(out),
            "--metrics", "psnr", "--workers", "2", "--qualities", "jpeg=20,60", "--qualities", "webp=20,60"]
    real_put = runner.ResultCache.put
    seen = []

    def put_then_interrupt(self, path, row):
        real_put(self, path, row)
        seen.append(path)
        if len(seen) == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(runner.ResultCache, "put", put_then_interrupt)
    assert main(args) == 130  # the CLI's "interrupted"
    assert len(list((out / "cache").rglob("*.json"))) == 3
    monkeypatch.undo()
    rc, _, err = run(args, capsys)
    assert rc == 0, err
    assert len(list((out / "cache").rglob("*.json"))) == 3 * 4


def test_results_files_are_read_by_compressai_plot(image_dir, tmp_path, capsys):
    plot = pytest.importorskip("compressai.utils.plot.__main__")
    out = tmp_path / "out"
    assert main(["eval", "images", str(image_dir / "im0.png"), "--codecs", "jpeg", "--out", str(out),
                 "--qualities", "jpeg=20,50,80"]) == 0
    ours = json.loads((out / "results" / "jpeg.json").read_text())["results"]
    for metric in ("psnr-rgb", "ms-ssim-rgb"):
        parsed = plot.parse_json_file(str(out / "results" / "jpeg.json"), metric)
        assert list(parsed["xs"]) == ours["bpp"] and len(parsed["ys"]) == 3
