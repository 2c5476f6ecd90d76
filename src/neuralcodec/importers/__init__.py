"""Importers of weights trained with other libraries (``neuralcodec import``)."""
