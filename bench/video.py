#!/usr/bin/env python3
"""video-rt speed: encode/decode fps at 1920x1080 (GPU) and 416x240 (CPU).

    python bench/video.py [--weights W] [--frames 33] [--intra-period 32] [--device cuda|cpu]
                          [--size 1920x1080] [--cpu-size 416x240] [--cpu-frames 9] [--no-cpu]
                          [--threads T] [--fp32] [--compile] [--input VIDEO]

Frames: the first frames of --input (default: the 720p clip in .carry/video or
../shared/data/video), scaled to the size; a synthetic moving pattern when none is found.
Each run encodes the frames into an in-memory .ncv, then decodes it, and checks the decoded
latents equal the encoder's. Printed per run: total fps (everything, I-frames included),
P-frame fps, and the time per frame split into network time (analysis/synthesis and the
integer-exact entropy-parameter nets, on the device) and entropy-coding time (the native
rANS coder on the CPU, including the device->host copies of its parameters). A warm-up of
a few frames precedes the timed run (cuDNN autotuning, first CUDA kernels).
"""
import argparse
import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from neuralcodec.entropy import conditional, factorized  # noqa: E402
from neuralcodec.video.codec import GopConfig, VideoDecoder, VideoEncoder  # noqa: E402

CANDIDATES = [ROOT / ".carry/video/cockatoo_720p_h264.mp4", ROOT.parent / "shared/data/video/cockatoo_720p_h264.mp4"]


class CoderClock:
    """Accumulates time spent in the entropy coder calls (synchronising the device first)."""

    def __init__(self):
        self.seconds = 0.0
        self._patched = []

    def _wrap(self, owner, name):
        fn = getattr(owner, name)
        clock = self

        def timed(*args, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - t0
        self._patched.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, staticmethod(timed) if isinstance(owner.__dict__.get(name), staticmethod) else timed)

    def install(self):
        self._wrap(conditional.GaussianModel, "encode")
        self._wrap(conditional.GaussianModel, "decode")
        self._wrap(factorized.FactorizedPrior, "compress")
        self._wrap(factorized.FactorizedPrior, "decompress")


def _frame_folder():
    """A folder of still frames to use when PyAV is missing (e.g. .carry/video on a bare GPU machine)."""
    for root in (ROOT / ".carry/video", ROOT.parent / "shared/data/video"):
        for d in sorted(root.glob("*")) if root.is_dir() else []:
            files = sorted(f for f in d.glob("*") if f.suffix in (".png", ".webp"))
            if len(files) >= 2:
                return files
    return []


def load_frames(path, n, w, h):
    frames = []
    try:
        import av
    except ImportError:
        av = None
        from PIL import Image
        files = _frame_folder()[:n]
        for f in files:
            frames.append(np.asarray(Image.open(f).convert("RGB").resize((w, h), Image.BICUBIC)))
        if files:
            print(f"frames: {files[0].parent} (no PyAV), resized to {w}x{h}")
    if av is not None and path and Path(path).exists():
        with av.open(str(path)) as c:
            for frame in c.decode(video=0):
                frames.append(frame.reformat(width=w, height=h, format="rgb24").to_ndarray())
                if len(frames) >= n:
                    break
        print(f"frames: {path}, resized to {w}x{h}")
    if not frames:
        print("frames: synthetic pattern")
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        for t in range(n):
            r = 128 + 100 * np.sin((xx + 4 * t) / 37.0) * np.cos(yy / 23.0)
            g = 128 + 90 * np.sin((xx + yy + 3 * t) / 51.0)
            b = 128 + 80 * np.cos((xx - 2 * t) / 17.0 + yy / 29.0)
            frames.append(np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8))
    while len(frames) < n:
        frames.append(frames[len(frames) % max(1, len(frames))])
    return frames


def load_model(args, device):
    from neuralcodec.video.weights import create, load, shipped_weights
    if args.weights or shipped_weights() is not None:
        return load(None, args.weights, device), "trained"
    torch.manual_seed(0)
    model = create(device=device).eval()
    model.update()
    return model, "random (no weights shipped)"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(model, frames, device, period, half, label):
    h, w = frames[0].shape[:2]
    clock = CoderClock()
    clock.install()
    gop = GopConfig(period)
    # warm-up on the first 3 frames (I + 2 P)
    enc = VideoEncoder(model, w, h, 4.0, gop, device, half)
    dec = VideoDecoder(model, w, h, 4.0, gop, device, half)
    for f in frames[:3]:
        name, payload, _ = enc.encode(f)
        dec.decode(name, payload)
    sync(device)
    results = {}
    enc = VideoEncoder(model, w, h, 4.0, gop, device, half)
    records, latents, times = [], [], []
    clock.seconds = 0.0
    t_all = time.perf_counter()
    for f in frames:
        t0 = time.perf_counter()
        name, payload, y_hat = enc.encode(f)
        sync(device)
        times.append((name, time.perf_counter() - t0))
        records.append((name, payload))
        latents.append(y_hat.cpu())
    results["encode"] = (time.perf_counter() - t_all, clock.seconds, times)
    dec = VideoDecoder(model, w, h, 4.0, gop, device, half)
    clock.seconds = 0.0
    times = []
    same = True
    t_all = time.perf_counter()
    for (name, payload), ref in zip(records, latents):
        t0 = time.perf_counter()
        y_hat = dec.decode(name, payload)
        dec.output()                      # pixels to the host, as a writer would need them
        sync(device)
        times.append((name, time.perf_counter() - t0))
        same &= torch.equal(y_hat.cpu(), ref)
    results["decode"] = (time.perf_counter() - t_all, clock.seconds, times)
    for owner, name, fn in clock._patched:
        setattr(owner, name, fn)
    n = len(frames)
    nbytes = sum(len(p) for _, p in records)
    print(f"\n[{label}] {w}x{h}, {n} frames (intra period {period}), {nbytes} bytes "
          f"({8 * nbytes / (n * w * h):.4f} bpp), decoded latents equal encoder's: {same}")
    for what in ("encode", "decode"):
        total, coder_s, per = results[what]
        p_times = [t for k, t in per if k == "P"]
        i_times = [t for k, t in per if k == "I"]
        print(f"  {what}: {n / total:7.2f} fps total | P-frames {1 / np.mean(p_times):7.2f} fps "
              f"(median {1000 * np.median(p_times):.1f} ms) | I-frames {1000 * np.mean(i_times):.1f} ms | "
              f"per frame: network {1000 * (total - coder_s) / n:.1f} ms, entropy coding "
              f"{1000 * coder_s / n:.1f} ms")
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--input", default=None)
    ap.add_argument("--frames", type=int, default=33)
    ap.add_argument("--intra-period", type=int, default=32)
    ap.add_argument("--device", choices=["cuda", "cpu"], default=None)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--cpu-size", default="416x240")
    ap.add_argument("--cpu-frames", type=int, default=9)
    ap.add_argument("--no-cpu", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="coder (and CPU torch) threads")
    ap.add_argument("--fp32", action="store_true", help="no half precision on the GPU")
    ap.add_argument("--compile", action="store_true", help="torch.compile the float transforms")
    args = ap.parse_args()

    from neuralcodec.entropy import coder
    if args.threads:
        coder.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    src = args.input or next((str(p) for p in CANDIDATES if p.exists()), None)
    print(f"torch {torch.__version__}, coder threads {coder.get_num_threads()}")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        print(f"GPU: {torch.cuda.get_device_name(device)}")
        model, kind = load_model(args, device)
        model = model.to(memory_format=torch.channels_last)
        if args.compile:
            for name in ("extract", "g_a", "g_s", "g_s_ctx", "g_s_out"):
                setattr(model, name, torch.compile(getattr(model, name), dynamic=False))
        w, h = map(int, args.size.split("x"))
        print(f"weights: {kind}; precision: {'fp32' if args.fp32 else 'fp16 (P nets) / bf16 (I nets)'}")
        run(model, load_frames(src, args.frames, w, h), device, args.intra_period, not args.fp32,
            f"GPU {'fp32' if args.fp32 else 'half'}")
    if not args.no_cpu:
        cpu = torch.device("cpu")
        model, kind = load_model(args, cpu)
        w, h = map(int, args.cpu_size.split("x"))
        print(f"CPU threads: torch {torch.get_num_threads()}; weights: {kind}")
        run(model, load_frames(src, args.cpu_frames, w, h), cpu, args.intra_period, False, "CPU fp32")


if __name__ == "__main__":
    main()
