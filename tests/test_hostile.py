"""Hostile inputs (issue 17): the crafted streams of tests/data/hostile (built by
scripts/make_hostile_streams.py), weights files with bad metadata, bounded reads, the output
rules (modes, replacement, -n, SIGTERM) and partial video output.

Streams that fail before any coder stream is decoded come from tests/data (re-stamped with the
installed weights hash); those whose frames or pixels must decode are built here with the same
script functions, so that new shipped weights do not break the tests."""
from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_image
from neuralcodec import container as C
from neuralcodec.container import layout as L
from neuralcodec.cli import main
from neuralcodec.errors import BitstreamError, ModelError

DATA = Path(__file__).parent / "data" / "hostile"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_hostile_streams as crafted  # noqa: E402


restamp = crafted.restamp


@pytest.fixture(scope="module")
def hyperprior():
    from neuralcodec.codecs.api import get_model
    return get_model("hyperprior", None, "cpu")


@pytest.fixture()
def stream(tmp_path, hyperprior):
    """Copy a crafted file into tmp_path, re-stamped for the installed weights."""
    from neuralcodec.codecs.weights import model_hash

    def get(name: str, model=None) -> Path:
        data = (DATA / name).read_bytes()
        if data[:8] == L.MAGIC:
            data = restamp(data, model_hash(model or hyperprior))
        path = tmp_path / name
        path.write_bytes(data)
        return path
    return get


@pytest.fixture()
def valid_image(tmp_path):
    """A decodable 64x64 hyperprior stream of the installed weights."""
    path = tmp_path / "valid.ncb"
    path.write_bytes(crafted.image_stream("hyperprior", crafted.flat(64, 64), 4.0))
    return path


@pytest.fixture(scope="module")
def videos():
    """The crafted video streams, built with the installed video-rt weights."""
    return crafted.video_cases()


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error(code, err, match=""):
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("neuralcodec: error: "), err
    assert match in lines[0], lines[0]
    return lines[0]


def _no_leftovers(folder: Path, *names):
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    assert not any((folder / n).exists() for n in names)


# ------------------------------------------------------------------ crafted image streams
@pytest.mark.parametrize("name, message", [
    ("hp-16384-tile0-only.ncb", "missing substreams: 64 tiles of 2 streams need 128 records"),
    ("hp-duplicate.ncb", "duplicate substream 'z.0'"),
    ("hp-junk-record.ncb", "unexpected substream 'junk'"),
    ("hp-missing-z.ncb", "missing substream 'z'"),
    ("hp-truncated-flag.ncb", "is flagged truncatable"),
    ("hp-quality-huge.ncb", "quality 1e+308 is outside [1, 8]"),
    ("hp-quality-negative.ncb", "quality -1e+308 is outside [1, 8]"),
    ("hp-pixfmt-yuv420p10.ncb", "pixel format yuv420p10 is not supported"),
    ("hp-tiles-true.ncb", "do not match the image size"),
    ("hp-params-extra.ncb", "do not match the image size"),
    ("hp-params-1e400.ncb", "number 1e400 is out of range"),
    ("hp-params-bigint.ncb", "integer 9999"),
    ("hp-claims-2e40.ncb", "claims 1099511627776 bytes but the file has only 0 left"),
    ("tp-z-truncatable.ncb", "only 'trits' truncatable"),
])
def test_crafted_image_streams_fail_with_one_error(tmp_path, stream, capsys, name, message):
    from neuralcodec.codecs.api import get_model
    model = get_model("trit-plane", None, "cpu") if name.startswith("tp-") else None
    code, _, err = _cli(capsys, "decode", stream(name, model), "-o", tmp_path / "out.png")
    _one_error(code, err, message)
    _no_leftovers(tmp_path, "out.png")


def test_missing_tiles_fail_before_any_tile_is_decoded(stream, hyperprior, monkeypatch):
    """16384x16384 claimed with tile 0 only: refused while reading the records, before the
    entropy decoder or anything picture-sized runs."""
    from neuralcodec.codecs.image_decoder import ImageDecoder
    calls = []
    monkeypatch.setattr(hyperprior, "decode_latents", lambda *a: calls.append(a))
    with pytest.raises(BitstreamError, match="missing substreams"):
        ImageDecoder(hyperprior, stream("hp-16384-tile0-only.ncb"))
    assert calls == []


def test_a_million_junk_records_stop_at_the_first(tmp_path, stream, hyperprior):
    """A flood of junk records fails at the first one (the reader is lazy), not after all."""
    from neuralcodec.codecs.image_decoder import ImageDecoder
    header, subs = C.unpack(stream("hp-64.ncb").read_bytes())
    reads = []

    class Counting(io.BytesIO):
        def read(self, n=-1):
            reads.append(n)
            return super().read(n)

    flood = C.pack(header, subs + [C.Substream("junk", b"")] * 100_000)
    with pytest.raises(BitstreamError, match="unexpected substream 'junk'"):
        ImageDecoder(hyperprior, Counting(flood))
    assert len(reads) < 50


def test_max_pixels_refuses_before_loading_the_model(tmp_path, stream, capsys, monkeypatch):
    import neuralcodec.codecs.api as api
    monkeypatch.setattr(api, "get_model", lambda *a: pytest.fail("model loaded"))
    path = stream("hp-2048.ncb")
    code, _, err = _cli(capsys, "decode", path, "-o", tmp_path / "o.png", "--max-pixels", 4_000_000)
    _one_error(code, err, "declares a 2048x2048 picture (4194304 pixels), more than the limit "
                          "of 4000000 (raise it with --max-pixels)")
    code, _, err = _cli(capsys, "decode", path, "-o", tmp_path / "o.png", "--max-pixels", 0)
    _one_error(code, err, "--max-pixels must be a positive number")


def test_trit_plane_prefix_respects_max_pixels(stream):
    from neuralcodec.codecs.api import decode_with_model, get_model
    model = get_model("trit-plane", None, "cpu")
    with pytest.raises(BitstreamError, match="more than the limit of 1000"):
        decode_with_model(model, stream("tp-2048-z-only.ncb", model).read_bytes(), max_pixels=1000)


def test_streamed_decode_equals_whole_latent_synthesis(codec_factory, monkeypatch):
    """Rows of tiles (latent strips decoded on demand) give exactly the pixels of the
    whole-latent tiled synthesis, and the entropy decoding of later strips happens after the
    first row of tiles is synthesised."""
    from neuralcodec.codecs import tiling
    from neuralcodec.codecs.api import encode_with_model, to_pixels
    from neuralcodec.codecs.base import Compressed
    from neuralcodec.codecs.image_decoder import ImageDecoder

    monkeypatch.setattr(tiling, "TILE", 128)
    monkeypatch.setattr(tiling, "HALO", 32)        # both paths use it; a small one is cheaper
    model = codec_factory("hyperprior")
    img = make_image(300, 200, seed=3)
    data = encode_with_model(model, img, 4.0)
    header, subs = C.unpack(data)
    tiles = tiling.latent_tiles(20, 16, model)                 # 3 strips of 2 tiles
    y_hat = torch.zeros(1, model.config["m"], 20, 16)
    for i, (r, c, th, tw) in enumerate(tiles):
        streams = {s.name.rpartition(".")[0]: s.data for s in subs
                   if s.name.rpartition(".")[2] == str(i)}
        y_hat[..., r:r + th, c:c + tw] = model.decode_latents(Compressed(streams, {"latent_hw": [th, tw]}))
    whole = to_pixels(tiling.synthesise_tiled(model, y_hat, header.quality).clamp(0, 1)[..., :300, :200])

    events = []
    decode, synth = model.decode_latents, model.synthesise
    monkeypatch.setattr(model, "decode_latents", lambda *a: events.append("D") or decode(*a))
    monkeypatch.setattr(model, "synthesise", lambda *a: events.append("S") or synth(*a))
    decoder = ImageDecoder(model, data)
    blocks = list(decoder.rows())
    assert [top for top, _ in blocks] == [0, 128, 256]
    assert all(len(b) == min(128, 300 - top) and b.shape[1:] == (200, 3) for top, b in blocks)
    assert np.array_equal(np.concatenate([b for _, b in blocks]), whole)
    last_decode = max(i for i, e in enumerate(events) if e == "D")
    assert events.count("D") == len(tiles) and events.index("S") < last_decode


# ------------------------------------------------------------------ streaming image writers
@pytest.mark.parametrize("suffix", [".png", ".ppm", ".bmp"])
def test_row_writer_round_trip(tmp_path, suffix):
    from neuralcodec.cli.image_rows import write_image_rows
    img = make_image(37, 29, seed=1)
    img[5:9] = 0                                   # flat rows: other filters win there
    blocks = [(0, img[:1]), (1, img[1:8]), (8, img[8:])]
    path = tmp_path / f"x{suffix}"
    write_image_rows(path, 29, 37, iter(blocks))
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), img)


def test_png_rows_compress_like_pillow(tmp_path):
    from neuralcodec.cli.image_rows import write_image_rows
    kodak = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak" / "kodim05.png"
    img = np.asarray(Image.open(kodak if kodak.is_file() else DATA.parent / "kodim05_crop.png")
                     .convert("RGB"))
    ours, pil = tmp_path / "a.png", tmp_path / "b.png"
    write_image_rows(ours, img.shape[1], img.shape[0], iter([(0, img[:100]), (100, img[100:])]))
    Image.fromarray(img).save(pil)
    assert np.array_equal(np.asarray(Image.open(ours)), img)
    assert ours.stat().st_size < 1.05 * pil.stat().st_size


# ------------------------------------------------------------------ bounded reads
def test_decode_and_truncate_check_the_header_before_reading_the_file(tmp_path, capsys,
                                                                      monkeypatch):
    import neuralcodec.cli.io_utils as io_utils
    zeros = tmp_path / "zeros.ncb"
    with open(zeros, "wb") as f:
        f.truncate(64 << 20)                        # sparse
    monkeypatch.setattr(io_utils, "read_input_bytes", lambda p: pytest.fail("whole file read"))
    for argv in (["decode", zeros, "-o", tmp_path / "o.png"],
                 ["truncate", zeros, "-o", tmp_path / "t.ncb", "--bytes", 100],
                 ["info", zeros]):
        code, _, err = _cli(capsys, *argv)
        _one_error(code, err, "bad magic bytes")


def test_info_on_a_pipe_keeps_no_data():
    """A record claiming 2^40 bytes, then 8 MiB through a pipe: info reports the cut
    substream; its data is checked in chunks (memory: bench/decode_memory.py)."""
    head = (DATA / "hp-claims-2e40.ncb").read_bytes()
    proc = subprocess.run([sys.executable, "-m", "neuralcodec", "info", "/dev/stdin", "--json"],
                          input=head + bytes(8 << 20), capture_output=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT / "src")), timeout=120)
    assert proc.returncode == 0, proc.stderr
    sub = json.loads(proc.stdout)["substreams"][0]
    assert sub == {"name": "trits", "bytes": 8 << 20, "declared_bytes": 1 << 40,
                   "truncatable": True, "truncated": True, "crc_checked": False}


def test_skip_data_reader_still_checks_crcs():
    data = (DATA / "hp-64.ncb").read_bytes()
    with C.ContainerReader(io.BytesIO(data), skip_data=True) as r:
        subs = list(r)
    assert [(s.name, s.data, s.size) for s in subs] == [(s.name, b"", len(s.data))
                                                       for s in C.unpack(data)[1]]
    bad = bytearray(data)
    bad[-L.END_SIZE - 3] ^= 1                        # inside the last substream's data
    with pytest.raises(BitstreamError, match="data CRC mismatch"):
        list(C.ContainerReader(io.BytesIO(bytes(bad)), skip_data=True))


def test_params_numbers_are_bounded_on_write_too():
    h = C.Header(codec="x", weights_hash=bytes(32), width=1, height=1, params={"a": 10 ** 30})
    with pytest.raises(BitstreamError, match="out of range"):
        C.pack(h, [])
    C.pack(C.Header(codec="x", weights_hash=bytes(32), width=1, height=1,
                    params={"a": 2 ** 63 - 1, "b": -1e308}), [])


@pytest.mark.parametrize("value, message", [("inf", "positive finite"), ("nan", "positive finite"),
                                            ("-1", "positive finite")])
def test_target_bpp_out_of_range(tmp_path, stream, capsys, value, message):
    from neuralcodec.codecs.api import get_model
    path = stream("tp-2048-z-only.ncb", get_model("trit-plane", None, "cpu"))
    for cmd in ("decode", "truncate"):
        code, _, err = _cli(capsys, cmd, path, "-o", tmp_path / "o.png", "--target-bpp", value)
        _one_error(code, err, message)


def test_target_bpp_beyond_the_file_keeps_it_whole(tmp_path, stream, capsys):
    from neuralcodec.codecs.api import get_model
    path = stream("tp-2048-z-only.ncb", get_model("trit-plane", None, "cpu"))
    code, out, _ = _cli(capsys, "truncate", path, "-o", tmp_path / "t.ncb", "--target-bpp", "1e308")
    assert code == 0 and (tmp_path / "t.ncb").read_bytes() == path.read_bytes()


# ------------------------------------------------------------------ weights metadata
def _weights(tmp_path, name="hyperprior", tensors=None, **meta_changes):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    src = ROOT / "src" / "neuralcodec" / "weights" / f"{name}.safetensors"
    with safe_open(str(src), "pt") as f:
        meta = f.metadata()
    meta = {k: v for k, v in {**meta, **meta_changes}.items() if v is not None}
    path = tmp_path / f"w{len(list(tmp_path.iterdir()))}.safetensors"
    save_file(tensors(load_file(str(src))) if tensors else load_file(str(src)), str(path),
              metadata=meta)
    return path


def _retype(state):
    return {k: v.to(torch.int32) if v.is_floating_point() else v for k, v in state.items()}


def _reshape(state):
    state["g_a.0.weight"] = torch.zeros(128, 3, 5, 6, dtype=torch.float16)
    return state


def _drop(state):
    del state["g_a.0.weight"]
    return state


@pytest.mark.parametrize("changes, message", [
    ({"config": '{"n": 128, "m": 192, "x": 1}'}, "config key 'x' is not an argument"),
    ({"config": "{n:"}, "'config' is not valid JSON"),
    ({"config": "[1, 2]"}, "'config' is not a JSON object"),
    ({"codec": None}, "metadata has no 'codec'"),
    ({"config": None}, "metadata has no 'config'"),
    ({"config": '{"n": ' + "9" * 400 + "}"}, "config n=999"),
    ({"config": '{"n": 1.5}'}, "config n=1.5 is out of range"),
    ({"config": '{"n": 60000, "m": 60000}'}, "has shape [128], codec 'hyperprior' needs [60000]"),
    ({"info": "[["}, "'info' is not a JSON object"),
    ({"tensors": _retype}, "is I32, codec 'hyperprior' needs a float type"),
    ({"tensors": _reshape}, "has shape [128, 3, 5, 6]"),
    ({"tensors": _drop}, "missing ['g_a.0.weight']"),
])
def test_bad_weights_metadata_is_one_model_error(tmp_path, changes, message):
    from neuralcodec.codecs.registry import load_model
    path = _weights(tmp_path, **changes)
    with pytest.raises(ModelError) as exc:
        load_model(None, path)
    assert message in str(exc.value)


def test_every_codec_config_passes_the_metadata_check():
    """What save_weights records (model.config) is accepted back for every codec."""
    from neuralcodec.codecs.registry import CODECS
    from neuralcodec.codecs.weights import weights_config
    from neuralcodec.video.weights import VIDEO_CODECS
    for name, cls in {**CODECS, **VIDEO_CODECS}.items():
        config = cls().config
        assert weights_config({"config": json.dumps(config)}, "w", cls) == config, name


def test_bad_video_weights_metadata(tmp_path):
    from neuralcodec.video.weights import load
    path = _weights(tmp_path, "video-rt", config='{"m": 64, "extra": 1}')
    with pytest.raises(ModelError, match="config key 'extra' is not an argument of codec 'video-rt'"):
        load(None, path)


def test_bad_weights_through_the_cli(tmp_path, valid_image, capsys):
    path = _weights(tmp_path, config='{"n": 60000, "m": 60000}')
    code, _, err = _cli(capsys, "decode", valid_image, "-o", tmp_path / "o.png", "--weights", path)
    _one_error(code, err, "needs [60000]")


# ------------------------------------------------------------------ video
def _video_model():
    from neuralcodec.video.weights import load
    return load(None, None, "cpu")


def _y4m_frames(path: Path, w=64, h=64) -> float:
    """Frames in a .y4m file of w x h 4:2:0 frames, from its size."""
    data = path.read_bytes()
    header = data.index(b"\n") + 1
    return (len(data) - header) / (len(b"FRAME\n") + w * h * 3 // 2)


@pytest.mark.parametrize("name, kept", [("vrt-cut-in-last-frame.ncv", 3),
                                        ("vrt-frame2-bad-length.ncv", 2)])
def test_damaged_video_keeps_its_complete_frames(tmp_path, capsys, videos, name, kept):
    src = tmp_path / name
    src.write_bytes(videos[name])
    out = tmp_path / "o.y4m"
    code, _, err = _cli(capsys, "decode", src, "-o", out)
    _one_error(code, err, f"the {kept} complete frames before it were written to {out}")
    assert _y4m_frames(out) == kept
    code, _, err = _cli(capsys, "decode", src, "-o", tmp_path / "none.y4m", "--all-or-nothing")
    _one_error(code, err)
    _no_leftovers(tmp_path, "none.y4m")


@pytest.mark.parametrize("name, message", [
    ("vrt-p-offsets-bigint.ncv", "header params: integer 9999"),
    ("vrt-i-offset-bigint.ncv", "header params: integer 9999"),
    ("vrt-truncatable-frame.ncv", "record I is flagged truncatable"),
])
def test_crafted_video_streams_fail_with_one_error(tmp_path, capsys, videos, name, message):
    src = tmp_path / name
    src.write_bytes(videos[name])
    code, _, err = _cli(capsys, "decode", src, "-o", tmp_path / "o.y4m")
    _one_error(code, err, message)
    _no_leftovers(tmp_path, "o.y4m")


@pytest.mark.parametrize("field, message", [
    ({"quality": 1e308}, "quality 1e+308 is outside"),
    ({"pixel_format": "yuv444p"}, "pixel format yuv444p is not supported"),
    ({"width": 8192, "height": 8192}, "larger than video-rt codes"),
])
def test_video_header_checked_before_the_model_loads(tmp_path, capsys, monkeypatch, field, message):
    import dataclasses

    import neuralcodec.video.weights as vw
    monkeypatch.setattr(vw, "load", lambda *a, **k: pytest.fail("model loaded"))
    header, subs = C.unpack((DATA / "vrt-4frames.ncv").read_bytes())   # fails before decoding
    src = tmp_path / "v.ncv"
    src.write_bytes(C.pack(dataclasses.replace(header, **field), subs))
    code, _, err = _cli(capsys, "decode", src, "-o", tmp_path / "o.y4m")
    _one_error(code, err, message)


def test_gop_params_overflow_is_a_bitstream_error():
    from neuralcodec.video.codec import GopConfig
    for params in ({"intra_period": 32, "p_offsets": [10 ** 400], "i_offset": 0},
                   {"intra_period": 32, "p_offsets": [0.0], "i_offset": 10 ** 400},
                   {"intra_period": 32, "p_offsets": [1e308], "i_offset": 0},
                   {"intra_period": 2 ** 40, "p_offsets": [0.0], "i_offset": 0},
                   {"intra_period": True, "p_offsets": [0.0], "i_offset": 0},
                   {"intra_period": 32, "p_offsets": [0.0] * 2000, "i_offset": 0}):
        with pytest.raises(BitstreamError, match="GOP"):
            GopConfig.from_params(params)


# ------------------------------------------------------------------ outputs
@pytest.fixture()
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_get_0666_minus_umask(tmp_path, valid_image, capsys, umask_027, videos):
    src = valid_image
    assert _cli(capsys, "decode", src, "-o", tmp_path / "a.png")[0] == 0
    assert _cli(capsys, "decode", src, "-o", tmp_path / "a.bmp")[0] == 0
    png = tmp_path / "p.png"
    Image.fromarray(make_image(16, 16)).save(png)
    assert _cli(capsys, "encode", png, "-o", tmp_path / "a.ncb")[0] == 0
    video = tmp_path / "v.ncv"
    video.write_bytes(videos["vrt-4frames.ncv"])
    assert _cli(capsys, "decode", video, "-o", tmp_path / "frames")[0] == 0
    assert _cli(capsys, "decode", video, "-o", tmp_path / "v.y4m")[0] == 0
    for name in ("a.png", "a.bmp", "a.ncb", "v.y4m", "frames/f00001.png"):
        assert _mode(tmp_path / name) == 0o640, name
    assert _mode(tmp_path / "frames") == 0o750


def test_replacing_an_output(tmp_path, valid_image, capsys):
    src, out = valid_image, tmp_path / "o.png"
    out.write_bytes(b"old")
    os.chmod(out, 0o604)
    link = tmp_path / "link.png"
    os.link(out, link)
    assert _cli(capsys, "decode", src, "-o", out)[0] == 0      # replaced, mode kept
    assert _mode(out) == 0o604 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert link.read_bytes() == b"old"                         # a new file: the link keeps the old
    first = out.read_bytes()
    code, _, err = _cli(capsys, "decode", src, "-o", out, "-n")
    _one_error(code, err, "exists (-n/--no-overwrite given)")
    os.chmod(out, 0o444)
    code, _, err = _cli(capsys, "decode", src, "-o", out)
    _one_error(code, err, "is write-protected (mode 0444)")
    assert out.read_bytes() == first
    _no_leftovers(tmp_path)


def test_no_overwrite_race_keeps_the_other_file(tmp_path):
    """-n is atomic: an output created while we work is not replaced."""
    from neuralcodec.io.outputs import atomic_path
    from neuralcodec.errors import InputError
    out = tmp_path / "o.bin"
    with pytest.raises(InputError, match="exists"):
        with atomic_path(out, overwrite=False) as tmp:
            tmp.write_bytes(b"ours")
            out.write_bytes(b"theirs")
    assert out.read_bytes() == b"theirs"
    _no_leftovers(tmp_path)


def _terminate_when(proc, folder: Path, timeout=120):
    """SIGTERM ``proc`` once a temporary output (a dot file) shows up in ``folder``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if any(p.name.startswith(".") for p in folder.iterdir()):
            proc.send_signal(signal.SIGTERM)
            return proc.wait(60)
        time.sleep(0.005)
    pytest.fail(f"no temporary output appeared (rc {proc.poll()})")


@pytest.mark.parametrize("kind", ["encode", "decode"])
def test_sigterm_leaves_no_temporary_output(tmp_path, kind):
    frames = tmp_path / "clip"
    frames.mkdir()
    for i in range(120):     # long enough (>= 1 s) that a loaded machine still sees it mid-run
        Image.fromarray(make_image(96, 96, seed=i)).save(frames / f"f{i:03d}.png")
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    if kind == "encode":
        argv = ["encode", str(frames), "-o", str(work / "v.ncv")]
    else:
        from neuralcodec.video.codec import encode_frames
        from neuralcodec.video.io import iter_frames
        buf = io.BytesIO()
        encode_frames(_video_model(), iter_frames(frames), buf, 96, 96)
        (tmp_path / "v.ncv").write_bytes(buf.getvalue())
        argv = ["decode", str(tmp_path / "v.ncv"), "-o", str(work / "frames")]
    proc = subprocess.Popen([sys.executable, "-m", "neuralcodec", *argv], env=env,
                            stderr=subprocess.PIPE, text=True)
    rc = _terminate_when(proc, work)
    assert rc == 143 and "neuralcodec: terminated" in proc.stderr.read()
    assert list(work.iterdir()) == []


def test_allocation_failure_is_one_error(tmp_path, valid_image, capsys, monkeypatch):
    from neuralcodec.codecs.image_decoder import ImageDecoder

    def fail(self):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: "
                           "can't allocate memory: you tried to allocate 6442450944 bytes.")
        yield
    monkeypatch.setattr(ImageDecoder, "rows", fail)
    code, _, err = _cli(capsys, "decode", valid_image, "-o", tmp_path / "o.png")
    _one_error(code, err, "out of memory")
    _no_leftovers(tmp_path, "o.png")


def test_pipelined_decoder_yields_its_pending_frame_before_the_error(videos, monkeypatch):
    """The CUDA decoder holds one frame back; on an error that frame is still given out (its
    CPU form runs the same interface, so the test forces it)."""
    from neuralcodec.video import codec as vc
    model = _video_model()
    plain = list(vc.decode_frames(model, io.BytesIO(videos["vrt-4frames.ncv"])))
    open_plain = vc.open_decoder
    monkeypatch.setattr(vc, "open_decoder", lambda m, h, d, half, **k: vc.PipelinedDecoder(
        m, h.width, h.height, h.quality, vc.GopConfig.from_params(h.params), "cpu", False)
        if open_plain(m, h, d, half, **k) else None)
    got = []
    with pytest.raises(BitstreamError, match="claims"):
        for frame in vc.decode_frames(model, io.BytesIO(videos["vrt-cut-in-last-frame.ncv"])):
            got.append(frame)
    assert len(got) == 3 and all(np.array_equal(a, b) for a, b in zip(got, plain))
