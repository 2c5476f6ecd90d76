"""What the codecs are called and the quality scale, known without importing PyTorch (for
argument checks and help texts before the networks load).

``tests/test_cli_startup.py`` checks that the names match the registries
(``neuralcodec.codecs.registry`` and ``neuralcodec.video.weights``).
"""
from __future__ import annotations

IMAGE_CODECS = ("elic", "factorized", "gmm-ctx", "hyperprior", "trit-plane")
#: codecs of imported CompressAI checkpoints (`neuralcodec import compressai`; no shipped weights)
IMPORTED_CODECS = ("compressai-bmshj2018-factorized", "compressai-bmshj2018-hyperprior",
                   "compressai-cheng2020-anchor-checkerboard", "compressai-elic2022-chandelier",
                   "compressai-elic2022-official", "compressai-mbt2018-mean")
PROGRESSIVE_CODECS = ("trit-plane",)     # decodable from any prefix (--bytes, --fraction)
VIDEO_CODECS = ("video-rt",)
#: storage types of weights files (``codecs.weights.save_weights(dtype=...)``; int8: large
#: tensors as int8 with per-channel scales, the rest fp16)
WEIGHT_DTYPES = ("fp16", "bf16", "fp32", "int8")
DEFAULT_CODEC = "hyperprior"             # best codec with shipped weights that runs fast on a CPU
DEFAULT_VIDEO_CODEC = "video-rt"
QUALITY_MIN = 1.0
QUALITY_MAX = 8.0
#: upper bound of `--refine` steps (encoder-side latent refinement; a typo such as 1000000 would run for days)
MAX_REFINE_STEPS = 10000


def check_quality(quality: float) -> float:
    """Validate a user quality value."""
    q = float(quality)
    if not (QUALITY_MIN <= q <= QUALITY_MAX):
        from neuralcodec.errors import InputError
        raise InputError(f"quality must be in [{QUALITY_MIN:g}, {QUALITY_MAX:g}], got {quality}")
    return q


def model_help() -> str:
    """The --model help text: every name and both defaults."""
    return (f"codec: {', '.join(IMAGE_CODECS)} for images (default {DEFAULT_CODEC}); "
            f"{', '.join(VIDEO_CODECS)} for videos (default {DEFAULT_VIDEO_CODEC})")
