"""The image CLI: encode/decode/info/models and every error case (one line, exit 1)."""
import numpy as np
import pytest
from PIL import Image

from conftest import make_image
from neuralcodec.cli import main


@pytest.fixture()
def png(tmp_path):
    path = tmp_path / "in.png"
    Image.fromarray(make_image(40, 56)).save(path)
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_encode_decode_info(tmp_path, png, weights_files, capsys):
    ncb, dec = tmp_path / "a.ncb", tmp_path / "a.png"
    code, out, _ = _run(capsys, "encode", png, "-o", ncb, "--weights", weights_files["hyperprior"],
                        "--quality", "3.5", "--device", "cpu", "--threads", "1")
    assert code == 0 and "bpp" in out and ncb.stat().st_size > 0
    code, out, _ = _run(capsys, "decode", ncb, "-o", dec, "--weights", weights_files["hyperprior"],
                        "--device", "cpu")
    assert code == 0
    assert np.asarray(Image.open(dec)).shape == (40, 56, 3)
    code, out, _ = _run(capsys, "info", ncb)
    assert code == 0 and "hyperprior" in out


def test_target_bpp_stays_under_target(tmp_path, png, weights_files, capsys):
    ncb = tmp_path / "t.ncb"
    code, out, _ = _run(capsys, "encode", png, "-o", ncb, "--weights", weights_files["gmm-ctx"],
                        "--target-bpp", "4", "--device", "cpu")
    assert code == 0
    assert 8 * ncb.stat().st_size / (40 * 56) <= 4 or "quality 1.000" in out


def test_grayscale_and_rgba_are_converted_with_warning(tmp_path, weights_files, capsys):
    for mode in ("L", "RGBA"):
        src = tmp_path / f"{mode}.png"
        Image.fromarray(make_image(16, 16)).convert(mode).save(src)
        code, _, err = _run(capsys, "encode", src, "-o", tmp_path / f"{mode}.ncb",
                            "--weights", weights_files["factorized"], "--device", "cpu")
        assert code == 0 and "converting to RGB" in err


def _assert_one_line_error(code, err):
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("neuralcodec: error:"), err
    assert "Traceback" not in err


def test_error_cases(tmp_path, png, weights_files, capsys):
    ncb = tmp_path / "ok.ncb"
    assert _run(capsys, "encode", png, "-o", ncb, "--weights", weights_files["hyperprior"],
                "--device", "cpu")[0] == 0
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    corrupt = tmp_path / "corrupt.ncb"
    blob = bytearray(ncb.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(blob))
    cases = [
        ("encode", tmp_path / "missing.png", "-o", tmp_path / "x.ncb"),
        ("encode", garbage, "-o", tmp_path / "x.ncb"),
        ("encode", png, "-o", tmp_path / "x.ncb", "--model", "no-such-codec"),
        ("encode", png, "-o", tmp_path / "x.ncb", "--quality", "12", "--weights", weights_files["hyperprior"]),
        ("decode", corrupt, "-o", tmp_path / "x.png", "--weights", weights_files["hyperprior"]),
        ("decode", ncb, "-o", tmp_path / "x.png", "--weights", weights_files["gmm-ctx"]),
        ("decode", ncb, "-o", tmp_path / "x.xyz", "--weights", weights_files["hyperprior"]),
        ("decode", png, "-o", tmp_path / "x.png"),
        ("info", garbage),
        ("encode", png, "-o", png, "--weights", weights_files["hyperprior"]),
        ("encode", png, "-o", tmp_path / "x.ncb", "--weights", garbage),
    ]
    before = png.read_bytes()
    for argv in cases:
        code, _, err = _run(capsys, *argv, "--device", "cpu") if argv[0] != "info" else _run(capsys, *argv)
        _assert_one_line_error(code, err)
    assert png.read_bytes() == before
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.xyz").exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())   # no temp files left


def test_models_lists_codecs(capsys):
    code, out, _ = _run(capsys, "models")
    assert code == 0
    for name in ("factorized", "hyperprior", "gmm-ctx"):
        assert name in out


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "neuralcodec" in capsys.readouterr().out


def test_real_cli_round_trip_prints_no_warnings(tmp_path, png, weights_files):
    """The installed entry point's stderr carries no dependency warnings on a normal run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src"
    env = dict(os.environ, PYTHONPATH=str(src) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTHONWARNINGS", None)
    ncb = tmp_path / "w.ncb"
    for argv in (["encode", str(png), "-o", str(ncb)], ["decode", str(ncb), "-o", str(tmp_path / "w.png")]):
        proc = subprocess.run([sys.executable, "-m", "neuralcodec", *argv, "--weights",
                               str(weights_files["hyperprior"]), "--device", "cpu"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "Warning" not in proc.stderr, proc.stderr
