"""`neuralcodec import compressai`: CompressAI models (random weights, built here; no zoo file
can be downloaded) saved as zoo state dicts and as examples/train.py checkpoints, imported,
and compared with CompressAI's own compress/decompress on real crops."""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SHARED
from neuralcodec.cli import main
from neuralcodec.codecs.api import decode_with_model, encode_with_model, psnr, to_tensor
from neuralcodec.container import read_header, unpack
from neuralcodec.entropy import coder
from neuralcodec.errors import BitstreamError, ModelError
from neuralcodec.importers.compressai import import_compressai

ARCHS = ("bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean", "elic2022-official",
         "elic2022-chandelier", "cheng2020-anchor-checkerboard")
#: index of the analysis' last convolution (scaled up in the test models)
LAST_CONV = {"elic2022-official": 13, "elic2022-chandelier": 13}
CROP = Path(__file__).parent / "data" / "kodim05_crop.png"     # Kodak kodim05, 96x64


def compressai_net(arch: str, seed: int = 0, n: int = 32, m: int = 48, update: bool = True):
    """A CompressAI model with random weights; the latent scaled up so that it is not all zeros
    after rounding (as after training), CDF tables built (as before saving a zoo file).
    ELIC models get M = 160 (groups 16, 16, 32, 64, 32)."""
    from compressai.models import (Cheng2020AnchorCheckerboard, Elic2022Chandelier, Elic2022Official,
                                   FactorizedPrior, MeanScaleHyperprior, ScaleHyperprior)

    torch.manual_seed(seed)
    if arch == "cheng2020-anchor-checkerboard":
        net = Cheng2020AnchorCheckerboard(n)
    elif arch.startswith("elic2022"):
        net = (Elic2022Official if arch == "elic2022-official" else Elic2022Chandelier)(n, 160)
    else:
        net = {"bmshj2018-factorized": FactorizedPrior, "bmshj2018-hyperprior": ScaleHyperprior,
               "mbt2018-mean": MeanScaleHyperprior}[arch](n, m)
    net.eval()
    with torch.no_grad():
        net.g_a[LAST_CONV.get(arch, 6)].weight.mul_(20)
        for layer, channels in scale_outputs(net, arch):    # scales near the latent's spread
            layer.bias[channels].add_(3)
    if update:
        net.update(force=True)
    return net


def scale_outputs(net, arch: str) -> list[tuple[torch.nn.Conv2d, slice]]:
    """The layers that predict Gaussian scales, with the output channels that are scales."""
    if arch == "bmshj2018-hyperprior":
        return [(net.h_s[4], slice(None))]
    if arch == "mbt2018-mean":
        return [(net.h_s[4], slice(0, net.h_s[4].out_channels // 2))]
    if arch == "cheng2020-anchor-checkerboard":
        boards = [net.latent_codec["y"]]
    elif arch.startswith("elic2022"):
        boards = list(net.latent_codec["y"].latent_codec.values())
    else:
        return []
    out = []
    for b in boards:
        half = b.entropy_parameters[-1].out_channels // 2        # (scales, means) or (means, scales)
        out.append((b.entropy_parameters[-1], slice(half, None) if b.y.chunks[0] == "means" else slice(0, half)))
    return out


def save_training_checkpoint(net, path: Path) -> None:
    """What CompressAI's examples/train.py writes (optimizer and scheduler states included)."""
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "min")
    torch.save({"epoch": 7, "state_dict": net.state_dict(), "loss": torch.tensor(1.5),
                "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict()}, path)


def crops() -> list[np.ndarray]:
    """Real images, sides multiples of 64 (CompressAI's compress needs them): the tracked Kodak
    crop, plus 256x256 Kodak crops when ../shared is there."""
    out = [np.asarray(Image.open(CROP).convert("RGB"))[:64, :64].copy()]
    kodak = SHARED / "data" / "kodak"
    for name, (y, x) in (("kodim01.png", (100, 200)), ("kodim23.png", (120, 300))):
        if (kodak / name).is_file():
            out.append(np.asarray(Image.open(kodak / name).convert("RGB"))[y:y + 256, x:x + 256].copy())
    return out


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    """arch -> (CompressAI net, zoo-style state dict file)."""
    folder = tmp_path_factory.mktemp("zoo")
    out = {}
    for arch in ARCHS:
        net = compressai_net(arch)
        path = folder / f"{arch}.pth.tar"
        torch.save(net.state_dict(), path)
        out[arch] = (net, path)
    return out


@pytest.fixture(scope="module")
def imported(zoo_files):
    return {arch: import_compressai(arch, [path]) for arch, (_, path) in zoo_files.items()}


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and lines[0].startswith("neuralcodec: error:"), err
    return lines[0]


@pytest.mark.parametrize("arch", ARCHS)
def test_reconstruction_and_size_match_compressai(zoo_files, imported, arch):
    """Same reconstruction (within 0.05 dB) and entropy-coded size (within 1%, plus 12 bytes per
    coder stream: its header has the symbol count, chunk size and a CRC) as CompressAI's
    compress/decompress of the same checkpoint."""
    net, codec = zoo_files[arch][0], imported[arch]
    groups = len(getattr(codec.levels[0], "groups", (1,)))
    streams = 1 if arch == "bmshj2018-factorized" else 1 + (2 * groups if arch in LAST_CONV or "cheng" in arch else 1)
    for img in crops():
        x = torch.tensor(img).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            out = net.compress(x)
            ref = net.decompress(out["strings"], out["shape"])["x_hat"]
        ref = (ref[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        ref_bytes = sum(len(s) for strings in out["strings"] for s in strings)
        data = encode_with_model(codec, img, 1.0)
        ours = decode_with_model(codec, data)
        payload = sum(len(s.data) for s in unpack(data)[1])
        assert abs(psnr(ours, img) - psnr(ref, img)) <= 0.05
        assert abs(payload - ref_bytes) <= 0.01 * ref_bytes + 12 * streams, (payload, ref_bytes)


@pytest.mark.parametrize("arch", ARCHS)
def test_training_checkpoint_imports_like_the_zoo_file(tmp_path, zoo_files, imported, arch):
    """An examples/train.py checkpoint saved before update() (no CDF tables) gets the tables
    CompressAI's update() builds: the same codec as the zoo-style file of the updated model."""
    path = tmp_path / "checkpoint_best_loss.pth.tar"
    save_training_checkpoint(compressai_net(arch, update=False), path)
    codec = import_compressai(arch, [path])
    ref = imported[arch].state_dict()
    state = codec.state_dict()
    assert state.keys() == ref.keys()
    assert all(torch.equal(state[k], ref[k]) for k in ref)
    card = codec.weights_info["levels"][0]
    assert card["format"] == "training checkpoint" and card["epoch"] == 7
    assert card["entropy_tables"] == "built on import"
    assert imported[arch].weights_info["levels"][0]["entropy_tables"] == "from the checkpoint"


def test_old_key_names_and_dataparallel_prefix(tmp_path, zoo_files, imported):
    """Zoo files of older CompressAI versions name the bottleneck's parameters _biases.0 or _bias0."""
    net, _ = zoo_files["bmshj2018-hyperprior"]
    for style in ("_{}.{}", "_{}{}"):
        state = {}
        for key, value in net.state_dict().items():
            for new, old in (("biases", "bias"), ("matrices", "matrix"), ("factors", "factor")):
                prefix = f"entropy_bottleneck.{new}."
                if key.startswith(prefix):
                    word = new if style == "_{}.{}" else old
                    key = "entropy_bottleneck." + style.format(word, key[len(prefix):])
            state["module." + key] = value
        path = tmp_path / f"old{len(style)}.pth.tar"
        torch.save(state, path)
        codec = import_compressai("bmshj2018-hyperprior", [path])
        ref = imported["bmshj2018-hyperprior"].state_dict()
        assert all(torch.equal(v, ref[k]) for k, v in codec.state_dict().items())


@pytest.mark.parametrize("arch", ARCHS)
def test_latents_bit_exact_across_threads_dtype_and_layout(imported, arch):
    """Encode with 1 thread in float32; decode with 2 threads in float64, and channels-last:
    the decoded latents equal the encoder's."""
    level = imported[arch].levels[0]
    x = to_tensor(crops()[0], "cpu")                # 64x64: a multiple of the stride
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        coder.set_num_threads(1)
        compressed = level.compress(x, 1.0)
        torch.set_num_threads(2)
        coder.set_num_threads(2)
        for other in (copy.deepcopy(level).double(), copy.deepcopy(level).to(memory_format=torch.channels_last)):
            assert torch.equal(other.decode_latents(compressed).float(), compressed.latents.float())
    finally:
        torch.set_num_threads(threads)


def test_scale_table_rule_equals_compressai():
    """Fixed-point scales map to CompressAI's table entry exactly (build_indexes on the same values)."""
    from compressai.entropy_models import GaussianConditional
    from compressai.models.base import get_scale_table

    from neuralcodec.codecs.compressai_levels import default_scale_table
    from neuralcodec.entropy.scale_table import table_scales

    table = default_scale_table()
    assert torch.equal(table, get_scale_table())
    gc = GaussianConditional(None)
    gc.update_scale_table(table)
    g = torch.Generator().manual_seed(0)
    fixed = torch.cat([torch.randint(-4096, 300 * 4096, (20000,), generator=g).double(),
                       torch.floor(table.double() * 4096), torch.floor(table.double() * 4096) + 1])
    ours = table_scales(fixed, table, 0.11)
    theirs = table[gc.build_indexes((fixed / 4096).float()).long()]
    assert torch.equal(ours, theirs)
    assert len(set(ours.tolist())) == 64


def test_bundle_picks_the_nearest_quality_and_records_it(tmp_path):
    paths = []
    for seed in (1, 2, 3):
        paths.append(tmp_path / f"q{seed}.pth.tar")
        torch.save(compressai_net("mbt2018-mean", seed).state_dict(), paths[-1])
    codec = import_compressai("mbt2018-mean", paths, [6, 2, 4])
    assert codec.labels == [2.0, 4.0, 6.0]
    img = np.asarray(Image.open(CROP).convert("RGB"))
    streams = {}
    for q, label in ((1, 2.0), (2.9, 2.0), (3, 2.0), (3.2, 4.0), (5, 4.0), (7.5, 6.0), (8, 6.0)):
        data = encode_with_model(codec, img, q)
        assert read_header(data).quality == label
        streams[label] = data
    assert len({len(d) for d in streams.values()}) == 3        # three different models
    singles = [import_compressai("mbt2018-mean", [p]) for p in paths]
    for single, label in zip(singles, (6.0, 2.0, 4.0)):         # each level codes as on its own
        data = streams[label]
        assert np.array_equal(decode_with_model(codec, data),
                              decode_with_model(single, encode_with_model(single, img, 1.0)))
        with pytest.raises(ModelError):             # other weights: refused
            decode_with_model(single, data)
    header, subs = unpack(streams[2.0])
    from neuralcodec.container import pack
    header.quality = 3.0
    with pytest.raises(BitstreamError, match="none of this model's labels"):
        decode_with_model(codec, pack(header, subs))


def _zoo_named(tmp_path, net, arch_file: str, quality: int, good_hash: bool = True) -> Path:
    tmp = tmp_path / "download.tmp"
    torch.save(net.state_dict(), tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8] if good_hash else "00000000"
    path = tmp_path / f"{arch_file}-{quality}-{digest}.pth.tar"
    tmp.rename(path)
    return path


def test_cli_import_encode_decode_info_and_model_card(tmp_path, capsys):
    q3 = _zoo_named(tmp_path, compressai_net("mbt2018-mean", 3), "mbt2018-mean", 3)
    q5 = _zoo_named(tmp_path, compressai_net("mbt2018-mean", 5), "mbt2018-mean", 5)
    out = tmp_path / "mbt.safetensors"
    code, stdout, err = _run(capsys, "import", "compressai", "--arch", "mbt2018-mean",
                             "--checkpoint", q5, "--checkpoint", q3, "-o", out)
    assert code == 0 and not err, err
    assert "quality 3: mbt2018-mean-3-" in stdout and "lambda 0.0067" in stdout and "2 qualities" in stdout
    from neuralcodec.codecs.weights import read_metadata
    meta = read_metadata(out)
    assert meta["codec"] == "compressai-mbt2018-mean"
    card = json.loads(meta["info"])
    assert card["arch"] == "mbt2018-mean" and card["source"] == "CompressAI"
    assert [(lv["label"], lv["lambda"], lv["metric"]) for lv in card["levels"]] == [(3, 0.0067, "mse"),
                                                                                  (5, 0.025, "mse")]
    assert card["levels"][0]["sha256"] == hashlib.sha256(q3.read_bytes()).hexdigest()
    assert all(lv["zoo_hash_ok"] for lv in card["levels"])
    png = tmp_path / "in.png"
    Image.open(CROP).save(png)
    ncb, dec = tmp_path / "a.ncb", tmp_path / "a.png"
    code, stdout, _ = _run(capsys, "encode", png, "-o", ncb, "--weights", out, "--quality", "4.6",
                           "--device", "cpu")
    assert code == 0 and "codec compressai-mbt2018-mean, quality 5.000" in stdout
    code, stdout, _ = _run(capsys, "decode", ncb, "-o", dec, "--weights", out, "--device", "cpu")
    assert code == 0 and np.asarray(Image.open(dec)).shape == (64, 96, 3)
    code, stdout, _ = _run(capsys, "info", ncb)
    assert code == 0 and "compressai-mbt2018-mean" in stdout and "quality:    5.0" in stdout
    code, _, err = _run(capsys, "decode", ncb, "-o", tmp_path / "b.png", "--device", "cpu")
    assert "no shipped weights; pass --weights FILE" in _one_line_error(code, err)
    code, _, err = _run(capsys, "decode", ncb, "-o", tmp_path / "b.png", "--bytes", "100",
                        "--weights", out, "--device", "cpu")
    assert "progressive codec" in _one_line_error(code, err)
    code, _, err = _run(capsys, "encode", png, "-o", ncb, "--weights", out, "--quality", "9")
    assert "quality must be in [1, 8]" in _one_line_error(code, err)


def test_cli_warns_on_a_zoo_name_whose_hash_does_not_match(tmp_path, capsys):
    path = _zoo_named(tmp_path, compressai_net("bmshj2018-factorized"), "bmshj2018-factorized-prior", 2,
                      good_hash=False)
    code, stdout, err = _run(capsys, "import", "compressai", "--arch", "bmshj2018-factorized",
                             "--checkpoint", path, "-o", tmp_path / "f.safetensors")
    assert code == 0 and "quality 2:" in stdout
    assert err.startswith("neuralcodec: warning:") and "does not start with the hash" in err


def test_cli_errors_are_one_line(tmp_path, zoo_files, capsys):
    mbt = zoo_files["mbt2018-mean"][1]
    garbage = tmp_path / "garbage.pth.tar"
    garbage.write_bytes(np.random.default_rng(0).bytes(3000))
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    pickled = tmp_path / "object.pth.tar"
    torch.save({"state_dict": {"g_a.0.weight": torch.zeros(1)}, "args": Path("/x")}, pickled)
    missing = tmp_path / "missing.pth.tar"
    state = dict(zoo_files["mbt2018-mean"][0].state_dict())
    del state["h_s.2.weight"]
    torch.save(state, missing)
    listed = tmp_path / "list.pth.tar"
    torch.save([torch.zeros(2)], listed)
    from compressai.models import Elic2022Official
    from compressai.zoo.image_vbr import model_architectures as vbr_models
    vbr, elic = tmp_path / "vbr.pth.tar", tmp_path / "elic.pth.tar"
    torch.save(vbr_models["mbt2018-mean-vbr"](32, 48).state_dict(), vbr)
    torch.save(Elic2022Official(32, 160).state_dict(), elic)
    out = tmp_path / "o.safetensors"
    cases = [
        (("--arch", "mbt2018", "--checkpoint", mbt), "'mbt2018' is not supported: autoregressive"),
        (("--arch", "cheng2020-attn", "--checkpoint", mbt), "not supported"),
        (("--arch", "foo", "--checkpoint", mbt), "supported: bmshj2018-factorized"),
        (("--arch", "bmshj2018-hyperprior", "--checkpoint", mbt),
         "holds a mbt2018-mean model, not bmshj2018-hyperprior (import it with --arch mbt2018-mean)"),
        (("--arch", "mbt2018-mean", "--checkpoint", missing), "misses 1 weights of a mbt2018-mean model"),
        (("--arch", "mbt2018-mean", "--checkpoint", vbr), "holds a vbr model, not mbt2018-mean (not supported"),
        (("--arch", "mbt2018-mean", "--checkpoint", elic),
         "holds a elic2022-official model, not mbt2018-mean (import it with --arch elic2022-official)"),
        (("--arch", "elic2022-chandelier", "--checkpoint", elic), "holds a elic2022-official model"),
        (("--arch", "mbt2018-mean", "--checkpoint", garbage), "is not a PyTorch checkpoint"),
        (("--arch", "mbt2018-mean", "--checkpoint", text), "is not a PyTorch checkpoint"),
        (("--arch", "mbt2018-mean", "--checkpoint", pickled), "holds Python objects"),
        (("--arch", "mbt2018-mean", "--checkpoint", listed), "holds no state dict"),
        (("--arch", "mbt2018-mean", "--checkpoint", tmp_path / "nope.pth.tar"), "not found"),
        (("--arch", "mbt2018-mean", "--checkpoint", mbt, "--quality-label", "1", "--quality-label", "2"),
         "2 --quality-label for 1 checkpoints"),
        (("--arch", "mbt2018-mean", "--checkpoint", mbt, "--checkpoint", mbt, "--quality-label", "3",
          "--quality-label", "3"), "distinct quality labels"),
        (("--arch", "mbt2018-mean", "--checkpoint", mbt, "--quality-label", "9"), "labels are qualities in [1, 8]"),
    ]
    for argv, message in cases:
        code, _, err = _run(capsys, "import", "compressai", *argv, "-o", out)
        assert message in _one_line_error(code, err), (argv, err)
        assert not out.exists()
    before = mbt.read_bytes()
    code, _, err = _run(capsys, "import", "compressai", "--arch", "mbt2018-mean", "--checkpoint", mbt, "-o", mbt)
    assert "would overwrite the input" in _one_line_error(code, err)
    assert mbt.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]     # no temporary files left


def test_eval_images_with_an_imported_model_as_a_named_codec(tmp_path, capsys):
    paths = []
    for q in (1, 2, 3, 4):
        paths.append(tmp_path / f"q{q}.pth.tar")
        torch.save(compressai_net("bmshj2018-factorized", q).state_dict(), paths[-1])
    weights = tmp_path / "fp.safetensors"
    code, _, err = _run(capsys, "import", "compressai", "--arch", "bmshj2018-factorized",
                        *sum((["--checkpoint", p] for p in paths), []), "-o", weights)
    assert code == 0, err
    images = tmp_path / "images"
    images.mkdir()
    Image.open(CROP).save(images / "a.png")
    out = tmp_path / "eval"
    code, stdout, err = _run(capsys, "eval", "images", images, "--codecs", f"jpeg,mine={weights}",
                             "--metrics", "psnr", "--out", out)
    assert code == 0, err
    res = json.loads((out / "results" / "mine.json").read_text())
    assert res["name"] == "mine" and len(res["results"]["bpp"]) == 4      # the four labels
    code, _, err = _run(capsys, "eval", "images", images, "--codecs", f"jpeg,mine={tmp_path / 'no.safetensors'}",
                        "--out", tmp_path / "eval2")
    assert "not found" in _one_line_error(code, err)


@pytest.mark.parametrize("arch", ["mbt2018-mean", "elic2022-official"])
def test_onnx_export_of_an_imported_model_decodes_torch_streams(tmp_path, imported, arch):
    pytest.importorskip("onnxruntime")
    from neuralcodec.export.onnx_backend import load_onnx_codec
    from neuralcodec.export.onnx_export import export_onnx

    codec = imported[arch]
    export_onnx(codec, tmp_path, log=lambda *a: None)
    assert (tmp_path / "levels.0.g_a.onnx").is_file() and (tmp_path / "levels.0.h_a.onnx").is_file()
    onnx_codec = load_onnx_codec(codec, tmp_path)
    img = np.asarray(Image.open(CROP).convert("RGB"))
    data = encode_with_model(codec, img, 1.0)
    assert encode_with_model(onnx_codec, img, 1.0) == data
    assert np.abs(decode_with_model(onnx_codec, data).astype(int) - decode_with_model(codec, data)).max() <= 1
    with pytest.raises(ModelError, match="FP32"):
        export_onnx(codec, tmp_path / "int8", int8=True, calibration=tmp_path)
