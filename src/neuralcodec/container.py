"""The .ncb bitstream container every codec writes; see ``neuralcodec.bitstream``
and docs/bitstream.md. This module is the stable import path for codecs."""
from neuralcodec.bitstream import *  # noqa: F401,F403
from neuralcodec.bitstream import __all__  # noqa: F401
