"""The P-frame ceiling diagnostic (neuralcodec.video.ceiling)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec.video.ceiling import p_frame_ceiling

CROP = Path(__file__).parent / "data" / "kodim05_crop.png"


def _pair():
    img = np.asarray(Image.open(CROP).convert("RGB"))
    return img[:, :64].copy(), img[:, 8:72].copy()       # a pan by 8 pixels


def _model():
    from neuralcodec.video.weights import load
    return load()


def test_a_p_frame_that_adds_nothing_scores_as_the_copy():
    model = _model()
    model.warp = None                   # no learned warp of the reference (the shipped one has it)
    with torch.no_grad():               # the residual head off: x_hat = the (decoded) reference
        model.g_s_out[1].weight.zero_()
        model.g_s_out[1].bias.zero_()
    a, b = _pair()
    out = p_frame_ceiling(model, a, b, 5.0)
    assert out["copy"] < out["i_frame"]
    for key in ("rounded", "finer", "unquantised"):
        assert out[key] == pytest.approx(out["copy"], abs=1e-9), key


def test_the_shipped_p_frame_beats_the_copy_and_rounding_costs_quality():
    a, b = _pair()
    out = p_frame_ceiling(_model(), a, b, 5.0)
    assert out["rounded"] > out["copy"]
    assert out["unquantised"] >= out["rounded"] - 0.05


def test_frames_smaller_than_a_latent_cell_are_refused():
    a, _ = _pair()
    with pytest.raises(ValueError, match="at least 64x64"):
        p_frame_ceiling(_model(), a[:32], a[:32], 5.0)


def test_the_ceiling_runs_in_eval_mode_and_leaves_the_modes_as_they_were():
    from neuralcodec.video.ceiling import frame_pairs, mean_ceiling
    model = _model()
    a, b = _pair()
    plain = p_frame_ceiling(model, a, b, 5.0)
    model.train()
    model.intra.eval()
    again = p_frame_ceiling(model, a, b, 5.0)
    assert model.training and not model.intra.training
    assert again == plain
    frames = [a, b, a, b, a, b]
    assert [(x is a, y is b) for x, y in frame_pairs(frames, 3, every=2)] == [(True, True)] * 3
    mean = mean_ceiling(model, frame_pairs(frames, 2, every=2), 5.0)
    assert "quality" not in mean and mean["rounded"] == pytest.approx(plain["rounded"])


def test_regions_split_still_from_moving_pixels():
    """A pair of equal frames is all still (no moving figures); a pan has both; without a warp
    the aligned reference is the copy, and a region's PSNR is that of its pixels alone."""
    from neuralcodec.video.ceiling import region_psnr
    model = _model()
    a, b = _pair()
    same = p_frame_ceiling(model, a, a, 5.0)
    assert same["still_fraction"] == 1.0 and np.isnan(same["unquantised_moving"])
    assert same["copy_still"] == pytest.approx(same["copy"]) and same["unquantised_still"] == pytest.approx(same["unquantised"])
    pan = p_frame_ceiling(model, a, b, 5.0)
    assert 0 < pan["still_fraction"] < 1 and pan["aligned_moving"] > 0
    model.warp = None
    plain = p_frame_ceiling(model, a, b, 5.0)
    assert plain["aligned_still"] == plain["copy_still"] and plain["aligned_moving"] == plain["copy_moving"]
    x, ref = np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.uint8)
    ref[0, 0] = 10
    mask = np.array([[True, False], [False, False]])
    assert region_psnr(x, ref, mask) == pytest.approx(10 * np.log10(255 ** 2 / 100))
    assert np.isnan(region_psnr(x, ref, np.zeros((2, 2), bool)))
