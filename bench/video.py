#!/usr/bin/env python3
"""video-rt speed: encode/decode fps at 1920x1080 (GPU) and 416x240 (CPU).

    python bench/video.py [--weights W] [--frames 33] [--intra-period 32] [--device cuda|cpu]
                          [--size 1920x1080] [--cpu-size 416x240] [--cpu-frames 9] [--no-cpu]
                          [--threads T] [--fp32] [--compile] [--input CLIP] [--synthetic]
                          [--exact-conv gemm conv] [--p-chunk 16384 65536]

Frames: real content by default: the first frames of --input (a frame folder or a video
file), else of the first clip found among the held-out DAVIS clips (.carry/val-video-NN,
made by `python -m neuralcodec.video.pack`), the cockatoo clip (.carry/video) and the shared
data; resized to the size with Lanczos (e.g. 640x360 DAVIS to 1920x1080), played back and
forth where the clip is shorter than --frames. The output says which clip; the synthetic
moving pattern is used only with --synthetic or when no clip is found (and says so).
Each run encodes the frames into an in-memory .ncv, then decodes it, and checks the decoded
latents equal the encoder's. Printed per run: total fps (everything, I-frames included),
P-frame fps, entropy-coding time per frame (the native rANS coder on the CPU, with the copies
of its parameters), and for the sequential decode the latent chain (entropy decoding and the
integer-exact nets) and the pixel side (synthesis, copy to the host) timed apart. On CUDA the
same records are decoded again by the pipelined decoder (latent chain of frame t+1 overlapping
the synthesis of frame t), whose pixels must equal the sequential decode's; its speed-up over
the sequential decode of the same run is printed. GPU runs repeat for each --exact-conv
implementation and --p-chunk (coder chunk of P-frame streams; 65536 was the previous default)
and end with a table of ratios against the first configuration. A warm-up of a few frames
precedes each timed run (cuDNN autotuning, first CUDA kernels).
"""
import argparse
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

CLIP_GLOBS = [".carry/val-video-*/davis_*", ".carry/video/cockatoo_720p_h264.mp4", ".carry/video/cockatoo_720p_h264_360p"]
SHARED_CLIPS = [ROOT.parent / "shared/data/video/davis2016_480p/cows",
                ROOT.parent / "shared/data/video/cockatoo_720p_h264.mp4"]
FRAME_SUFFIXES = (".png", ".webp", ".jpg", ".jpeg")


class CoderClock:
    """Accumulates time spent in the entropy coder calls (synchronising the current stream first)."""

    def __init__(self):
        self.seconds = 0.0
        self._patched = []

    def _wrap(self, owner, name):
        fn = getattr(owner, name)
        clock = self

        def timed(*args, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.current_stream().synchronize()
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - t0
        self._patched.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, staticmethod(timed) if isinstance(owner.__dict__.get(name), staticmethod) else timed)

    def install(self):
        self._wrap(conditional.GaussianModel, "encode_symbols")     # every Gaussian stream
        self._wrap(conditional.GaussianModel, "decode_symbols")
        self._wrap(factorized.FactorizedPrior, "compress")
        self._wrap(factorized.FactorizedPrior, "decompress")


def default_clip():
    """The first real clip found: a held-out DAVIS clip or the cockatoo clip (.carry, then the
    shared data); video files only where PyAV is installed."""
    try:
        import av  # noqa: F401
        have_av = True
    except ImportError:
        have_av = False
    found = [p for g in CLIP_GLOBS for p in sorted(ROOT.glob(g))] + SHARED_CLIPS
    for p in found:
        if p.is_dir() and any(f.suffix.lower() in FRAME_SUFFIXES for f in p.iterdir()):
            return p
        if p.is_file() and have_av:
            return p
    return None


def read_source(path: Path, n: int):
    """Up to ``n`` source frames (PIL images) of a frame folder or a video file."""
    from PIL import Image
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in FRAME_SUFFIXES)[:n]
        return [Image.open(f).convert("RGB") for f in files]
    import av
    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            out.append(frame.to_image())
            if len(out) >= n:
                break
    return out


def load_frames(path, n, w, h, synthetic=False):
    """``n`` frames at w x h: real content (a clip resized with Lanczos; played forwards then
    backwards where it is shorter than ``n``), or the synthetic pattern if asked for or if no
    clip is found. Prints which."""
    from PIL import Image
    path = None if synthetic else (Path(path) if path else default_clip())
    if path is not None:
        if not path.exists():
            sys.exit(f"bench/video.py: input {path} not found")
        src = read_source(path, n)
        if len(src) < 2:
            sys.exit(f"bench/video.py: {path} has fewer than 2 frames")
        cycle = src + src[-2:0:-1]          # ping-pong: no jump back to the first frame
        frames = [np.asarray(cycle[i % len(cycle)].resize((w, h), Image.LANCZOS)) for i in range(n)]
        print(f"frames: real content, {path} ({len(src)} source frames {src[0].width}x{src[0].height}"
              f"{', played back and forth' if len(src) < n else ''}), Lanczos to {w}x{h}")
        return frames
    print("frames: SYNTHETIC moving pattern" + ("" if synthetic else " (no real clip found)"))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for t in range(n):
        r = 128 + 100 * np.sin((xx + 4 * t) / 37.0) * np.cos(yy / 23.0)
        g = 128 + 90 * np.sin((xx + yy + 3 * t) / 51.0)
        b = 128 + 80 * np.cos((xx - 2 * t) / 17.0 + yy / 29.0)
        frames.append(np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8))
    return frames


def load_model(args, device):
    from neuralcodec.video.weights import create, load, shipped_weights
    if args.weights or shipped_weights() is not None:
        return load(None, args.weights, device, intra_weights=args.intra_weights), "trained"
    torch.manual_seed(0)
    model = create(device=device).eval()
    model.update()
    return model, "random (no weights shipped)"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _report(what, n, total, coder_s, per, extra=""):
    p_times = [t for k, t in per if k == "P"]
    i_times = [t for k, t in per if k == "I"]
    print(f"  {what}: {n / total:7.2f} fps total | P-frames {1 / np.mean(p_times):7.2f} fps "
          f"(median {1000 * np.median(p_times):.1f} ms) | I-frames {1000 * np.mean(i_times):.1f} ms | "
          f"per frame: entropy coding {1000 * coder_s / n:.1f} ms{extra}")
    return n / total


def run(model, frames, device, period, half, label):
    """Encode, decode sequentially (timing the latent chain and the pixel side apart), and on
    CUDA decode again with the pipelined decoder; prints fps and returns {what: fps}."""
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
    fps = {}
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
    encode = (time.perf_counter() - t_all, clock.seconds, times)
    n = len(frames)
    nbytes = sum(len(p) for _, p in records)
    print(f"\n[{label}] {w}x{h}, {n} frames (intra period {period}), {nbytes} bytes "
          f"({8 * nbytes / (n * w * h):.4f} bpp)")
    fps["encode"] = _report("encode", n, *encode)

    # sequential decode: latent chain (entropy decoding + exact nets) and pixel side timed apart
    dec = VideoDecoder(model, w, h, 4.0, gop, device, half)
    clock.seconds, times, outputs, same = 0.0, [], [], True
    latent_s = pixel_s = 0.0
    t_all = time.perf_counter()
    for (name, payload), ref in zip(records, latents):
        t0 = time.perf_counter()
        intra, y_hat, q = dec.decode_latent(name, payload)
        dec._advance_buffer(intra, y_hat)
        sync(device)
        t1 = time.perf_counter()
        dec._advance_pixels(intra, y_hat, q)
        dec.index += 1
        outputs.append(dec.output())          # pixels to the host, as a writer needs them
        sync(device)
        t2 = time.perf_counter()
        latent_s, pixel_s = latent_s + t1 - t0, pixel_s + t2 - t1
        times.append((name, t2 - t0))
        same &= torch.equal(y_hat.cpu(), ref)
    total = time.perf_counter() - t_all
    fps["decode"] = _report("decode (sequential)", n, total, clock.seconds, times,
                            f", latent chain {1000 * latent_s / n:.1f} ms (coding included), "
                            f"pixels {1000 * pixel_s / n:.1f} ms")
    print(f"  decoded latents equal encoder's: {same}")

    if device.type == "cuda":
        for graphs in (False, True):
            fps[f"decode_pipelined{'_graphs' * graphs}"] = run_pipelined(
                model, records, outputs, gop, device, half, graphs, clock, fps["decode"])
    for owner, name, fn in clock._patched:
        setattr(owner, name, fn)
    return fps


def warm_pipelined(model, records, w, h, gop, device, half, graphs=False):
    """A pipelined decoder warmed up on the first records (second streams, graph capture),
    then reset to frame 0."""
    from neuralcodec.video.codec import PipelinedDecoder
    dec = PipelinedDecoder(model, w, h, 4.0, gop, device, half, graphs=graphs)
    for name, payload in records[:3]:
        dec.push(name, payload)
    dec.reset()
    return dec


def profile_decode(model, frames, device, period, half):
    """torch.profiler over a pipelined decode of the frames (current configuration)."""
    from torch.profiler import ProfilerActivity, profile

    h, w = frames[0].shape[:2]
    gop = GopConfig(period)
    enc = VideoEncoder(model, w, h, 4.0, gop, device, half)
    records = [enc.encode(f)[:2] for f in frames]
    dec = warm_pipelined(model, records, w, h, gop, device, half)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for name, payload in records:
            dec.push(name, payload)
        dec.flush()
    averages = prof.key_averages()
    print("\nprofile of a pipelined decode, by CUDA time:")
    print(averages.table(sort_by="device_time_total", row_limit=25, max_name_column_width=60))
    print("by self CPU time:")
    print(averages.table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=60))


def run_pipelined(model, records, outputs, gop, device, half, graphs, clock, seq_fps) -> float:
    """Decode the records with the pipelined decoder; checks pixels against ``outputs``."""
    h, w = outputs[0].shape[:2]
    n = len(records)
    dec = warm_pipelined(model, records, w, h, gop, device, half, graphs)
    clock.seconds, piped = 0.0, []
    sync(device)
    t_all = time.perf_counter()
    for name, payload in records:
        frame = dec.push(name, payload)
        if frame is not None:
            piped.append(frame)
    piped.append(dec.flush())
    total = time.perf_counter() - t_all
    equal = sum(np.array_equal(a, b) for a, b in zip(piped, outputs))
    print(f"  decode (pipelined{', CUDA graphs' if graphs else ''}): {n / total:7.2f} fps total "
          f"({1000 * total / n:.1f} ms per frame; graph capture not timed), coder "
          f"{1000 * clock.seconds / n:.1f} ms per frame; frames equal to the sequential decode: "
          f"{equal}/{n}; speed-up vs sequential {n / total / seq_fps:.2f}x")
    return n / total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--intra-weights", default=None,
                    help="I-frame (hyperprior) weights file the video weights were trained with, if not the installed one")
    ap.add_argument("--input", default=None, help="clip (frame folder or video file) resized to --size with "
                                                  "Lanczos; default: a held-out DAVIS clip or the cockatoo clip")
    ap.add_argument("--synthetic", action="store_true", help="use the synthetic pattern instead of a real clip")
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
    ap.add_argument("--profile", action="store_true",
                    help="GPU: torch.profiler tables of a pipelined decode (top CUDA and CPU ops)")
    ap.add_argument("--exact-conv", nargs="+", default=["conv", "gemm"], choices=["conv", "gemm"],
                    help="GPU: implementations of the exact convolutions to run (first = baseline)")
    ap.add_argument("--p-chunk", nargs="+", type=int, default=[65536, 16384],
                    help="GPU: coder chunk sizes of P-frame streams to run")
    args = ap.parse_args()

    from neuralcodec.entropy import coder
    if args.threads:
        coder.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    src = args.input
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
        frames = load_frames(src, args.frames, w, h, args.synthetic)
        from neuralcodec.entropy import exact
        from neuralcodec.video import model as video_model
        table = []
        for impl in args.exact_conv:
            for chunk in args.p_chunk:
                exact.set_conv_impl(impl, "cuda")
                video_model.P_CHUNK = chunk
                label = f"GPU {'fp32' if args.fp32 else 'half'}, exact conv {impl}, P chunk {chunk}"
                table.append((label, run(model, frames, device, args.intra_period, not args.fp32, label)))
        if args.profile:
            profile_decode(model, frames, device, args.intra_period, not args.fp32)
        base_label, base = table[0]
        print(f"\nbaseline: [{base_label}] sequential decode {base['decode']:.2f} fps, "
              f"encode {base['encode']:.2f} fps")
        for label, fps in table:
            print(f"  [{label}] " + ", ".join(
                f"{what} {v:.2f} fps ({v / base[what if what == 'encode' else 'decode']:.2f}x)"
                for what, v in fps.items()))
    if not args.no_cpu:
        cpu = torch.device("cpu")
        model, kind = load_model(args, cpu)
        w, h = map(int, args.cpu_size.split("x"))
        print(f"CPU threads: torch {torch.get_num_threads()}; weights: {kind}")
        run(model, load_frames(src, args.cpu_frames, w, h, args.synthetic), cpu, args.intra_period, False, "CPU fp32")


if __name__ == "__main__":
    main()
