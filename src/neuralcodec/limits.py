"""Size limits shared by the encoder and the decoder (no heavy imports)."""
from neuralcodec.errors import BitstreamError

#: Largest picture (width x height) decoded or encoded by default; `--max-pixels` changes it
#: for `decode`. The bitstream allows up to 2^20 x 2^20 (docs/bitstream.md).
DEFAULT_MAX_PIXELS = 16384 * 16384


def check_picture_size(width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse a declared picture (or video frame) of more than ``max_pixels``, before any
    decoding."""
    if width * height > max_pixels:
        raise BitstreamError(f"the stream declares a {width}x{height} picture ({width * height} "
                             f"pixels), more than the limit of {max_pixels} (raise it with "
                             "--max-pixels)")
