"""Codecs imported from CompressAI checkpoints (``neuralcodec import compressai``).

An imported codec holds one or more fixed-rate *levels* (:mod:`.compressai_levels`,
:mod:`.compressai_checkerboard`), each with a quality label in [1, 8]: CompressAI trains one model per quality, its zoo has 8. A
quality picks the level with the nearest label (the lower one on a tie); the bitstream
records that label as its quality, and decoding uses the level with exactly that label.

Streams are ordinary containers written by the level, under the imported codec's name and
the weights file's hash, so a stream decodes only with the same weights file.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neuralcodec.codecs.base import (QUALITY_MAX, QUALITY_MIN, ImageCodec, LevelledImageCodec, check_quality,
                                     register_codec)
from neuralcodec.codecs.compressai_checkerboard import CheckerboardLevel
from neuralcodec.codecs.compressai_levels import FactorizedLevel, MeanScaleLevel, ScaleHyperpriorLevel
from neuralcodec.entropy.exact import ExactNet
from neuralcodec.entropy.factorized import FactorizedPrior
from neuralcodec.errors import BitstreamError, InputError, ModelError
from neuralcodec.limits import DEFAULT_MAX_PIXELS

DEFAULT_LEVELS = ({"label": 1.0, "n": 128, "m": 192},)


def check_levels(levels) -> list[dict]:
    """Validated level configs ({"label", "n", "m"}, and "groups" for channel-group models),
    sorted by label."""
    out = []
    for level in levels:
        try:
            label, n, m = float(level["label"]), int(level["n"]), int(level["m"])
            groups = [int(g) for g in level["groups"]] if "groups" in level else None
        except (KeyError, TypeError, ValueError):
            raise ModelError(f"bad level config {level!r}") from None
        if not QUALITY_MIN <= label <= QUALITY_MAX or n < 1 or m < 1 \
                or (groups is not None and (min(groups) < 1 or sum(groups) != m)):
            raise ModelError(f"bad level config {level!r} (labels are qualities in "
                             f"[{QUALITY_MIN:g}, {QUALITY_MAX:g}])")
        out.append({"label": label, "n": n, "m": m, **({"groups": groups} if groups else {})})
    labels = [level["label"] for level in out]
    if not out or len(set(labels)) != len(labels):
        raise ModelError(f"an imported codec needs distinct quality labels, got {labels}")
    return sorted(out, key=lambda level: level["label"])


def prepare_for_coding(level: nn.Module) -> None:
    """Coding tables of every entropy bottleneck (kept when loaded, e.g. CompressAI's own from a
    zoo file; built from the weights otherwise), coding medians, frozen integer networks."""
    for module in level.modules():
        if isinstance(module, FactorizedPrior):
            if module.has_tables():
                module.snap_medians()
            else:
                module.update()
        elif isinstance(module, ExactNet):
            module.freeze()


class ImportedCodec(LevelledImageCodec):
    """Base of the imported codecs: quality labels -> fixed-rate levels."""

    arch: str = ""                  # CompressAI's architecture name
    level_class: type[ImageCodec]
    weights_note = "none shipped (see docs/import.md)"

    default_levels = DEFAULT_LEVELS

    @property
    def latent_stride(self) -> int:
        """The levels' latent stride (what the ONNX manifest records)."""
        return self.level_class.latent_stride

    def __init__(self, levels=None, modules: list[ImageCodec] | None = None):
        """``levels``: [{"label", "n", "m"}, ...]; ``modules``: built levels in the same order
        (the importer's), else fresh ones."""
        super().__init__()
        levels = levels or self.default_levels
        self.config = {"levels": check_levels(levels)}
        if modules is None:
            modules = [self.make_level(level) for level in self.config["levels"]]
        else:           # check_levels sorts by label: sort the modules alike
            modules = [modules[i] for i in sorted(range(len(levels)), key=lambda i: float(levels[i]["label"]))]
        self.levels = nn.ModuleList(modules)
        for level in self.levels:
            level.name = self.name          # streams carry the imported codec's name

    def make_level(self, level: dict) -> ImageCodec:
        """A fresh level for a level config."""
        return self.level_class(level["n"], level["m"])

    @property
    def labels(self) -> list[float]:
        return [level["label"] for level in self.config["levels"]]

    @classmethod
    def default_qualities(cls, config: dict) -> list[float]:
        """The qualities worth evaluating: the level labels."""
        return [level["label"] for level in check_levels(config.get("levels") or cls.default_levels)]

    def level_for(self, quality: float) -> tuple[float, ImageCodec]:
        """(label, level) nearest to ``quality``; the lower label on a tie."""
        q = check_quality(quality)
        i = min(range(len(self.labels)), key=lambda j: (abs(self.labels[j] - q), self.labels[j]))
        return self.labels[i], self._stamped(self.levels[i])

    def _stamped(self, level: ImageCodec) -> ImageCodec:
        """The level, carrying this codec's weights hash (what its streams record)."""
        from neuralcodec.codecs.weights import model_hash

        level.weights_hash = model_hash(self)
        return level

    def update(self) -> None:
        for level in self.levels:
            prepare_for_coding(level)

    @torch.no_grad()
    def encode_image(self, pixels: np.ndarray, quality: float, device=None) -> bytes:
        from neuralcodec.codecs.api import encode_with_model

        label, level = self.level_for(quality)
        return encode_with_model(level, pixels, label, device)

    def level_for_stream(self, header) -> ImageCodec:
        """The level that decodes a stream with ``header``: this file's weights hash and
        exactly one of the level labels as the quality."""
        from neuralcodec.codecs.weights import model_hash
        from neuralcodec.container import check_weights

        check_weights(header, self.name, model_hash(self))
        if header.quality not in self.labels:
            raise BitstreamError(f"the stream's quality {header.quality:g} is none of this model's "
                                 f"labels ({', '.join(f'{q:g}' for q in self.labels)})")
        return self._stamped(self.levels[self.labels.index(header.quality)])

    def decode_image(self, data, device=None, max_bytes: int | None = None,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """Decode a stream (bytes, a path or a binary file) with the checked, tile-bounded
        decoder (:class:`~neuralcodec.codecs.image_decoder.ImageDecoder`)."""
        from neuralcodec.codecs.image_decoder import ImageDecoder

        if max_bytes is not None:
            raise InputError(f"--bytes/--fraction/--target-bpp need a progressive codec "
                             f"(trit-plane); this stream is {self.name}")
        return ImageDecoder(self, data, max_pixels=max_pixels).pixels()


@register_codec
class ImportedFactorized(ImportedCodec):
    name = "compressai-bmshj2018-factorized"
    arch = "bmshj2018-factorized"
    level_class = FactorizedLevel
    stride = FactorizedLevel.stride


@register_codec
class ImportedScaleHyperprior(ImportedCodec):
    name = "compressai-bmshj2018-hyperprior"
    arch = "bmshj2018-hyperprior"
    level_class = ScaleHyperpriorLevel
    stride = ScaleHyperpriorLevel.stride


@register_codec
class ImportedMeanScale(ImportedCodec):
    name = "compressai-mbt2018-mean"
    arch = "mbt2018-mean"
    level_class = MeanScaleLevel
    stride = MeanScaleLevel.stride


class ImportedCheckerboard(ImportedCodec):
    """CompressAI's checkerboard models (one class per architecture below)."""

    level_class = CheckerboardLevel
    stride = CheckerboardLevel.stride

    def make_level(self, level: dict) -> ImageCodec:
        groups = level.get("groups") or [level["m"]]
        return CheckerboardLevel(self.arch, level["n"], level["m"], groups)


_ELIC_LEVELS = ({"label": 1.0, "n": 192, "m": 320, "groups": [16, 16, 32, 64, 192]},)   # CompressAI's defaults


@register_codec
class ImportedElic(ImportedCheckerboard):
    name = "compressai-elic2022-official"
    arch = "elic2022-official"
    default_levels = _ELIC_LEVELS


@register_codec
class ImportedElicChandelier(ImportedCheckerboard):
    name = "compressai-elic2022-chandelier"
    arch = "elic2022-chandelier"
    default_levels = _ELIC_LEVELS


@register_codec
class ImportedChengCheckerboard(ImportedCheckerboard):
    name = "compressai-cheng2020-anchor-checkerboard"
    arch = "cheng2020-anchor-checkerboard"
    default_levels = ({"label": 1.0, "n": 192, "m": 192},)


IMPORTED_CODECS = (ImportedFactorized, ImportedScaleHyperprior, ImportedMeanScale, ImportedElic,
                   ImportedElicChandelier, ImportedChengCheckerboard)
