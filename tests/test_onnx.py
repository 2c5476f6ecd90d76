"""ONNX export and the ONNX Runtime backend: graphs match torch, the integer path equals
ExactNet bit for bit, bitstreams decode across backends, INT8 export, bad input."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import make_image

pytest.importorskip("onnxruntime")

from neuralcodec.cli import main  # noqa: E402
from neuralcodec.codecs.api import pad_to_multiple, decode_with_model, encode_with_model, psnr, to_tensor  # noqa: E402
from neuralcodec.codecs.registry import create
from neuralcodec.codecs.weights import save_weights  # noqa: E402
from neuralcodec.entropy.exact import ACT_LIMIT, ExactNet, to_fixed  # noqa: E402
from neuralcodec.errors import ModelError  # noqa: E402
from neuralcodec.export.integer_path import IntegerNet, exact_nets  # noqa: E402
from neuralcodec.export.onnx_backend import load_onnx_codec  # noqa: E402
from neuralcodec.export.graphs import SubpixelDeconv
from neuralcodec.export.onnx_export import export_onnx  # noqa: E402

CODECS = ["factorized", "hyperprior", "gmm-ctx"]
SMALL = {"factorized": {"n": 24, "m": 32}, "hyperprior": {"n": 24, "m": 32},
         "gmm-ctx": {"n": 24, "m": 32, "groups": (8, 8, 16), "components": 2}}


def _small(name, seed=7):
    torch.manual_seed(seed)
    model = create(name, **SMALL[name]).eval()
    with torch.no_grad():   # non-trivial GDN parameters and gains (as after training)
        for p in model.parameters():
            p.mul_(1 + 0.2 * torch.randn_like(p))
    model.update()
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (torch model, FP32 export folder), cached for the module."""
    cache = {}

    def get(name):
        if name not in cache:
            model = _small(name)
            folder = tmp_path_factory.mktemp(f"onnx-{name}")
            export_onnx(model, folder, log=lambda *a: None)
            cache[name] = (model, folder)
        return cache[name]

    return get


@pytest.mark.parametrize("name", CODECS)
def test_graphs_match_torch(exported, name):
    model, folder = exported(name)
    onnx_model = load_onnx_codec(model, folder)
    x = pad_to_multiple(to_tensor(make_image(40, 72, seed=2), "cpu"), model.stride)
    with torch.no_grad():
        y = model.g_a(x)
        pairs = [(model.g_a, onnx_model.g_a, x), (model.g_s, onnx_model.g_s, y)]
        if hasattr(model, "h_a"):
            pairs.append((model.h_a, onnx_model.h_a, y))
        for ref, ort_fn, inp in pairs:
            a, b = ref(inp), ort_fn(inp)
            assert a.shape == b.shape
            assert float((a - b).abs().max()) <= 1e-4 * max(1.0, float(a.abs().max()))


def test_subpixel_deconv_equals_transposed_conv():
    torch.manual_seed(0)
    deconv = nn.ConvTranspose2d(6, 5, 5, 2, 2, output_padding=1)
    x = torch.randn(2, 6, 7, 9)
    assert torch.allclose(SubpixelDeconv(deconv)(x), deconv(x), atol=1e-5)


def _fixed_inputs(channels, shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.round(torch.randn(1, channels, *shape, generator=g) * 8 * 256) / 256
    x[..., 0, 0] = ACT_LIMIT / 4096           # extremes of the fixed-point range
    x[..., -1, -1] = -ACT_LIMIT / 4096
    return to_fixed(x)


@pytest.mark.parametrize("name", ["hyperprior", "gmm-ctx"])
def test_integer_path_equals_exactnet_bit_for_bit(exported, name):
    model, _ = exported(name)
    onnx_model = load_onnx_codec(model, exported(name)[1])   # nets read back from the npz
    from neuralcodec.latent.base import stored_names

    tree = {name: path for path, name in stored_names(model).items()}     # stored name -> module path
    replaced = {name: onnx_model.get_submodule(tree[name]) for name in exact_nets(model)}
    for i, (path, net) in enumerate(exact_nets(model).items()):
        x = _fixed_inputs(net.layers[0].in_channels, (5, 7), seed=i)
        ref = net.exact(x)
        assert torch.equal(IntegerNet.from_exact(net).exact(x), ref), path
        assert torch.equal(replaced[path].exact(x), ref), path


def test_integer_path_rounding_ties_and_negative_shifts():
    """Tiny and huge weights give negative and large shifts; ties round half to even."""
    torch.manual_seed(3)
    net = ExactNet(nn.ConvTranspose2d(4, 6, 3, 2, 1, output_padding=1), nn.ReLU(), nn.Conv2d(6, 3, 3, 1, 1))
    with torch.no_grad():
        net.layers[0].weight[:, 0] *= 1e-7
        net.layers[2].weight[1] *= 300
    net.eval().freeze()
    for seed in range(3):
        x = _fixed_inputs(4, (6, 5), seed)
        assert torch.equal(IntegerNet.from_exact(net).exact(x), net.exact(x))


@pytest.mark.parametrize("name", CODECS)
def test_bitstreams_decode_across_backends(exported, name):
    model, folder = exported(name)
    onnx_model = load_onnx_codec(model, folder)
    x = pad_to_multiple(to_tensor(make_image(48, 80, seed=5), "cpu"), model.stride)
    for enc, dec in ((model, onnx_model), (onnx_model, model)):
        compressed = enc.compress(x, 5.0)
        assert torch.equal(dec.decode_latents(compressed).float(), compressed.latents.float())
    img = make_image(33, 50, seed=6)
    for enc, dec in ((model, onnx_model), (onnx_model, model)):
        data = encode_with_model(enc, img, 3.0)
        a, b = decode_with_model(dec, data), decode_with_model(enc, data)
        assert np.abs(a.astype(int) - b).max() <= 1


@pytest.fixture(scope="module")
def calibration_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calib")
    for i in range(3):
        Image.fromarray(make_image(64, 64, seed=20 + i)).save(folder / f"c{i}.png")
    return folder


def test_int8_export_runs_and_decodes(tmp_path, calibration_dir):
    model = _small("hyperprior")
    manifest = export_onnx(model, tmp_path, int8=True, calibration=calibration_dir,
                           int8_options={"count": 3, "crop": 64}, log=lambda *a: None)
    quant = manifest["quantization"]
    for name in ("g_a", "g_s", "h_a"):
        report = quant["graphs"][name]
        assert (tmp_path / f"{name}.int8.onnx").is_file()
        assert not set(report["int8_nodes"]) & set(report["fp32_nodes"])
        assert len(report["int8_nodes"]) + len(report["fp32_nodes"]) == len(report["sensitivity_db"])
    assert json.loads((tmp_path / "manifest.json").read_text())["quantization"] == quant
    int8 = load_onnx_codec(model, tmp_path)
    assert set(int8.onnx_info["precision"].values()) == {"int8"}
    img = make_image(48, 64, seed=8)
    data = encode_with_model(int8, img, 6.0)
    ref = decode_with_model(model, encode_with_model(model, img, 6.0))
    out = decode_with_model(int8, data)
    assert out.shape == img.shape and psnr(out, ref) > 25
    x = pad_to_multiple(to_tensor(img, "cpu"), model.stride)
    compressed = int8.compress(x, 6.0)               # INT8 analysis, exact entropy parameters
    assert torch.equal(model.decode_latents(compressed), compressed.latents)


def test_bad_export_folders_give_clear_errors(exported, tmp_path):
    model, folder = exported("hyperprior")
    bad = tmp_path / "bad"

    def fresh():
        shutil.rmtree(bad, ignore_errors=True)
        shutil.copytree(folder, bad)

    fresh()
    (bad / "g_s.onnx").unlink()
    with pytest.raises(ModelError, match="g_s.*missing"):
        load_onnx_codec(model, bad)
    fresh()
    raw = bytearray((bad / "g_a.onnx").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (bad / "g_a.onnx").write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="corrupt"):
        load_onnx_codec(model, bad)
    # a listed file whose hash matches but is not an ONNX graph: ONNX Runtime's error, one line
    fresh()
    (bad / "h_a.onnx").write_bytes(b"not an onnx graph")
    manifest = json.loads((bad / "manifest.json").read_text())
    import hashlib
    manifest["graphs"]["h_a"]["fp32"]["sha256"] = hashlib.sha256(b"not an onnx graph").hexdigest()
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="ONNX Runtime cannot load") as info:
        load_onnx_codec(model, bad)
    assert "\n" not in str(info.value)
    fresh()
    (bad / "manifest.json").write_text("{")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_onnx_codec(model, bad)
    with pytest.raises(ModelError, match="not found"):
        load_onnx_codec(model, tmp_path / "nowhere")
    other = _small("hyperprior", seed=8)
    with pytest.raises(ModelError, match="weights"):
        load_onnx_codec(other, folder)
    with pytest.raises(ModelError, match="codec"):
        load_onnx_codec(_small("factorized"), folder)
    with pytest.raises(ModelError, match="no int8 graph"):
        load_onnx_codec(model, folder, precision="int8")


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_export_and_cross_backend_decode(tmp_path, capsys):
    weights = {}
    for seed, tag in ((7, "a"), (8, "b")):
        weights[tag] = tmp_path / f"{tag}.safetensors"
        save_weights(_small("gmm-ctx", seed), weights[tag])
    png = tmp_path / "in.png"
    Image.fromarray(make_image(40, 56)).save(png)
    onnx_dir = tmp_path / "onnx"
    code, out, err = _cli(capsys, "export", "onnx", "--weights", weights["a"], "-o", onnx_dir)
    assert code == 0, err
    assert "gmm-ctx" in out and (onnx_dir / "manifest.json").is_file()
    common = ["--weights", weights["a"], "--device", "cpu", "--threads", "1"]
    onnx = ["--backend", "onnx", "--onnx", onnx_dir]
    runs = {"torch": [], "onnx": onnx}
    for enc in runs:
        ncb = tmp_path / f"{enc}.ncb"
        code, _, err = _cli(capsys, "encode", png, "-o", ncb, "--quality", "4", *common, *runs[enc])
        assert code == 0, err
        decoded = {}
        for dec in runs:
            out_png = tmp_path / f"{enc}-{dec}.png"
            code, _, err = _cli(capsys, "decode", ncb, "-o", out_png, *common, *runs[dec])
            assert code == 0, err
            decoded[dec] = np.asarray(Image.open(out_png)).astype(int)
        assert np.abs(decoded["torch"] - decoded["onnx"]).max() <= 1
    # errors: one line, exit 1
    for argv in (["--backend", "onnx"], ["--onnx", onnx_dir],
                 ["--backend", "onnx", "--onnx", tmp_path / "missing"]):
        code, _, err = _cli(capsys, "decode", tmp_path / "torch.ncb", "-o", tmp_path / "x.png", *common, *argv)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
    code, _, err = _cli(capsys, "decode", tmp_path / "torch.ncb", "-o", tmp_path / "x.png",
                        "--weights", weights["b"], "--device", "cpu", *onnx)
    assert code == 1 and "weights" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = _cli(capsys, "export", "onnx", "--weights", weights["a"], "-o", tmp_path / "q", "--int8")
    assert code == 1 and "--calibration" in err
    code, _, err = _cli(capsys, "export", "onnx", "--weights", weights["a"], "-o", tmp_path / "q", "--int8",
                        "--calibration", tmp_path, "--int8-target", "g_x=40")
    assert code == 1 and "unknown graph" in err


def test_elic_exports_through_the_contract_and_streams_match_torch(tmp_path):
    """elic (Hyperprior(Factorized, ChannelGroups(Checkerboard(GaussianConditional)))) exports
    its graphs and integer nets under the stored names, and the ONNX backend writes the
    same bytes as torch for an image."""
    torch.manual_seed(3)
    model = create("elic", n=24, m=32, groups=(8, 8, 16), hyper_channels=64).eval()
    model.update()
    manifest = export_onnx(model, tmp_path, log=lambda *a: None)
    assert set(manifest["graphs"]) == {"g_a", "g_s", "h_a"}
    assert {"h_s", "slices.0.params", "slices.1.channel_ctx", "slices.2.spatial_ctx"} <= set(
        manifest["integer_path"]["nets"])
    onnx_model = load_onnx_codec(model, tmp_path)
    assert isinstance(onnx_model.latent.h_a, type(onnx_model.g_a)) and not isinstance(onnx_model.g_a, nn.Sequential)
    img = make_image(40, 56, seed=11)
    assert encode_with_model(onnx_model, img, 4.0) == encode_with_model(model, img, 4.0)
