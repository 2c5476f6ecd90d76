"""PSNR and MS-SSIM of neuralcodec.eval against FFmpeg's psnr filter and pytorch-msssim."""
from __future__ import annotations

import io
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from neuralcodec.eval.metrics import ms_ssim, ms_ssim_db, psnr
from conftest import synthetic as shared_synthetic

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def synthetic(h: int, w: int, seed: int = 0) -> np.ndarray:
    return shared_synthetic(h, w, seed, box=60)


def samples() -> list[np.ndarray]:
    """Generated images, plus Kodak crops (odd sizes included) when ../shared is there."""
    out = [synthetic(192, 256, 0), synthetic(171, 203, 1)]
    kodak = SHARED / "data" / "kodak"
    if kodak.is_dir():
        from PIL import Image

        for name, (y, x, h, w) in [("kodim01.png", (40, 60, 240, 320)),
                                   ("kodim20.png", (0, 0, 201, 187)),
                                   ("kodim23.png", (100, 200, 256, 256))]:
            out.append(np.asarray(Image.open(kodak / name).convert("RGB"))[y:y + h, x:x + w].copy())
    return out


def jpeg(pixels: np.ndarray, q: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(buf).convert("RGB"))


def ffmpeg_psnr(a: np.ndarray, b: np.ndarray, fmt: str) -> dict[str, float]:
    """FFmpeg's psnr filter (through PyAV) on two frames; returns its frame metadata."""
    import av

    g = av.filter.Graph()
    h, w = a.shape[:2] if fmt == "rgb24" else (a.shape[0] * 2 // 3, a.shape[1])
    srcs = [g.add_buffer(width=w, height=h, format=fmt, time_base=Fraction(1, 25)) for _ in range(2)]
    flt, sink = g.add("psnr"), g.add("buffersink")
    srcs[0].link_to(flt, 0, 0)
    srcs[1].link_to(flt, 0, 1)
    flt.link_to(sink)
    g.configure()
    for src, pix in zip(srcs, (a, b)):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pix), format=fmt)
        frame.pts = 0
        src.push(frame)
    meta = sink.pull().metadata
    return {k.rsplit(".", 1)[-1] if "psnr.psnr" in k else k.split("psnr.")[-1]: float(v)
            for k, v in meta.items()}


@pytest.mark.parametrize("q", [10, 60, 95])
def test_psnr_matches_ffmpeg_psnr_filter(q):
    for ref in samples():
        rec = jpeg(ref, q)
        ours = psnr(ref, rec)
        theirs = ffmpeg_psnr(ref, rec, "rgb24")["psnr_avg"]
        assert abs(ours - theirs) < 0.01, (ours, theirs)


def test_yuv_plane_psnr_matches_ffmpeg():
    from neuralcodec.io.colour import rgb_to_yuv_frame, yuv_planes

    ref = samples()[0]
    a = rgb_to_yuv_frame(ref)
    b = rgb_to_yuv_frame(jpeg(ref, 30))
    theirs = ffmpeg_psnr(a.to_ndarray(), b.to_ndarray(), "yuv420p")
    for plane, pa, pb in zip("yuv", yuv_planes(a), yuv_planes(b)):
        assert abs(psnr(pa, pb) - theirs[plane]) < 0.01


@pytest.mark.parametrize("q", [5, 40, 90])
def test_ms_ssim_matches_pytorch_msssim(q):
    torch = pytest.importorskip("torch")
    ref_msssim = pytest.importorskip("pytorch_msssim").ms_ssim

    def t(x):
        return torch.from_numpy(x.copy()).permute(2, 0, 1)[None].double()

    for ref in samples():
        rec = jpeg(ref, q)
        theirs = float(ref_msssim(t(ref), t(rec), data_range=255))
        assert abs(ms_ssim(ref, rec) - theirs) < 1e-4


def test_edge_cases():
    a = synthetic(170, 170)
    assert psnr(a, a) == math.inf
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    assert math.isnan(ms_ssim(a[:100], a[:100]))  # too small for five scales
    assert ms_ssim_db(0.99) == pytest.approx(20.0)
    with pytest.raises(ValueError):
        psnr(a, a[:10])
