#!/usr/bin/env python3
"""Entropy-coder benchmark: neuralcodec vs CompressAI 1.2.8 vs constriction 0.5.0.

    python bench/coder.py [--n 2000000] [--reps 5] [--threads T] [--clock auto|wall|cpu]

Realistic learned-codec statistics: scales log-uniform in [0.1, 20], means ~ N(0, 1),
symbols drawn from the matching discretised Gaussian. Prints symbols/s (median of --reps
runs), stream bytes, ideal bits and the ratios the coder is held to, and the speed-up of the
zero-mean tabulated path over the general one (means of 1e-30: same model).

CompressAI is timed twice: its C++ rANS core (RansEncoder/RansDecoder *_with_indexes) called
with every input already built as the Python lists it takes (the coder-to-coder comparison
the targets use), and its end-to-end path (build_indexes, rounding and .tolist() included).
The clock: `cpu` is the calling thread's CPU time (what a one-thread run spends, robust on a
shared machine; every coder here then runs in the calling thread), `wall` the wall clock;
`auto` is cpu with --threads 1 and wall otherwise.
"""
import argparse
import math
import statistics
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")

from neuralcodec.entropy import coder as nc  # noqa: E402


BEST = {}  # fastest run of each timed call, reported next to the medians
CLOCK = [time.perf_counter]  # set in main()


def timed(fn, reps):
    """Median time of `reps` calls and the last result (best time kept in BEST)."""
    clock, times, out = CLOCK[0], [], None
    for _ in range(reps):
        t0 = clock()
        out = fn()
        times.append(clock() - t0)
    BEST[len(BEST)] = min(times)
    return statistics.median(times), out


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(math.log(0.1), math.log(20), n)).astype(np.float32)
    means = rng.normal(0, 1, n).astype(np.float32)
    y = rng.normal(means, scales).astype(np.float32)
    # GMM, K = 3: symbols drawn from the mixture
    k = 3
    w = rng.dirichlet(np.ones(k), n).astype(np.float32)
    gm = (means[:, None] + rng.normal(0, 2, (n, k))).astype(np.float32)
    gs = (scales[:, None] * np.exp(rng.uniform(-0.5, 0.5, (n, k)))).astype(np.float32)
    comp = (w.cumsum(1) < rng.random((n, 1))).sum(1).clip(0, k - 1)
    rows = np.arange(n)
    gx = np.round(rng.normal(gm[rows, comp], gs[rows, comp])).astype(np.int32)
    cat = rng.choice(3, n, p=[0.7, 0.2, 0.1]).astype(np.int32)
    return dict(scales=scales, means=means, y=y, w=w, gm=gm, gs=gs, gx=gx, cat=cat)


class Report:
    def __init__(self, n):
        self.n, self.rows = n, {}

    def add(self, name, t_enc, t_dec, nbytes, ideal=None, ok=True):
        self.rows[name] = (t_enc, t_dec, nbytes, ideal)
        best_enc, best_dec = BEST[len(BEST) - 2], BEST[len(BEST) - 1]
        ideal_s = f"{ideal / 8:12.0f}" if ideal is not None else " " * 12
        over = f"{100 * (nbytes * 8 / ideal - 1):+6.3f}%" if ideal else ""
        print(f"{name:34s} {self.n / t_enc / 1e6:8.2f} {self.n / t_dec / 1e6:8.2f} "
              f"{self.n / best_enc / 1e6:8.2f} {self.n / best_dec / 1e6:8.2f} "
              f"{nbytes:11d} {ideal_s} {over:>8s} {'ok' if ok else 'MISMATCH'}")


def bench_compressai(d, reps, rep, one_thread):
    import torch

    if one_thread:  # torch's own worker threads would escape a CPU-time clock
        torch.set_num_threads(1)
    from compressai.ans import RansDecoder, RansEncoder
    from compressai.entropy_models import GaussianConditional

    t0 = time.perf_counter()
    gc = GaussianConditional(None)
    gc.update_scale_table(torch.exp(torch.linspace(math.log(0.11), math.log(256), 64)))
    gc.update()
    cdfs = gc._quantized_cdf.tolist()
    lengths = gc._cdf_length.reshape(-1).int().tolist()
    offsets = gc._offset.reshape(-1).int().tolist()
    print(f"  (CompressAI scale-table setup, once: {time.perf_counter() - t0:.3f} s)")
    y, means, scales = (torch.from_numpy(d[k]) for k in ("y", "means", "scales"))
    sym = np.round(d["y"] - d["means"]).astype(np.int32)

    # the core: every input built beforehand, as the lists the C++ functions take
    sym_list, idx_list = sym.tolist(), gc.build_indexes(scales).int().tolist()
    t_enc, data = timed(lambda: RansEncoder().encode_with_indexes(
        sym_list, idx_list, cdfs, lengths, offsets), reps)
    t_dec, out = timed(lambda: RansDecoder().decode_with_indexes(
        data, idx_list, cdfs, lengths, offsets), reps)
    rep.add("compressai core (inputs prebuilt)", t_enc, t_dec, len(data), ok=out == sym_list)
    del sym_list, idx_list

    def enc():
        idx = gc.build_indexes(scales)
        sym = torch.round(y - means).int()
        return RansEncoder().encode_with_indexes(
            sym.tolist(), idx.int().tolist(), cdfs, lengths, offsets)

    def dec(data):
        idx = gc.build_indexes(scales)
        out = RansDecoder().decode_with_indexes(data, idx.int().tolist(), cdfs, lengths, offsets)
        return torch.tensor(out, dtype=torch.int32).numpy()

    dec(enc())  # warm-up: the first calls of build_indexes compile its TorchScript bound
    t_enc, data = timed(enc, reps)
    t_dec, out = timed(lambda: dec(data), reps)
    idx = gc.build_indexes(scales).int().numpy()
    tables = (idx, gc._quantized_cdf.numpy(), gc._cdf_length.numpy().astype(np.int32),
              gc._offset.numpy().astype(np.int32))
    rep.add("compressai end to end", t_enc, t_dec, len(data), ok=(out == sym).all())
    return sym, tables


def bench_constriction(d, reps, rep, sym):
    import constriction

    model = constriction.stream.model.QuantizedGaussian(-512, 512)
    means = d["means"].astype(np.float64)
    stds = d["scales"].astype(np.float64)
    x = np.round(d["y"]).astype(np.int32).clip(-512, 512)

    def enc():
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(x, model, means, stds)
        return coder.get_compressed()

    def dec(words):
        return constriction.stream.stack.AnsCoder(words).decode(model, means, stds)

    t_enc, words = timed(enc, reps)
    t_dec, out = timed(lambda: dec(words), reps)
    rep.add("constriction QuantizedGaussian", t_enc, t_dec, words.nbytes, ok=(out == x).all())


def bench_ours(name, rep, reps, enc, dec, ideal, truth):
    t_enc, data = timed(enc, reps)
    t_dec, out = timed(lambda: dec(data), reps)
    rep.add(name, t_enc, t_dec, len(data), ideal(), ok=np.array_equal(out, truth))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--clock", choices=("auto", "wall", "cpu"), default="auto")
    args = ap.parse_args()
    if args.threads:
        nc.set_num_threads(args.threads)
    cpu = args.clock == "cpu" or (args.clock == "auto" and nc.get_num_threads() == 1)
    if cpu and nc.get_num_threads() != 1:
        ap.error("--clock cpu counts the calling thread only: use it with --threads 1")
    CLOCK[0] = time.thread_time if cpu else time.perf_counter
    n, reps = args.n, args.reps
    d = make_data(n)
    print(f"n = {n} symbols, {reps} runs each, neuralcodec threads = {nc.get_num_threads()} "
          f"(CompressAI and constriction are single-threaded), clock: "
          f"{'CPU time of the calling thread' if cpu else 'wall'}, SIMD mixture path: "
          f"{'on' if nc.simd_active() else 'off'}")
    print(f"{'':34s} {'median Msym/s':>17s} {'best Msym/s':>17s}")
    print(f"{'coder':34s} {'enc':>8s} {'dec':>8s} {'enc':>8s} {'dec':>8s} {'bytes':>11s} "
          f"{'ideal bytes':>12s} {'vs ideal':>8s}")
    rep = Report(n)
    sym, tables = bench_compressai(d, reps, rep, cpu)
    bench_constriction(d, reps, rep, sym)

    mu, sc, zero = d["means"], d["scales"], np.zeros(n, np.float32)
    x = np.round(d["y"]).astype(np.int32)
    bench_ours("ours gaussian (means)", rep, reps, lambda: nc.encode_gaussian(x, mu, sc),
               lambda b: nc.decode_gaussian(b, mu, sc), lambda: nc.ideal_bits_gaussian(x, mu, sc), x)
    bench_ours("ours gaussian (zero mean, CAI syms)", rep, reps,
               lambda: nc.encode_gaussian(sym, zero, sc), lambda b: nc.decode_gaussian(b, zero, sc),
               lambda: nc.ideal_bits_gaussian(sym, zero, sc), sym)
    tiny = np.full(n, 1e-30, np.float32)   # not zero, so the general path; quantised to mean 0
    bench_ours("ours gaussian (1e-30 mean, general)", rep, reps,
               lambda: nc.encode_gaussian(sym, tiny, sc), lambda b: nc.decode_gaussian(b, tiny, sc),
               lambda: nc.ideal_bits_gaussian(sym, tiny, sc), sym)
    w, gm, gs, gx = d["w"], d["gm"], d["gs"], d["gx"]
    bench_ours("ours gmm K=3", rep, reps, lambda: nc.encode_gmm(gx, w, gm, gs),
               lambda b: nc.decode_gmm(b, w, gm, gs), lambda: nc.ideal_bits_gmm(gx, w, gm, gs), gx)
    if nc.simd_active():
        nc.set_simd(False)
        try:
            bench_ours("ours gmm K=3 (scalar path)", rep, reps, lambda: nc.encode_gmm(gx, w, gm, gs),
                       lambda b: nc.decode_gmm(b, w, gm, gs), lambda: nc.ideal_bits_gmm(gx, w, gm, gs), gx)
        finally:
            nc.set_simd(True)
    f = np.array([7000, 2000, 1000], np.int32)
    bench_ours("ours categorical A=3", rep, reps, lambda: nc.encode_categorical(d["cat"], f),
               lambda b: nc.decode_categorical(b, f), lambda: nc.ideal_bits_categorical(d["cat"], f),
               d["cat"])
    bench_ours("ours indexed (CompressAI tables)", rep, reps, lambda: nc.encode_indexed(sym, *tables),
               lambda b: nc.decode_indexed(b, *tables), lambda: nc.ideal_bits_indexed(sym, *tables),
               sym)

    r = rep.rows
    cai = r["compressai core (inputs prebuilt)"]
    e2e = r["compressai end to end"]
    ours = r["ours gaussian (means)"]
    ours0 = r["ours gaussian (zero mean, CAI syms)"]
    g = r["ours gmm K=3"]
    ind = r["ours indexed (CompressAI tables)"]
    print("\nratios of median times (speed: higher is better), against CompressAI's core")
    print(f"  gaussian zero-mean encode  {cai[0] / ours0[0]:6.2f}x   target >= 3")
    print(f"  gaussian zero-mean decode  {cai[1] / ours0[1]:6.2f}x   target >= 3")
    print(f"  gaussian with means encode {cai[0] / ours[0]:6.2f}x, decode {cai[1] / ours[1]:.2f}x")
    general = r["ours gaussian (1e-30 mean, general)"]
    print(f"  zero-mean tables vs general path (same streams): encode {general[0] / ours0[0]:.2f}x, "
          f"decode {general[1] / ours0[1]:.2f}x")
    print(f"  gmm K=3 encode   vs CAI gaussian  {cai[0] / g[0]:6.2f}x   target >= 1")
    print(f"  gmm K=3 decode   vs CAI gaussian  {cai[1] / g[1]:6.2f}x   target >= 1")
    if "ours gmm K=3 (scalar path)" in r:
        gs_ = r["ours gmm K=3 (scalar path)"]
        print(f"  gmm K=3 scalar path encode {cai[0] / gs_[0]:.2f}x, decode {cai[1] / gs_[1]:.2f}x")
    print(f"  against CompressAI end to end: zero-mean {e2e[0] / ours0[0]:.2f}x / {e2e[1] / ours0[1]:.2f}x, "
          f"gmm K=3 {e2e[0] / g[0]:.2f}x / {e2e[1] / g[1]:.2f}x (encode / decode)")
    for name, row in (("gaussian", ours), ("gaussian zero-mean", ours0), ("gmm", g),
                      ("indexed", ind)):
        print(f"  size vs ideal  {name:20s} {100 * (row[2] * 8 / row[3] - 1):+.3f}%   target <= +0.5%")
    print(f"  size vs CompressAI (same symbols): gaussian zero-mean "
          f"{100 * (ours0[2] / cai[2] - 1):+.3f}%, indexed {100 * (ind[2] / cai[2] - 1):+.3f}%"
          f"   target within 1%")


if __name__ == "__main__":
    main()
