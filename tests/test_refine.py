"""Encoder-side latent refinement (codecs.refine): the decoder cannot tell a refined stream
from another, the objective goes down, the rounding hook is scoped, bad settings fail cleanly."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from neuralcodec.codecs.api import decode_with_model, encode_with_model
from neuralcodec.codecs.base import Compressed
from neuralcodec.codecs.pixels import pad_to_multiple, to_tensor
from neuralcodec.codecs.refine import GumbelRounding, Refinement, rd_cost, refine_latent
from neuralcodec.codecs.registry import load_model
from neuralcodec.entropy import likelihoods
from neuralcodec.errors import InputError


@pytest.fixture(scope="module")
def hyperprior():
    return load_model("hyperprior", device="cpu")


@pytest.fixture(scope="module")
def crop():
    """A 96x128 piece of the shipped sample image (Kodak kodim23)."""
    from pathlib import Path

    from neuralcodec.io.image_files import read_image
    import neuralcodec

    pixels = read_image(Path(neuralcodec.__file__).parent / "data" / "sample.png")
    return np.ascontiguousarray(pixels[:96, :128])


def _cost(model, pixels, data, quality):
    """lambda * 255^2 * MSE + bpp of a real stream (decoded, 8-bit pixels)."""
    from neuralcodec.codecs.base import rd_lambda

    out = decode_with_model(model, data, "cpu")
    mse = np.mean((out.astype(np.float64) - pixels) ** 2) / 255.0 ** 2
    return float(rd_lambda(quality)) * 255.0 ** 2 * mse + 8 * len(data) / pixels[..., 0].size


def test_refined_stream_decodes_and_costs_less(hyperprior, crop):
    plain = encode_with_model(hyperprior, crop, 4.0, "cpu")
    refined = encode_with_model(hyperprior, crop, 4.0, "cpu", Refinement(steps=30))
    assert refined != plain
    # the same decoder, no flag in the stream: header fields equal, only the payload differs
    from neuralcodec.container import read_header
    a, b = read_header(plain), read_header(refined)
    assert (a.codec, a.weights_hash, a.width, a.height, a.quality) == (b.codec, b.weights_hash, b.width, b.height, b.quality)
    assert _cost(hyperprior, crop, refined, 4.0) < _cost(hyperprior, crop, plain, 4.0)


def test_refinement_is_deterministic_and_never_worse(hyperprior, crop):
    x = pad_to_multiple(to_tensor(crop, "cpu"), hyperprior.stride)
    with torch.no_grad():
        y = hyperprior.analyse(x, 4.0)
    runs = [refine_latent(hyperprior, x, 4.0, y, Refinement(steps=20, check_every=5), crop.shape[:2])
            for _ in range(2)]
    assert torch.equal(runs[0].y, runs[1].y)
    assert runs[0].cost_after <= runs[0].cost_before and runs[0].gain <= 0
    # the reported objective is the hard-rounded one of the returned latent
    with torch.no_grad():
        again = float(rd_cost(hyperprior, runs[0].y, x, torch.tensor([4.0]), crop.shape[:2]))
    assert again == pytest.approx(runs[0].cost_after, rel=1e-5)
    # the latent the decoder reproduces is the refined latent's coded one
    comp = hyperprior.compress_latent(runs[0].y)
    assert torch.equal(hyperprior.decode_latents(Compressed(comp.streams, comp.params)), comp.latents)


def test_zero_steps_is_the_plain_encoder(hyperprior, crop):
    assert encode_with_model(hyperprior, crop, 3.0, "cpu", Refinement(steps=0)) == \
        encode_with_model(hyperprior, crop, 3.0, "cpu")


def test_flagship_refines(crop):
    elic = load_model("elic", device="cpu")
    x = pad_to_multiple(to_tensor(crop, "cpu"), elic.stride)
    with torch.no_grad():
        y = elic.analyse(x, 6.0)
    result = refine_latent(elic, x, 6.0, y, Refinement(steps=12, check_every=4), crop.shape[:2])
    assert result.cost_after < result.cost_before


def test_rounding_hook_is_scoped():
    x = torch.tensor([0.2, 0.7, -1.4], requires_grad=True)
    assert torch.equal(likelihoods.ste_round(x), torch.round(x))
    likelihoods.ste_round(x).sum().backward()
    assert torch.equal(x.grad, torch.ones(3))          # straight through
    relax = GumbelRounding(torch.Generator().manual_seed(0), 0.2)
    with pytest.raises(RuntimeError):
        with likelihoods.relaxed_rounding(relax):
            soft = likelihoods.ste_round(x)
            assert not torch.equal(soft, torch.round(x))   # soft values between floor and ceil
            assert bool(((soft >= torch.floor(x)) & (soft <= torch.floor(x) + 1)).all())
            raise RuntimeError("leave the block")
    assert torch.equal(likelihoods.ste_round(x), torch.round(x))   # restored after an exception


def test_gumbel_rounding_sharpens():
    relax = GumbelRounding(torch.Generator().manual_seed(1), 0.2)
    x = torch.full((4000,), 0.3)
    relax.tau = 0.01
    assert float((relax(x) - 0.0).abs().max()) < 1e-3                # cold: the nearer integer
    relax.tau = 1.0
    hot = relax(x)
    assert float(((hot > 0.05) & (hot < 0.95)).float().mean()) > 0.5  # hot: soft values
    assert 0.2 < float(hot.mean()) < 0.5                              # leaning to the nearer one


def test_bad_settings():
    for bad in (dict(steps=-1), dict(lr=0), dict(check_every=0), dict(tau_start=0.1, tau_end=0.2)):
        with pytest.raises(ValueError):
            Refinement(**bad)


def test_progressive_codec_refuses(crop):
    trit = load_model("trit-plane", device="cpu")
    with pytest.raises(InputError, match="latent refinement"):
        encode_with_model(trit, crop, 4.0, "cpu", Refinement(steps=3))


def test_cli(tmp_path, crop):
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(crop).save(src)
    out = tmp_path / "out.ncb"
    cli = [sys.executable, "-m", "neuralcodec"]
    done = subprocess.run(cli + ["encode", str(src), "-o", str(out), "--model", "hyperprior", "--refine", "5"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "latent refined in 5 steps" in done.stdout
    back = subprocess.run(cli + ["decode", str(out), "-o", str(tmp_path / "back.png")], capture_output=True, text=True)
    assert back.returncode == 0, back.stderr
    bad = subprocess.run(cli + ["encode", str(src), "-o", str(tmp_path / "x.ncb"), "--refine", "-2"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "--refine" in bad.stderr
    assert not (tmp_path / "x.ncb").exists()


def test_eval_option(crop):
    from neuralcodec.eval.image_codecs import get_image_codec
    from neuralcodec.eval.pipeline import parse_refine

    options = parse_refine(["hyperprior=4"], {"hyperprior": {"weights": "w.safetensors"}})
    assert options == {"hyperprior": {"weights": "w.safetensors", "refine": 4}}
    for bad in ("hyperprior", "hyperprior=0", "hyperprior=x", "=3", "hyperprior=99999999"):
        with pytest.raises(InputError, match="--refine"):
            parse_refine([bad], {})
    refined = get_image_codec("hyperprior", "cpu", {"refine": 4})
    plain = get_image_codec("hyperprior", "cpu", {})
    assert refined.settings["refine_steps"] == 4 and "refine_steps" not in plain.settings  # cache keys differ
    assert refined.encode(crop, 4.0) != plain.encode(crop, 4.0)
