"""Target 4: the video container/decoder on the CPU (``video.codec.decode_frames`` with the
shipped video-rt weights) and the trit-plane progressive stream reader (whole-stream decode,
decode of a best prefix, and ``SegmentReader`` on raw plane bytes)."""
from __future__ import annotations

import io

import _harness
import atheris
import numpy as np

with atheris.instrument_imports(include=["neuralcodec"]):
    from neuralcodec.codecs import api
    from neuralcodec.container import read_header
    from neuralcodec.entropy import tritplane as T
    from neuralcodec.video import codec as V
    from neuralcodec.video.weights import load
    VIDEO = load(None, None, "cpu")
    TRIT = api.get_model("trit-plane", None, "cpu")
    TRIT.base                                   # noqa: B018 - loads the base model now

_PLANE_FREQS = np.random.default_rng(5).integers(0, 3000, (4096, 3)).astype(np.int32)


def target(data: bytes) -> None:
    raw = data[1:]
    data = _harness.prepare(data)
    header = _harness.attempt(read_header, data)
    if header is None:                          # raw plane bytes for the segment reader
        trits = T.SegmentReader(raw).read_plane(_PLANE_FREQS)
        assert len(trits) <= len(_PLANE_FREQS) and np.all((trits >= 0) & (trits <= 2))
        return
    if header.kind == "video":
        for frame in V.decode_frames(VIDEO, io.BytesIO(data), "cpu"):
            assert frame.shape == (header.height, header.width, 3)
        return
    pixels = api.decode_image(data, "cpu")
    assert pixels.shape == (header.height, header.width, 3)
    if header.codec == "trit-plane":
        TRIT.decode_image(data, "cpu", max_bytes=max(len(data) * 3 // 4, 1))


def seeds() -> dict[str, bytes]:
    import seeds as S
    from neuralcodec.container import unpack
    tp = S.tritplane_streams()
    out = {**S.video_streams(), **tp}
    trits = unpack(tp["tp-64.ncb"])[1][1].data
    for i, cut in enumerate((64, 700, len(trits))):
        out[f"segments-{i}"] = trits[:cut]            # no magic: SegmentReader
    return out


if __name__ == "__main__":
    _harness.main("video", target, seeds, structured=True)
