"""The image training entry points by their names before the training engine
(:mod:`neuralcodec.train.engine`, task :mod:`neuralcodec.train.image_task`), for the
scripts and tools that import them from here."""
from neuralcodec.train.image_task import (TrainConfig, export_weights, import_factory, load_init,  # noqa: F401
                                          registry_factory, resolve_auto, train)
