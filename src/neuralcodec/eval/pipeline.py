"""`neuralcodec eval images|videos` end to end: validate, run, aggregate, write outputs."""
from __future__ import annotations

import io
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuralcodec.errors import InputError
from neuralcodec.limits import DEFAULT_MAX_PIXELS

METRICS = ("psnr", "ms-ssim")


@dataclass
class EvalOptions:
    """What the CLI passes in (see ``neuralcodec eval images --help``)."""

    kind: str
    inputs: list
    codecs: list
    out: str
    metrics: list = field(default_factory=lambda: list(METRICS))
    anchor: str | None = None
    workers: int = 1
    include: list = field(default_factory=list)
    qualities: dict = field(default_factory=dict)
    device: str = "cpu"
    crop_image: str | None = None
    max_frames: int = 0
    fps: float | None = None
    command: str = ""
    codec_options: dict = field(default_factory=dict)   # codec -> {option: value}
    specs: dict = field(default_factory=dict)           # name -> NAME=WEIGHTS (set by validation)
    published: bool = True          # Kodak inputs: add the published curves
    max_pixels: int = DEFAULT_MAX_PIXELS


def parse_qualities(specs) -> dict:
    """['jpeg=10,50,90', ...] -> {'jpeg': [10.0, 50.0, 90.0]}."""
    out = {}
    for spec in specs or []:
        name, sep, vals = spec.partition("=")
        try:
            qs = [float(v) for v in vals.split(",") if v.strip()]
        except ValueError:
            qs = []
        if not sep or not name or not qs:
            raise InputError(f"--qualities expects CODEC=Q1,Q2,..., got {spec!r}")
        out[name.strip()] = qs
    return out


def parse_weights(specs) -> dict:
    """['hyperprior=run/w.safetensors', ...] -> {'hyperprior': {'weights': 'run/w.safetensors'}}."""
    out = {}
    for spec in specs or []:
        name, sep, path = (part.strip() for part in spec.partition("="))
        if not sep or not name or not path:
            raise InputError(f"--weights expects CODEC=FILE, got {spec!r}")
        if not Path(path).is_file():
            raise InputError(f"--weights {spec}: file {path} not found")
        out[name] = {"weights": path}
    return out


def parse_refine(specs, options: dict) -> dict:
    """['elic=100', ...] -> options with {'elic': {..., 'refine': 100}} (encoder-side latent
    refinement of neuralcodec's codecs; checked against --codecs by the run)."""
    from neuralcodec.codecs.catalog import MAX_REFINE_STEPS

    for spec in specs or []:
        name, sep, steps = (part.strip() for part in spec.partition("="))
        if not sep or not name or not steps.isdigit() or not 1 <= int(steps) <= MAX_REFINE_STEPS:
            raise InputError(f"--refine expects CODEC=STEPS with 1 <= STEPS <= {MAX_REFINE_STEPS}, got {spec!r}")
        options.setdefault(name, {})["refine"] = int(steps)
    return options


def _validate(opt: EvalOptions):
    """Every check that needs neither the inputs nor the codecs' libraries (no torch import
    unless a codec name is none of the known ones); returns (included curves, anchor)."""
    from neuralcodec.eval.results import load_results

    bad = [m for m in opt.metrics if m not in METRICS]
    if bad or not opt.metrics:
        raise InputError(f"unknown metric(s) {', '.join(bad) or '(none)'}; use {', '.join(METRICS)}")
    if not opt.codecs:
        raise InputError("no codecs given (--codecs jpeg,webp,...)")
    if opt.kind == "images" and "neuralcodec" in opt.codecs:  # shorthand: all of ours with weights
        from neuralcodec.eval.image_codecs import neural_codec_names

        i = opt.codecs.index("neuralcodec")
        opt.codecs[i:i + 1] = [n for n in neural_codec_names(shipped=True) if n not in opt.codecs]
    specs = opt.codecs       # NAME=WEIGHTS names a weights file; the rest are codec names
    opt.codecs = [spec.partition("=")[0] for spec in specs]
    if len(set(opt.codecs)) != len(opt.codecs):
        raise InputError("a codec is listed twice in --codecs")
    opt.specs = {name: spec for name, spec in zip(opt.codecs, specs) if spec != name}
    if opt.workers < 1:
        raise InputError("--workers must be at least 1")
    if opt.max_pixels < 1:
        raise InputError("--max-pixels must be at least 1")
    unknown = set(opt.qualities) - set(opt.codecs)
    if unknown:
        raise InputError(f"--qualities names codec(s) not in --codecs: {', '.join(sorted(unknown))}")
    from neuralcodec.eval.image_codecs import CLASSICAL
    from neuralcodec.eval.video_codecs import CODECS as PYAV_CODECS

    for option in ("weights", "refine"):
        named = {n for n, o in opt.codec_options.items() if option in o}
        unknown = named - set(opt.codecs)
        if unknown:
            raise InputError(f"--{option} names codec(s) not in --codecs: {', '.join(sorted(unknown))}")
        foreign = named & set(CLASSICAL + PYAV_CODECS)
        if foreign:
            raise InputError(f"--{option} is for neuralcodec's codecs, not {', '.join(sorted(foreign))}")
    _check_codec_names(opt)
    included = [load_results(p) for p in opt.include]
    names = list(opt.codecs) + [c.name for c in included]
    anchor = opt.anchor or opt.codecs[0]
    if anchor not in names:
        match = [c.name for c in included if c.meta["file"].endswith(anchor) or
                 c.name.startswith(anchor + " [")]
        if opt.kind == "images" and opt.published and not match:
            from neuralcodec.eval.published import kodak_names

            match = [n for n in kodak_names() if n == anchor or n.startswith(anchor + " [")]
        if len(match) != 1:
            raise InputError(f"--anchor {anchor!r} is neither a codec of this run nor an included "
                             f"curve ({', '.join(names)})")
        anchor = match[0]
    out = Path(opt.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a folder")
    return included, anchor


def _check_codec_names(opt: EvalOptions) -> None:
    """Unknown names fail here; known ones are built (and their libraries loaded) later."""
    from neuralcodec.codecs import catalog
    from neuralcodec.eval import image_codecs, video_codecs

    if opt.kind == "images":
        known = set(image_codecs.CLASSICAL) | set(catalog.IMAGE_CODECS)
        lookup = image_codecs.get_image_codec       # other names: ask the codec API
    else:
        known = set(video_codecs.CODECS) | set(catalog.VIDEO_CODECS)
        lookup = video_codecs.get_video_codec
    for name in opt.codecs:
        if name not in known:
            lookup(opt.specs.get(name, name))


def _build_codecs(opt: EvalOptions) -> dict:
    """{name: (codec, qualities)}; each image codec round-trips a small image once, so one that
    cannot work stops the run with one line before anything is written."""
    from neuralcodec.eval.image_codecs import get_image_codec
    from neuralcodec.eval.video_codecs import get_video_codec

    codecs = {}
    for name in opt.codecs:
        options = opt.codec_options.get(name, {})
        if opt.kind == "images":
            c = get_image_codec(opt.specs.get(name, name), opt.device, options)
        else:
            c = get_video_codec(name, opt.device, options)
        codecs[name] = (c, [float(q) for q in opt.qualities.get(name, c.qualities)])
        if opt.kind == "images":
            c.probe(codecs[name][1][0])
    return codecs


def _published(opt: EvalOptions, sources) -> list:
    """The published Kodak curves when the inputs are the Kodak images, all 24 (a note says why
    not when they are some of them)."""
    if opt.kind != "images" or not opt.published:
        return []
    from neuralcodec.eval.published import kodak_coverage, kodak_curves

    kodak, other, total = kodak_coverage(sources)
    if kodak == total and not other:
        return kodak_curves()
    if kodak:
        others = f" and {other} other image(s)" if other else ""
        print(f"neuralcodec: note: {kodak} of the {total} Kodak images{others} in the inputs; the "
              f"published Kodak curves (means over all {total}) are not added", file=sys.stderr)
    return []


def run_eval(opt: EvalOptions) -> Path:
    """Run one evaluation and write every output into ``opt.out``; return report.html."""
    from neuralcodec.eval import inputs, results
    from neuralcodec.eval.runner import evaluate

    t0 = time.perf_counter()
    included, anchor = _validate(opt)
    if opt.kind == "images":
        sources, skipped, notes = inputs.scan_images(opt.inputs, opt.max_pixels)
        extra, runtime = {}, {"device": opt.device, "max_pixels": opt.max_pixels}
    else:
        sources, skipped = inputs.scan_videos(opt.inputs, opt.fps, opt.max_frames)
        notes = []
        extra = {"max_frames": opt.max_frames, "fps": opt.fps}
        runtime = {"threads": max(1, _cpus() // opt.workers) if opt.workers > 1 else 0,
                   "device": opt.device}
    for path, why in skipped:
        print(f"neuralcodec: warning: skipping {path}: {why}", file=sys.stderr)
    if notes:
        print(f"neuralcodec: warning: {len(notes)} image(s) converted to 8-bit RGB: {notes[0]}"
              f"{' ...' if len(notes) > 1 else ''}", file=sys.stderr)
    published = _published(opt, sources)
    from neuralcodec.eval.published import is_published

    if is_published(anchor) and not published:
        raise InputError(f"--anchor {anchor!r} is a published Kodak curve, but the inputs are not "
                         f"the 24 Kodak images")
    codecs = _build_codecs(opt)
    from neuralcodec.eval.metrics import MS_SSIM_MIN_SIDE

    small = [s.name for s in sources if min(s.width, s.height) < MS_SSIM_MIN_SIDE]
    if "ms-ssim" in opt.metrics and small:
        print(f"neuralcodec: warning: MS-SSIM needs at least {MS_SSIM_MIN_SIDE} pixels per side; "
              f"it is NaN for {len(small)} input(s) ({', '.join(small[:3])}"
              f"{' ...' if len(small) > 3 else ''})", file=sys.stderr)
    out = Path(opt.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = evaluate(opt.kind, sources, codecs, opt.metrics, out / "cache", opt.workers,
                    extra, runtime, opt.codec_options)
    label = "image" if opt.kind == "images" else "video"
    results.write_csv(out / "rows.csv", rows, label)
    sweeps = {n: q for n, (_, q) in codecs.items()}
    full, partial = results.complete_sources(rows, sweeps)
    if not full:
        raise InputError(f"no {label} was evaluated with every codec and quality "
                         f"(see {out / 'rows.csv'} for the errors)")
    failed = [r for r in rows if r.get("error")]
    if partial:
        print(f"neuralcodec: warning: {len(partial)} {label}(s) left out of the averages because "
              f"a codec failed on them: {', '.join(partial[:5])}{' ...' if len(partial) > 5 else ''}",
              file=sys.stderr)
    if published and len(full) < len(sources):
        print(f"neuralcodec: warning: only {len(full)} of the {len(sources)} Kodak images are in the "
              f"averages; the published curves (means over all of them) are left out", file=sys.stderr)
        published = []
        if is_published(anchor):
            raise InputError(f"--anchor {anchor!r}: the published curve is left out (see above)")
    groups = _write_curves(opt, codecs, rows, full, included + published, out)
    crops, note = _crops(opt, codecs, rows, full, sources) if opt.kind == "images" else ([], "")
    html = _render(opt, groups, rows, full, anchor, codecs, skipped, failed, crops, note,
                   time.perf_counter() - t0)
    from neuralcodec.eval.files import write_text

    write_text(out / "report.html", html)
    _summary(groups, anchor, opt, out)
    return out / "report.html"


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _plot_metrics(opt: EvalOptions) -> list[str]:
    keys = []
    if "psnr" in opt.metrics:
        keys += ["psnr-yuv", "psnr-rgb"] if opt.kind == "videos" else ["psnr-rgb"]
    if "ms-ssim" in opt.metrics:
        keys.append("ms-ssim-db-rgb")
    return keys


def _write_curves(opt, codecs, rows, full, included, out: Path):
    """results/<codec>.json (mean over all inputs), per-video files, plots; return groups."""
    from neuralcodec.eval import results
    from neuralcodec.eval.plots import save_rd_plot
    from neuralcodec.eval.report import Group

    dataset = ", ".join(str(p) for p in opt.inputs)
    metrics = _plot_metrics(opt)

    def curves_for(srcs, tag):
        cs = []
        for name, (codec, _) in codecs.items():
            meta = {"dataset": dataset, "sources": list(srcs), "settings": codec.settings,
                    "quality_param": codec.quality_param, "generator": "neuralcodec eval"}
            c = results.aggregate(rows, name, srcs, codec.describe(), meta)
            results.write_json(out / "results" / tag / f"{name}.json" if tag else
                               out / "results" / f"{name}.json", results.to_compressai(c))
            cs.append(c)
        return cs

    (out / "results").mkdir(exist_ok=True)
    groups = []
    if opt.kind == "images":
        g = Group(f"All images ({len(full)})", curves_for(full, "") + included, "bpp")
        groups.append(g)
    else:
        curves_for(full, "")  # dataset mean, rate as bpp
        for src in full:
            (out / "results" / _safe(src)).mkdir(exist_ok=True)
            groups.append(Group(f"Video {src}", curves_for([src], _safe(src)), "bitrate_kbps"))
    for g in groups:
        plot_dir = out / "plots" / (_safe(g.title) if len(groups) > 1 else "")
        plot_dir.mkdir(parents=True, exist_ok=True)
        for m in metrics:
            g.plots[m] = save_rd_plot(g.curves, m, plot_dir, g.rate, g.title)
    return groups


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]


def _crops(opt, codecs, rows, full, sources, size: int = 192):
    """Centre crops of one image, each codec at the quality nearest a common bpp."""
    from neuralcodec.eval.inputs import load_image

    name = opt.crop_image or full[0]
    src = next((s for s in sources if s.name == name or s.path == name), None)
    if src is None or src.name not in full:
        print(f"neuralcodec: warning: --crop-image {name} is not among the evaluated images; "
              f"no crops", file=sys.stderr)
        return [], ""
    mine = [r for r in rows if r["source"] == src.name and not r.get("error")]
    ranges = [[r["bpp"] for r in mine if r["codec"] == c] for c in codecs]
    lo, hi = max(min(b) for b in ranges), min(max(b) for b in ranges)
    target = math.sqrt(lo * hi) if lo < hi else float(np.median([b for rs in ranges for b in rs]))
    ref = load_image(src.path, opt.max_pixels)
    h, w = ref.shape[:2]
    s = min(size, h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crops = [(f"original ({src.name})", _png(ref[y0:y0 + s, x0:x0 + s]))]
    for c, (codec, _) in codecs.items():
        best = min((r for r in mine if r["codec"] == c),
                   key=lambda r: abs(math.log(r["bpp"] / target)))
        try:
            rec = codec.decode(codec.encode(ref, best["quality"]))
        except Exception as exc:
            print(f"neuralcodec: warning: crop for {c} failed: {exc}", file=sys.stderr)
            continue
        crops.append((f"{c} q={best['quality']:g}: {best['bpp']:.3f} bpp, "
                      f"{best.get('psnr-rgb', float('nan')):.2f} dB",
                      _png(rec[y0:y0 + s, x0:x0 + s])))
    note = (f"{s}x{s} centre crop of {src.name}; each codec at the quality whose bpp on this image "
            f"is nearest {target:.3f} bpp (enlarged 2x without smoothing).")
    return crops, note


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, "PNG")
    return buf.getvalue()


def _render(opt, groups, rows, full, anchor, codecs, skipped, failed, crops, note, elapsed):
    import neuralcodec
    from neuralcodec.eval.report import render

    metric_keys = [k for k in ("psnr-y", "psnr-u", "psnr-v", "psnr-yuv", "psnr-rgb", "ms-ssim-rgb")
                   if (k.startswith("psnr") and "psnr" in opt.metrics and
                       (opt.kind == "videos" or k == "psnr-rgb"))
                   or (k == "ms-ssim-rgb" and "ms-ssim" in opt.metrics)]
    env = (f"neuralcodec {neuralcodec.__version__}, Python {platform.python_version()}, "
           f"{platform.machine()}, {_cpus()} CPU(s), {opt.workers} worker(s); "
           f"{len(full)} {'image' if opt.kind == 'images' else 'video'}(s) in the averages")
    info = {n: c.describe() for n, (c, _) in codecs.items()}
    info.update({c.name: (f"published: {c.meta.get('file')}; {c.meta.get('attribution')}"
                          if c.meta.get("published") else f"included: {c.meta.get('file')} ({c.description})")
                 for c in groups[0].curves if c.included})
    return render(title=f"neuralcodec eval {opt.kind}", kind=opt.kind, groups=groups,
                  rows=rows,
                  anchor=anchor, metrics=metric_keys, bd_metrics=_plot_metrics(opt),
                  codec_info=info, command=opt.command, skipped=skipped, failed=failed,
                  crops=crops, crop_note=note, elapsed_s=elapsed, environment=env)


def _summary(groups, anchor, opt, out: Path) -> None:
    from neuralcodec.eval.report import bd_rows, published_bd

    metric = _plot_metrics(opt)[0]
    for g in groups:
        for name, cells in bd_rows(g.curves, anchor, metric, g.rate):
            v = cells["BD-rate pchip [%]"]
            txt = f"{v:+.2f} %" if isinstance(v, float) else f"n/a ({v})"
            print(f"{g.title}: BD-rate ({metric}, pchip) of {name} vs {anchor}: {txt}")
        for name, cells in published_bd(g.curves, metric, g.rate):
            txt = ", ".join(f"{label} " + (f"{v:+.1f} %" if isinstance(v, float) else "n/a")
                            for label, v in cells)
            print(f"{g.title}: BD-rate ({metric}, pchip) of {name} vs published Kodak results: {txt}")
    print(f"report: {out / 'report.html'}")
