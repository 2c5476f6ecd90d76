"""What the CLI says: unreachable targets, achieved PSNR, 16-bit inputs, video/image bitstream
names, FFmpeg errors, info on streamed videos, missing optional packages, the demo's files."""
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import make_image
from neuralcodec.cli import main
from neuralcodec.io.images import scale_16_to_8


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def png(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(make_image(40, 56)).save(path)
    return path


def test_unreachable_targets_are_said(tmp_path, png, weights_files, capsys):
    w = weights_files["factorized"]
    code, out, err = _run(capsys, "encode", png, "-o", tmp_path / "a.ncb", "--weights", w,
                          "--target-bpp", "0.01", "--device", "cpu")
    assert code == 0 and (tmp_path / "a.ncb").exists()
    assert "--target-bpp 0.01 is not reachable" in err and "lowest quality (1)" in err and "bpp" in err
    code, out, err = _run(capsys, "encode", png, "-o", tmp_path / "b.ncb", "--weights", w,
                          "--target-psnr", "60", "--device", "cpu")
    assert code == 0 and "--target-psnr 60 is not reachable" in err and "highest quality (8)" in err
    assert "PSNR" in out and " dB" in err
    code, out, err = _run(capsys, "encode", png, "-o", tmp_path / "c.ncb", "--weights", w,
                          "--target-psnr", "5", "--device", "cpu")
    assert code == 0 and "not reachable" not in err
    assert "quality 1.000, PSNR" in out     # the achieved PSNR is printed


def test_16bit_png_encodes_as_its_scaled_8bit_version(tmp_path, weights_files, capsys):
    ramp = (np.linspace(0, 65535, 48 * 40).reshape(40, 48)).astype(np.uint16)
    src16, src8 = tmp_path / "g16.png", tmp_path / "g8.png"
    Image.fromarray(ramp).save(src16)
    Image.fromarray(np.repeat(scale_16_to_8(ramp)[..., None], 3, axis=2)).save(src8)
    w = weights_files["hyperprior"]
    code, _, err = _run(capsys, "encode", src16, "-o", tmp_path / "a.ncb", "--weights", w, "--device", "cpu")
    assert code == 0 and "16-bit grayscale; scaled to 8 bits" in err
    assert _run(capsys, "encode", src8, "-o", tmp_path / "b.ncb", "--weights", w, "--device", "cpu")[0] == 0
    assert (tmp_path / "a.ncb").read_bytes() == (tmp_path / "b.ncb").read_bytes()


def test_fake_video_error_has_no_errno(tmp_path, capsys):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"this is not a video" * 20)
    code, _, err = _run(capsys, "encode", fake, "-o", tmp_path / "f.ncv")
    assert code == 1 and "cannot read video" in err and "Errno" not in err and len(err.splitlines()) == 1


def test_info_counts_frames_of_a_streamed_video(tmp_path, capsys):
    from neuralcodec.container import Header, Substream, pack

    header = Header(codec="video-rt", weights_hash=bytes(32), kind="video", width=16, height=16, frames=0,
                    fps=(25, 1), quality=4.0, params={"intra_period": 32})
    path = tmp_path / "v.ncv"
    path.write_bytes(pack(header, [Substream(n, b"\x01" * 8) for n in ("I", "P", "P")]))
    code, out, _ = _run(capsys, "info", path)
    assert code == 0
    assert "frames:     3 (counted; the header leaves the count open) @ 25/1 fps" in out
    assert "unknown" not in out


def test_missing_optional_package_names_the_extra(tmp_path, monkeypatch, capsys):
    calib = tmp_path / "calib"
    calib.mkdir()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code, _, err = _run(capsys, "export", "onnx", "-o", tmp_path / "e", "--int8", "--calibration", calib)
    assert code == 1 and len(err.splitlines()) == 1
    assert "needs the Python package 'onnxruntime'" in err and "neuralcodec[cpu]" in err
    # a missing package found only while running is one line too (not "internal error")
    import neuralcodec.cli.cmd_info as cmd_info

    def needs_av(args):
        raise ModuleNotFoundError("No module named 'av'", name="av")
    monkeypatch.setattr(cmd_info, "run", needs_av)
    code, _, err = _run(capsys, "info", tmp_path / "x.ncb")
    assert code == 1 and err.startswith("neuralcodec: error: neuralcodec info needs the Python package 'av'")
    assert "pip install av" in err and "internal error" not in err


def test_demo_leaves_no_temporary_folder(tmp_path, monkeypatch, capsys):
    import tempfile

    from neuralcodec.codecs.registry import shipped_weights

    if shipped_weights("hyperprior") is None:
        pytest.skip("needs the shipped hyperprior weights")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    code, out, _ = _run(capsys, "demo", "--device", "cpu")
    assert code == 0 and "PSNR" in out and "--out DIR" in out
    assert list(scratch.iterdir()) == []
    code, out, _ = _run(capsys, "demo", "--device", "cpu", "--out", tmp_path / "keep")
    assert code == 0 and (tmp_path / "keep" / "sample.ncb").exists()


def test_video_progress_knows_the_total(tmp_path):
    """The encode progress bar gets a total (hence an ETA): the container's frame count, or
    --frames when it is smaller."""
    av = pytest.importorskip("av")
    from neuralcodec.video.io import probe

    path = tmp_path / "t.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 30 * i, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    assert probe(path).estimated_frames == 6
    assert probe(path, 4).estimated_frames == 4 and probe(path, 10).estimated_frames == 6
    assert probe(path).frames == 0      # the header count stays open for files (it must be exact)
