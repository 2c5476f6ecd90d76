"""video-rt structural options (multi-scale context, learned warp, widths): the shipped
configuration is unchanged, the options start as no-ops, code exactly and train."""
from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
import torch

warnings.filterwarnings("ignore")

from neuralcodec.video.codec import decode_frames, encode_frames  # noqa: E402
from neuralcodec.video.context import backward_warp, motion_search  # noqa: E402
from neuralcodec.video.model import VideoRT  # noqa: E402
from neuralcodec.video.train import clip_loss, guide_weight  # noqa: E402
from neuralcodec.video.weights import create, load, save_weights, shipped_weights  # noqa: E402

VARIANTS = [{"ctx_scales": 2}, {"ctx_scales": 3}, {"warp": True}, {"ctx_scales": 3, "warp": True, "m": 80, "f": 56},
            {"refine": 16}, {"warp": True, "blocks": 2}, {"warp": True, "n": 128, "f": 96, "m": 128},
            {"warp": True, "warp_gate": True}, {"warp": True, "motion": 4}]
NEW_MODULES = ("ms_ctx.", "warp.", "warp_gate.", "refine.", "depth_a.", "depth_s.", "motion_")


def _frames(n, w, h, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return [np.clip(np.stack([128 + 90 * np.sin((xx + 3 * t) / 7), 120 + 60 * np.cos((yy + t) / 5),
                              110 + 50 * np.sin((xx + yy) / 9)], -1) + rng.normal(0, 5, (h, w, 3)), 0, 255)
            .astype(np.uint8) for t in range(n)]


def test_shipped_configuration_is_unchanged():
    """The default model has no optional modules, records the same config keys as the
    shipped weights file, and takes its tensors strictly (same names, no extras)."""
    from neuralcodec.codecs.weights import load_state, read_metadata
    default = VideoRT()
    assert default.ms_ctx is None and default.warp is None and default.refine is None
    assert set(default.config) == {"m", "f", "n", "nz", "buf", "intra_m", "intra"}
    path = shipped_weights()
    if path is None:
        pytest.skip("no shipped video-rt weights")
    config = json.loads(read_metadata(path)["config"])
    model = VideoRT(**config)
    assert model.config == config
    state = load_state(path)            # int8 tensors dequantised
    assert set(state) == set(model.state_dict())
    model.load_state_dict(state)        # strict


@pytest.mark.parametrize("kwargs", VARIANTS[:3] + VARIANTS[4:6])
def test_options_start_as_no_ops(kwargs):
    """With the default model's weights loaded (new tensors left at their initialisation) a
    variant analyses and synthesises exactly as the default model does."""
    torch.manual_seed(0)
    base = VideoRT().eval()
    variant = VideoRT(**kwargs).eval()
    missing = variant.load_state_dict(base.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith(NEW_MODULES) for k in missing)
    x, x_ref = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    ctx = torch.randn(1, 48, 16, 16)
    with torch.no_grad():
        y = base.analyse(x, x_ref, ctx, 4.0)
        assert torch.allclose(variant.analyse(x, x_ref, ctx, 4.0), y, atol=1e-6)
        xb, cb = base.synthesise(torch.round(y), x_ref, ctx, 4.0)
        xv, cv = variant.synthesise(torch.round(y), x_ref, ctx, 4.0)
    assert torch.allclose(xv, xb, atol=1e-5) and torch.allclose(cv, cb, atol=1e-5)


def test_backward_warp():
    """Zero flow is the identity; a flow of +2 px (at 1/4 resolution) moves content 8 px at full size."""
    t = torch.rand(1, 3, 32, 48)
    assert torch.allclose(backward_warp(t, torch.zeros(1, 2, 32, 48)), t, atol=1e-6)
    flow = torch.zeros(1, 2, 8, 12)
    flow[:, 0] = 2.0
    out = backward_warp(t, flow)
    assert torch.allclose(out[..., :, :40], t[..., :, 8:], atol=1e-5)


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_variants_code_exactly_and_train(kwargs, tmp_path):
    """Each variant trains (finite loss, gradients reach its new modules), exports, reloads
    with its configuration, and decodes to the encoder's latents and to the same frames."""
    torch.manual_seed(1)
    model = create(**kwargs)
    model.train()
    res = clip_loss(model, torch.rand(2, 3, 3, 64, 64), torch.tensor([2.0, 7.0]))
    res["loss"].backward()
    assert torch.isfinite(res["loss"])
    new = [p for n, p in model.named_parameters() if n.startswith(NEW_MODULES)]
    assert new and any(p.grad is not None and p.grad.abs().sum() > 0 for p in new)
    with torch.no_grad():       # move the zero-initialised layers off zero, as training would
        for p in new:
            p.add_(0.01 * torch.randn_like(p))
    model.eval()
    model.update()
    path = tmp_path / "v.safetensors"
    save_weights(model, path)
    loaded = load(None, path, "cpu")
    assert loaded.config == model.config
    frames = _frames(4, 64, 48, seed=2)
    buf, latents = io.BytesIO(), []
    encode_frames(loaded, frames, buf, 64, 48, quality=5, intra_period=0, latents=latents)
    buf.seek(0)
    from neuralcodec.container import ContainerReader
    from neuralcodec.video.codec import open_decoder
    reader = ContainerReader(io.BytesIO(buf.getvalue()))
    dec = open_decoder(loaded, reader.header, "cpu")
    got = [dec.decode(s.name, s.data).clone() for s in reader]
    assert all(torch.equal(a, b) for a, b in zip(got, latents))
    out1 = list(decode_frames(loaded, io.BytesIO(buf.getvalue())))
    out2 = list(decode_frames(loaded, io.BytesIO(buf.getvalue())))
    assert len(out1) == 4 and all(np.array_equal(a, b) for a, b in zip(out1, out2))


def test_the_warp_gate_needs_the_warp_and_blends_warped_and_plain_references():
    """warp_gate without warp is refused; at gate 0 the reference is kept exactly whatever the
    flow, at gate 1 (its start) it is the warped one."""
    with pytest.raises(ValueError, match="warp_gate needs warp"):
        VideoRT(warp_gate=True)
    torch.manual_seed(0)
    model = VideoRT(warp=True, warp_gate=True).eval()
    with torch.no_grad():
        model.warp.head.bias.fill_(1.5)             # a flow of 1.5 px (1/4 resolution) everywhere
    y, x_ref, ctx = torch.randn(1, 64, 4, 4), torch.rand(1, 3, 64, 64), torch.randn(1, 48, 16, 16)
    with torch.no_grad():
        warped = model.aligned_reference(y, x_ref, ctx, 4.0)
        assert not torch.allclose(warped, x_ref, atol=1e-3)
        model.warp_gate.head.bias.fill_(-1.0)       # gate 0
        assert torch.equal(model.aligned_reference(y, x_ref, ctx, 4.0), x_ref)


def test_motion_search_finds_a_known_shift_and_keeps_still_content_still():
    """Content moved by (+3, -2) 1/4-resolution pixels between the frames is found (the
    warp by the found motion matches the frame far better than the reference as it is); an
    unchanged frame gives zero motion everywhere."""
    torch.manual_seed(3)
    ref = torch.nn.functional.interpolate(torch.rand(1, 3, 24, 32), size=(96, 128), mode="bilinear")
    x = torch.roll(ref, shifts=(8, -12), dims=(2, 3))       # x[p] = ref[p + (-8, +12)] (full res)
    flow = motion_search(x, ref, radius=5)
    inner = flow[..., 4:-4, 4:-4]
    assert torch.allclose(inner[:, 0], torch.full_like(inner[:, 0], 3.0), atol=0.3)
    assert torch.allclose(inner[:, 1], torch.full_like(inner[:, 1], -2.0), atol=0.3)
    err = lambda a: (a - x)[..., 16:-16, 16:-16].abs().mean()  # noqa: E731
    assert err(backward_warp(ref, flow)) < 0.3 * err(ref)
    assert torch.equal(motion_search(ref, ref, radius=5), torch.zeros(1, 2, 24, 32))


def test_motion_needs_the_warp_and_the_guide_pulls_the_warp_toward_the_search():
    """motion without warp (or out of range) is refused; with it forward_p reports the warp's
    distance from the searched motion, and the guide's gradient reaches the warp's head; the
    guide weight decays linearly to zero over its steps."""
    with pytest.raises(ValueError):
        VideoRT(motion=4)
    with pytest.raises(ValueError):
        VideoRT(warp=True, motion=40)
    torch.manual_seed(4)
    model = create(warp=True, motion=4)
    model.train()
    clips = torch.rand(2, 2, 3, 64, 64)
    clips[:, 1] = torch.roll(clips[:, 0], 8, -1)
    res = clip_loss(model, clips, torch.tensor([3.0, 6.0]), guide_scale=1.0)
    plain = clip_loss(model, clips, torch.tensor([3.0, 6.0]), guide_scale=0.0)
    assert res["loss"] > plain["loss"]         # the zero-initialised warp is 2 px from the motion
    res["loss"].backward()
    assert model.warp.head.weight.grad.abs().sum() > 0
    assert [guide_weight(s, 0.5, 100) for s in (0, 50, 100, 200)] == [0.5, 0.25, 0.0, 0.0]
    assert guide_weight(10**6, 0.5, 0) == 0.5
