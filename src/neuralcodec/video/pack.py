"""Pack video clips for the GPU machine: training parts and held-out validation parts.

Each clip becomes one frame folder (frames ``f001.*`` in source order), resized with Lanczos
to its planned size. Training clips are WebP (quality 95 by default, or lossless) and land in
parts ``video-01/``, ``video-02/`` ... of at most ``part_mib`` each (a clip never spans two
parts); held-out clips are lossless WebP (pixel-identical to PNG and a third smaller, so that
they fit one transfer; ``val_fmt="png"`` writes what ``bench/video_rd.py``, ``neuralcodec
eval`` and the encoder read) in parts ``val-video-01/`` ... Every part has a ``MANIFEST.json``, and
``video-manifest.json`` / ``val-video-manifest.json`` list every clip of a split with its
source, size, format and part.

The default plan (:func:`default_plan`) uses the shared data: 13 DAVIS 2016 sequences at
640x360 (JPEG q~75 sources, downscaled by 0.75 to soften their artefacts) and vid4 city at
half size for training; BasketballPass (416x240, as is), vid4 walk (720x480, as is) and the
DAVIS sequences in :data:`HELD_OUT_DAVIS` at 640x360 are held out (their first 30 frames).
Video files (the cockatoo clip: H.264 at 1 Mbit/s, whose artefacts are no training target)
are packed only with ``with_video_files``. Both splits fit one part of 38 MiB each (a device
call carries 64 MiB, of which the working tree takes about 24).

Usage: ``python -m neuralcodec.video.pack [--src DIR] [--out DIR] [--part-mib 38] ...``
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from neuralcodec.errors import InputError, one_line_exit

MANIFEST_FORMAT = "neuralcodec-video-pack-1"
DAVIS = "davis2016_480p"
# Held-out DAVIS sequences (never in a training part): a slow textured scene, a fast camera
# with occlusions, and a fast dancer with a moving camera.
HELD_OUT_DAVIS = ("bmx-trees", "cows", "dance-twirl")
HELD_OUT_CLIPS = ("hevc_classD_BasketballPass", "vid4_walk")    # clean (lossless) sources
TRAIN_PREFIX, VAL_PREFIX = "video", "val-video"
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class Clip:
    """One clip of the plan: where it comes from, its output name, size and split."""
    name: str                       # output folder name
    source: str                     # frame folder or video file
    size: tuple[int, int] | str | None    # output (w, h); "half"; None = the source size
    frames: int                     # at most this many frames (0: all)
    held_out: bool
    fmt: str = ""                   # "" = the split's format


def default_plan(src: str | os.PathLike, val_frames: int = 30, with_video_files: bool = False) -> list[Clip]:
    """The clips of the shared video data (``src`` = shared/data/video) and their split."""
    root = Path(src)
    if not root.is_dir():
        raise InputError(f"video data {root} does not exist")
    plan = []
    davis = root / DAVIS
    for seq in sorted(p for p in davis.iterdir() if p.is_dir()) if davis.is_dir() else []:
        held = seq.name in HELD_OUT_DAVIS
        plan.append(Clip(f"davis_{seq.name}", str(seq), (640, 360), val_frames if held else 0, held))
    for d in sorted(p for p in root.iterdir() if p.is_dir() and p.name != DAVIS):
        held = d.name in HELD_OUT_CLIPS
        half = d.name.startswith("vid4") and not held
        plan.append(Clip(d.name, str(d), "half" if half else None, val_frames if held else 0, held))
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".mp4")
    for f in files if with_video_files else []:
        plan.append(Clip(f"{f.stem}_360p", str(f), (640, 360), 160, False, "webp90"))
    if not plan:
        raise InputError(f"no clips (frame folders or .mp4 files) in {root}")
    return plan


def _frame_sources(clip: Clip):
    """Yield PIL images of a clip's source frames (a folder, or a video file through PyAV)."""
    from PIL import Image
    path = Path(clip.source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        for f in files[:clip.frames] if clip.frames else files:
            with Image.open(f) as im:
                yield im.convert("RGB")
        return
    try:
        import av
    except ImportError:
        raise InputError(f"{path}: video files need PyAV (pip install av)") from None
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if clip.frames and i >= clip.frames:
                break
            yield frame.to_image()


def encode_frame(im, size, fmt: str) -> bytes:
    """Resize (Lanczos) and encode one frame: ``png``, ``webp`` (lossless) or ``webpNN`` (quality NN)."""
    from PIL import Image
    if size is not None and im.size != tuple(size):
        im = im.resize(tuple(size), Image.LANCZOS)
    buf = io.BytesIO()
    if fmt == "png":
        im.save(buf, "PNG", optimize=True)
    elif fmt == "webp":
        im.save(buf, "WEBP", lossless=True, quality=80, method=4, exact=True)
    elif fmt.startswith("webp") and fmt[4:].isdigit() and 1 <= int(fmt[4:]) <= 100:
        im.save(buf, "WEBP", quality=int(fmt[4:]), method=6)
    else:
        raise InputError(f"unknown frame format {fmt!r} (png, webp, webp95 ...)")
    return buf.getvalue()


def _render(clip: Clip, fmt: str) -> tuple[list[bytes], tuple[int, int], tuple[int, int]]:
    """(encoded frames, output size, source size) of a clip."""
    frames, size, source_size = [], None, None
    for im in _frame_sources(clip):
        if source_size is None:
            source_size = im.size
            size = clip.size
            if size == "half":
                size = (im.width // 2, im.height // 2)
            size = tuple(size) if size else im.size
        frames.append(encode_frame(im, size, fmt))
    if len(frames) < 2:
        raise InputError(f"clip {clip.source} has fewer than 2 frames")
    return frames, size, source_size


def _suffix(fmt: str) -> str:
    return ".png" if fmt == "png" else ".webp"


def pack_video(plan: list[Clip], out: str | os.PathLike, part_mib: float = 38.0, train_fmt: str = "webp95",
               val_fmt: str = "webp", force: bool = False, log=print) -> dict:
    """Write the training and validation parts of ``plan`` into ``out``; returns the manifest.

    Every part is built in a temporary folder beside its destination and renamed into place;
    existing parts of the same names are refused unless ``force``. Returns the manifests by split."""
    from neuralcodec.train.pack import split_parts

    if part_mib <= 0:
        raise InputError("--part-mib must be positive")
    if len({c.name for c in plan}) != len(plan):
        raise InputError("clip names of the plan must be unique")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    prefixes = tuple(f"{VAL_PREFIX if held else TRAIN_PREFIX}-" for held in sorted({c.held_out for c in plan}))
    old = [p.name for p in out_dir.iterdir() if p.is_dir() and p.name.startswith(prefixes)]
    if old and not force:
        raise InputError(f"{out_dir} already holds {', '.join(sorted(old))} (use --force to replace them)")
    rendered, skipped = [], []
    for clip in plan:
        fmt = clip.fmt or (val_fmt if clip.held_out else train_fmt)
        try:
            frames, size, source_size = _render(clip, fmt)
        except InputError as exc:
            if clip.held_out:
                raise
            log(f"skipping {clip.name}: {exc}")
            skipped.append({"name": clip.name, "reason": str(exc)})
            continue
        rendered.append((clip, fmt, frames, size, source_size))
        log(f"{clip.name}: {len(frames)} frames {size[0]}x{size[1]} {fmt}, {sum(map(len, frames)) / 2**20:.2f} MiB"
            + (" (held out)" if clip.held_out else ""))
    manifests = {}
    for held, prefix in ((False, TRAIN_PREFIX), (True, VAL_PREFIX)):
        group = [r for r in rendered if r[0].held_out == held]
        if not group:
            continue
        doc = {"format": MANIFEST_FORMAT, "split": "val" if held else "train",
               "settings": {"part_mib": part_mib, "format": val_fmt if held else train_fmt},
               "skipped": [s for s in skipped if not held], "parts": [], "clips": []}
        sizes = [sum(map(len, r[2])) for r in group]
        capacity = part_mib * 2**20 - 4096 - 512 * len(group)      # room for the part's manifest
        if max(sizes) > capacity:
            raise InputError(f"clip {group[sizes.index(max(sizes))][0].name} ({max(sizes) / 2**20:.1f} MiB) "
                             f"does not fit a part of {part_mib:g} MiB (raise --part-mib)")
        for k, members in enumerate(split_parts(sizes, capacity)):
            part = f"{prefix}-{k + 1:02d}"
            entries = []
            for i in members:
                clip, fmt, frames, size, source_size = group[i]
                entries.append({"part": part, "dir": clip.name, "source": clip.source, "held_out": held,
                                "frames": len(frames), "size": list(size), "source_size": list(source_size),
                                "format": fmt, "bytes": sum(map(len, frames))})
            _write_part(out_dir / part, [group[i] for i in members], entries, part_mib * 2**20)
            doc["parts"].append({"dir": part, "clips": len(members), "bytes": sum(e["bytes"] for e in entries)})
            doc["clips"] += entries
            log(f"wrote {out_dir / part}: {len(members)} clips, {sum(e['bytes'] for e in entries) / 2**20:.2f} MiB")
        (out_dir / f"{prefix}-manifest.json").write_text(json.dumps(doc, indent=1) + "\n")
        manifests[doc["split"]] = doc
    written = {p["dir"] for doc in manifests.values() for p in doc["parts"]}
    for name in set(old) - written:     # stale parts of an earlier pack
        shutil.rmtree(out_dir / name)
    return manifests


def _write_part(dst: Path, members, entries: list[dict], limit: float) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        for clip, fmt, frames, *_ in members:
            (tmp / clip.name).mkdir()
            for i, data in enumerate(frames):
                (tmp / clip.name / f"f{i + 1:03d}{_suffix(fmt)}").write_bytes(data)
        (tmp / "MANIFEST.json").write_text(json.dumps({"format": MANIFEST_FORMAT, "clips": entries}, indent=1) + "\n")
        size = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
        if size > limit:
            raise InputError(f"part {dst.name} would be {size} bytes, over the limit of {limit}")
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m neuralcodec.video.pack", description=__doc__.split("\n\n")[0])
    p.add_argument("--src", default=str(Path(__file__).resolve().parents[3].parent / "shared" / "data" / "video"),
                   help="shared video data folder (default: ../shared/data/video of the checkout)")
    p.add_argument("--out", default=".carry", help="folder that receives the parts (default .carry)")
    p.add_argument("--part-mib", type=float, default=38.0, help="size limit of one part (default 38)")
    p.add_argument("--train-format", default="webp95", help="png, webp (lossless) or webpNN (default webp95)")
    p.add_argument("--val-format", default="webp", help="format of the held-out clips (default webp: lossless; "
                                                        "png for bench/video_rd.py and eval)")
    p.add_argument("--split", choices=["all", "train", "val"], default="all", help="which clips to pack")
    p.add_argument("--val-frames", type=int, default=30, help="frames of each held-out clip (default 30)")
    p.add_argument("--with-video-files", action="store_true",
                   help="also pack the .mp4 clips (first 160 frames at 640x360, WebP q90; needs PyAV)")
    p.add_argument("--force", action="store_true", help="replace existing parts")
    args = p.parse_args(argv)

    def pack(args):
        plan = [c for c in default_plan(args.src, args.val_frames, args.with_video_files)
                if args.split == "all" or c.held_out == (args.split == "val")]
        pack_video(plan, args.out, args.part_mib, args.train_format, args.val_format, args.force)
    return one_line_exit(pack, args)


if __name__ == "__main__":
    sys.exit(main())
