"""Image codecs of the evaluation: classical round trips and the neuralcodec adapter (fake API)."""
from __future__ import annotations

import json
import sys
import types
import zlib

import numpy as np
import pytest

import neuralcodec.codecs
from neuralcodec.cli import main
from neuralcodec.eval.image_codecs import CLASSICAL, CodecUnavailable, get_image_codec
from conftest import synthetic




@pytest.mark.parametrize("name", CLASSICAL)
def test_classical_codec_round_trip(name):
    try:
        codec = get_image_codec(name)
    except CodecUnavailable as exc:
        pytest.skip(str(exc))
    img = synthetic(48, 64)
    sizes = []
    for q in (codec.qualities[0], codec.qualities[-1]):
        data = codec.encode(img, q)
        rec = codec.decode(data)
        assert rec.shape == img.shape and rec.dtype == np.uint8
        sizes.append(len(data))
    assert sizes[0] < sizes[1]  # the sweep runs from low to high rate
    assert codec.settings and name in codec.describe()


def fake_api(fail_width: int | None = None) -> types.ModuleType:
    """A stand-in for neuralcodec.codecs.api: uniform quantisation + zlib, real bytes."""
    api = types.ModuleType("neuralcodec.codecs.api")

    def encode_image(pixels, codec, quality, device="cpu"):
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and 1 <= quality <= 8
        if pixels.shape[1] == fail_width:
            raise RuntimeError("model exploded on this image")
        step = int(1 + 40 / quality)
        h, w, _ = pixels.shape
        head = np.array([h, w, step], dtype=np.uint32).tobytes()
        return head + zlib.compress((pixels // step).astype(np.uint8).tobytes(), 9)

    def decode_image(data, device="cpu"):
        h, w, step = np.frombuffer(data[:12], dtype=np.uint32)
        q = np.frombuffer(zlib.decompress(data[12:]), dtype=np.uint8).reshape(h, w, 3)
        return np.clip(q.astype(int) * step + step // 2, 0, 255).astype(np.uint8)

    api.list_codecs = lambda: ["fakeprior"]
    api.encode_image, api.decode_image = encode_image, decode_image
    return api


@pytest.fixture
def with_fake_api(monkeypatch):
    def install(**kw):
        api = fake_api(**kw)
        monkeypatch.setitem(sys.modules, "neuralcodec.codecs.api", api)
        monkeypatch.setattr(neuralcodec.codecs, "api", api, raising=False)
        return api
    return install


def write_pngs(folder, sizes):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(synthetic(h, w, i)).save(folder / f"img{i}.png")
    return folder


def test_neural_adapter_uses_real_bitstreams(with_fake_api):
    with_fake_api()
    codec = get_image_codec("fakeprior")
    img = synthetic(40, 56)
    data = codec.encode(img, 3.5)
    assert isinstance(data, bytes) and len(data) > 12
    assert codec.decode(data).shape == img.shape
    assert codec.qualities[0] == 1 and codec.qualities[-1] == 8
    with pytest.raises(CodecUnavailable, match="unknown codec 'nope'.*fakeprior"):
        get_image_codec("nope")


def test_neural_codec_end_to_end_and_failing_image_is_skipped(with_fake_api, tmp_path, capsys):
    with_fake_api(fail_width=180)
    src = write_pngs(tmp_path / "imgs", [(176, 192), (168, 200), (176, 180)])
    out = tmp_path / "out"
    rc = main(["eval", "images", str(src), "--codecs", "fakeprior,jpeg", "--out", str(out),
               "--qualities", "fakeprior=1,3,6", "--qualities", "jpeg=20,50,90", "--anchor", "jpeg"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "img2.png / fakeprior" in err and "model exploded" in err  # reported ...
    res = json.loads((out / "results" / "fakeprior.json").read_text())
    assert res["meta"]["sources"] == ["img0.png", "img1.png"]  # ... and left out of the averages
    assert len(res["results"]["bpp"]) == 3
    rows = (out / "rows.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 6
    assert "failed" in (out / "report.html").read_text()


def test_neural_names_without_api_give_codec_not_available(monkeypatch):
    monkeypatch.setitem(sys.modules, "neuralcodec.codecs.api", None)
    monkeypatch.delattr(neuralcodec.codecs, "api", raising=False)
    with pytest.raises(CodecUnavailable, match="codec 'hyperprior' not available"):
        get_image_codec("hyperprior")
    with pytest.raises(CodecUnavailable, match="unknown codec 'foo'"):
        get_image_codec("foo")
    assert get_image_codec("jpeg").name == "jpeg"  # classical codecs do not need the API


def test_codec_that_cannot_work_stops_before_the_run(monkeypatch, tmp_path, capsys):
    from neuralcodec.errors import ModelError

    api = fake_api()

    def no_weights(pixels, codec, quality, device="cpu"):
        raise ModelError(f"codec {codec!r} has no shipped weights")
    api.encode_image = no_weights
    monkeypatch.setitem(sys.modules, "neuralcodec.codecs.api", api)
    monkeypatch.setattr(neuralcodec.codecs, "api", api, raising=False)
    src = write_pngs(tmp_path / "imgs", [(64, 64)])
    rc = main(["eval", "images", str(src), "--codecs", "jpeg,fakeprior", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err
    assert "codec 'fakeprior' does not work here" in err and "no shipped weights" in err
    assert not (tmp_path / "o").exists()  # nothing was started


def test_neuralcodec_shorthand_expands_to_every_codec(with_fake_api, tmp_path, capsys, monkeypatch):
    """'neuralcodec' in --codecs stands for every codec of ours that has shipped weights."""
    from neuralcodec.codecs import registry
    api = with_fake_api()
    api.list_codecs = lambda: ["fakeprior", "fakehyper", "fakebare"]
    weights = tmp_path / "fake.safetensors"
    weights.write_bytes(b"fake weights")
    monkeypatch.setattr(registry, "shipped_weights", lambda name: None if name == "fakebare" else weights)
    src = write_pngs(tmp_path / "imgs", [(64, 72)])
    out = tmp_path / "out"
    rc = main(["eval", "images", str(src), "--codecs", "jpeg,neuralcodec", "--out", str(out),
               "--qualities", "jpeg=30,80"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "MS-SSIM needs at least 161 pixels" in err
    assert sorted(p.name for p in (out / "results").glob("*.json")) == [
        "fakehyper.json", "fakeprior.json", "jpeg.json"]
    res = json.loads((out / "results" / "fakehyper.json").read_text())["results"]
    assert res["quality"] == [1, 2, 3, 4, 5, 6, 7, 8]
