"""``python -m neuralcodec.codecs.tritplane_train ARGS`` = ``neuralcodec train-tritplane ARGS``
(the trainer's command line before the training engine; the task is
:mod:`neuralcodec.train.tritplane_task`)."""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    from neuralcodec.cli import main as cli_main
    return cli_main(["train-tritplane", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
