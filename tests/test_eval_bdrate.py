"""BD-rate / BD-PSNR of neuralcodec.eval.bdrate against the `bjontegaard` reference package."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralcodec.eval.bdrate import BDError, bd_psnr, bd_rate

bjontegaard = pytest.importorskip("bjontegaard")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# Known curves: CompressAI's published Kodak results (average bpp, PSNR-RGB).
JPEG = ([0.2212, 0.4231, 0.6601, 0.9060, 1.2398, 1.8588], [23.78, 28.04, 30.38, 32.06, 33.79, 36.33])
VTM = ([0.1125, 0.2458, 0.4531, 0.7543, 1.1750, 1.7021], [28.49, 31.20, 34.26, 37.42, 40.42, 43.51])


def ref(fn, a, t, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(a[0], a[1], t[0], t[1], method, require_matching_points=False, min_overlap=0)


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_known_curves_match_reference(method):
    assert bd_rate(*JPEG, *VTM, method) == pytest.approx(ref(bjontegaard.bd_rate, JPEG, VTM, method), abs=1e-9)
    assert bd_psnr(*JPEG, *VTM, method) == pytest.approx(ref(bjontegaard.bd_psnr, JPEG, VTM, method), abs=1e-9)
    # VTM beats JPEG: fewer bits (negative BD-rate), more dB (positive BD-PSNR)
    assert bd_rate(*JPEG, *VTM, method) < -40 and bd_psnr(*JPEG, *VTM, method) > 3
    # swapping anchor and test flips the sign
    assert bd_rate(*VTM, *JPEG, method) > 0 and bd_psnr(*VTM, *JPEG, method) < 0


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_published_files_match_reference(method):
    folder = SHARED / "anchors" / "compressai-kodak"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    anchor = json.loads((folder / "jpeg.json").read_text())["results"]
    a = (anchor["bpp"], anchor["psnr-rgb"])
    for name in ["webp.json", "vtm.json", "bpg_444_x265_ycbcr.json", "paper-mbt2018.json"]:
        res = json.loads((folder / name).read_text())["results"]
        t = (res["bpp"], res["psnr-rgb"])
        assert bd_rate(*a, *t, method) == pytest.approx(ref(bjontegaard.bd_rate, a, t, method), rel=1e-9)
        assert bd_psnr(*a, *t, method) == pytest.approx(ref(bjontegaard.bd_psnr, a, t, method), rel=1e-9)


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_exact_shifts_and_sign_convention(method):
    rates, psnrs = np.array(JPEG[0]), np.array(JPEG[1])
    assert bd_rate(rates, psnrs, rates * 0.5, psnrs, method) == pytest.approx(-50.0, abs=1e-9)
    assert bd_rate(rates, psnrs, rates * 1.25, psnrs, method) == pytest.approx(25.0, abs=1e-9)
    assert bd_psnr(rates, psnrs, rates, psnrs + 1.0, method) == pytest.approx(1.0, abs=1e-9)
    assert ref(bjontegaard.bd_rate, (rates, psnrs), (rates * 0.5, psnrs), method) == pytest.approx(-50.0)


def test_unsorted_points_give_the_same_answer():
    order = [3, 0, 5, 1, 4, 2]
    shuffled = ([JPEG[0][i] for i in order], [JPEG[1][i] for i in order])
    for m in ("pchip", "cubic"):
        assert bd_rate(*shuffled, *VTM, m) == pytest.approx(bd_rate(*JPEG, *VTM, m), abs=1e-12)


def test_non_overlapping_and_bad_curves_raise_clear_errors():
    low = ([0.1, 0.2, 0.3, 0.4], [20, 22, 24, 26])
    high = ([1.0, 2.0, 3.0, 4.0], [30, 32, 34, 36])
    with pytest.raises(BDError, match="do not overlap in quality"):
        bd_rate(*low, *high)
    with pytest.raises(BDError, match="do not overlap in rate"):
        bd_psnr(*low, *high)
    with pytest.raises(BDError, match="at least 4"):
        bd_rate([0.1, 0.2, 0.3], [20, 22, 24], *low, method="cubic")
    with pytest.raises(BDError, match="positive"):
        bd_rate([0, 0.2, 0.3, 0.4], [20, 22, 24, 26], *low)
    with pytest.raises(BDError, match="unknown BD interpolation"):
        bd_rate(*low, *low, method="akima2")


@st.composite
def rd_curve(draw):
    n = draw(st.integers(4, 8))
    rates = np.cumsum(draw(st.lists(st.floats(0.05, 1.0), min_size=n, max_size=n)))
    gains = np.cumsum(draw(st.lists(st.floats(0.3, 4.0), min_size=n, max_size=n)))
    return rates, 20 + gains


@settings(max_examples=60, deadline=None)
@given(rd_curve(), rd_curve(), st.sampled_from(["pchip", "cubic"]))
def test_random_monotone_curves_match_reference(a, t, method):
    lo, hi = max(a[1].min(), t[1].min()), min(a[1].max(), t[1].max())
    if hi - lo < 0.5:
        with pytest.raises(BDError) if hi <= lo else warnings.catch_warnings():
            bd_rate(*a, *t, method)
        return
    assert bd_rate(*a, *t, method) == pytest.approx(ref(bjontegaard.bd_rate, a, t, method), rel=1e-7, abs=1e-7)
    rlo, rhi = max(a[0].min(), t[0].min()), min(a[0].max(), t[0].max())
    if rhi > rlo:
        assert bd_psnr(*a, *t, method) == pytest.approx(ref(bjontegaard.bd_psnr, a, t, method), rel=1e-7, abs=1e-7)
