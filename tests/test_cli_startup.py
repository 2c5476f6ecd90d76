"""Start-up: `--help`, `info`, `truncate` and every mistake in arguments or files are answered
without importing PyTorch (a 5-10 s import), and the torch-free codec catalogue matches the
registries. The timings themselves are measured outside the tests (docs: README)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SRC = Path(__file__).resolve().parents[1] / "src"

# Runs the real entry point (python -m neuralcodec) and reports, at exit, whether torch
# (or compressai) was imported.
_PROBE = """
import atexit, runpy, sys
def report():
    heavy = sorted(m for m in ("torch", "compressai") if m in sys.modules)
    print("HEAVY:" + ",".join(heavy), file=sys.stderr)
atexit.register(report)
sys.argv = ["neuralcodec", *sys.argv[1:]]
runpy.run_module("neuralcodec", run_name="__main__", alter_sys=True)
"""


def run_cli(*argv, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _PROBE, *map(str, argv)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)
    lines = proc.stderr.splitlines()
    heavy = next(line for line in reversed(lines) if line.startswith("HEAVY:"))[6:]
    return proc.returncode, proc.stdout, "\n".join(x for x in lines if not x.startswith("HEAVY:")), heavy


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A real image bitstream (written with the container alone), a PNG and a folder."""
    from neuralcodec.container import Header, Substream, pack

    d = tmp_path_factory.mktemp("startup")
    header = Header(codec="hyperprior", weights_hash=bytes(32), kind="image", width=8, height=8,
                    quality=4.0, params={"tiles": 1})
    (d / "a.ncb").write_bytes(pack(header, [Substream("y.0", b"\x00" * 16)]))
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "a.png")
    (d / "imgs").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "imgs" / "b.png")
    return d


def test_info_and_help_do_not_import_torch(files):
    rc, out, err, heavy = run_cli("info", files / "a.ncb")
    assert rc == 0 and "codec:      hyperprior" in out, err
    assert heavy == ""
    rc, out, err, heavy = run_cli("--help")
    assert rc == 0 and "encode" in out and heavy == ""
    for command in ("encode", "decode", "eval", "train", "train-video", "export", "truncate"):
        rc, out, _, heavy = run_cli(command, "--help")
        assert rc == 0 and "usage" in out and heavy == "", command


@pytest.mark.parametrize("argv,message", [
    (["encode", "nope.png", "-o", "x.ncb"], "input nope.png not found"),
    (["encode", "a.png", "-o", "x.ncb", "--model", "nope"], "unknown codec 'nope'"),
    (["encode", "a.png", "-o", "x.ncb", "--model", "video-rt"], "is a video codec"),
    (["encode", "a.png", "-o", "x.ncb", "--quality", "12"], "quality must be in [1, 8]"),
    (["encode", "a.png", "-o", "x.ncb", "--target-bpp", "-1"], "--target-bpp must be a positive"),
    (["encode", "a.png", "-o", "x.ncv"], ".ncv is the extension of video bitstreams"),
    (["encode", "a.png", "-o", "a.png"], "would overwrite the input"),
    (["encode", "a.png", "-o", "x.ncb", "--threads", "0"], "--threads must be at least 1"),
    (["encode", "a.png", "-o", "x.ncb", "--weights", "missing.safetensors"], "not found"),
    (["encode", "a.png", "-o", "x.ncb", "--max-pixels", "10"], "above the limit of 10 pixels"),
    (["encode", "imgs", "-o", "v.ncv", "--frames", "0"], "--frames must be at least 1"),
    (["encode", "imgs", "-o", "v.ncb"], ".ncb is the extension of image bitstreams"),
    (["encode", "imgs", "-o", "v.ncv", "--model", "hyperprior"], "is an image codec"),
    (["decode", "nope.ncb", "-o", "x.png"], "input nope.ncb not found"),
    (["decode", "a.ncb", "-o", "x.xyz"], "unsupported output format .xyz"),
    (["decode", "a.ncb", "-o", "x.png", "--bytes", "10"], "need a progressive codec"),
    (["decode", "a.png", "-o", "x.png"], "not a neuralcodec"),
    (["truncate", "a.ncb", "-o", "t.ncb", "--bytes", "10"], "not a progressive stream"),
    (["export", "onnx", "--model", "nope", "-o", "e"], "unknown codec 'nope'"),
    (["eval", "images", "nope", "--codecs", "jpeg", "--out", "o"], "input nope does not exist"),
    (["eval", "images", "imgs", "--codecs", "jpeg,hyperprior", "--out", "o", "--metrics", "x"],
     "unknown metric"),
    (["eval", "images", "imgs", "--codecs", "hyperprior", "--out", "o", "--weights", "x"],
     "--weights expects CODEC=FILE"),
    (["train", "--codec", "nope", "--data", "imgs", "--out", "r"], "unknown codec 'nope'"),
    (["train", "--codec", "hyperprior", "--data", "nope", "--out", "r"], "does not exist"),
    (["train-video", "--out", "r", "--video", "nope"], "training data nope does not exist"),
])
def test_mistakes_are_one_line_without_torch(files, argv, message):
    rc, out, err, heavy = run_cli(*argv, cwd=files)
    assert rc == 1, (out, err)
    assert err.startswith("neuralcodec: error:") and len(err.splitlines()) == 1, err
    assert message in err, err
    assert heavy == "", f"{argv} imported {heavy}"


def test_catalogue_matches_the_registries():
    from neuralcodec.codecs import catalog, registry
    from neuralcodec.video import weights as video_weights

    assert sorted(catalog.IMAGE_CODECS + catalog.IMPORTED_CODECS) == registry.available()
    assert list(catalog.VIDEO_CODECS) == video_weights.available()
    assert catalog.DEFAULT_CODEC == registry.DEFAULT_CODEC
    assert catalog.DEFAULT_VIDEO_CODEC == video_weights.DEFAULT_VIDEO_CODEC
    for name in catalog.IMAGE_CODECS:   # progressive = decodes prefixes (has decode_image)
        assert hasattr(registry.CODECS[name], "decode_image") == (name in catalog.PROGRESSIVE_CODECS)


def test_help_names_the_models_and_both_bitstream_kinds(files):
    from neuralcodec.codecs import catalog

    rc, out, _, _ = run_cli("encode", "--help")
    text = " ".join(out.split()).replace("- ", "-")    # argparse wraps after hyphens
    for name in (*catalog.IMAGE_CODECS, *catalog.VIDEO_CODECS, "default hyperprior"):
        assert name in text
    assert "--max-pixels" in out
    for command in ("decode", "info"):
        rc, out, _, _ = run_cli(command, "--help")
        assert ".ncv" in out and ".ncb" in out, command


def test_models_json_lists_every_codec():
    from neuralcodec.cli import main

    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["models", "--json"]) == 0
    from neuralcodec.codecs import catalog

    rows = {r["name"]: r for r in json.loads(buf.getvalue())["codecs"]}
    assert set(rows) == set(catalog.IMAGE_CODECS) | set(catalog.IMPORTED_CODECS) | set(catalog.VIDEO_CODECS)
    assert rows["hyperprior"]["default"] and rows["hyperprior"]["params"] > 1e6
    assert rows["video-rt"]["kind"] == "video" and rows["gmm-ctx"]["weights"] is None
    if rows["hyperprior"]["weights"]:
        assert rows["hyperprior"]["weights"]["bytes"] > 0
