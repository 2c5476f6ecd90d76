"""Image codecs: round trips, odd sizes, bit-exact latents across configurations, bad input."""
import numpy as np
import pytest
import torch

from conftest import make_image
from neuralcodec.codecs.api import pad_to_multiple, decode_with_model, encode_with_model, to_tensor
from neuralcodec.codecs.base import rd_lambda
from neuralcodec.entropy import coder
from neuralcodec.errors import BitstreamError, CoderError, InputError, ModelError

CODECS = ["factorized", "hyperprior", "gmm-ctx"]


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize("size", [(1, 1), (17, 33), (64, 48)])
def test_round_trip_odd_sizes(codec_factory, name, size):
    model = codec_factory(name)
    img = make_image(*size)
    for quality in (1.0, 5.5):
        data = encode_with_model(model, img, quality)
        out = decode_with_model(model, data)
        assert out.shape == img.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", CODECS)
def test_latents_bit_exact_across_threads_and_dtype(codec_factory, name):
    """Encode with 1 thread in float32, decode with 2 threads and a float64 model:
    the decoded latents must be identical to the ones the encoder coded."""
    import copy

    model = codec_factory(name)
    x = pad_to_multiple(to_tensor(make_image(48, 80, seed=3), "cpu"), model.stride)
    torch.set_num_threads(1)
    coder.set_num_threads(1)
    compressed = model.compress(x, 6.0)
    other = copy.deepcopy(model).double()
    torch.set_num_threads(2)
    coder.set_num_threads(2)
    latents = other.decode_latents(compressed)
    assert torch.equal(latents.float(), compressed.latents.float())


@pytest.mark.parametrize("name", CODECS)
def test_latents_bit_exact_across_memory_formats(codec_factory, name, weights_files):
    """Models loaded for the CPU run channels-last; a bitstream from either layout decodes to
    the encoder's latents in the other."""
    import copy

    from neuralcodec.codecs.registry import load_model

    last = load_model(name, weights_files[name], "cpu")
    assert last.g_s[0].weight.is_contiguous(memory_format=torch.channels_last)
    nchw = copy.deepcopy(last).to(memory_format=torch.contiguous_format)
    x = pad_to_multiple(to_tensor(make_image(48, 80, seed=4), "cpu"), last.stride)
    for enc, dec in ((last, nchw), (nchw, last)):
        compressed = enc.compress(x, 5.0)
        assert torch.equal(dec.decode_latents(compressed), compressed.latents)


def test_quality_changes_rate_monotonically_in_lambda():
    q = torch.tensor([1.0, 2.5, 4.0, 8.0])
    lam = rd_lambda(q)
    assert torch.all(lam[1:] > lam[:-1])
    assert abs(float(lam[0]) - 0.0018) < 1e-6 and abs(float(lam[-1]) - 0.18) < 1e-5


def test_decoding_with_other_weights_fails_cleanly(codec_factory):
    import copy

    model = codec_factory("hyperprior")
    data = encode_with_model(model, make_image(32, 32), 3.0)
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.g_s[0].bias.add_(1.0)
    with pytest.raises(ModelError):
        decode_with_model(other, data)
    with pytest.raises(ModelError):
        decode_with_model(codec_factory("factorized"), data)


@pytest.mark.parametrize("name", CODECS)
def test_corrupt_streams_raise_clean_errors(codec_factory, name):
    model = codec_factory(name)
    data = bytearray(encode_with_model(model, make_image(40, 40), 4.0))
    rng = np.random.default_rng(0)
    for _ in range(40):
        bad = bytearray(data)
        pos = int(rng.integers(0, len(bad)))
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises((BitstreamError, CoderError, ModelError)):
            decode_with_model(model, bytes(bad))
    for cut in (0, 5, len(data) // 2, len(data) - 1):
        with pytest.raises((BitstreamError, CoderError)):
            decode_with_model(model, bytes(data[:cut]))


def test_bad_pixels_and_quality(codec_factory):
    model = codec_factory("hyperprior")
    with pytest.raises(InputError):
        encode_with_model(model, np.zeros((8, 8), np.uint8), 4.0)
    with pytest.raises(InputError):
        encode_with_model(model, make_image(8, 8), 9.0)
    with pytest.raises(InputError):
        encode_with_model(model, make_image(8, 8), float("nan"))


@pytest.mark.parametrize("name", ["hyperprior", "gmm-ctx"])
def test_training_forward_has_gradients(codec_factory, name):
    from neuralcodec.codecs.registry import create

    torch.manual_seed(0)
    model = create(name).train()
    x = torch.rand(2, 3, 64, 64)
    out = model(x, torch.tensor([1.0, 8.0]))
    bits = sum(-(lik.log2().sum()) for lik in out["likelihoods"].values())
    loss = bits / (2 * 64 * 64) + ((out["x_hat"] - x) ** 2).mean()
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters()
               if p.requires_grad and "quantiles" not in n)


@pytest.mark.parametrize("name", ["factorized", "gmm-ctx"])
def test_tiled_coding_matches_whole_image(codec_factory, monkeypatch, name):
    """Large images are processed in tiles (bounded memory); with tiles of 128 px and a
    128 px halo a 200x300 image decodes to nearly the untiled result."""
    from neuralcodec.codecs import tiling
    from neuralcodec.codecs.api import psnr
    from neuralcodec.container import unpack

    model = codec_factory(name)
    img = make_image(200, 300, seed=5)
    whole = decode_with_model(model, encode_with_model(model, img, 4.0))
    monkeypatch.setattr(tiling, "TILE", 128)
    data = encode_with_model(model, img, 4.0)
    header, streams = unpack(data)
    assert header.params["tiles"] == 6 and len(streams) >= 6
    tiled = decode_with_model(model, data)
    assert tiled.shape == img.shape
    assert psnr(tiled, whole) > 30


def test_gmm_ctx_parameters_on_gathered_positions_equal_whole_map(codec_factory):
    """The checkerboard runs its pointwise parameter network on one pass's positions only;
    the integers must equal the whole-map evaluation at those positions."""
    from neuralcodec.entropy.exact import to_fixed
    from neuralcodec.latent.checkerboard import anchor_mask
    model = codec_factory("gmm-ctx")
    g = torch.Generator().manual_seed(5)
    h, w = 6, 9
    board = model.latent.inner.groups[1].inner
    side_fx = to_fixed(torch.randn(1, board.params.layers[0].in_channels - board.context_channels, h, w,
                                   generator=g))
    y_hat = torch.randn(1, model.groups[1], h, w, generator=g).round()
    spatial = board.spatial.exact(to_fixed(y_hat))
    whole = board.params.exact(torch.cat([side_fx, spatial], 1))
    for p, mask in enumerate((anchor_mask(h, w, "cpu"), ~anchor_mask(h, w, "cpu"))):
        gathered = board.pass_params(p, side_fx, y_hat)
        assert gathered.shape == (1, whole.shape[1], int(mask.sum()), 1)
        if p:
            assert torch.equal(gathered[..., 0], whole[:, :, mask])


def test_output_deconv_polyphase_equals_transposed_convolution():
    """The CPU inference form of the synthesis' last layer computes the transposed convolution
    (up to float rounding), follows in-place weight changes, and training uses the plain one."""
    from neuralcodec.codecs.transforms import OutputDeconv

    torch.manual_seed(0)
    layer = OutputDeconv(16, 3).eval()
    plain = torch.nn.ConvTranspose2d(16, 3, 5, 2, 2, output_padding=1)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(2, 16, 9, 13)
    for fmt in (torch.contiguous_format, torch.channels_last):
        layer.to(memory_format=fmt)
        with torch.no_grad():
            assert torch.allclose(layer(x), plain(x), atol=1e-5)
            layer.weight.mul_(-1.5)
            plain.weight.mul_(-1.5)
            assert torch.allclose(layer(x), plain(x), atol=1e-5)
    layer.to(memory_format=torch.contiguous_format)
    assert torch.equal(layer(x), plain(x))          # grad enabled: the plain path


GMM_VARIANTS = [dict(components=1), dict(components=1, mean_shift=True), dict(checkerboard=False),
                dict(channel_context=False), dict(hyper_channels=96), dict(context_inputs="noise"),
                dict(components=1, mean_shift=True, checkerboard=False, channel_context=False)]


ELIC_SMALL = dict(n=32, m=48, groups=[8, 8, 32], hyper_channels=96, blocks=[1, 1, 1], channel_hidden=[24])


@pytest.mark.parametrize("kw", GMM_VARIANTS + [dict(codec="elic", **ELIC_SMALL)],
                         ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_gmm_ctx_ablation_variants_train_and_code_exactly(kw):
    """Every ablation switch of gmm-ctx, and the elic flagship, trains (finite loss and gradients)
    and codes: the decoder reproduces the encoder's latents (other thread count and dtype), and
    the image decodes."""
    import copy

    from neuralcodec.codecs.registry import create
    torch.manual_seed(7)
    kw = dict(kw)
    codec = kw.pop("codec", "gmm-ctx")
    model = create(codec, **kw) if codec == "elic" else create(codec, n=32, m=48, groups=[8, 8, 32], **kw)
    x = torch.rand(2, 3, 64, 64)
    out = model.train()(x, torch.tensor([1.0, 8.0]))
    bits = sum(-torch.log2(v).sum() for v in out["likelihoods"].values())
    (bits + out["x_hat"].square().sum()).backward()
    assert torch.isfinite(bits) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval().update()
    img = make_image(40, 72, seed=5)
    xi = pad_to_multiple(to_tensor(img, "cpu"), model.stride)
    torch.set_num_threads(1)
    compressed = model.compress(xi, 4.0)
    torch.set_num_threads(2)
    assert torch.equal(copy.deepcopy(model).double().decode_latents(compressed).float(), compressed.latents)
    assert decode_with_model(model, encode_with_model(model, img, 4.0)).shape == img.shape
    # the training-time estimate at eval (rounded values) is close to the real stream size
    est = model(xi, torch.tensor([4.0]))
    est_bits = sum(-torch.log2(v).sum().item() for v in est["likelihoods"].values())
    real_bits = 8 * sum(len(s) for s in compressed.streams.values())
    assert real_bits < 1.3 * est_bits + 800


def test_elic_config_round_trips_and_saves():
    """The elic flagship records its whole configuration; a model built from it has the same
    state-dict layout; weights saved and loaded through the registry code identically."""
    from neuralcodec.codecs.registry import create, load_model
    from neuralcodec.codecs.weights import save_weights
    torch.manual_seed(3)
    model = create("elic", **ELIC_SMALL).eval()
    again = create("elic", **model.config)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert model.config["transform"] == "residual" and model.config["mean_shift"] is True
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        model.update()
        save_weights(model, f"{d}/e.safetensors", dtype="fp32")
        loaded = load_model("elic", f"{d}/e.safetensors")
        img = make_image(64, 64, seed=9)
        assert decode_with_model(loaded, encode_with_model(loaded, img, 3.0)).shape == img.shape
