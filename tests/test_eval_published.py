"""Evaluation defaults and additions: AVIF 4:4:4, published Kodak curves with BD-rates,
--weights CODEC=FILE, and neuralcodec's own video codec in `eval videos`."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic
from neuralcodec.cli import main
from neuralcodec.eval import published
from neuralcodec.eval.inputs import pixels_digest


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_avif_defaults_to_444_and_records_it():
    from neuralcodec.eval.image_codecs import CodecUnavailable, get_image_codec

    try:
        avif = get_image_codec("avif")
    except CodecUnavailable as exc:
        pytest.skip(str(exc))
    assert avif.settings["subsampling"] == "4:4:4" and avif.settings["speed"] == 6
    assert "subsampling=4:4:4" in avif.describe()
    web = get_image_codec("avif", options={"subsampling": "4:2:0", "speed": 8})
    assert web.settings["subsampling"] == "4:2:0" and web.settings["speed"] == 8
    from neuralcodec.eval.metrics import psnr

    img = np.zeros((64, 64, 3), np.uint8)     # one-pixel colour stripes: only 4:4:4 keeps them
    img[:, 0::2] = (200, 60, 60)
    img[:, 1::2] = (60, 60, 200)
    full = get_image_codec("avif", options={"subsampling": "4:4:4", "speed": 8})
    assert psnr(img, full.decode(full.encode(img, 85))) > psnr(img, web.decode(web.encode(img, 85))) + 3
    with pytest.raises(CodecUnavailable, match="subsampling"):
        get_image_codec("avif", options={"subsampling": "4:1:1"})


def test_shipped_kodak_curves_are_attributed_numbers():
    curves = published.kodak_curves()
    labels = [c.meta["label"] for c in curves]
    assert labels[:2] == ["VTM", "AV1"] and any("bmshj2018-hyperprior" in n for n in labels)
    for c in curves:
        assert c.included and c.meta["published"] and "CompressAI" in c.meta["attribution"]
        assert c.has("bpp") and c.has("psnr-rgb") and c.has("ms-ssim-db-rgb")
        assert np.all(np.diff(c.values["bpp"]) > 0)
    assert len(json.loads(published.KODAK_FILE.read_text())["kodak_pixels"]) == 24


@pytest.fixture()
def fake_kodak(tmp_path, monkeypatch):
    """Three images registered as 'the Kodak set', with one published curve far below them."""
    folder = tmp_path / "kodak"
    folder.mkdir()
    digests = {}
    for i in range(3):
        img = synthetic(176, 184, i, box=50)
        Image.fromarray(img).save(folder / f"k{i}.png")
        digests[f"k{i}"] = pixels_digest(img)
    data = {"attribution": "test numbers", "kodak_pixels": digests, "curves": [
        {"name": "Reference", "source": "test/ref.json",
         "results": {"bpp": [0.3, 0.6, 1.2, 2.4], "psnr-rgb": [27.0, 30.0, 33.0, 36.0],
                     "ms-ssim-rgb": [0.9, 0.94, 0.97, 0.985]}}]}
    monkeypatch.setattr(published, "kodak_data", lambda: data)
    return folder


def test_kodak_reports_carry_published_curves(fake_kodak, tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, err = run(capsys, "eval", "images", fake_kodak, "--codecs", "jpeg", "--out", out,
                          "--qualities", "jpeg=20,50,80,95", "--metrics", "psnr")
    assert rc == 0, err
    assert "BD-rate (psnr-rgb, pchip) of jpeg vs published Kodak results: Reference " in stdout
    html = (out / "report.html").read_text()
    assert 'class="published-bd"' in html and "test numbers" in html and "Reference [published]" in html
    # the published curve can be the anchor
    rc, stdout, err = run(capsys, "eval", "images", fake_kodak, "--codecs", "jpeg", "--out", out,
                          "--qualities", "jpeg=20,50,80,95", "--metrics", "psnr", "--anchor", "Reference")
    assert rc == 0 and "of jpeg vs Reference [published]" in stdout, err
    # turned off, or a subset of the set: no published curves
    rc, stdout, _ = run(capsys, "eval", "images", fake_kodak, "--codecs", "jpeg", "--out", out,
                        "--qualities", "jpeg=20,50,80,95", "--metrics", "psnr", "--no-published")
    assert rc == 0 and "published" not in stdout
    rc, stdout, err = run(capsys, "eval", "images", fake_kodak / "k0.png", fake_kodak / "k1.png",
                          "--codecs", "jpeg", "--out", tmp_path / "o2", "--qualities", "jpeg=20,50,80,95",
                          "--metrics", "psnr")
    assert rc == 0 and "published" not in stdout
    assert "2 of the 3 Kodak images in the inputs; the published Kodak curves" in err
    rc, _, err = run(capsys, "eval", "images", fake_kodak / "k0.png", "--codecs", "jpeg", "--out",
                     tmp_path / "o3", "--anchor", "Reference")
    assert rc == 1 and "is a published Kodak curve, but the inputs are not" in err


def test_eval_takes_weights_for_our_codecs(tmp_path, weights_files, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    Image.fromarray(synthetic(48, 64, 0, box=40)).save(src / "a.png")
    rc, _, err = run(capsys, "eval", "images", src, "--codecs", "gmm-ctx", "--out", tmp_path / "o")
    assert rc == 1 and "--weights gmm-ctx=FILE" in err and "pass --weights FILE" not in err
    out = tmp_path / "o"
    rc, stdout, err = run(capsys, "eval", "images", src, "--codecs", "gmm-ctx,jpeg", "--out", out,
                          "--weights", f"gmm-ctx={weights_files['gmm-ctx']}",
                          "--qualities", "gmm-ctx=1,8", "--qualities", "jpeg=20,90", "--metrics", "psnr")
    assert rc == 0, err
    settings = json.loads((out / "results" / "gmm-ctx.json").read_text())["meta"]["settings"]
    assert settings["weights_file"] == str(weights_files["gmm-ctx"]) and settings["weights"] != "none"
    rc, _, err = run(capsys, "eval", "images", src, "--codecs", "jpeg", "--out", out,
                     "--weights", f"gmm-ctx={weights_files['gmm-ctx']}")
    assert rc == 1 and "--weights names codec(s) not in --codecs: gmm-ctx" in err


def test_eval_videos_runs_our_video_codec(tmp_path, capsys):
    import torch

    from neuralcodec.video.weights import create, save_weights

    torch.manual_seed(0)
    model = create().eval()     # P-frame nets at random, I-frames the installed hyperprior
    model.update()
    weights = tmp_path / "video-rt.safetensors"
    save_weights(model, weights)
    clip = tmp_path / "clip"
    clip.mkdir()
    for t in range(3):
        Image.fromarray(synthetic(48, 64, t, box=30)).save(clip / f"f{t:03d}.png")
    out = tmp_path / "out"
    rc, stdout, err = run(capsys, "eval", "videos", clip, "--codecs", "video-rt", "--out", out,
                          "--qualities", "video-rt=2,8", "--metrics", "psnr", "--weights", f"video-rt={weights}")
    assert rc == 0, err
    res = json.loads((out / "results" / "video-rt.json").read_text())
    r = res["results"]
    assert r["quality"] == [2.0, 8.0] and r["bpp"][0] < r["bpp"][1] and r["psnr-rgb"][0] < r["psnr-rgb"][1]
    assert all(np.isfinite(r[k]).all() for k in ("psnr-y", "psnr-u", "psnr-v", "psnr-yuv"))
    settings = res["meta"]["settings"]
    assert settings["rate"].startswith("whole .ncv file") and settings["weights_file"] == str(weights)
    rc, _, err = run(capsys, "eval", "videos", clip, "--codecs", "video-rtx", "--out", tmp_path / "o2")
    assert rc == 1 and "video-rt" in err      # the list of codecs names ours
    rc, _, err = run(capsys, "eval", "videos", clip, "--codecs", "x264", "--out", tmp_path / "o3",
                     "--weights", f"x264={weights}")
    assert rc == 1 and "--weights is for neuralcodec's codecs, not x264" in err
