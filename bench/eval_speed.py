"""Time `neuralcodec eval images` on Kodak x JPEG/WebP/AVIF x 6 qualities (fresh cache).

    PYTHONPATH=src python bench/eval_speed.py [--kodak ../shared/data/kodak] [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--codecs", default="jpeg,webp,avif")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "neuralcodec", "eval", "images", args.kodak, "--codecs",
               args.codecs, "--out", out, "--workers", str(args.workers)]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(proc.stdout.strip())
    if proc.returncode:
        print(proc.stderr.strip(), file=sys.stderr)
        return proc.returncode
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"wall {wall:.1f} s, CPU {ru.ru_utime + ru.ru_stime:.1f} s (user+sys), "
          f"{os.cpu_count()} CPUs, load average {load:.2f}, workers {args.workers}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
