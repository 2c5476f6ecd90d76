"""8-bit weights files (format 2): the dequantised tensors, determinism, the conversion
command and hostile files (one ModelError line each)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from conftest import make_image
from neuralcodec.cli import main
from neuralcodec.codecs import weight_quant as wq
from neuralcodec.codecs.registry import create, load_model
from neuralcodec.codecs.weights import convert_weights, load_state, save_weights
from neuralcodec.errors import ModelError

SMALL = {"n": 16, "m": 24}      # g_a / g_s convolutions of 16*16*5*5 = 6400 weights: quantised


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    m = create("hyperprior", **SMALL).eval()
    m.update()
    return m


@pytest.fixture(scope="module")
def files(tmp_path_factory, model):
    d = tmp_path_factory.mktemp("w8")
    save_weights(model, d / "fp16.safetensors")
    save_weights(model, d / "int8.safetensors", dtype="int8")
    save_weights(model, d / "int8g.safetensors", dtype="int8", group=32)
    return d


def _meta(path):
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def test_int8_file_holds_int8_weights_and_scales(files, model):
    meta = _meta(files / "int8.safetensors")
    assert meta["format"] == "neuralcodec-weights-2" and "quant" not in _meta(files / "fp16.safetensors")
    names = json.loads(meta["quant"])["tensors"]
    stored = load_file(str(files / "int8.safetensors"))
    state = model.state_dict()
    assert names and set(names) == {k for k, v in state.items() if wq.quantisable(k, v)}
    for key, value in state.items():
        if key in names:
            assert stored[key].dtype == torch.int8 and stored[key].abs().max() <= 127
            assert stored[key + wq.SCALE_SUFFIX].dtype == torch.float32
            assert stored[key + wq.SCALE_SUFFIX].shape == (value.shape[0],)
        elif value.is_floating_point():
            assert stored[key].dtype == torch.float16     # biases, entropy-model parameters
        else:
            assert torch.equal(stored[key], value)        # coding tables as they are
    assert (files / "int8.safetensors").stat().st_size < 0.7 * (files / "fp16.safetensors").stat().st_size


def test_dequantised_tensors_round_trip(files, model):
    """Loading gives exactly q * scale (fp32), within half a step of the model's weights;
    the loaded model holds those floats."""
    state, stored = model.state_dict(), load_file(str(files / "int8.safetensors"))
    loaded = load_state(files / "int8.safetensors")
    names = json.loads(_meta(files / "int8.safetensors")["quant"])["tensors"]
    assert set(loaded) == set(state)
    for key in names:
        q, scale = stored[key], stored[key + wq.SCALE_SUFFIX]
        exact = (q.double() * scale.double().view(-1, *[1] * (q.dim() - 1))).float()
        assert loaded[key].dtype == torch.float32 and torch.equal(loaded[key], exact)
        step = scale.view(-1, *[1] * (q.dim() - 1))
        assert ((loaded[key] - state[key]).abs() <= step / 2 * (1 + 1e-6)).all()
        q2, s2 = wq.quantise(loaded[key])     # quantising the dequantised tensor is a fixed point
        assert torch.equal(q2, q) and torch.equal(s2, scale)
    net = load_model("hyperprior", files / "int8.safetensors")
    for key in names:
        assert torch.equal(net.state_dict()[key], loaded[key])


def test_grouped_scales_round_trip(files, model):
    """--group 32: one scale per 32 weights of a channel (the last group shorter), each weight
    exactly q * its group's scale, closer to the model's weights than per channel."""
    stored = load_file(str(files / "int8g.safetensors"))
    quant = json.loads(_meta(files / "int8g.safetensors")["quant"])
    assert quant["group"] == 32
    loaded, per_channel = load_state(files / "int8g.safetensors"), load_state(files / "int8.safetensors")
    state = model.state_dict()
    for key in quant["tensors"]:
        q, scale = stored[key].flatten(1), stored[key + wq.SCALE_SUFFIX]
        assert scale.shape == (q.shape[0], -(-q.shape[1] // 32))
        index = torch.arange(q.shape[1]) // 32
        exact = (q.double() * scale.double()[:, index]).float().view(state[key].shape)
        assert torch.equal(loaded[key], exact)
        assert (loaded[key] - state[key]).abs().sum() < (per_channel[key] - state[key]).abs().sum()
    assert load_model("hyperprior", files / "int8g.safetensors") is not None


def test_int8_weights_are_deterministic(files, model, tmp_path):
    """The same model gives the same tensors, and two loads the same bytes."""
    save_weights(model, tmp_path / "again.safetensors", dtype="int8")
    a, b = load_file(str(files / "int8.safetensors")), load_file(str(tmp_path / "again.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    one, two = load_state(files / "int8.safetensors"), load_state(tmp_path / "again.safetensors")
    assert all(one[k].numpy().tobytes() == two[k].numpy().tobytes() for k in one)


def test_int8_stream_round_trip_and_hash_refusal(files, tmp_path, capsys):
    png, ncb = tmp_path / "in.png", tmp_path / "a.ncb"
    Image.fromarray(make_image(40, 56)).save(png)
    w8, w16 = files / "int8.safetensors", files / "fp16.safetensors"
    assert main(["encode", str(png), "-o", str(ncb), "--weights", str(w8), "--quality", "4",
                 "--threads", "1"]) == 0
    assert main(["decode", str(ncb), "-o", str(tmp_path / "a.png"), "--weights", str(w8)]) == 0
    assert np.asarray(Image.open(tmp_path / "a.png")).shape == (40, 56, 3)
    capsys.readouterr()
    assert main(["decode", str(ncb), "-o", str(tmp_path / "b.png"), "--weights", str(w16)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("neuralcodec: error:") and "\n" not in err and "weights" in err
    assert not (tmp_path / "b.png").exists()


def test_convert_command(files, tmp_path, capsys):
    src = files / "fp16.safetensors"
    before = src.read_bytes()
    out = tmp_path / "c.safetensors"
    assert main(["weights", "convert", str(src), str(out), "--dtype", "int8", "--keep", "g_s"]) == 0
    assert "int8" in capsys.readouterr().out and src.read_bytes() == before
    meta = _meta(out)
    names = json.loads(meta["quant"])["tensors"]
    assert names and not any(n.startswith("g_s.") for n in names)
    info = json.loads(meta["info"])
    assert info["dtype"] == "int8" and len(info["converted_from"]) == 64
    assert json.loads(meta["config"]) == json.loads(_meta(src)["config"])
    load_model("hyperprior", out)
    # int8 -> fp16 gives back the dequantised floats (rounded to fp16)
    convert_weights(out, tmp_path / "back.safetensors", "fp16")
    back = load_file(str(tmp_path / "back.safetensors"))
    assert all(back[k].dtype != torch.int8 for k in back)
    for argv, words in [((src, src, "--dtype", "int8"), "is the input"),
                        ((tmp_path / "none", out, "--dtype", "int8"), "not found"),
                        ((src, out, "--dtype", "int8", "-n"), "exists"),
                        ((src, tmp_path / "d.safetensors", "--dtype", "fp16", "--keep", "g_s"),
                         "--keep"),
                        ((src, tmp_path / "d.safetensors", "--dtype", "int8", "--group", "-1"),
                         "--group")]:
        assert main(["weights", "convert", *map(str, argv)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("neuralcodec: error:") and words in err and "\n" not in err
    assert src.read_bytes() == before


def _hostile(tmp_path, files, change_tensors=None, change_meta=None):
    tensors = load_file(str(files / "int8.safetensors"))
    meta = dict(_meta(files / "int8.safetensors"))
    names = json.loads(meta["quant"])["tensors"]
    if change_tensors:
        change_tensors(tensors, names[0])
    if change_meta:
        change_meta(meta, names[0])
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path), metadata=meta)
    return path


def _set_quant(meta, value):
    meta["quant"] = value if isinstance(value, str) else json.dumps(value)


SCALE = wq.SCALE_SUFFIX
HOSTILE = {
    "missing scale": (lambda t, n: t.pop(n + SCALE), None, "has no"),
    "scale shape": (lambda t, n: t.__setitem__(n + SCALE, t[n + SCALE][:-1].clone()), None, "shape"),
    "scale dtype": (lambda t, n: t.__setitem__(n + SCALE, t[n + SCALE].half()), None, "F16"),
    "scale inf": (lambda t, n: t[n + SCALE].__setitem__(0, float("inf")), None, "finite"),
    "scale nan": (lambda t, n: t[n + SCALE].__setitem__(0, float("nan")), None, "finite"),
    "scale zero": (lambda t, n: t[n + SCALE].__setitem__(0, 0.0), None, "positive"),
    "not int8": (lambda t, n: t.__setitem__(n, t[n].half()), None, "not I8"),
    "unknown tensor": (None, lambda m, n: _set_quant(m, {"scheme": wq.QUANT_SCHEME,
                                                          "tensors": [n, "g_a.99.weight"]}), "does not hold"),
    "bias listed": (None, lambda m, n: _set_quant(m, {"scheme": wq.QUANT_SCHEME,
                                                       "tensors": [n, "g_a.0.bias"]}), "not I8"),
    "scheme": (None, lambda m, n: _set_quant(m, {"scheme": "int4", "tensors": [n]}), "scheme"),
    "quant json": (None, lambda m, n: _set_quant(m, "{"), "JSON"),
    "duplicate": (None, lambda m, n: _set_quant(m, {"scheme": wq.QUANT_SCHEME, "tensors": [n, n]}),
                  "distinct"),
    "no quant": (None, lambda m, n: m.pop("quant"), "quant"),
    "quant in format 1": (None, lambda m, n: m.__setitem__("format", "neuralcodec-weights-1"), "quant"),
    "group shape": (None, lambda m, n: m.__setitem__("quant", m["quant"].replace('"group": 0', '"group": 8')),
                    "shape"),
    "group value": (None, lambda m, n: m.__setitem__("quant", m["quant"].replace('"group": 0', '"group": -1')),
                    "group"),
    "scale not listed": (None, lambda m, n: _set_quant(m, {"scheme": wq.QUANT_SCHEME, "tensors": []}),
                         "unexpected"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_int8_files_are_one_model_error(case, files, tmp_path):
    change_tensors, change_meta, words = HOSTILE[case]
    path = _hostile(tmp_path, files, change_tensors, change_meta)
    with pytest.raises(ModelError) as err:
        load_model("hyperprior", path)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_export_and_init_take_int8(tmp_path, model):
    """train's export path writes int8 (export_weights), and --init starts from such a file."""
    from neuralcodec.train.image_task import export_weights, load_init

    out = export_weights(create("hyperprior", **SMALL), tmp_path / "e.safetensors", {"step": 1}, "int8")
    assert _meta(out)["format"] == "neuralcodec-weights-2"
    assert json.loads(_meta(out)["info"])["dtype"] == "int8"
    fresh = create("hyperprior", **SMALL)
    assert load_init(fresh, str(out)) == len(fresh.state_dict())
    loaded = load_state(out)
    assert all(torch.equal(fresh.state_dict()[k], v.to(fresh.state_dict()[k].dtype)) for k, v in loaded.items())


def test_weights_files_are_reproducible(tmp_path):
    """Equal weights give byte-identical files (safetensors writes its metadata in a random
    order; the header is rewritten in one order), which still load."""
    from safetensors.torch import load_file

    from neuralcodec.codecs.weights import save_weights
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 4, 1))
    model.name, model.config = "toy", {"a": 1}
    files = [save_weights(model, tmp_path / f"w{i}.safetensors", info={"b": i % 1, "c": "x"})
             for i in range(6)]
    assert len({f.read_bytes() for f in files}) == 1
    loaded = load_file(str(files[0]))
    assert set(loaded) == set(model.state_dict())
    assert torch.equal(loaded["1.weight"].float(), model.state_dict()["1.weight"].half().float())
