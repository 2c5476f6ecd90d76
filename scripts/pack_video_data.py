#!/usr/bin/env python3
"""Pack the shared video clips for the GPU machine: training part(s) .carry/video-NN and the
held-out clips .carry/val-video-NN (see src/neuralcodec/video/pack.py and docs/video.md).
Usage: python scripts/pack_video_data.py [--src DIR] [--out .carry] [--part-mib 38] ..."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from neuralcodec.video.pack import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
