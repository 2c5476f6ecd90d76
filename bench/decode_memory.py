"""Peak memory of the CLI on crafted hostile inputs (issue 17): memory bombs, unbounded reads
and record floods, before and after a change.

    python bench/decode_memory.py [--src src] [--baseline /work/main/src] [--big]
        [--cap-mib 6000] [--json out.json]

Every case runs `python -m neuralcodec ...` in a fresh process with PYTHONPATH=SRC (so a
baseline tree can be measured with the same inputs) and reports its peak resident memory
(``ru_maxrss`` from ``wait4``), the part above the process' start-up (decoding the 64x64
``hp-64.ncb`` of the same tree), its exit status and the last line it printed. A process
whose resident memory passes ``--cap-mib`` is killed (reported as ``>cap``), so that a
bomb does not take the machine down. The inputs are tests/data/hostile, re-stamped for each
tree's shipped weights (so both meet the defect, not a weights mismatch), plus larger ones built
here in a temporary folder:
8192x8192 and 16384x16384 streams of copies of one tile (``--big``: minutes to an hour
on a small CPU), 1 GiB of zeros, a container with a valid 1 GiB substream, a million junk
records, and 256 MiB of zeros behind a header on a pipe.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "hostile"
sys.path.insert(0, str(ROOT / "scripts"))


def run(src: Path, argv: list[str], cap_mib: int, feed=None) -> dict:
    """Run the CLI; poll its memory, kill it above the cap; peak RSS from wait4."""
    env = dict(os.environ, PYTHONPATH=str(src), NEURALCODEC_DEBUG="")
    cmd = [sys.executable, "-m", "neuralcodec", *argv]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    if feed:
        threading.Thread(target=feed, args=(proc.stdin,), daemon=True).start()
    killed, start = False, time.monotonic()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            rss_kib = int(next(line.split()[1] for line in open(f"/proc/{proc.pid}/status")
                               if line.startswith("VmRSS")))
        except (OSError, StopIteration):
            rss_kib = 0
        if rss_kib > cap_mib * 1024 and not killed:
            proc.kill()
            killed = True
        time.sleep(0.02)
    reader.join(5)
    text = b"".join(out).decode(errors="replace").strip().splitlines()
    return {"peak_mib": round(usage.ru_maxrss / 1024), "killed": killed,
            "rc": os.waitstatus_to_exitcode(status), "seconds": round(time.monotonic() - start, 1),
            "last_line": text[-1][:150] if text else ""}


def feeder(head: bytes, zeros: int):
    def feed(pipe):
        try:
            pipe.write(head)
            chunk = bytes(1 << 20)
            for _ in range(zeros >> 20):
                pipe.write(chunk)
        except (BrokenPipeError, ValueError):
            pass
        finally:
            try:
                pipe.close()
            except BrokenPipeError:
                pass
    return feed


HASHES = """
try:
    from neuralcodec.codecs.weights import model_hash
except ImportError:  # trees before the one weights module
    from neuralcodec.codecs.registry import model_hash
from neuralcodec.codecs.registry import load_model
print(*(model_hash(load_model(n)).hex() for n in ('hyperprior', 'trit-plane')))
"""


def tree_hashes(src: Path) -> dict[str, bytes]:
    """The weights hashes that tree's shipped hyperprior and trit-plane put in their streams."""
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run([sys.executable, "-c", HASHES], env=env, capture_output=True, text=True, check=True)
    hp, tp = out.stdout.split()[-2:]
    return {"hp-": bytes.fromhex(hp), "tp-": bytes.fromhex(tp)}


def stamped_data(folder: Path, src: Path) -> Path:
    """tests/data/hostile with every image stream re-stamped for ``src``'s shipped weights, so
    each tree meets the defect itself rather than a weights-mismatch error first."""
    from make_hostile_streams import restamp

    hashes = tree_hashes(src)
    folder.mkdir(parents=True, exist_ok=True)
    for f in DATA.iterdir():
        data = f.read_bytes()
        prefix = f.name[:3]
        (folder / f.name).write_bytes(restamp(data, hashes[prefix]) if prefix in hashes else data)
    return folder


def build_inputs(tmp: Path, data: Path, big: bool) -> dict[str, Path]:
    from make_hostile_streams import bomb

    from neuralcodec import container as C

    tmp.mkdir(parents=True, exist_ok=True)
    paths = {}
    zeros = tmp / "zeros-1GiB.ncb"
    with open(zeros, "wb") as f:
        f.truncate(1 << 30)                           # sparse: costs no disk
    paths["zeros"] = zeros
    tp = (data / "tp-2048-z-only.ncb").read_bytes()
    header, subs = C.unpack(tp)
    huge = tmp / "tp-1GiB-trits.ncb"
    with C.ContainerWriter(huge, header) as w:           # valid: 1 GiB of (zero) trits
        w.add("z", subs[0].data)
        w.add("trits", bytes(1 << 30), truncatable=True)
    paths["huge"] = huge
    small = (data / "hp-64.ncb").read_bytes()
    h, s = C.unpack(small)
    junk = tmp / "hp-64-million-junk.ncb"
    with C.ContainerWriter(junk, h) as w:
        for sub in s:
            w.add(sub.name, sub.data)
        for _ in range(1_000_000):
            w.add("junk", b"")
    paths["junk"] = junk
    if big:
        tile = (data / "hp-2048.ncb").read_bytes()
        for side in (8192, 16384):
            paths[side] = tmp / f"hp-{side}-copies.ncb"
            paths[side].write_bytes(bomb(tile, side))
    return paths


def cases(tmp: Path, data: Path, paths: dict[str, Path]) -> list[tuple[str, str, list[str], object]]:
    """(name, start-up reference, argv, stdin feeder) of every case, on the inputs in ``data``."""
    out = str(tmp / "out.png")
    dec = lambda p: ["decode", str(p), "-o", out]   # noqa: E731
    claim = (data / "hp-claims-2e40.ncb").read_bytes()
    tp = data / "tp-2048-z-only.ncb"
    rows = [
        ("start-up: decode hp-64.ncb (64x64)", "", dec(data / "hp-64.ncb"), None),
        ("start-up: info hp-64.ncb", "", ["info", str(data / "hp-64.ncb")], None),
        ("start-up: truncate tp-2048-z-only.ncb, no cut", "",
         ["truncate", str(tp), "-o", str(tmp / "t.ncb"), "--bytes", "99999"], None),
        ("decode hp-2048.ncb (a real 2048x2048 tile)", "decode", dec(data / "hp-2048.ncb"), None),
        ("decode 16384^2 claim, tile 0 only (12 KB)", "decode",
         dec(data / "hp-16384-tile0-only.ncb"), None),
        ("decode 4096^2, four copies of a tile (48 KB)", "decode",
         dec(data / "hp-4096-four-copies.ncb"), None),
        ("decode trit-plane 2048^2, z only (11 KB)", "decode", dec(tp), None),
        ("decode 1 GiB of zeros", "decode", dec(paths["zeros"]), None),
        ("truncate 1 GiB of zeros", "truncate", ["truncate", str(paths["zeros"]), "-o",
                                                 str(tmp / "t.ncb"), "--bytes", "1000"], None),
        ("info, valid 1 GiB substream", "info", ["info", str(paths["huge"])], None),
        ("truncate, valid 1 GiB substream", "truncate", ["truncate", str(paths["huge"]), "-o",
                                                         str(tmp / "t.ncb"), "--bytes", "20000"],
         None),
        ("decode, a million junk records", "decode", dec(paths["junk"]), None),
        ("info on a pipe: 2^40 claimed, 256 MiB sent", "info", ["info", "/dev/stdin"],
         feeder(claim, 256 << 20)),
    ]
    if 8192 in paths:
        rows[6:6] = [("decode 8192^2, 16 copies of a tile (193 KB)", "decode", dec(paths[8192]), None),
                     ("decode 16384^2, 64 copies of a tile (773 KB)", "decode", dec(paths[16384]),
                      None)]
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="tree measured (default src)")
    ap.add_argument("--baseline", type=Path, help="also measure this tree, e.g. /work/main/src")
    ap.add_argument("--big", action="store_true",
                    help="add the 8192x8192 and 16384x16384 decodes (many minutes)")
    ap.add_argument("--cap-mib", type=int, default=6000, help="kill a run above this RSS")
    ap.add_argument("--cases", default="", metavar="TEXT",
                    help="only the cases whose name contains TEXT (and the start-up runs)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    sys.path.insert(0, str(args.src))
    trees = [("after", args.src)] + ([("before", args.baseline)] if args.baseline else [])
    results = []
    with tempfile.TemporaryDirectory(prefix="decode-memory-") as t:
        per_tree = []
        for label, src in trees:
            tmp = Path(t) / label
            data = stamped_data(tmp / "hostile", src)
            per_tree.append(cases(tmp, data, build_inputs(tmp, data, args.big)))
        for i, (name, ref, _, _) in enumerate(per_tree[0]):
            if ref and args.cases not in name:
                continue
            row = {"case": name, "ref": ref}
            for (label, src), tree_cases in zip(trees, per_tree):
                _, _, argv, feed = tree_cases[i]
                row[label] = run(src, argv, args.cap_mib, feed)
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    start = {(label, row["case"].split()[1]): row[label]["peak_mib"]
             for row in results if not row["ref"] for label, _ in trees}
    print(f"{'case':<48}" + "".join(f" {label + ' peak':>13} {'+start':>7} {'rc':>3}"
                                     for label, _ in trees))
    for row in results:
        line = f"{row['case']:<48}"
        for label, _ in trees:
            r = row[label]
            peak = f">{args.cap_mib}" if r["killed"] else str(r["peak_mib"])
            extra = r["peak_mib"] - start[label, row["ref"]] if row["ref"] else 0
            line += f" {peak:>9} MiB {extra:>+7} {r['rc']:>3}"
        print(line)
    for row in results:
        for label, _ in trees:
            print(f"  [{label}] {row['case']}: {row[label]['last_line']} ({row[label]['seconds']} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
