"""Tests of `neuralcodec info`."""
from __future__ import annotations

import hashlib
import json

import pytest

from neuralcodec import container as C
from neuralcodec.cli import main

HASH = hashlib.sha256(b"weights").digest()


@pytest.fixture
def image_file(tmp_path):
    header = C.Header(codec="hyperprior", weights_hash=HASH, width=768, height=512,
                      quality=0.25, params={"lmbda": 0.0018})
    path = tmp_path / "img.ncb"
    path.write_bytes(C.pack(header, [C.Substream("y", b"y" * 100), C.Substream("z", b"zz"),
                                     C.Substream("enh", b"e" * 50, truncatable=True)]))
    return path


def test_info_text(image_file, capsys):
    assert main(["info", str(image_file)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    for text in ("codec:      hyperprior", HASH.hex()[:12], "kind:       image",
                 "768x512 rgb24", "quality:    0.25", '"lmbda": 0.0018', "substreams: 3",
                 f"({image_file.stat().st_size} bytes)", "truncatable"):
        assert text in out
    assert "frames:" not in out
    lines = [line.split() for line in out.splitlines() if line.startswith("  ")]
    assert [(ln[1], ln[2]) for ln in lines] == [("y", "100"), ("z", "2"), ("enh", "50")]


def test_info_json(image_file, capsys):
    assert main(["info", "--json", str(image_file)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["header"]["weights_hash"] == HASH.hex()
    assert info["file_bytes"] == image_file.stat().st_size and info["complete"]
    assert [s["bytes"] for s in info["substreams"]] == [100, 2, 50]
    assert info["substreams"][2]["truncatable"] and not info["substreams"][2]["truncated"]


def test_info_video(tmp_path, capsys):
    header = C.Header(codec="ssf", weights_hash=HASH, kind="video", width=64, height=32,
                      frames=120, fps=(30000, 1001), pixel_format="yuv420p")
    path = tmp_path / "v.ncb"
    with C.ContainerWriter(path, header) as w:
        w.add("frame", b"abc")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "frames:     120 @ 30000/1001 fps (29.970)" in out and "yuv420p" in out


def test_info_truncated_progressive(image_file, capsys):
    data = image_file.read_bytes()
    image_file.write_bytes(data[:-20])
    assert main(["info", str(image_file)]) == 0
    out = capsys.readouterr().out
    assert "end record missing" in out
    assert "truncated: 39 of 50 bytes, CRC not checked" in out
    cut = image_file.with_name("cut.ncb")
    cut.write_bytes(C.truncate_container(data, len(data) - 10))
    assert main(["info", str(cut)]) == 0
    out = capsys.readouterr().out
    assert "truncatable, truncated" in out and "end record missing" not in out


@pytest.mark.parametrize("mutate", [
    lambda d: d[:-60],                        # cut inside a non-truncatable stream
    lambda d: d[:30],                         # cut inside the header
    lambda d: b"JUNK" + d[4:],                # bad magic
    lambda d: d[:8] + b"\x09" + d[9:],        # newer major version
    lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:],  # bit flip
    lambda d: b"",                            # empty file
])
def test_info_corrupt_files(image_file, capsys, mutate):
    image_file.write_bytes(mutate(image_file.read_bytes()))
    assert main(["info", str(image_file)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("neuralcodec: error: ") and err.count("\n") == 1


def test_info_missing_file_and_directory(tmp_path, capsys):
    for target, why in ((tmp_path / "nope.ncb", "No such file"), (tmp_path, "directory")):
        assert main(["info", str(target)]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1
        assert err.startswith(f"neuralcodec: error: cannot read {target}") and why in err


def test_info_newer_version_message(image_file, capsys):
    data = image_file.read_bytes()
    image_file.write_bytes(data[:8] + b"\x02" + data[9:])
    assert main(["info", str(image_file)]) == 1
    assert "written by a newer neuralcodec" in capsys.readouterr().err
