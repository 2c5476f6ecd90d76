"""Running an evaluation: per-(file, codec, quality) cache, worker processes, progress bars."""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import time
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor, as_completed
from pathlib import Path

from neuralcodec.errors import NeuralCodecError, error_row
from neuralcodec.limits import DEFAULT_MAX_PIXELS


def settings_key(settings: dict) -> str:
    """Short stable hash of a codec's recorded settings (part of every cache key)."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _finite(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


class ResultCache:
    """One JSON file per (input digest, codec settings, quality) under ``root``."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, source, codec: str, skey: str, quality: float) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", source.name)[:60]
        return self.root / codec / f"{safe}-{source.digest[:12]}-{skey}-q{quality:g}.json"

    def get(self, path: Path, needed: tuple[str, ...]) -> dict | None:
        try:
            row = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if row.get("error") or any(k not in row for k in needed):
            return None
        return {k: (math.nan if v is None and k != "error" else v) for k, v in row.items()}

    def put(self, path: Path, row: dict) -> None:
        from neuralcodec.io.outputs import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps({k: _finite(v) for k, v in row.items()}))


def _init_worker(threads: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)


def run_jobs(fn, jobs: list, workers: int, total: int, done: int, desc: str, on_rows) -> None:
    """Call ``fn(job) -> list[row]`` for every job (in ``workers`` processes when > 1),
    passing each result to ``on_rows`` as it arrives; the bar counts rows."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, desc=desc, unit="run", file=sys.stderr,
               disable=None)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                rows = fn(job)
                on_rows(rows)
                bar.update(len(rows))
            return
        import multiprocessing as mp

        threads = max(1, (os.cpu_count() or 1) // workers)
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                   initializer=_init_worker, initargs=(threads,))
        try:
            futures = [pool.submit(fn, job) for job in jobs]
            for fut in as_completed(futures):
                rows = fut.result()
                on_rows(rows)
                bar.update(len(rows))
        except BaseException:
            # interrupted or failed: stop now; finished results are already cached
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    except BrokenExecutor as exc:
        raise NeuralCodecError(f"a worker process died ({exc or 'killed'}); results so far are "
                               "cached, rerun to resume") from None
    finally:
        bar.close()


def evaluate_image_job(job: dict) -> list[dict]:
    """Worker: one image through one codec at several qualities; failures become rows
    with an ``error`` field instead of exceptions."""
    from neuralcodec.eval.image_codecs import get_image_codec
    from neuralcodec.eval.inputs import load_image
    from neuralcodec.eval.metrics import image_metrics

    src, name, qualities = job["source"], job["codec"], job["qualities"]
    base = {"source": src.name, "codec": name, "width": src.width, "height": src.height}
    try:
        codec = get_image_codec(job.get("spec", name), job.get("device", "cpu"), job.get("options"))
        ref = load_image(src.path, job.get("max_pixels", DEFAULT_MAX_PIXELS))
    except Exception as exc:  # reported per row, never fatal
        return [dict(base, quality=q, error=error_row(exc)) for q in qualities]
    rows = []
    for q in qualities:
        row = dict(base, quality=q)
        try:
            t0 = time.perf_counter()
            data = codec.encode(ref, q)
            t1 = time.perf_counter()
            rec = codec.decode(data)
            t2 = time.perf_counter()
            if rec.shape != ref.shape:
                raise ValueError(f"decoded shape {rec.shape} differs from input {ref.shape}")
            row.update(bytes=len(data), bpp=8.0 * len(data) / (src.width * src.height),
                       encode_s=t1 - t0, decode_s=t2 - t1, error=None)
            row.update(image_metrics(ref, rec, job["metrics"]))
        except Exception as exc:
            row["error"] = error_row(exc)
        rows.append(row)
    return rows


def evaluate(kind: str, sources, codecs: dict, metrics, cache_dir, workers: int,
             extra: dict | None = None, runtime: dict | None = None,
             codec_options: dict | None = None) -> list[dict]:
    """Evaluate every (source, codec, quality), reusing cached rows; return all rows.

    ``codecs`` maps a codec name to (codec object with .settings, list of qualities).
    ``kind`` is "images" or "videos"; ``extra`` (options that change results, part of the
    cache key) and ``runtime`` (options that do not, e.g. the device) go into every job;
    ``codec_options`` (name -> options) rebuild each codec in the workers (their effect is
    in the codec's recorded settings, hence in the key).
    """
    from neuralcodec.eval.video_codecs import evaluate_video_job

    cache = ResultCache(cache_dir)
    needed = metric_keys(kind, metrics)
    rows, jobs, total = [], [], 0
    for src in sources:
        for name, (codec, qualities) in codecs.items():
            skey = settings_key({**codec.settings, **(extra or {}), "kind": kind})
            todo = []
            for q in qualities:
                total += 1
                hit = cache.get(cache.path(src, name, skey, q), needed)
                if hit is not None:
                    rows.append(hit)
                else:
                    todo.append(q)
            if not todo:
                continue
            chunks = [todo] if kind == "images" else [[q] for q in todo]
            for chunk in chunks:
                jobs.append({"source": src, "codec": name, "spec": getattr(codec, "spec", name),
                             "qualities": chunk, "skey": skey, "metrics": tuple(metrics),
                             "options": (codec_options or {}).get(name, {}), **(extra or {}), **(runtime or {})})
    skeys = {(j["source"].name, j["codec"]): (j["source"], j["skey"]) for j in jobs}

    def store(new_rows):
        for row in new_rows:
            rows.append(row)
            if not row.get("error"):
                src, skey = skeys[(row["source"], row["codec"])]
                cache.put(cache.path(src, row["codec"], skey, row["quality"]), row)
            else:
                from tqdm import tqdm

                tqdm.write(f"neuralcodec: warning: {row['source']} / {row['codec']} "
                           f"q={row['quality']:g}: {row['error']} (skipped)", file=sys.stderr)

    fn = evaluate_image_job if kind == "images" else evaluate_video_job
    run_jobs(fn, jobs, workers, total, total - sum(len(j["qualities"]) for j in jobs),
             f"eval {kind}", store)
    return rows


def metric_keys(kind: str, metrics) -> tuple[str, ...]:
    """Result keys a row must hold for the requested metrics."""
    keys = ["bpp"]
    if "psnr" in metrics:
        keys.append("psnr-rgb")
        if kind == "videos":
            keys += ["psnr-y", "psnr-u", "psnr-v", "psnr-yuv"]
    if "ms-ssim" in metrics:
        keys.append("ms-ssim-rgb")
    return tuple(keys)
