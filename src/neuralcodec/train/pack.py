"""Pack training images into a byte budget (for machines that receive little data).

Every image gets a base scale (lossless sources 1, JPEG sources by estimated quality),
then one pixel cap for the whole set is searched so that the encoded total fits; the
short side never goes below ``min_side`` (smaller sources are skipped). If the set
still does not fit with every image at that floor, images are dropped evenly along the
sorted list. Output is lossless WebP (or PNG / JPEG q95), in a deterministic order with
deterministic names, plus MANIFEST.json. ``keep_jpeg`` copies high-quality JPEG sources
byte for byte (no second generation of loss). With ``part_mib`` the set is split into
balanced parts ``part-01/``, ``part-02/`` ... of at most that size each, each with its own
manifest (for machines that receive one part per transfer into one folder).
"""
from __future__ import annotations

import io
import json
import math
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from neuralcodec.errors import InputError
from neuralcodec.train.files import JPEG_SUFFIXES, find_images

MANIFEST_FORMAT = "neuralcodec-packed-data-1"
NOTE_SUFFIXES = (".md", ".txt")
# IJG standard luminance quantisation table (quality 50)
_IJG_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
             14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
             49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]


@dataclass
class Item:
    path: Path
    source: int
    name: str            # output name relative to OUT
    size: tuple[int, int]
    jpeg_quality: float | None
    base: float
    floor: float
    scale: float = 1.0
    bpp: float = 24.0
    nbytes: int = 0
    copy: bool = False   # the source file's own bytes (a high-quality JPEG kept as it is)


def jpeg_quality(im) -> float | None:
    """Estimated IJG quality (1-100) from a JPEG's luminance table, or None."""
    q = getattr(im, "quantization", None)
    if not q or 0 not in q:
        return None
    s = 100.0 * sum(q[0]) / sum(_IJG_LUMA)
    return max(1.0, min(100.0, (200.0 - s) / 2.0 if s <= 100.0 else 5000.0 / s))


def out_size(size: tuple[int, int], scale: float, min_side: int) -> tuple[int, int]:
    """Target (w, h) for ``scale``, never with a short side under ``min_side``."""
    w, h = size
    if scale >= 0.995:
        return w, h
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    if min(tw, th) < min_side:
        k = min_side / min(w, h)
        tw, th = max(min_side, round(w * k)), max(min_side, round(h * k))
    return tw, th


def encode(path: str, size: tuple[int, int], fmt: str) -> bytes:
    """Decode (as 8-bit RGB, :func:`neuralcodec.io.images.read_rgb8`), resize (Lanczos) and
    encode one image (``fmt`` "copy": the file's bytes)."""
    from PIL import Image

    from neuralcodec.io.images import read_rgb8
    if fmt == "copy":
        return Path(path).read_bytes()
    with Image.fromarray(read_rgb8(path).pixels) as im:
        if im.size != tuple(size):
            im = im.resize(tuple(size), Image.LANCZOS)
        buf = io.BytesIO()
        if fmt == "webp":
            im.save(buf, "WEBP", lossless=True, quality=80, method=4, exact=True)
        elif fmt == "png":
            im.save(buf, "PNG", compress_level=9)
        else:
            im.save(buf, "JPEG", quality=95, subsampling=0)
        return buf.getvalue()


def _encode_task(args):
    return encode(*args)


def scan(sources: list[str], min_side: int, lowq_threshold: float, lowq_scale: float, jpeg_scale: float,
         fmt: str, keep_jpeg: bool = False) -> tuple[list[Item], list[dict]]:
    """Items of every readable image with its base scale and floor; per-source summary."""
    from PIL import Image
    items, summary, labels = [], [], set()
    for si, src in enumerate(sources):
        paths = find_images([src])
        label = Path(src).resolve().name or f"source{si}"
        while label in labels:
            label += "_"
        labels.add(label)
        names, skipped = set(), []
        for p in paths:
            try:
                with Image.open(p) as im:
                    size, q = im.size, (jpeg_quality(im) if p.suffix.lower() in JPEG_SUFFIXES else None)
            except OSError as exc:
                raise InputError(f"cannot read image {p}: {exc}") from None
            if min(size) < min_side:
                skipped.append(str(p.relative_to(src)))
                continue
            base = 1.0 if q is None else (lowq_scale if q < lowq_threshold else jpeg_scale)
            copy = keep_jpeg and q is not None and base >= 1.0
            suffix = p.suffix.lower()[1:] if copy else fmt
            rel = p.relative_to(src).with_suffix("")
            name = f"{label}/{rel.as_posix()}.{suffix}"
            if name in names:
                name = f"{label}/{rel.as_posix()}_{p.suffix.lower()[1:]}.{suffix}"
            names.add(name)
            floor = 1.0 if copy else min(1.0, min_side / min(size))
            items.append(Item(p, si, name, size, q, base, floor, copy=copy))
        qs = [it.jpeg_quality for it in items if it.source == si and it.jpeg_quality is not None]
        summary.append({"path": str(src), "label": label, "images": len(paths),
                        "skipped_small": skipped, "jpeg_quality_median": round(sorted(qs)[len(qs) // 2], 1) if qs else None})
    if not items:
        raise InputError(f"no image has a short side of at least {min_side} px")
    return items, summary


def _scales_for(items: list[Item], cap: float) -> list[float]:
    return [max(it.floor, min(it.base, math.sqrt(cap / (it.size[0] * it.size[1])))) for it in items]


def _predict(items: list[Item], scales: list[float], min_side: int) -> float:
    total = 0.0
    for it, s in zip(items, scales):
        w, h = out_size(it.size, s, min_side)
        total += it.bpp * w * h / 8.0
    return total


def _solve_cap(items: list[Item], budget: float, min_side: int) -> float:
    """Largest pixel cap whose predicted total fits ``budget`` (0 when even the floor does not)."""
    hi = float(max(it.size[0] * it.size[1] for it in items))
    if _predict(items, _scales_for(items, hi), min_side) <= budget:
        return hi
    lo = 0.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if _predict(items, _scales_for(items, mid), min_side) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


def split_parts(sizes: list[int], capacity: float) -> list[list[int]]:
    """Indices of ``sizes`` in balanced parts of at most ``capacity`` bytes each: the fewest
    parts that the largest-first greedy fill (each item into the emptiest part) fits."""
    if any(n > capacity for n in sizes):
        raise InputError(f"an image of {max(sizes) / 2**20:.1f} MiB does not fit a part of "
                         f"{capacity / 2**20:.1f} MiB (raise --part-mib)")
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    count = max(1, math.ceil(sum(sizes) / capacity))
    while True:
        parts, totals = [[] for _ in range(count)], [0] * count
        for i in order:
            k = min(range(count), key=lambda j: (totals[j], j))
            if totals[k] + sizes[i] > capacity:
                break
            parts[k].append(i)
            totals[k] += sizes[i]
        else:
            return [sorted(p) for p in parts]
        count += 1


def pack(sources: list[str], out: str, max_mib: float = 40.0, min_side: int = 256, fmt: str = "webp",
         lowq_threshold: float = 90.0, lowq_scale: float = 0.5, jpeg_scale: float = 1.0,
         workers: int = 1, force: bool = False, log=print, keep_jpeg: bool = False,
         part_mib: float = 0.0) -> dict:
    """Write the packed set to ``out`` (atomically: built beside it, then renamed). Returns the manifest."""
    if fmt not in ("webp", "png", "jpeg"):
        raise InputError(f"unknown format {fmt!r} (webp, png, jpeg)")
    if max_mib <= 0 or min_side < 1 or not (0 < lowq_scale <= 1) or not (0 < jpeg_scale <= 1) or part_mib < 0:
        raise InputError("--max-mib and --min-side must be positive, --part-mib >= 0, the scales in (0, 1]")
    out_dir = Path(out)
    if out_dir.exists() and not force and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"output {out_dir} exists and is not empty (use --force to replace it)")
    for src in sources:
        if out_dir.resolve() == Path(src).resolve() or Path(src).resolve() in out_dir.resolve().parents:
            raise InputError(f"output {out_dir} is inside the source {src}")
    items, summary = scan(sources, min_side, lowq_threshold, lowq_scale, jpeg_scale, fmt, keep_jpeg)
    notes = [(summary[si]["label"], p) for si, src in enumerate(sources)
             for p in sorted(Path(src).iterdir()) if p.is_file() and p.suffix.lower() in NOTE_SUFFIXES]
    # the manifest's own size is reserved up front (about 300 bytes an image, paths included)
    manifest_reserve = 8192 + sum(len(str(it.path)) + len(it.name) + 260 for it in items)
    budget = max_mib * 2**20 - sum(p.stat().st_size for _, p in notes) - manifest_reserve
    if budget <= 0:
        raise InputError(f"--max-mib {max_mib:g} is too small for {len(items)} images")

    def run(tasks):
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                return list(pool.map(_encode_task, tasks, chunksize=4))
        return [encode(*t) for t in tasks]

    # pass 0 measures bits per pixel with every image at its floor (an upper bound for larger sizes)
    log(f"measuring {len(items)} images at their smallest size ...")
    sizes = [out_size(it.size, it.floor, min_side) for it in items]
    for it, (w, h), data in zip(items, sizes, run([(str(it.path), s, "copy" if it.copy else fmt) for it, s in zip(items, sizes)])):
        it.bpp = 8.0 * len(data) / (w * h)
    keep = list(range(len(items)))
    cap, blobs = 0.0, {}
    for attempt in range(5):
        kept = [items[i] for i in keep]
        cap = _solve_cap(kept, budget * (0.995 - 0.01 * attempt), min_side)
        if cap == 0.0:  # even the floor is too big: drop images evenly along the list
            floor_total = _predict(kept, [it.floor for it in kept], min_side)
            n_keep = max(1, int(len(kept) * budget * (0.995 - 0.01 * attempt) / floor_total))
            drop = {round((j + 0.5) * len(kept) / (len(kept) - n_keep)) for j in range(len(kept) - n_keep)} \
                if n_keep < len(kept) else set()
            drop = {min(d, len(kept) - 1) for d in drop}
            while len(drop) < len(kept) - n_keep:  # rounding collisions
                drop.add(next(i for i in range(len(kept)) if i not in drop))
            keep = [keep[i] for i in range(len(kept)) if i not in drop]
            kept = [items[i] for i in keep]
        scales = _scales_for(kept, cap)
        sizes = [out_size(it.size, s, min_side) for it, s in zip(kept, scales)]
        log(f"encoding {len(kept)} images " + (f"(pixel cap {cap / 1e6:.3f} Mpx) ..." if cap > 0 else
                                                "(all at --min-side; the rest are dropped) ..."))
        datas = run([(str(it.path), s, "copy" if it.copy else fmt) for it, s in zip(kept, sizes)])
        for it, s, (w, h), data in zip(kept, scales, sizes, datas):
            it.scale, it.nbytes, it.bpp = min(w / it.size[0], h / it.size[1]), len(data), 8.0 * len(data) / (w * h)
        blobs = {it.name: (data, size) for it, data, size in zip(kept, datas, sizes)}
        if sum(it.nbytes for it in kept) <= budget:
            break
    else:
        raise InputError(f"could not fit the images into {max_mib:g} MiB")

    kept = [items[i] for i in keep]
    dropped = [it for i, it in enumerate(items) if i not in set(keep)]
    for si, s in enumerate(summary):
        s["kept"] = sum(it.source == si for it in kept)
        s["dropped"] = [it.name for it in dropped if it.source == si]
    notes_bytes = sum(p.stat().st_size for _, p in notes)
    parts = [list(range(len(kept)))]
    if part_mib:
        capacity = part_mib * 2**20 * 0.98 - 8192 - notes_bytes
        parts = split_parts([it.nbytes for it in kept], capacity)
    prefixes = [f"part-{k + 1:02d}/" if part_mib else "" for k in range(len(parts))]
    where = {i: prefixes[k] for k, part in enumerate(parts) for i in part}

    def entry(i: int, it: Item) -> dict:
        return {"file": where[i] + it.name, "source": str(it.path), "source_size": list(it.size),
                "size": list(blobs[it.name][1]), "scale": round(it.scale, 5),
                "jpeg_quality": None if it.jpeg_quality is None else round(it.jpeg_quality, 1),
                "bytes": it.nbytes, "copied": it.copy}
    manifest = {
        "format": MANIFEST_FORMAT,
        "settings": {"max_mib": max_mib, "min_side": min_side, "format": fmt, "lowq_threshold": lowq_threshold,
                     "lowq_scale": lowq_scale, "jpeg_scale": jpeg_scale, "keep_jpeg": keep_jpeg,
                     "part_mib": part_mib},
        "pixel_cap": round(cap),
        "sources": summary,
        "notes": [f"{prefixes[0]}{label}/{p.name}" for label, p in notes],
        "images": [entry(i, it) for i, it in enumerate(kept)],
        "count": len(kept),
        "pixels": sum(blobs[it.name][1][0] * blobs[it.name][1][1] for it in kept),
        "image_bytes": sum(it.nbytes for it in kept),
    }
    manifest["total_bytes"] = manifest["image_bytes"] + notes_bytes
    if part_mib:
        manifest["parts"] = [{"dir": prefixes[k].rstrip("/"), "count": len(part),
                              "bytes": sum(kept[i].nbytes for i in part)} for k, part in enumerate(parts)]
    parent = out_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    try:
        for i, it in enumerate(kept):
            dst = tmp / where[i] / it.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(blobs[it.name][0])
        for label, p in notes:
            (tmp / prefixes[0] / label).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, tmp / prefixes[0] / label / p.name)
        for k, part in enumerate(parts if part_mib else []):
            own = {"format": MANIFEST_FORMAT, "part": k + 1, "of": len(parts), "count": len(part),
                   "images": [entry(i, kept[i]) for i in part]}
            (tmp / prefixes[k] / "MANIFEST.json").write_text(json.dumps(own, indent=1) + "\n")
            size = sum(f.stat().st_size for f in (tmp / prefixes[k]).rglob("*") if f.is_file())
            if size > part_mib * 2**20:
                raise InputError(f"part {k + 1} is {size} bytes, over --part-mib {part_mib:g}")
        (tmp / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
        written = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        if written > max_mib * 2**20:  # cannot happen with the reserve above; never ship an oversize set
            raise InputError(f"packed set is {written} bytes, over --max-mib {max_mib:g}")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        from neuralcodec.io.outputs import finish_output
        finish_output(tmp, out_dir)          # 0777 minus the umask, not mkdtemp's 0700
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    total = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    log(f"packed {len(kept)} images ({len(dropped)} dropped, "
        f"{sum(len(s['skipped_small']) for s in summary)} too small) into {out_dir}: "
        f"{total / 2**20:.2f} MiB of {max_mib:g} MiB" + (f", in {len(parts)} parts of at most {part_mib:g} MiB"
                                                            if part_mib else ""))
    return manifest
