"""neuralcodec: learned image and video compression."""

__version__ = "0.1.0"
