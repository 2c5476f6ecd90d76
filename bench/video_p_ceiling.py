"""The P-frame ceiling of video-rt: how good its P-frames get with more rate, and with none of
the quantisation at all (neuralcodec.video.ceiling), against the I-frame before them and
against copying that I-frame (the baseline).

    python bench/video_p_ceiling.py [--weights W] [--intra-weights H] [--clips PATH ...]
                                    [--pairs 4] [--qualities 2 5 8] [--device cpu|cuda]

Clips: frame folders or video files; default the clean held-out clips (BasketballPass, vid4
walk). Each pair is frames (k, k+1), k = 0, 4, 8, ...; the figures are means over the pairs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from neuralcodec.video.ceiling import REGION_KEYS, STILL_THRESHOLD, frame_pairs, mean_ceiling  # noqa: E402
from neuralcodec.video.io import iter_frames  # noqa: E402
from neuralcodec.video.pack import HELD_OUT_CLIPS  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "video"
KEYS = ("i_frame", "copy", "rounded", "finer", "unquantised")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--intra-weights", default=None)
    ap.add_argument("--clips", nargs="*", default=None)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--qualities", type=float, nargs="*", default=[2.0, 5.0, 8.0])
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    from neuralcodec.video.weights import load
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = load(None, args.weights, device, intra_weights=args.intra_weights)
    clips = [Path(c) for c in args.clips] if args.clips else [DATA / name for name in HELD_OUT_CLIPS]
    print("PSNR-RGB (dB), mean over frame pairs; baseline: copy the I-frame; gap: I-frame minus the "
          "unquantised P-frame (what no rate can close)")
    print(f"{'clip':<28} {'q':>4} " + " ".join(f"{k:>11}" for k in KEYS) + f" {'gain/copy':>10} {'gap':>6}")
    regions = []
    for clip in clips:
        frames = list(iter_frames(clip, max_frames=4 * args.pairs))
        pairs = frame_pairs(frames, args.pairs)
        for q in args.qualities:
            mean = mean_ceiling(model, pairs, q, device)
            regions.append((clip.name, q, mean))
            print(f"{clip.name[:28]:<28} {q:>4g} " + " ".join(f"{mean[k]:>11.2f}" for k in KEYS)
                  + f" {mean['rounded'] - mean['copy']:>+10.2f} {mean['i_frame'] - mean['unquantised']:>6.2f}")
    print(f"\nby region (still: no channel of the source pair changes by more than {STILL_THRESHOLD}; "
          "aligned: the reference after the learned warp alone)")
    cols = [f"{k}_{r}" for r in ("still", "moving") for k in REGION_KEYS]
    print(f"{'clip':<28} {'q':>4} {'still %':>8} " + " ".join(f"{c:>18}" for c in cols))
    for name, q, mean in regions:
        print(f"{name[:28]:<28} {q:>4g} {100 * mean['still_fraction']:>8.1f} "
              + " ".join(f"{mean[c]:>18.2f}" for c in cols))


if __name__ == "__main__":
    main()
