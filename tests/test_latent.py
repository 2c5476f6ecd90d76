"""The composable latent codecs (neuralcodec.latent): pieces round-trip on their own and
nested, training forwards give likelihoods of the latent's shape, and the stored layout keeps
the weights files' state-dict keys."""
import pytest
import torch
from torch import nn

from neuralcodec.codecs.registry import create
from neuralcodec.codecs.transforms import conv, pointwise_net
from neuralcodec.entropy.exact import ExactNet, to_fixed
from neuralcodec.latent.base import StoredLayout, stored_names
from neuralcodec.latent.channel_groups import ChannelGroups
from neuralcodec.latent.checkerboard import Checkerboard
from neuralcodec.latent.conditional import GaussianConditional, Mixture
from neuralcodec.latent.factorized import Factorized
from neuralcodec.latent.hyperprior import Hyperprior


def _hyperprior(leaf: str, spatial: bool = True, sizes=(4, 4)) -> Hyperprior:
    """Hyperprior(Factorized, ChannelGroups(Checkerboard(leaf))) on an 8-channel latent."""
    torch.manual_seed(0)
    m, n, hyper = sum(sizes), 6, 10
    h_a = nn.Sequential(conv(m, n, 3, 2), nn.ReLU(), conv(n, n, 3, 2))
    h_s = ExactNet(nn.ConvTranspose2d(n, hyper, 3, 2, 1, 1), nn.ReLU(), nn.ConvTranspose2d(hyper, hyper, 3, 2, 1, 1))
    contexts, boards = [], []
    for k, c in enumerate(sizes):
        prev = sum(sizes[:k])
        contexts.append(ExactNet(conv(prev, c, 3, 1)) if prev else None)
        inner = GaussianConditional(c) if leaf == "gaussian" else Mixture(c, 2)
        cin = hyper + (c if prev else 0) + (c if spatial else 0)
        boards.append(Checkerboard(ExactNet(conv(c, c, 5, 1)) if spatial else None,
                                   pointwise_net(cin, (16,), inner.param_channels), inner, c))
    return Hyperprior(h_a, Factorized(n), h_s, ChannelGroups(sizes, contexts, boards))


@pytest.mark.parametrize("leaf", ["gaussian", "mixture"])
@pytest.mark.parametrize("spatial", [True, False])
def test_nested_pieces_round_trip(leaf, spatial):
    codec = _hyperprior(leaf, spatial).eval()
    codec.update()
    y = torch.randn(1, 8, 8, 12) * 3
    streams, y_hat = codec.compress(y)
    passes = 2 if spatial else 1
    assert len(streams) == codec.stream_count == 1 + 2 * passes
    assert torch.equal(codec.decompress(streams, y.shape), y_hat)
    assert (y_hat - y).abs().max() <= 0.5 + 1e-6 or leaf == "gaussian"
    # training forward: likelihoods of y and z, in (0, 1]
    codec.train()
    y_train, likelihoods = codec(y)
    assert y_train.shape == y.shape and likelihoods["y"].shape == y.shape
    assert set(likelihoods) == {"y", "z"} and float(likelihoods["y"].detach().max()) <= 1


def test_checkerboard_gathers_the_same_integers_as_the_whole_map():
    """Pass parameters are computed on the pass's positions only; they equal the whole-map
    parameter network there, and a pass's decoded values land on its positions only."""
    torch.manual_seed(1)
    board = Checkerboard(ExactNet(conv(4, 4, 3, 1)), pointwise_net(9, (8,), 8), GaussianConditional(4), 4)
    side_fx = to_fixed(torch.randn(1, 5, 5, 7))
    y_hat = torch.randn(1, 4, 5, 7).round()
    whole = board.params.exact(torch.cat([side_fx, board.spatial.exact(to_fixed(y_hat))], 1))
    index = board.pass_index(1, 5, 7, "cpu")
    assert torch.equal(board.pass_params(1, side_fx, y_hat)[..., 0], whole.flatten(2)[:, :, index])
    target = torch.zeros(1, 4, 5, 7)
    board.place(target, 0, torch.ones(1, 4, len(board.pass_index(0, 5, 7, "cpu"))))
    assert float(target.sum()) == 4 * 18 and float(target[0, 0, 0, 0]) == 1 and float(target[0, 0, 0, 1]) == 0


def test_stored_layout_renames_both_ways():
    layout = StoredLayout({"latent.h_a.": "h_a.", "latent.inner.groups.0.inner.params.": "slices.0.params."})
    assert layout.stored_key("latent.h_a.0.weight") == "h_a.0.weight"
    assert layout.stored_key("latent.inner.groups.0.inner.params.layers.0.bias") == "slices.0.params.layers.0.bias"
    assert layout.tree_key("slices.0.params.layers.0.bias") == "latent.inner.groups.0.inner.params.layers.0.bias"
    assert layout.stored_key("g_a.0.weight") == "g_a.0.weight"
    with pytest.raises(ValueError):
        StoredLayout({"latent.h_a": "h_a."})


@pytest.mark.parametrize("name", ["hyperprior", "gmm-ctx", "elic", "factorized"])
def test_codecs_keep_their_stored_keys(name):
    """State dicts keep the layout of the weights files written before the latent package,
    load back (also nested under a prefix), and name integer nets and graphs as before."""
    small = {"hyperprior": dict(n=16, m=24), "factorized": dict(n=16, m=24),
             "gmm-ctx": dict(n=16, m=24, groups=(8, 16), components=2),
             "elic": dict(n=16, m=24, groups=(8, 16), hyper_channels=48)}[name]
    model = create(name, **small)
    keys = list(model.state_dict())
    assert not any(k.startswith("latent.") for k in keys)
    if name != "factorized":
        assert {"h_a.0.weight", "h_s.layers.0.weight", "z_prior.bottleneck.quantiles"} <= set(keys)
    if name in ("gmm-ctx", "elic"):
        assert {"slices.0.params.layers.0.weight", "slices.1.channel_ctx.layers.0.weight",
                "slices.1.spatial_ctx.layers.0.weight"} <= set(keys)
        assert {"h_s", "slices.0.params", "slices.1.channel_ctx", "slices.0.spatial_ctx"} <= set(model.exact_nets())
    torch.manual_seed(3)
    other = create(name, **small)
    other.load_state_dict(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    wrapper = nn.ModuleDict({"inner": other})
    assert all(k.startswith("inner.") and not k.startswith("inner.latent.") for k in wrapper.state_dict())
    wrapper.load_state_dict({f"inner.{k}": v for k, v in model.state_dict().items()})
    assert set(model.float_graphs()) == ({"g_a", "g_s"} if name == "factorized" else {"g_a", "g_s", "h_a"})
    assert stored_names(model)["latent.h_a" if name != "factorized" else "latent.prior"] == \
        ("h_a" if name != "factorized" else "y_prior")


def test_hyperprior_side_joins_the_hyper_features():
    """A side input is appended to h_s(z_hat) (training and coding alike); coding round-trips
    with it, and the inner streams depend on it."""
    torch.manual_seed(2)
    m, n, hyper, extra = 4, 6, 5, 3
    h_a = nn.Sequential(conv(m, n, 3, 2), nn.ReLU(), conv(n, n, 3, 2))
    h_s = ExactNet(nn.ConvTranspose2d(n, hyper, 3, 2, 1, 1), nn.ReLU(), nn.ConvTranspose2d(hyper, hyper, 3, 2, 1, 1))
    board = Checkerboard(ExactNet(conv(m, m, 3, 1)), pointwise_net(hyper + extra + m, (8,), 2 * m),
                         GaussianConditional(m), m)
    codec = Hyperprior(h_a, Factorized(n), h_s, board).eval()
    codec.update()
    y, side = torch.randn(1, m, 8, 8) * 3, torch.randn(1, extra, 8, 8)
    side_fx = to_fixed(side)
    streams, y_hat = codec.compress(y, side_fx)
    assert len(streams) == codec.stream_count == 3
    assert torch.equal(codec.decompress(streams, y.shape, side_fx), y_hat)
    z_streams, z_hat = codec.compress_z(y)
    assert z_streams == streams[:1] and torch.equal(codec.decompress_z(z_streams, y.shape), z_hat)
    joined = codec.inner_side(z_hat, side_fx)
    assert torch.equal(joined, torch.cat([h_s.exact(to_fixed(z_hat)), side_fx], 1))
    assert codec.compress(y, side_fx + to_fixed(torch.ones_like(side)))[0][1:] != streams[1:]
    codec.train()
    torch.manual_seed(4)            # the same training noise in both forwards
    y_train, likelihoods = codec(y, side)
    assert y_train.shape == y.shape and set(likelihoods) == {"y", "z"}
    torch.manual_seed(4)
    _, other = codec(y, side + 1)
    assert not torch.equal(other["y"], likelihoods["y"]) and torch.equal(other["z"], likelihoods["z"])


def test_video_rt_latent_keeps_its_stored_keys():
    """video-rt's hyper path is a Hyperprior (side: the latent buffer) stored under the keys of
    the weights files written before (h_a, z_prior, h_s, entropy)."""
    from neuralcodec.video.model import VideoRT

    model = VideoRT(m=8, f=8, n=8, nz=8, buf=4, intra_m=8)
    assert isinstance(model.latent, Hyperprior) and model.entropy is model.latent.inner
    keys = set(model.state_dict())
    assert not any(k.startswith("latent.") for k in keys)
    assert {"h_a.0.weight", "z_prior.bottleneck.quantiles", "h_s.layers.0.weight",
            "entropy.spatial.layers.0.weight", "entropy.params.layers.0.weight"} <= keys
    names = stored_names(model)
    assert (names["latent.h_s"], names["latent.inner.params"]) == ("h_s", "entropy.params")
    other = VideoRT(m=8, f=8, n=8, nz=8, buf=4, intra_m=8)
    other.load_state_dict(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


@pytest.mark.parametrize("name", ["hyperprior", "elic", "factorized", "video-rt"])
def test_shipped_weights_load_with_their_hash(name):
    """The shipped weights files load into the module tree; the stored keys and tensors are
    the file's (dequantised where the file is 8-bit), so the weights hash (the file's SHA-256)
    and the state-dict hash are unchanged."""
    from neuralcodec.codecs.registry import load_model, shipped_weights
    from neuralcodec.codecs.weights import load_state, model_hash
    from neuralcodec.container import weights_hash
    from neuralcodec.video import weights as video_weights

    if name == "video-rt":      # its P-frame latent is Hyperprior(Checkerboard) given the buffer
        path = video_weights.shipped_weights(name)
        model = video_weights.load(name, path, "cpu")
    else:
        path = shipped_weights(name)
        if path is None:
            pytest.skip(f"no shipped {name} weights")
        model = load_model(name, path, "cpu")
    assert model_hash(model) == weights_hash(path)
    stored = load_state(path)
    state = model.state_dict()
    assert set(state) == set(stored)
    assert all(torch.equal(state[k].to(v.dtype), v) for k, v in stored.items())


def test_factorized_decode_follows_new_tables():
    """The factorized prior keeps host copies of its coding tables between decodes; new
    tables (loaded weights, an in-place write, update()) must be used at once."""
    def prior(seed):
        torch.manual_seed(seed)
        p = Factorized(3).eval()
        with torch.no_grad():
            p.prior.bottleneck.quantiles.add_(torch.randn_like(p.prior.bottleneck.quantiles) * 3)
        p.update()
        return p
    a, b = prior(0), prior(1)
    z = torch.randn(1, 3, 6, 5) * 4
    (stream_a,), z_a = a.compress(z)
    assert torch.equal(a.decompress([stream_a], z.shape), z_a)        # caches a's tables
    (stream_b,), z_b = b.compress(z)
    assert stream_a != stream_b
    a.load_state_dict(b.state_dict())                                  # buffers written in place
    assert torch.equal(a.decompress([stream_b], z.shape), z_b)
    c = prior(2)
    (stream_c,), z_c = c.compress(z)
    a.prior.bottleneck._quantized_cdf = c.prior.bottleneck._quantized_cdf.clone()   # replaced
    a.prior.bottleneck._cdf_length = c.prior.bottleneck._cdf_length.clone()
    a.prior.bottleneck._offset = c.prior.bottleneck._offset.clone()
    a.prior.median_q.copy_(c.prior.median_q)
    assert torch.equal(a.decompress([stream_c], z.shape), z_c)
