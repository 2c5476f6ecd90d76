"""Paired timing of the mixture decoder: two builds of bench/gmm_decode.cpp run in turns.

`python bench/gmm_decode.py --write FILE` writes bench/coder.py's K = 3 data (2M symbols) for
the harness; `python bench/gmm_decode.py --pairs 7 FILE BIN_A BIN_B` runs the two harness
binaries in turns and prints each pair's ratios (B over A, Msym/s) and their medians.
"""
import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coder import make_data  # noqa: E402


def write(path, n):
    d = make_data(n)
    with open(path, "wb") as f:
        f.write(np.uint64(n).tobytes())
        for a in (d["w"], d["gm"], d["gs"], d["gx"]):
            f.write(np.ascontiguousarray(a).tobytes())


def run(binary, path, reps):
    out = subprocess.run([binary, path, str(reps)], check=True, capture_output=True, text=True).stdout.split()
    return {out[i]: float(out[i + 1]) for i in range(0, len(out), 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("binaries", nargs="*")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    if args.write:
        return write(args.file, args.n)
    a_bin, b_bin = args.binaries
    ratios = {"one": [], "two": [], "enc": []}
    for p in range(args.pairs):
        first, second = (a_bin, b_bin) if p % 2 == 0 else (b_bin, a_bin)
        r1, r2 = run(first, args.file, args.reps), run(second, args.file, args.reps)
        a, b = (r1, r2) if p % 2 == 0 else (r2, r1)
        if a["bytes"] != b["bytes"]:
            sys.exit(f"the builds' streams differ in size: {a['bytes']} vs {b['bytes']}")
        line = []
        for key in ratios:
            ratios[key].append(b[key] / a[key])
            line.append(f"{key} {a[key]:6.2f} -> {b[key]:6.2f} ({b[key] / a[key]:.3f}x)")
        print(f"pair {p}: " + "   ".join(line), flush=True)
    print("median B/A: " + "   ".join(f"{k} {statistics.median(v):.3f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
