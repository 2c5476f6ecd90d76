"""Error classes. Every user-facing failure is one of these; the CLI prints its
message on one line and exits non-zero."""


class NeuralCodecError(Exception):
    """Base class of all errors neuralcodec raises on purpose."""


class CoderError(NeuralCodecError, ValueError):
    """Entropy-coder input or stream is invalid (corrupt, truncated, bad parameters)."""


class BitstreamError(NeuralCodecError, ValueError):
    """A container file is malformed, truncated, corrupted or from a newer version."""


class ModelError(NeuralCodecError):
    """Unknown codec, missing or mismatched weights."""


class InputError(NeuralCodecError):
    """Unreadable or unsupported input file, or an unsafe output path."""
