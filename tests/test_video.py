"""video-rt: CLI round trips, exactness, streaming, GOP structure, info, bad inputs, training."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

warnings.filterwarnings("ignore")

from neuralcodec.cli import main  # noqa: E402
from neuralcodec.container import ContainerReader  # noqa: E402
from neuralcodec.video import codec as vc  # noqa: E402
from neuralcodec.video.codec import (GopConfig, VideoDecoder, decode_frames, encode_frames,  # noqa: E402
                                     open_decoder)
from neuralcodec.video.io import iter_frames  # noqa: E402
from neuralcodec.video.model import frame_quality  # noqa: E402
from neuralcodec.video.weights import create, load, save_weights  # noqa: E402


def _clip(n, w, h, seed=0):
    """A moving smooth pattern with some texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    noise = rng.normal(0, 6, (h + n, w + n, 3))
    out = []
    for t in range(n):
        base = np.stack([120 + 80 * np.sin((xx + 2 * t) / 9), 120 + 70 * np.cos((yy + t) / 7),
                         100 + 60 * np.sin((xx + yy) / 13)], -1)
        out.append(np.clip(base + noise[t:t + h, t:t + w], 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = create().eval()
    model.update()
    path = tmp_path_factory.mktemp("w") / "video-rt.safetensors"
    save_weights(model, path)
    return path


@pytest.fixture(scope="module")
def model(weights):
    return load(None, weights, "cpu")


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "clip"
    d.mkdir()
    for i, f in enumerate(_clip(5, 64, 48)):
        Image.fromarray(f).save(d / f"f{i:03d}.png")
    return d


def _run(*args):
    return main([str(a) for a in args])


def test_cli_round_trip_png_y4m_mkv(folder, weights, tmp_path, capsys):
    out = tmp_path / "a.ncv"
    assert _run("encode", folder, "-o", out, "--weights", weights, "--intra-period", 3, "--quality", 5) == 0
    assert "5 frames 64x48" in capsys.readouterr().out
    assert _run("decode", out, "-o", tmp_path / "png", "--weights", weights) == 0
    assert _run("decode", out, "-o", tmp_path / "v.y4m", "--weights", weights) == 0
    assert _run("decode", out, "-o", tmp_path / "v.mkv", "--weights", weights) == 0
    png = list(iter_frames(tmp_path / "png"))
    mkv = list(iter_frames(tmp_path / "v.mkv"))
    y4m = list(iter_frames(tmp_path / "v.y4m"))
    assert len(png) == len(mkv) == len(y4m) == 5 and png[0].shape == (48, 64, 3)
    assert all(np.array_equal(a, b) for a, b in zip(png, mkv))          # FFV1 is lossless
    from neuralcodec.io.colour import rgb_to_yuv_frame, yuv_frame_to_rgb
    assert all(np.array_equal(yuv_frame_to_rgb(rgb_to_yuv_frame(a)), b) for a, b in zip(png, y4m))  # 4:2:0
    # the decoder reproduces the encoder's reconstruction
    from neuralcodec.video.codec import VideoEncoder
    model = load(None, weights, "cpu")
    enc = VideoEncoder(model, 64, 48, 5.0, GopConfig(3), "cpu", False)
    for src, dec in zip(iter_frames(folder), png):
        enc.encode(src)
        assert np.array_equal(enc.output(), dec)
    # the y4m decodes again as input (keeps the frame rate)
    assert _run("encode", tmp_path / "v.y4m", "-o", tmp_path / "b.ncv", "--weights", weights, "--frames", 1) == 0
    with ContainerReader(tmp_path / "b.ncv") as r:
        assert r.header.fps == (25, 1) and [s.name for s in r] == ["I"]


def test_yuv420_video_file_input(tmp_path, weights):
    """An 8-bit 4:2:0 H.264 (or FFV1) file at 30 fps: read with PyAV, rate kept."""
    import av
    path = tmp_path / "in.mkv"
    with av.open(str(path), "w") as c:
        codec = "libx264" if "libx264" in av.codecs_available else "ffv1"
        s = c.add_stream(codec, rate=30)
        s.width, s.height, s.pix_fmt = 70, 38, "yuv420p"
        for f in _clip(3, 70, 38):
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    out = tmp_path / "v.ncv"
    assert _run("encode", path, "-o", out, "--weights", weights) == 0
    with ContainerReader(out) as r:
        assert (r.header.width, r.header.height, r.header.fps) == (70, 38, (30, 1))
        assert r.header.params["source_pix_fmt"] == "yuv420p" and len(list(r)) == 3
    assert _run("decode", out, "-o", tmp_path / "o.mkv", "--weights", weights) == 0
    with av.open(str(tmp_path / "o.mkv")) as c:
        assert c.streams.video[0].average_rate == 30


def test_odd_size_and_exactness(model):
    """70x38: decoded latents equal the encoder's whatever the threads, and whatever the
    float path does (bf16 autocast, perturbed reconstructions): the coder only sees exact data."""
    from neuralcodec.entropy import coder
    frames = _clip(4, 70, 38, seed=1)
    buf = io.BytesIO()
    latents = []
    encode_frames(model, frames, buf, 70, 38, quality=6, intra_period=0, latents=latents)

    def decode_latents(perturb=False, autocast=False, threads=1):
        buf.seek(0)
        reader = ContainerReader(buf)
        dec = open_decoder(model, reader.header, "cpu")
        out = []
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        coder.set_num_threads(threads)
        try:
            for sub in reader:
                ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else torch.no_grad()
                with ctx:
                    out.append(dec.decode(sub.name, sub.data).clone())
                if perturb:
                    dec.x_ref = (dec.x_ref + 0.01 * torch.randn_like(dec.x_ref)).clamp(0, 1)
                    dec.ctx = dec.ctx + 0.05 * torch.randn_like(dec.ctx)
        finally:
            torch.set_num_threads(old)
        return out

    for kwargs in ({}, {"threads": 2}, {"autocast": True}, {"perturb": True}):
        got = decode_latents(**kwargs)
        assert len(got) == 4 and all(torch.equal(a, b) for a, b in zip(got, latents)), kwargs
    buf.seek(0)
    frames_out = list(decode_frames(model, buf))
    assert frames_out[0].shape == (38, 70, 3)


def test_p_frame_coder_chunks(model, monkeypatch):
    """Smaller P-frame chunks (more parallel decoding) cost a few bytes and decode the same."""
    from neuralcodec.video import model as video_model
    frames = _clip(3, 64, 48, seed=2)
    sizes, decoded = [], []
    for chunk in (video_model.P_CHUNK, 64):
        monkeypatch.setattr(video_model, "P_CHUNK", chunk)
        buf = io.BytesIO()
        encode_frames(model, frames, buf, 64, 48, quality=7, intra_period=0)
        with ContainerReader(io.BytesIO(buf.getvalue())) as r:
            sizes.append(sum(len(s.data) for s in r if s.name == "P"))
        buf.seek(0)
        decoded.append(list(decode_frames(model, buf)))
    assert sizes[1] > sizes[0]          # 8 chunks per pass instead of one
    assert all(np.array_equal(a, b) for a, b in zip(*decoded))


def test_pipelined_decoder_interface_on_cpu(weights):
    """The pipelined decoder's interface without streams: push() returns the previous frame
    (None first), flush() the last, reset() starts again; frames equal the sequential ones."""
    model = load(None, weights, "cpu")
    frames = _clip(6, 72, 40, seed=5)
    buf = io.BytesIO()
    encode_frames(model, frames, buf, 72, 40, quality=4, intra_period=4)
    expected = list(decode_frames(model, io.BytesIO(buf.getvalue())))
    reader = ContainerReader(io.BytesIO(buf.getvalue()))
    dec = vc.open_decoder(model, reader.header, "cpu", False)
    assert type(dec) is VideoDecoder          # the CPU default stays sequential
    gop = GopConfig.from_params(reader.header.params)
    dec = vc.PipelinedDecoder(model, 72, 40, reader.header.quality, gop, "cpu", False)
    records = [(sub.name, sub.data) for sub in reader]
    for attempt in range(2):
        outs = [dec.push(name, data) for name, data in records]
        assert outs[0] is None and dec.index == len(frames)
        got = outs[1:] + [dec.flush()]
        assert dec.flush() is None
        assert len(got) == len(expected) and all(np.array_equal(a, b) for a, b in zip(got, expected))
        dec.reset()
    with pytest.raises(ValueError, match="CUDA graphs"):
        vc.PipelinedDecoder(model, 72, 40, 4.0, gop, "cpu", False, graphs=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pipelined_cuda_decoder_matches_sequential(weights, monkeypatch):
    """On CUDA the pipelined decoder (two streams, one frame of lag, with and without CUDA
    graphs) gives the sequential decoder's pixels (deterministic cuDNN kernels: transposed
    convolutions may otherwise pick non-deterministic algorithms), half and full precision."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    model = load(None, weights, "cuda")
    frames = _clip(7, 136, 72, seed=3)
    buf = io.BytesIO()
    encode_frames(model, frames, buf, 136, 72, quality=5, intra_period=4, device="cuda", half=True)
    for half in (True, False):
        outs = []
        for mode in ("sequential", "pipelined", "graphs"):
            reader = ContainerReader(io.BytesIO(buf.getvalue()))
            dec = open_decoder(model, reader.header, "cuda", half, mode != "sequential")
            if mode != "sequential":
                dec.graphs = mode == "graphs"
            got = []
            for sub in reader:
                if mode == "sequential":
                    dec.decode(sub.name, sub.data)
                    got.append(dec.output())
                else:
                    frame = dec.push(sub.name, sub.data)
                    got += [] if frame is None else [frame.copy()]
            got += [] if mode == "sequential" else [dec.flush()]
            assert len(got) == 7, mode
            outs.append(got)
            if mode == "graphs":            # again after reset(), reusing the captured graphs
                dec.reset()
                again = [dec.push(s.name, s.data) for s in ContainerReader(io.BytesIO(buf.getvalue()))]
                again = [f.copy() for f in again[1:]] + [dec.flush()]
                assert all(np.array_equal(a, b) for a, b in zip(again, got)), half
        for mode, other in zip(("pipelined", "graphs"), outs[1:]):
            assert all(np.array_equal(a, b) for a, b in zip(outs[0], other)), (half, mode)
    gpu = list(decode_frames(model, io.BytesIO(buf.getvalue()), "cuda", False))
    assert len(gpu) == 7 and all(np.array_equal(a, b) for a, b in zip(gpu, outs[0]))


def test_streaming_one_record_per_frame(model):
    """The encoder writes frame i before it reads frame i+1; the decoder yields frame i
    having read no further than record i."""
    frames = _clip(8, 64, 48, seed=2)
    out = io.BytesIO()
    sizes = []

    def source():
        for f in frames:
            sizes.append(out.tell())
            yield f
    encode_frames(model, source(), out, 64, 48, quality=3, intra_period=4)
    assert all(b > a for a, b in zip(sizes, sizes[1:]))     # a record per frame, as it goes
    data = out.getvalue()

    class Tracked(io.BytesIO):
        def read(self, n=-1):
            return super().read(n)
    f = Tracked(data)
    positions = [f.tell() for _ in decode_frames(model, f)]
    assert len(positions) == 8
    assert positions[0] < len(data) // 2 and all(b > a for a, b in zip(positions, positions[1:]))


def test_intra_period_and_quality_offsets(model, tmp_path, capsys, weights):
    assert frame_quality(4, 0) == 4.5 and frame_quality(4, 4) == 4.0 and frame_quality(4, 1) < frame_quality(4, 2)
    assert frame_quality(8, 0) == 8.0 and frame_quality(1, 1) == 1.0
    gop = GopConfig(3)
    assert [gop.is_intra(i) for i in range(7)] == [True, False, False, True, False, False, True]
    assert not any(GopConfig(0).is_intra(i) for i in range(1, 50))
    out = tmp_path / "g.ncv"
    with open(out, "wb") as f:
        encode_frames(model, _clip(7, 64, 48), f, 64, 48, quality=4, intra_period=3)
    with ContainerReader(out) as r:
        names = [s.name for s in r]
        assert names == ["I", "P", "P", "I", "P", "P", "I"]
        assert r.header.params["intra_period"] == 3 and r.header.params["p_offsets"]
    assert _run("info", out) == 0
    text = capsys.readouterr().out
    assert "7 frames, 3 GOPs" in text and "bits/frame:" in text
    assert _run("info", out, "--json") == 0
    import json
    info = json.loads(capsys.readouterr().out)
    assert info["video"]["gops"] == 3 and len(info["video"]["bits_per_frame"]) == 7
    # a record that contradicts the GOP structure is an error
    dec = VideoDecoder(model, 64, 48, 4.0, GopConfig(3), "cpu", False)
    from neuralcodec.errors import BitstreamError
    with pytest.raises(BitstreamError):
        dec.decode("P", b"")


def test_bad_inputs(folder, weights, tmp_path, capsys):
    out = tmp_path / "a.ncv"
    assert _run("encode", tmp_path / "missing.mp4", "-o", out, "--weights", weights) == 1
    assert _run("encode", folder, "-o", out, "--model", "hyperprior", "--weights", weights) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("neuralcodec: error:") for line in err)
    assert not out.exists()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 10)
    assert _run("encode", broken, "-o", out, "--weights", weights) == 1
    assert not out.exists()
    assert _run("encode", folder, "-o", out, "--weights", weights, "--frames", 2) == 0
    data = out.read_bytes()
    # decoding onto the input, or into a non-empty folder: refused, input untouched
    assert _run("decode", out, "-o", out, "--weights", weights) == 1
    assert out.read_bytes() == data
    assert _run("decode", out, "-o", folder, "--weights", weights) == 1
    assert _run("encode", folder, "-o", folder / "f000.png", "--weights", weights) == 1
    # corrupt and truncated bitstreams with --all-or-nothing: one line, non-zero, no output
    # left behind (without it the complete frames are kept: test_hostile.py)
    bad = tmp_path / "bad.ncv"
    bad.write_bytes(data[:-40] + bytes(b ^ 0xFF for b in data[-40:]))
    capsys.readouterr()
    assert _run("decode", bad, "-o", tmp_path / "x.y4m", "--weights", weights, "--all-or-nothing") == 1
    bad.write_bytes(data[: len(data) // 2])
    assert _run("decode", bad, "-o", tmp_path / "x.mkv", "--weights", weights, "--all-or-nothing") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("neuralcodec: error:") for line in err)
    assert not (tmp_path / "x.y4m").exists() and not (tmp_path / "x.mkv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # weights of another model: the hash check refuses
    torch.manual_seed(1)
    other = create().eval()
    other.update()
    save_weights(other, tmp_path / "other.safetensors")
    assert _run("decode", out, "-o", tmp_path / "y.y4m", "--weights", tmp_path / "other.safetensors") == 1
    assert "bitstream needs codec video-rt" in capsys.readouterr().err


def test_train_video_smoke(tmp_path, folder, capsys):
    stills = tmp_path / "stills"
    stills.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (80, 90, 3), dtype=np.uint8)).save(stills / f"s{i}.png")
    export = tmp_path / "v.safetensors"
    assert _run("train-video", "--out", tmp_path / "run", "--video", folder.parent, "--images", stills,
                "--steps", 1, "--batch-size", 1, "--frames", 3, "--crop", 64, "--log-every", 1,
                "--device", "cpu", "--export", export, "--rate-warmup", 2, "--precision", "bf16") == 0
    out, err = capsys.readouterr()
    assert "step 1:" in out and "1/1" in err      # log line, progress bar
    assert "rate warm-up 2 steps, bf16, compile off" in out + err
    assert (tmp_path / "run" / "training.png").stat().st_size > 1000
    model = load(None, export, "cpu")
    buf = io.BytesIO()
    encode_frames(model, _clip(2, 64, 48), buf, 64, 48)
    buf.seek(0)
    assert len(list(decode_frames(model, buf))) == 2


def test_video_file_without_pyav_is_a_clear_error(weights, tmp_path, capsys, monkeypatch):
    """Where PyAV is missing (e.g. a bare GPU machine), a video file gives one error line."""
    import sys
    monkeypatch.setitem(sys.modules, "av", None)          # `import av` raises ImportError
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 64)
    assert _run("encode", clip, "-o", tmp_path / "a.ncv", "--weights", weights) == 1
    assert capsys.readouterr().err.strip() == ("neuralcodec: error: video files need PyAV (pip install av); "
                                               "a folder of PNG frames or .y4m output works without it")
    assert not (tmp_path / "a.ncv").exists()
