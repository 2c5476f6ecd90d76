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


def reason(exc: BaseException, filename: bool = True) -> str:
    """An exception from a library as one line, without the '[Errno N]' prefix that OSError
    and FFmpeg errors put in front of their text (the file name follows unless ``filename``
    is False, for messages that name the file already)."""
    text = getattr(exc, "strerror", None) if getattr(exc, "errno", None) is not None else None
    if text:
        name = getattr(exc, "filename", None) if filename else None
        text = f"{text}: {name}" if name and str(name) not in text else text
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def error_row(exc: BaseException) -> str:
    """An exception as an evaluation table records it: type and message on one line, at most
    300 characters."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]


def one_line_exit(run, *args) -> int:
    """``run(*args)`` as a module's command line does it (``python -m neuralcodec.X``): 0, or
    a :class:`NeuralCodecError` as one line ``neuralcodec: error: ...`` on stderr and 1."""
    import sys

    try:
        run(*args)
    except NeuralCodecError as exc:
        print(f"neuralcodec: error: {exc}", file=sys.stderr)
        return 1
    return 0
