"""trit-plane (progressive) codec: round trip, prefixes, CLI, determinism, errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neuralcodec.codecs import api, registry
from neuralcodec.codecs import weights as codec_weights
from neuralcodec.codecs import tritplane as TP
from neuralcodec.codecs.tritplane import TritPlaneCodec, plane_start, planes_needed
from neuralcodec.container import read_header, truncate_container, unpack
from neuralcodec.entropy import tritplane as T
from neuralcodec.errors import BitstreamError, ModelError, NeuralCodecError

M = 48


def _base(seed: int = 0):
    torch.manual_seed(seed)
    base = registry.create("hyperprior", n=32, m=M)
    with torch.no_grad():                 # larger latents: several trit-planes even untrained
        base.gain.log_gain += 3.5
        base.inv_gain.log_gain -= 3.5
    base.update()
    return base.eval()


def _model(seed: int = 0, base=None):
    torch.manual_seed(100 + seed)
    model = TritPlaneCodec(m=M).set_base(base or _base())
    with torch.no_grad():                 # non-trivial context modules
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.update()
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:96]
    img = np.stack([128 + 60 * np.sin(x / 7), 128 + 50 * np.cos(y / 5), (x + y) % 256], -1)
    return np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def stream(model, image):
    return model.encode_image(image)


def test_full_stream_decodes_the_finest_quantisation(model, image, stream):
    base = model.base
    x = api.pad_to_multiple(api.to_tensor(image, "cpu"), base.stride)
    expected = base.compress(x, model.config["quality"]).latents
    y, header = model.decode_latent(stream)
    assert header.codec == "trit-plane" and header.params["planes"] >= 3
    assert torch.equal(y, expected)
    assert np.array_equal(model.decode_image(stream),
                          api.to_pixels(base.synthesise(expected, 8.0).clamp(0, 1)[..., :64, :96]))


def test_prefixes_improve_monotonically(model, image, stream):
    full, _ = model.decode_latent(stream)
    header_part = len(stream) - len(unpack(stream)[1][1].data)
    cuts = np.linspace(header_part, len(stream), 24).astype(int)
    errors = []
    for n in cuts:
        y, _ = model.decode_latent(truncate_container(stream, int(n)))
        errors.append(float(((y - full) ** 2).mean()))
    assert errors[-1] == 0
    assert all(b <= a * (1 + 1e-9) for a, b in zip(errors, errors[1:])), errors
    assert errors[0] > 2 * errors[len(errors) // 2] > 0


def test_raw_prefix_is_a_valid_stream(model, stream):
    data_start = len(stream) - len(unpack(stream)[1][1].data) - 9
    for n in (data_start + 3, (data_start + len(stream)) // 2, len(stream) - 5):
        y, _ = model.decode_latent(stream[:n])
        assert torch.isfinite(y).all()
    with pytest.raises(BitstreamError):
        model.decode_latent(stream[:40])


def test_partial_segment_decoding():
    rng = np.random.default_rng(1)
    f = rng.integers(0, 1 << 20, (6000, 3))
    q = T.normalize_freqs(f)
    trits = np.array([rng.choice(3, p=r / r.sum()) for r in q])
    data = T.encode_segments(trits, f)
    assert np.array_equal(T.SegmentReader(data).read_plane(f), trits)
    got = [len(T.SegmentReader(data[:n]).read_plane(f)) for n in range(0, len(data), 97)]
    assert got == sorted(got) and got[-1] > 0.9 * len(trits)
    for n in range(0, len(data), 211):
        part = T.SegmentReader(data[:n]).read_plane(f)
        assert np.array_equal(part, trits[:len(part)])


def test_integer_model_matches_the_gaussian():
    from scipy.stats import norm
    k = np.array([0, 40, 80, 120, 160, 192])
    lo = np.array([-13, -40, -13, -121, -364, -1093])
    for kk, low in zip(k, lo):
        sub = (1 - 2 * low) // 3
        got = T.trit_masses(np.array([low]), sub, np.array([kk]))[0] / 2 ** 30
        sigma = 2 ** (kk / 16 - 4)
        want = np.diff(norm.cdf((low + sub * np.arange(4) - 0.5) / sigma))
        assert np.allclose(got, want, atol=2e-6)
    x = np.arange(1, 5000)
    assert np.abs(T.log2_fixed(x) / 4096 - np.log2(x)).max() < 0.006
    s = np.array([[[-40, 0, 13]]])
    assert planes_needed(s) == 4 and planes_needed(s - 1) == 5 and (plane_start(s, 4, 0) == s).all()


def test_native_plane_model_matches_the_numpy_reference():
    rng = np.random.default_rng(4)
    for sub in (1, 3, 27, 3 ** 6, 3 ** 11):
        n = 20000
        k = rng.integers(0, 193, n)
        lo = rng.integers(-4 * sub, 3 * sub, n) - (sub // 2)
        lo[:500], k[:500] = lo[500:1000], k[500:1000]                 # priority ties
        masses, active, order = T.gauss_plane(lo, sub, k, TP.CERTAIN)
        q = T.normalize_freqs(T.trit_masses(lo, sub, k) + 1)
        assert np.array_equal(masses, T.trit_masses(lo, sub, k))
        assert np.array_equal(active, q.max(1) < TP.CERTAIN)
        assert np.array_equal(order, T.priority_order(q))
    with pytest.raises(BitstreamError):
        T.gauss_plane(np.zeros(3, np.int64), 1, np.array([0, 1, 10 ** 6]), TP.CERTAIN)


def test_crr_features_of_a_subset_match_the_whole_latent():
    """Features of the coded channels' active elements = the features of those elements
    computed on the whole latent, where uncoded channels have interval centre 0."""
    rng = np.random.default_rng(5)
    c, h, w = 10, 5, 7
    k = rng.integers(0, 193, (c, h, w))
    lo = rng.integers(-40, 0, (c, h, w)) * 3 - 13
    sel = np.arange(c) % 3 != 1
    full = lo.copy()
    full[~sel] = -13                                   # interval [-13, 13] of size 27: centre 0
    g = rng.integers(-9999, 0, (c * h * w, 3))
    ref = TP.crr_features(full, 9, k, g).reshape(c, h * w, 9)[sel].reshape(-1, 9)
    active = np.flatnonzero(rng.random(sel.sum() * h * w) < 0.5)
    got = TP.crr_features(lo[sel], 9, k[sel], ref[active, :3], active, c)
    assert np.array_equal(got, ref[active])


def test_channel_plane_counts():
    s = np.zeros((5, 2, 3), np.int64)
    s[0, 0, 0], s[1, 1, 2], s[2, 0, 1], s[4, 1, 1] = 1, -13, 14, 3 ** 9
    counts = TP.channel_planes(s)
    assert planes_needed(s) == 10 and counts.tolist() == [1, 3, 4, 0, 10]
    rng = np.random.default_rng(6)
    k = rng.integers(0, 193, (5, 2, 3))
    assert TP.predicted_planes(k).tolist() == [TP.planes_for(int(np.ceil(2 * 2 ** (v / 16 - 4))))
                                              for v in k.reshape(5, -1).max(1)]
    side = TP.encode_channel_planes(counts, k, 10) + b"zz"
    payload, rest = TP.split_side(side)
    assert rest == b"zz" and len(payload) < 10
    assert np.array_equal(TP.decode_channel_planes(payload, k, 10), counts)
    for bad in (b"", b"\x80", bytes([len(payload) + 3]) + payload):
        with pytest.raises(BitstreamError):
            TP.split_side(bad)
    with pytest.raises(BitstreamError):                       # the counts must reach `planes`
        TP.decode_channel_planes(TP.encode_channel_planes(counts[:4], k[:4], 10)[1:], k[:4], 10)


def test_stream_records_per_channel_planes(model, image, stream):
    header, subs = unpack(stream)
    assert [sub.name for sub in subs] == ["z", "trits"]
    y, _ = model.decode_latent(stream)
    from neuralcodec.container import Header, pack
    fields = {f: getattr(header, f) for f in ("codec", "weights_hash", "kind", "width", "height",
                                              "quality", "params")}
    old = [type(subs[0])("z", subs[0].data), type(subs[1])("planes", subs[1].data, truncatable=True)]
    with pytest.raises(BitstreamError, match="older layout"):
        model.decode_latent(pack(Header(**fields), old))


def test_every_cut_holds_the_true_symbols(model, image, stream):
    """Cut anywhere in the plane data: every decoded interval still holds the symbol (and
    its channel's first interval is [-(3^Lc - 1)/2, (3^Lc - 1)/2])."""
    from neuralcodec.entropy.exact import to_fixed
    base = model.base
    header, subs = unpack(stream)
    with torch.no_grad():                                   # the encoder's symbols and scales
        y = base.analyse(api.pad_to_multiple(api.to_tensor(image, "cpu"), base.stride), 8.0)
        mu, kt, _ = model.gaussian_params(base.h_s.exact(to_fixed(base.z_prior.compress(base.h_a(y))[1])))
    k = np.ascontiguousarray(kt[0].numpy())
    s = torch.round(y - mu.float())[0].numpy().astype(np.int64)
    counts = TP.decode_channel_planes(TP.split_side(subs[0].data)[0], k, header.params["planes"])
    assert np.array_equal(counts, TP.channel_planes(s)) and len(set(counts.tolist())) > 1
    full_lo, full_span = model.decode_planes(subs[1].data, k, counts)
    assert np.array_equal(full_lo, s) and (full_span == 1).all()
    done = []
    for n in list(range(0, 40)) + list(range(40, len(subs[1].data), 37)):
        lo, span = model.decode_planes(subs[1].data[:n], k, counts)
        assert ((lo <= s) & (s < lo + span)).all()
        done.append(int((span == 1).sum()))
        if n == 0:
            assert np.array_equal(span[:, 0, 0], 3 ** counts)
    assert done == sorted(done) and done[-1] > 0


def test_trit_probabilities_are_deterministic(model, stream):
    from neuralcodec.codecs.tritplane import interval_mean  # noqa: F401
    rng = np.random.default_rng(2)
    k = rng.integers(0, 193, (M, 4, 6))
    lo = rng.integers(-40, 0, (M, 4, 6)) * 3
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        f1, o1 = model.plane_model(lo, 9, k)
        torch.set_num_threads(2)
        f2, o2 = model.plane_model(lo, 9, k)
    finally:
        torch.set_num_threads(threads)
    other = _model().double()
    f3, o3 = other.plane_model(lo, 9, k)
    assert np.array_equal(f1, f2) and np.array_equal(o1, o2)
    assert np.array_equal(f1, f3) and np.array_equal(o1, o3)
    plain = _model()
    plain.use_crr = False
    assert not np.array_equal(plain.plane_model(lo, 9, k)[0], f1)     # CRR changes them
    assert (f1 >= 0).all() and (T.normalize_freqs(f1) >= 1).all()


def test_corrupt_streams_fail_cleanly(model, stream):
    rng = np.random.default_rng(3)
    cut = truncate_container(stream, len(stream) - 50)      # no data CRC on a cut substream
    for data in (stream, cut):
        for _ in range(15):
            bad = bytearray(data)
            pos = rng.integers(len(bad) - 60, len(bad))
            bad[pos] ^= 1 << int(rng.integers(8))
            try:
                model.decode_latent(bytes(bad))
            except NeuralCodecError:
                pass
    with pytest.raises(BitstreamError):
        model.decode_latent(stream[:-1] + bytes([stream[-1] ^ 1]))


def test_weights_mismatch(model, stream):
    with pytest.raises(ModelError):
        _model(seed=1, base=model.base).decode_latent(stream)     # other context modules
    with pytest.raises(ModelError):
        _model(seed=0, base=_base(seed=5)).decode_latent(stream)  # other base model


@pytest.fixture()
def shipped(tmp_path, monkeypatch, model):
    """A weights folder with a small base and trit-plane model, as the CLI loads them."""
    wdir = tmp_path / "weights"
    wdir.mkdir()
    codec_weights.save_weights(model.base, wdir / "hyperprior.safetensors")
    base = registry.load_model("hyperprior", wdir / "hyperprior.safetensors")
    mine = TritPlaneCodec(m=M, base_sha256=base.weights_hash.hex())
    mine.load_state_dict(model.state_dict())
    codec_weights.save_weights(mine, wdir / "trit-plane.safetensors")
    monkeypatch.setattr(registry, "WEIGHTS_DIR", wdir)
    monkeypatch.setattr(api, "_MODELS", {})
    return wdir


def test_cli_encode_truncate_decode(shipped, image, tmp_path, capsys):
    from PIL import Image

    from neuralcodec.cli import main

    src, ncb = tmp_path / "in.png", tmp_path / "full.ncb"
    Image.fromarray(image).save(src)
    assert main(["encode", str(src), "-o", str(ncb), "--model", "trit-plane"]) == 0
    data = ncb.read_bytes()
    assert read_header(data).codec == "trit-plane"
    small = tmp_path / "small.ncb"
    assert main(["truncate", str(ncb), "-o", str(small), "--bytes", str(len(data) // 2)]) == 0
    cut = small.read_bytes()
    assert len(cut) <= len(data) // 2 and unpack(cut)[1][1].truncated
    outs = {}
    for opt in (["--bytes", str(len(data) // 2)], ["--fraction", "0.5"], ["--target-bpp", "1.2"], []):
        out = tmp_path / f"x{len(outs)}.png"
        assert main(["decode", str(ncb), "-o", str(out)] + opt) == 0
        outs[tuple(opt)] = np.asarray(Image.open(out))
    assert main(["decode", str(small), "-o", str(tmp_path / "s.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "s.png")), outs[("--bytes", str(len(data) // 2))])
    raw = tmp_path / "raw.ncb"                 # a plain prefix of the file decodes too
    raw.write_bytes(data[:len(data) * 2 // 3])
    assert main(["decode", str(raw), "-o", str(tmp_path / "r.png")]) == 0
    assert main(["truncate", str(ncb), "-o", str(small), "--bytes", "30"]) == 1
    assert "cannot truncate" in capsys.readouterr().err


def test_cli_prefix_decode_reports_bytes_and_bpp(shipped, image, tmp_path, capsys):
    from PIL import Image

    from neuralcodec.cli import main

    src, ncb = tmp_path / "in.png", tmp_path / "full.ncb"
    Image.fromarray(image).save(src)
    assert main(["encode", str(src), "-o", str(ncb), "--model", "trit-plane"]) == 0
    size = ncb.stat().st_size
    capsys.readouterr()
    assert main(["decode", str(ncb), "-o", str(tmp_path / "h.png"), "--fraction", "0.5"]) == 0
    out = capsys.readouterr().out
    used = len(truncate_container(ncb.read_bytes(), size // 2))
    h, w = image.shape[:2]
    assert f"{used} of {size} bytes, {8 * used / (h * w):.4f} bpp" in out and "quality" not in out


def test_cli_rejects_prefix_options_for_other_codecs(shipped, image, tmp_path, capsys):
    from neuralcodec.cli import main

    ncb = tmp_path / "hp.ncb"
    ncb.write_bytes(api.encode_with_model(registry.load_model("hyperprior"), image, 4.0))
    assert main(["decode", str(ncb), "-o", str(tmp_path / "x.png"), "--bytes", "100"]) == 1
    assert "progressive" in capsys.readouterr().err
    assert main(["truncate", str(ncb), "-o", str(tmp_path / "t.ncb"), "--bytes", "100"]) == 1
    assert "not a progressive" in capsys.readouterr().err


def test_loaded_model_hash_covers_base_and_own_weights(shipped):
    model = registry.load_model("trit-plane")
    base_hash = codec_weights.model_hash(model.base)
    import hashlib
    own = hashlib.sha256((shipped / "trit-plane.safetensors").read_bytes()).digest()
    assert model.weights_hash == hashlib.sha256(b"trit-plane" + base_hash + own).digest()
    bad = TritPlaneCodec(m=M, base_sha256="00" * 32)
    codec_weights.save_weights(bad, shipped / "trit-plane.safetensors")
    with pytest.raises(ModelError):
        registry.load_model("trit-plane").base


@pytest.mark.skipif(registry.shipped_weights("hyperprior") is None, reason="no shipped hyperprior")
def test_psnr_rises_with_bytes_on_a_kodak_crop():
    from PIL import Image

    path = Path(__file__).parent / "data" / "kodim05_crop.png"     # Kodak kodim05, 96x64 crop
    img = np.asarray(Image.open(path).convert("RGB"))
    base = registry.load_model("hyperprior")
    weights = registry.shipped_weights("trit-plane")
    model = registry.load_model("trit-plane") if weights else TritPlaneCodec().set_base(base)
    data = model.encode_image(img)
    start = len(data) - len(unpack(data)[1][1].data)
    psnr = [api.psnr(model.decode_image(truncate_container(data, int(n))), img)
            for n in np.linspace(start, len(data), 21)]
    assert all(b >= a for a, b in zip(psnr, psnr[1:])), psnr
    assert psnr[-1] > psnr[0] + 10
