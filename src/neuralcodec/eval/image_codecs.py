"""Image codecs under evaluation: classical ones (Pillow, imagecodecs) and neuralcodec's own.

Every codec turns RGB uint8 pixels into the bytes of a real file and back; the size that is
scored is ``len(bytes)``. Each codec carries a default quality sweep and the settings that
are recorded in the results (library versions, speed/effort, subsampling).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

from neuralcodec.errors import ModelError

CLASSICAL = ("jpeg", "webp", "avif", "jpeg2000", "jpegxl")


class CodecUnavailable(ModelError):
    """A codec name that does not exist, or whose library/encoder is missing."""


@dataclass
class EvalImageCodec:
    """Base: ``encode``/``decode`` plus the default sweep and recorded settings."""

    name: str
    qualities: tuple[float, ...]
    quality_param: str
    settings: dict = field(default_factory=dict)

    def encode(self, pixels: np.ndarray, quality: float) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> np.ndarray:
        return _pil_decode(data)

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{self.name} ({self.quality_param} sweep; {opts})"

    def probe(self, quality: float) -> None:
        """Round-trip a small image once, so a codec that cannot work at all (no weights,
        broken library) fails before the run with one clear line."""
        yy, xx = np.mgrid[0:64, 0:64]
        img = np.stack([xx * 4, yy * 4, (xx + yy) * 2], -1).astype(np.uint8)
        try:
            rec = self.decode(self.encode(img, quality))
        except Exception as exc:
            raise CodecUnavailable(f"codec {self.name!r} does not work here: "
                                   f"{type(exc).__name__}: {' '.join(str(exc).split())}") from None
        if rec.shape != img.shape:
            raise CodecUnavailable(f"codec {self.name!r} decodes {img.shape} to {rec.shape}")


def _pil_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


class PillowCodec(EvalImageCodec):
    """A Pillow format; ``params(quality)`` gives the save() keyword arguments."""

    def __init__(self, name, fmt, qualities, quality_param, params, settings):
        super().__init__(name, tuple(qualities), quality_param, settings)
        self.fmt, self.params = fmt, params

    def encode(self, pixels, quality):
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buf, self.fmt, **self.params(quality))
        return buf.getvalue()


class JpegXLCodec(EvalImageCodec):
    """JPEG XL through imagecodecs (libjxl); quality is the Butteraugli distance."""

    def encode(self, pixels, quality):
        import imagecodecs

        return imagecodecs.jpegxl_encode(np.ascontiguousarray(pixels), distance=float(quality),
                                         effort=self.settings["effort"], numthreads=1)

    def decode(self, data):
        import imagecodecs

        return np.asarray(imagecodecs.jpegxl_decode(data, numthreads=1))[..., :3]


class NeuralImageCodec(EvalImageCodec):
    """A neuralcodec codec through ``neuralcodec.codecs.api`` (full container bitstreams):
    its shipped weights, or (``weights``) a weights file of codec ``codec`` under the name
    (``--weights CODEC=FILE`` for one of our codecs, ``NAME=FILE`` in --codecs for any file)."""

    def __init__(self, name, api, device="cpu", weights=None, codec=None,
                 qualities=(1, 2, 3, 4, 5, 6, 7, 8), refine: int = 0):
        settings = {"library": "neuralcodec", "device": device, "weights": _weights_id(name, weights)}
        if weights is not None:
            settings["codec"] = codec or name
            settings["weights_file"] = str(weights)
        if refine:
            settings["refine_steps"] = int(refine)     # encoder-side latent refinement
        super().__init__(name, tuple(qualities), "quality (1-8)", settings)
        self.api, self.device = api, device
        self.codec, self.weights, self.refine = codec or name, weights, int(refine)
        #: what get_image_codec rebuilds this codec from (in worker processes)
        self.spec = name if weights is None else f"{name}={weights}"

    def _weights(self) -> dict:
        return {} if self.weights is None else {"weights": self.weights}

    def encode(self, pixels, quality):
        extra = self._weights()
        if self.refine:
            from neuralcodec.codecs.refine import Refinement
            extra["refine"] = Refinement(steps=self.refine)
        return bytes(self.api.encode_image(pixels, self.codec, float(quality), device=self.device, **extra))

    def decode(self, data):
        return np.asarray(self.api.decode_image(data, device=self.device, **self._weights()),
                          dtype=np.uint8)


def _weights_codec(spec: str, api, device: str, refine: int = 0) -> NeuralImageCodec:
    """``NAME=FILE``: a neuralcodec weights file (an imported model, a training export) under
    a name; its sweep is the codec's own (an imported model's quality labels) or 1..8."""
    import json
    import re
    from pathlib import Path

    from neuralcodec.codecs.registry import CODECS
    from neuralcodec.codecs.weights import read_metadata

    name, _, path = spec.partition("=")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name in _FACTORIES:
        raise CodecUnavailable(f"codec {spec!r}: NAME=WEIGHTS needs a new name of letters, digits, '.', "
                               f"'_' or '-'")
    path = Path(path).resolve()
    if not path.is_file():
        raise CodecUnavailable(f"codec {name!r}: weights file {path} not found")
    try:
        meta = read_metadata(path)
        cls = CODECS[meta["codec"]]
        config = json.loads(meta["config"])
    except (ModelError, KeyError, ValueError) as exc:
        raise CodecUnavailable(f"codec {name!r}: {exc}") from None
    sweep = cls.default_qualities(config) if hasattr(cls, "default_qualities") else range(1, 9)
    return NeuralImageCodec(name, api, device, str(path), meta["codec"], tuple(sweep), refine)


def _weights_id(name: str, path=None) -> str:
    """SHA-256 prefix of a codec's shipped (or given) weights (part of the cache key: new
    weights, new results)."""
    try:
        from neuralcodec.codecs.registry import shipped_weights
        from neuralcodec.container import weights_hash
    except ImportError:
        return "unknown"
    path = path or shipped_weights(name)
    return weights_hash(path).hex()[:16] if path else "none"


def _pillow_version() -> str:
    import PIL

    return PIL.__version__


def _make_jpeg():
    return PillowCodec("jpeg", "JPEG", (10, 25, 40, 60, 75, 90), "quality",
                       lambda q: {"quality": int(q), "optimize": True, "subsampling": "4:2:0"},
                       {"library": f"Pillow {_pillow_version()} (libjpeg)", "subsampling": "4:2:0",
                        "optimize": True})


def _make_webp():
    from PIL import features

    if not features.check("webp"):
        raise CodecUnavailable("codec 'webp' not available: this Pillow has no WebP support")
    return PillowCodec("webp", "WEBP", (5, 20, 40, 60, 80, 95), "quality",
                       lambda q: {"quality": int(q), "method": 4},
                       {"library": f"Pillow {_pillow_version()} (libwebp {features.version('webp')})",
                        "method": 4})


AVIF_SUBSAMPLINGS = ("4:4:4", "4:2:0")
AVIF_DEFAULTS = {"subsampling": "4:4:4", "speed": 6}


def _make_avif(subsampling: str = AVIF_DEFAULTS["subsampling"], speed: int = AVIF_DEFAULTS["speed"]):
    """AVIF (libaom). 4:4:4 by default: the metrics are on RGB, and 4:2:0 would charge AVIF
    for chroma it threw away (``--avif-subsampling 4:2:0`` for the web-delivery setting)."""
    from PIL import features

    if subsampling not in AVIF_SUBSAMPLINGS:
        raise CodecUnavailable(f"avif subsampling {subsampling!r}: use {' or '.join(AVIF_SUBSAMPLINGS)}")
    if not 0 <= int(speed) <= 10:
        raise CodecUnavailable(f"avif speed {speed}: use 0 (slowest) to 10 (fastest)")
    if not features.check("avif"):
        raise CodecUnavailable("codec 'avif' not available: this Pillow has no AVIF support")
    from PIL import _avif

    if not _avif.encoder_codec_available("aom"):
        raise CodecUnavailable("codec 'avif' not available: Pillow's libavif has no libaom encoder")
    speed = int(speed)
    return PillowCodec("avif", "AVIF", (20, 35, 50, 65, 75, 85), "quality",
                       lambda q: {"quality": int(q), "speed": speed, "codec": "aom",
                                  "subsampling": subsampling, "max_threads": 1},
                       {"library": f"Pillow {_pillow_version()} (libavif {features.version('avif')}, "
                                   f"{_avif.codec_versions()})",
                        "encoder": "aom", "speed": speed, "subsampling": subsampling})


def _make_jpeg2000():
    from PIL import features

    if not features.check("jpg_2000"):
        raise CodecUnavailable("codec 'jpeg2000' not available: this Pillow has no OpenJPEG")
    return PillowCodec("jpeg2000", "JPEG2000", (192, 96, 48, 24, 12, 6), "compression ratio",
                       lambda q: {"quality_mode": "rates", "quality_layers": [float(q)],
                                  "irreversible": True, "mct": 1, "no_jp2": False},
                       {"library": f"Pillow {_pillow_version()} (OpenJPEG "
                                   f"{features.version('jpg_2000')})",
                        "wavelet": "9/7 irreversible", "mct": 1, "file": "JP2"})


def _make_jpegxl():
    try:
        import imagecodecs
    except ImportError as exc:
        raise CodecUnavailable(f"codec 'jpegxl' not available: {exc}") from None
    if not getattr(imagecodecs, "JPEGXL", None) or not imagecodecs.JPEGXL.available:
        raise CodecUnavailable("codec 'jpegxl' not available: imagecodecs was built without libjxl")
    return JpegXLCodec("jpegxl", (8, 5, 3, 2, 1.25, 0.75), "distance",
                       {"library": f"imagecodecs {imagecodecs.__version__} (libjxl "
                                   f"{imagecodecs.jpegxl_version().replace('libjxl ', '')})", "effort": 7})


_FACTORIES = {"jpeg": _make_jpeg, "webp": _make_webp, "avif": _make_avif,
              "jpeg2000": _make_jpeg2000, "jpegxl": _make_jpegxl}


def _neural_api():
    """The neuralcodec codec API module, or raise CodecUnavailable with the reason."""
    import warnings

    try:
        with warnings.catch_warnings():  # torch's import-time deprecation notices
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            from neuralcodec.codecs import api
    except Exception as exc:  # ImportError, or a broken module
        raise CodecUnavailable(f"neuralcodec codecs are not available "
                               f"(neuralcodec.codecs.api: {type(exc).__name__}: {exc})") from None
    return api


def neural_codec_names(shipped: bool = False) -> list[str]:
    """Names of neuralcodec's image codecs (only those with shipped weights if ``shipped``), or []
    when the API is missing."""
    try:
        names = list(_neural_api().list_codecs())
    except CodecUnavailable:
        return []
    if shipped:
        from neuralcodec.codecs.registry import shipped_weights
        names = [n for n in names if shipped_weights(n) is not None]
    return names


def get_image_codec(name: str, device: str = "cpu", options: dict | None = None) -> EvalImageCodec:
    """The codec called ``name`` with its ``options`` (avif: subsampling, speed; neuralcodec's
    codecs: weights, refine steps), or ``NAME=WEIGHTS`` (a neuralcodec weights file under a name);
    CodecUnavailable with one clear line otherwise."""
    options = dict(options or {})
    if name in _FACTORIES:
        return _FACTORIES[name](**options)
    weights = options.pop("weights", None)
    refine = options.pop("refine", 0)
    if "=" not in name:
        _check_shipped(name, weights)
    try:
        api = _neural_api()
    except CodecUnavailable as exc:
        from neuralcodec.codecs import catalog
        if name in catalog.IMAGE_CODECS:
            raise CodecUnavailable(f"codec {name!r} not available: {exc}") from None
        raise CodecUnavailable(f"unknown codec {name!r}; available: {', '.join(CLASSICAL)} "
                               f"({exc})") from None
    if "=" in name:
        return _weights_codec(name, api, device, refine)
    names = list(api.list_codecs())
    if name not in names:
        raise CodecUnavailable(f"unknown codec {name!r}; available: "
                               f"{', '.join(list(CLASSICAL) + names)}")
    return NeuralImageCodec(name, api, device, str(weights) if weights else None, refine=refine)


def _check_shipped(name: str, weights) -> None:
    """One clear line for a codec of ours that has no shipped weights and was given none."""
    from neuralcodec.codecs import catalog

    if weights or name not in catalog.IMAGE_CODECS:
        return
    try:
        from neuralcodec.codecs.registry import shipped_weights
    except ImportError:   # no torch: get_image_codec says so
        return
    if shipped_weights(name) is None:
        raise CodecUnavailable(f"codec {name!r} has no shipped weights; evaluate trained ones "
                               f"with --weights {name}=FILE")
