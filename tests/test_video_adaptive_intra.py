"""video-rt's encoder-side I/P choice (``adaptive_intra``): the header flag, decoding, the
choice at a scene cut, the GOP checks it relaxes and those it keeps, and the CLI."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec.cli import main
from neuralcodec.container import ContainerReader, read_header
from neuralcodec.errors import BitstreamError, InputError
from neuralcodec.video.codec import GopConfig, VideoDecoder, decode_frames, encode_frames
from test_video import _clip, model, weights  # noqa: F401  (the shared fixtures)


def _scene_cut() -> list[np.ndarray]:
    """Three frames of one moving pattern, then three of an unrelated one."""
    first = _clip(3, 64, 48, seed=1)
    second = [255 - f[::-1, ::-1].copy() for f in _clip(3, 64, 48, seed=2)]
    return first + second


def _encode(model, frames, **kw) -> tuple[bytes, list[str], list]:
    buf, names, latents = io.BytesIO(), [], []
    encode_frames(model, frames, buf, 64, 48, quality=4, device="cpu", latents=latents,
                  on_frame=lambda i, name, n: names.append(name), **kw)
    return buf.getvalue(), names, latents


def test_gop_flag_round_trips_and_is_checked():
    assert GopConfig(32).params().get("adaptive_intra") is None          # old headers unchanged
    gop = GopConfig.from_params(GopConfig(8, adaptive_intra=True).params())
    assert gop.adaptive_intra and gop.intra_period == 8
    assert gop.allows(0, True) and not gop.allows(0, False)              # frame 0 stays an I-frame
    assert gop.allows(3, True) and gop.allows(3, False) and not gop.allows(8, False)
    assert not GopConfig(8).allows(3, True)
    with pytest.raises(BitstreamError, match="GOP"):
        GopConfig.from_params({"intra_period": 8, "p_offsets": [0.0], "i_offset": 0, "adaptive_intra": 1})


def test_adaptive_stream_decodes_to_the_encoders_latents_and_cuts_at_the_scene_change(model):
    frames = _scene_cut()
    data, names, latents = _encode(model, frames, adaptive_intra=True)
    assert read_header(io.BytesIO(data)).params["adaptive_intra"] is True
    assert names[0] == "I" and names[3] == "I", names      # the cut is coded as an I-frame
    dec = VideoDecoder(model, 64, 48, 4.0, GopConfig(32, adaptive_intra=True), "cpu", False)
    with ContainerReader(io.BytesIO(data)) as reader:
        for sub, y in zip(reader, latents):
            assert torch.equal(dec.decode(sub.name, sub.data), y)
    decoded = list(decode_frames(model, io.BytesIO(data), device="cpu"))
    assert len(decoded) == len(frames) and all(d.shape == (48, 64, 3) for d in decoded)
    plain, plain_names, _ = _encode(model, frames)
    assert plain_names == ["I"] + ["P"] * 5 and "adaptive_intra" not in read_header(io.BytesIO(plain)).params


def test_each_choice_is_the_cheaper_of_the_two(model, monkeypatch):
    """The encoder keeps the kind whose rate + lambda * distortion is lower: forcing the costs
    forces the choice."""
    from neuralcodec.video.codec import VideoEncoder
    frames, candidate = _clip(4, 64, 48), VideoEncoder.candidate
    reference = _encode(model, frames)          # the plain encoder: every later frame a P-frame
    for cheaper, expected in (("I", ["I"] * 4), ("P", ["I", "P", "P", "P"])):
        def forced(self, x, intra, q, lam, c=cheaper):
            _, frame, reconstruction = candidate(self, x, intra, q, lam)
            return (0.0 if intra == (c == "I") else 1.0), frame, reconstruction
        monkeypatch.setattr(VideoEncoder, "candidate", forced)
        data, names, latents = _encode(model, frames, adaptive_intra=True)
        assert names == expected
        if cheaper == "P":      # the P-frames kept are those of the plain encoder, latent for latent
            assert all(torch.equal(a, b) for a, b in zip(latents, reference[2]))


def test_an_intra_record_off_the_period_is_refused_without_the_flag(model):
    data, names, _ = _encode(model, _scene_cut(), adaptive_intra=True)
    with ContainerReader(io.BytesIO(data)) as reader:
        records = [(s.name, s.data) for s in reader]
    dec = VideoDecoder(model, 64, 48, 4.0, GopConfig(32), "cpu", False)
    dec.decode(*records[0])
    for name, payload in records[1:]:
        if name == "I":
            with pytest.raises(BitstreamError, match="GOP structure"):
                dec.decode(name, payload)
            break
        dec.decode(name, payload)
    else:
        pytest.fail("no I-frame after the first")


def test_rate_control_and_adaptive_intra_do_not_combine(model, tmp_path, capsys):
    with pytest.raises(InputError, match="rate control"):
        _encode(model, _clip(2, 64, 48), adaptive_intra=True, target_bits=2000.0)
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, f in enumerate(_scene_cut()):
        Image.fromarray(f).save(folder / f"f{i:03d}.png")
    out = tmp_path / "v.ncv"
    assert main(["encode", str(folder), "-o", str(out), "--target-kbps", "100", "--adaptive-intra"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--adaptive-intra" in err[0] and not out.exists()
