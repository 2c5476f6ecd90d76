"""Target 2: whole-image decode (``neuralcodec.codecs.api.decode_image``) on the CPU with the
shipped factorized and hyperprior weights, seeded from a 64x64 crop coded by each; the
header names the codec, so mutations may also reach the other shipped image codecs."""
from __future__ import annotations

import _harness
import atheris

with atheris.instrument_imports(include=["neuralcodec"]):
    from neuralcodec.codecs import api, image_decoder, tiling  # noqa: F401
    from neuralcodec.container import read_header
    for _codec in ("factorized", "hyperprior"):
        api.get_model(_codec, None, "cpu")


def target(data: bytes) -> None:
    data = _harness.prepare(data)
    pixels = api.decode_image(data, "cpu")
    h = read_header(data)
    assert pixels.shape == (h.height, h.width, 3) and pixels.dtype.name == "uint8"


def seeds() -> dict[str, bytes]:
    import seeds as S
    return S.image_streams()


if __name__ == "__main__":
    _harness.main("image", target, seeds, structured=True)
