"""Golden bitstreams: the SHA-256 of the streams every shipped codec writes (and the registered
codecs without shipped weights at a fixed random initialisation, and imported CompressAI models
built from a fixed seed) on small crops at three qualities, one thread. Refactors must keep them
bit-identical; a deliberate format change regenerates the file with
``python tests/test_golden_streams.py --write`` and says why in its commit."""
from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

GOLDEN = Path(__file__).parent / "data" / "golden_streams.json"
CROP = Path(__file__).parent / "data" / "kodim05_crop.png"     # Kodak kodim05, 96x64
QUALITIES = (1.0, 4.5, 8.0)
SHIPPED = ("hyperprior", "elic", "trit-plane")
RANDOM_INIT = ("factorized", "gmm-ctx")
IMPORTED = ("mbt2018-mean", "cheng2020-anchor-checkerboard")
#: codecs whose streams do not depend on the quality asked (trit-plane codes one fixed quality,
#: an import of one checkpoint has one level): one quality each
ONE_QUALITY = ("trit-plane", *(f"compressai-{arch}" for arch in IMPORTED))


def images() -> dict[str, np.ndarray]:
    """Two crops of the tracked Kodak image: the whole 96x64 one and an odd-sized 40x35 part."""
    full = np.asarray(Image.open(CROP).convert("RGB")).copy()
    return {"kodim05-96x64": full, "kodim05-40x35": full[13:48, 30:70].copy()}


def _sha(data: bytes) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()


def _random_codec(name: str):
    from neuralcodec.codecs.registry import create

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create(name)
    model.update()
    return model.eval()


def _imported_codec(arch: str, folder: Path):
    from neuralcodec.importers.compressai import import_compressai
    from test_import import compressai_net

    path = folder / f"{arch}.pth.tar"
    torch.save(compressai_net(arch).state_dict(), path)
    return import_compressai(arch, [path])


def _video_clip() -> list[np.ndarray]:
    """Three 64x64 frames: the crop panning right by 4 pixels a frame."""
    full = np.asarray(Image.open(CROP).convert("RGB"))
    return [full[:64, 4 * i:4 * i + 64].copy() for i in range(3)]


def stream_hashes(folder: Path) -> dict[str, str]:
    """label -> SHA-256 of the bitstream, for every codec, image and quality."""
    from neuralcodec.codecs.api import encode_with_model
    from neuralcodec.codecs.registry import load_model
    from neuralcodec.video import weights as video_weights
    from neuralcodec.video.codec import encode_frames

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        models = {name: load_model(name) for name in SHIPPED}
        models.update({name: _random_codec(name) for name in RANDOM_INIT})
        models.update({f"compressai-{arch}": _imported_codec(arch, folder) for arch in IMPORTED})
        out = {}
        for name, model in models.items():
            for label, pixels in images().items():
                for q in QUALITIES[-1:] if name in ONE_QUALITY else QUALITIES:
                    out[f"{name}/{label}/q{q:g}"] = _sha(encode_with_model(model, pixels, q, "cpu"))
        video = video_weights.load("video-rt")
        for q in (2.0, 6.0):
            buf = io.BytesIO()
            encode_frames(video, _video_clip(), buf, 64, 64, quality=q, intra_period=2, device="cpu")
            out[f"video-rt/pan-64x64x3/q{q:g}"] = _sha(buf.getvalue())
        return out
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_streams_are_bit_identical_to_the_golden_hashes(tmp_path):
    golden = json.loads(GOLDEN.read_text())
    now = stream_hashes(tmp_path)
    assert sorted(now) == sorted(golden), "the set of golden streams changed"
    changed = [k for k in golden if golden[k] != now[k]]
    assert not changed, f"{len(changed)} streams changed: {changed[:6]}"


@pytest.mark.slow
def test_the_gemm_exact_convolutions_write_the_golden_streams_too(tmp_path):
    """The GPU's default exact-convolution path (im2col + float64 matrix products, no rounding
    of the exact sums, ReLUs joined to the requantisation), run on the CPU, writes the same
    streams as F.conv2d."""
    from neuralcodec.entropy.exact import set_conv_impl

    golden = json.loads(GOLDEN.read_text())
    set_conv_impl("gemm", "cpu")
    try:
        now = stream_hashes(tmp_path)
    finally:
        set_conv_impl("conv", "cpu")
    changed = [k for k in golden if golden[k] != now[k]]
    assert not changed, f"{len(changed)} streams changed: {changed[:6]}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_golden_streams.py --write")
    import tempfile
    sys.path.insert(0, str(Path(__file__).parent))
    with tempfile.TemporaryDirectory() as tmp:
        hashes = stream_hashes(Path(tmp))
    GOLDEN.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(hashes)} hashes to {GOLDEN}")
