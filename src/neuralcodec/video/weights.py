"""Video codec registry and weights: ``video-rt`` P-frame weights (safetensors) that name
the I-frame image codec and its weights hash; the bitstream hash covers both."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from neuralcodec.errors import ModelError
from neuralcodec.video.model import NAME, VideoRT

VIDEO_CODECS = {NAME: VideoRT}
DEFAULT_VIDEO_CODEC = NAME


def available() -> list[str]:
    return sorted(VIDEO_CODECS)


def shipped_weights(name: str = NAME) -> Path | None:
    from neuralcodec.codecs.registry import shipped_weights as image_shipped
    return image_shipped(name)


def intra_codec(name: str = "hyperprior", device="cpu"):
    """The I-frame image codec: its shipped weights, else a fixed random initialisation
    (seed 0; for tests and for training before image weights exist)."""
    from neuralcodec.codecs import registry

    if registry.shipped_weights(name) is not None:
        return registry.load_model(name, None, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = registry.create(name)
    model.update()
    return model.to(device).eval()


def intra_hash(intra) -> str:
    from neuralcodec.codecs.weights import model_hash
    return model_hash(intra).hex()


def create(name: str = NAME, intra_model=None, device="cpu", **config) -> VideoRT:
    """A fresh video codec with its I-frame codec attached."""
    if name not in VIDEO_CODECS:
        raise ModelError(f"unknown video codec {name!r} (available: {', '.join(available())})")
    try:
        model = VIDEO_CODECS[name](**config)
    except (TypeError, ValueError) as exc:     # unknown option, impossible value
        raise ModelError(f"bad {name} options {config}: {exc}") from None
    model.set_intra(intra_model if intra_model is not None else intra_codec(model.config["intra"], device))
    return model.to(device)


def save_weights(model: VideoRT, path, *, dtype: str = "fp16", info: dict | None = None) -> None:
    """Write P-frame weights (fp16) with config, the I-frame codec name and its hash."""
    from neuralcodec.codecs.weights import save_weights as save_codec_weights

    save_codec_weights(model, path, dtype=dtype, info=info,
                       extra_meta={"intra": model.config["intra"], "intra_hash": intra_hash(model.intra)})


def load(name: str | None = None, weights=None, device="cpu", intra=None, check_intra: bool = True,
         intra_weights=None) -> VideoRT:
    """Load a video codec (shipped weights unless ``weights``); checks the I-frame codec hash
    unless ``check_intra`` is off (fine-tuning the P-frame model for new I-frame weights).
    The I-frame codec is ``intra``, else one loaded from ``intra_weights``, else the installed one."""
    from neuralcodec.codecs.weights import (attach_weights, build_checked, read_metadata, weights_config)
    name = name or DEFAULT_VIDEO_CODEC
    if name not in VIDEO_CODECS:
        raise ModelError(f"unknown video codec {name!r} (available: {', '.join(available())})")
    if weights is None:
        weights = shipped_weights(name)
        if weights is None:
            raise ModelError(f"video codec {name!r} has no shipped weights; pass --weights FILE")
    path = Path(weights)
    if not path.is_file():
        raise ModelError(f"weights file {path} not found")
    meta = read_metadata(path)
    if meta["codec"] != name:
        raise ModelError(f"weights {path} are for codec {meta['codec']!r}, not {name!r}")
    config = weights_config(meta, path, VIDEO_CODECS[name])
    model = build_checked(path, name, VIDEO_CODECS[name], config, lambda: VIDEO_CODECS[name](**config))
    if intra is None and intra_weights is not None:
        from neuralcodec.codecs.registry import load_model
        intra = load_model(model.config["intra"], intra_weights, device)
    intra = intra if intra is not None else intra_codec(model.config["intra"], device)
    if check_intra and meta.get("intra_hash") and meta["intra_hash"] != intra_hash(intra):
        raise ModelError(f"weights {path} were trained with {config.get('intra')} weights "
                         f"{meta['intra_hash'][:12]}, installed ones are {intra_hash(intra)[:12]}")
    model.set_intra(intra)
    return attach_weights(model.to(device), path, meta, device)


def video_hash(model: VideoRT) -> bytes:
    """The hash a video bitstream records: P weights (file or state) and the I-frame codec's."""
    from neuralcodec.codecs.weights import model_hash, state_dict_hash
    h = hashlib.sha256(b"video-rt")
    known = getattr(model, "weights_hash", None)
    if known is None:
        state_dict_hash(model, h)
    else:
        h.update(known)
    h.update(model_hash(model.intra))
    return h.digest()


def model_rows() -> list[tuple[str, int, str, str]]:
    """(name, P-frame parameters, weights, note) of each video codec, for `neuralcodec models`."""
    from neuralcodec.codecs.weights import read_metadata, weights_config
    from neuralcodec.video.model import parameter_count
    rows = []
    for name, cls in sorted(VIDEO_CODECS.items()):
        path = shipped_weights(name)
        config, info = {}, {}
        if path is not None:
            meta = read_metadata(path)
            config, info = weights_config(meta, path, cls), json.loads(meta.get("info", "{}"))
        model = cls(**config)
        weights = (f"{path.name} ({path.stat().st_size / 2**20:.1f} MiB)" if path
                   else "none shipped (train-video)")
        note = f"video: I-frames {model.config['intra']}, P-frames conditional"
        if info.get("video_rd"):
            note += "; " + info["video_rd"]
        rows.append((name, parameter_count(model), weights, note))
    return rows
