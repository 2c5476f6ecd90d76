"""`neuralcodec eval videos` on generated PNG-frame folders and video files."""
from __future__ import annotations

import csv
import json
from fractions import Fraction

import numpy as np
import pytest

from neuralcodec.cli import main
from neuralcodec.eval import video_codecs
from neuralcodec.io import colour


def frames(n: int, h: int = 176, w: int = 192) -> list[np.ndarray]:
    """A moving, textured scene (panning sinusoids plus a sliding box)."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for t in range(n):
        img = np.stack([120 + 60 * np.sin((xx + 3 * t) / (7 + c)) * np.cos((yy - t) / 11) for c in range(3)], -1)
        img[40:90, 20 + 4 * t: 70 + 4 * t] = (200, 60, 40)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def frame_dir(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("video") / "scene"
    d.mkdir()
    for i, f in enumerate(frames(8)):
        Image.fromarray(f).save(d / f"f{i:03d}.png")
    return d


def available_codecs() -> list[str]:
    names = []
    for n in video_codecs.CODECS:
        try:
            video_codecs.get_video_codec(n)
            names.append(n)
        except video_codecs.CodecUnavailable:
            pass
    return names


def test_frame_folder_all_codecs(frame_dir, tmp_path, capsys):
    codecs = available_codecs()
    if not codecs:
        pytest.skip("no PyAV video encoder available")
    out = tmp_path / "out"
    args = ["eval", "videos", str(frame_dir), "--codecs", ",".join(codecs), "--out", str(out),
            "--fps", "25", "--workers", "1"]
    for c in codecs:
        lo, hi = video_codecs.get_video_codec(c).qualities[0], video_codecs.get_video_codec(c).qualities[-1]
        args += ["--qualities", f"{c}={lo:g},{hi:g}"]
    assert main(args) == 0, capsys.readouterr().err
    with open(out / "rows.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(codecs)
    for r in rows:
        assert r["video"] == "scene" and not r["error"]
        y, u, v = (float(r[k]) for k in ("psnr-y", "psnr-u", "psnr-v"))
        assert float(r["psnr-yuv"]) == pytest.approx((6 * y + u + v) / 8)
        assert int(r["frames"]) == 8 and float(r["fps"]) == 25
        assert float(r["bitrate_kbps"]) == pytest.approx(int(r["bytes"]) * 8 * 25 / 8 / 1000)
        assert 20 < float(r["psnr-rgb"]) < 60 and 0.5 < float(r["ms-ssim-rgb"]) <= 1
    for c in codecs:  # the higher-rate point of each codec has more bits and a higher PSNR
        a, b = sorted((r for r in rows if r["codec"] == c), key=lambda r: float(r["bytes"]))
        assert float(a["psnr-yuv"]) < float(b["psnr-yuv"])
        res = json.loads((out / "results" / "scene" / f"{c}.json").read_text())
        assert len(res["results"]["bitrate_kbps"]) == 2 and "psnr-yuv" in res["results"]
    html = (out / "report.html").read_text()
    assert "Video scene" in html and 'class="bd-table"' in html
    assert (out / "plots" / "rd-psnr-yuv.svg").exists()


def test_video_file_input(tmp_path, capsys):
    import av

    if "x264" not in available_codecs():
        pytest.skip("libx264 not in this PyAV build")
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=Fraction(20))
        st.width, st.height, st.pix_fmt = 192, 176, "yuv420p"
        st.options = {"crf": "10"}
        for f in frames(6):
            for p in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    out = tmp_path / "out"
    rc = main(["eval", "videos", str(path), "--codecs", "x264", "--out", str(out),
               "--qualities", "x264=25,35,45", "--metrics", "psnr"])
    assert rc == 0, capsys.readouterr().err
    res = json.loads((out / "results" / "x264.json").read_text())["results"]
    assert len(res["bpp"]) == 3 and "ms-ssim-rgb" not in res
    row = next(csv.DictReader(open(out / "rows.csv")))
    assert row["frames"] == "6" and float(row["fps"]) == 20


def test_missing_encoder_is_one_clear_line(frame_dir, tmp_path, capsys, monkeypatch):
    real = video_codecs._available
    monkeypatch.setattr(video_codecs, "_available", lambda n, m: n != "libx265" and real(n, m))
    rc = main(["eval", "videos", str(frame_dir), "--codecs", "x265", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err
    assert "encoder libx265 not available in this PyAV build" in err
    rc = main(["eval", "videos", str(frame_dir), "--codecs", "h266", "--out", str(tmp_path / "o")])
    assert rc == 1 and "unknown video codec 'h266'" in capsys.readouterr().err


def test_conversion_is_bt709_limited_range():
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    y, u, v = colour.yuv_planes(colour.rgb_to_yuv_frame(red))
    # BT.709: Y = 16 + 219 * 0.2126, Cb = 128 - 112 * 0.2126 / 0.9278, Cr = 240 (BT.601 would give Y = 82)
    assert (y[0, 0], u[0, 0], v[0, 0]) == (63, 102, 240)
    white = np.full((16, 16, 3), 255, np.uint8)
    assert [p[0, 0] for p in colour.yuv_planes(colour.rgb_to_yuv_frame(white))] == [235, 128, 128]
    back = colour.yuv_frame_to_rgb(colour.rgb_to_yuv_frame(red))
    assert np.abs(back.astype(int) - red).max() <= 2


def test_video_rt_adaptive_intra_option(frame_dir, tmp_path, capsys):
    """`eval videos --adaptive-intra` passes the encoder's I/P choice to video-rt and records it
    in the codec's settings (so its cached rows are kept apart from plain ones)."""
    out = tmp_path / "out"
    args = ["eval", "videos", str(frame_dir), "--codecs", "video-rt", "--out", str(out), "--fps", "25",
            "--workers", "1", "--qualities", "video-rt=8", "--max-frames", "4", "--metrics", "psnr"]
    assert main(args + ["--adaptive-intra"]) == 0, capsys.readouterr().err
    res = json.loads((out / "results" / "scene" / "video-rt.json").read_text())
    assert "adaptive_intra=True" in res["description"]
    assert main(args) == 0, capsys.readouterr().err
    res = json.loads((out / "results" / "scene" / "video-rt.json").read_text())
    assert "adaptive_intra" not in res["description"]
    assert len(list((out / "cache").rglob("*.json"))) == 2     # two rows, not one reused
    assert video_codecs.get_video_codec("video-rt", options={"adaptive_intra": True}).adaptive_intra
