"""The versioned .ncb bitstream container shared by every codec (docs/bitstream.md).

Public API (import it from ``neuralcodec.container``; ``layout``, ``reader``, ``writer``
and ``tools`` are its parts)::

    pack(header, streams) -> bytes          unpack(data, allow_truncated=False)
    ContainerWriter(file, header)           ContainerReader(file, allow_truncated=False)
    read_header(data_or_file)               truncate_container(data, nbytes)
    weights_hash(path_or_bytes)             check_weights(header, codec, expected_hash)
"""
from .layout import (FORMAT_VERSION, KINDS, MAGIC, MAX_DIMENSION, MAX_HEADER_BODY, MAX_NAME,
                     MAX_PARAMS_BYTES, MAX_SUBSTREAM_BYTES, MAX_SUBSTREAMS, PIXEL_FORMATS,
                     Header, Substream)
from .reader import ContainerReader, read_header, unpack
from .tools import check_weights, truncate_container, weights_hash
from .writer import ContainerWriter, pack

__all__ = ["FORMAT_VERSION", "MAGIC", "KINDS", "PIXEL_FORMATS", "MAX_NAME", "MAX_PARAMS_BYTES",
           "MAX_HEADER_BODY", "MAX_SUBSTREAMS", "MAX_SUBSTREAM_BYTES", "MAX_DIMENSION",
           "Header", "Substream", "pack", "unpack", "read_header", "ContainerWriter",
           "ContainerReader", "truncate_container", "weights_hash", "check_weights"]
