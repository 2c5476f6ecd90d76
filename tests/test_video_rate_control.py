"""video-rt rate control: the controller holds a target on a modelled codec; per-frame
qualities travel in the records; `encode --target-kbps/--target-bpp` end to end; errors."""
from __future__ import annotations

import io
import math
import re
import warnings

import numpy as np
import pytest
from PIL import Image

warnings.filterwarnings("ignore")

from neuralcodec.cli import main  # noqa: E402
from neuralcodec.container import ContainerReader, read_header  # noqa: E402
from neuralcodec.errors import BitstreamError  # noqa: E402
from neuralcodec.video.codec import (GopConfig, VideoEncoder, decode_frames, encode_frames,  # noqa: E402
                                     quantize_quality, split_quality)
from neuralcodec.video.rate_control import RateController  # noqa: E402
from neuralcodec.video.weights import load  # noqa: E402
from test_video import weights  # noqa: E402,F401  (the random-weights fixture)


class ModelledEncoder:
    """The encoder interface the controller drives, with bits = exp(a + b q) x content noise."""

    def __init__(self, gop, seed=0, i_bits=(9.0, 0.3), p_bits=(7.0, 0.12)):
        self.gop, self.index, self.gop_index = gop, 0, 0
        self.rng = np.random.default_rng(seed)
        self.i_bits, self.p_bits = i_bits, p_bits
        self.noise = 1.0

    def prepare(self, pixels):
        self.noise = math.exp(self.rng.normal(0, 0.15))      # content: the same for every retry
        return pixels

    def next_is_intra(self):
        return self.gop.is_intra(self.index)

    def next_gop_index(self):
        return 0 if self.next_is_intra() else self.gop_index + 1

    def code(self, x, intra, q):
        q, _ = quantize_quality(q)
        a, b = self.i_bits if intra else self.p_bits
        return q, bytes(int(math.exp(a + b * q) * self.noise / 8)), None

    def commit(self, intra, q, payload, y_hat):
        self.gop_index = self.next_gop_index()
        self.index += 1
        return ("I" if intra else "P"), payload, y_hat


@pytest.mark.parametrize("period,frames", [(16, 64), (32, 30), (0, 40)])
def test_controller_holds_the_target(period, frames):
    gop = GopConfig(period, frame_quality=True)
    for target in (2500.0, 4000.0):       # bits per frame, inside the modelled codec's range (1.8k-4.8k)
        enc = ModelledEncoder(gop, seed=period)
        rc = RateController(target, 10000, gop, frames)
        rc.calibrate(ModelledEncoder(gop, seed=period), [None, None])
        spent = 100 * 8                   # a header
        for _ in range(frames):
            _, payload, _ = rc.encode(enc, None)
            spent += 8 * (len(payload) + 20)
            rc.account(spent / 8)
        achieved = spent / frames
        assert abs(achieved / target - 1) < 0.05, (period, target, achieved)
        assert 1 <= min(rc.qualities) and max(rc.qualities) <= 8


def test_quality_codes():
    for q in (1.0, 3.3333, 8.0, 0.2, 9.5):
        value, code = quantize_quality(q)
        assert len(code) == 2 and split_quality(code + b"rest") == (value, b"rest")
        assert abs(value - min(8.0, max(1.0, q))) <= 0.5 / 8192 + 1e-12
    with pytest.raises(BitstreamError):
        split_quality(b"\x01")
    with pytest.raises(BitstreamError):
        split_quality(b"\xff\xff")


def _frames(n, w, h, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    noise = rng.normal(0, 8, (h, w + 3 * n, 3))
    return [np.clip(np.stack([120 + 80 * np.sin((xx + 3 * t) / 9), 120 + 70 * np.cos(yy / 7),
                              100 + 60 * np.sin((xx + yy) / 13)], -1) + noise[:, 3 * t:3 * t + w], 0, 255)
            .astype(np.uint8) for t in range(n)]


def test_rate_controlled_stream_decodes_its_qualities(weights):
    """Records carry the controller's qualities; the decoder reproduces the encoder's frames."""
    model = load(None, weights, "cpu")
    frames = _frames(6, 64, 48)
    buf, stats = io.BytesIO(), {}
    encode_frames(model, frames, buf, 64, 48, quality=4, intra_period=4, total=6,
                  target_bits=0.5 * 64 * 48, rate_stats=stats)
    header = read_header(io.BytesIO(buf.getvalue()))
    assert header.params["frame_quality"] is True and header.params["target_bits_per_frame"] == 1536.0
    with ContainerReader(io.BytesIO(buf.getvalue())) as reader:
        qualities = [split_quality(s.data)[0] for s in reader]
    assert stats["frames"] == 6 and len(set(qualities)) > 1
    assert stats["quality_min"] == pytest.approx(min(qualities))
    # the same qualities given to a plain encoder give the same reconstruction as the decoder's
    enc = VideoEncoder(model, 64, 48, 4.0, GopConfig(4, frame_quality=True), "cpu", False)
    expected = []
    for f, q in zip(frames, qualities):
        enc.encode(f, q)
        expected.append(enc.output())
    decoded = list(decode_frames(model, io.BytesIO(buf.getvalue())))
    assert all(np.array_equal(a, b) for a, b in zip(decoded, expected))
    plain = io.BytesIO()                  # without rate control: no per-frame qualities
    encode_frames(model, frames[:2], plain, 64, 48, quality=4)
    assert "frame_quality" not in read_header(io.BytesIO(plain.getvalue())).params


def test_cli_target_kbps_and_bpp(weights, tmp_path, capsys):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, f in enumerate(_frames(8, 64, 48, seed=3)):
        Image.fromarray(f).save(folder / f"f{i:03d}.png")
    out = tmp_path / "a.ncv"
    assert main(["encode", str(folder), "-o", str(out), "--weights", str(weights), "--target-kbps", "40",
                 "--intra-period", "4"]) == 0
    line = capsys.readouterr().out
    match = re.search(r"rate control: target 40\.0 kbit/s, achieved ([\d.]+) kbit/s", line)
    assert match, line
    assert float(match.group(1)) == pytest.approx(8 * out.stat().st_size * 25 / 8 / 1000, abs=0.06)
    assert main(["decode", str(out), "-o", str(tmp_path / "o.y4m"), "--weights", str(weights)]) == 0
    assert main(["encode", str(folder), "-o", str(tmp_path / "b.ncv"), "--weights", str(weights),
                 "--target-bpp", "0.6"]) == 0
    assert "rate control: target" in capsys.readouterr().out
    for extra in (["--target-kbps", "0"], ["--target-psnr", "30"]):
        assert main(["encode", str(folder), "-o", str(tmp_path / "c.ncv"), "--weights", str(weights), *extra]) == 1
    err = capsys.readouterr().err
    assert "--target-kbps must be a positive number" in err and "--target-psnr is for images" in err
    png = tmp_path / "still.png"
    Image.fromarray(_frames(1, 64, 48)[0]).save(png)
    assert main(["encode", str(png), "-o", str(tmp_path / "s.ncb"), "--target-kbps", "40"]) == 1
    assert "--target-kbps is for video" in capsys.readouterr().err
    assert not (tmp_path / "c.ncv").exists() and not (tmp_path / "s.ncb").exists()
    with pytest.raises(SystemExit):       # one target at a time
        main(["encode", str(folder), "-o", str(tmp_path / "c.ncv"), "--target-kbps", "40", "--quality", "3"])
