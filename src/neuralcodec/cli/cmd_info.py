"""`neuralcodec info FILE.ncb [--json]`: show a container's header and substreams."""
from __future__ import annotations

import json
import os


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="show the header and substreams of a .ncb or .ncv file",
                              description="Validate a bitstream (.ncb image, .ncv video) and print "
                                          "its header and substreams (truncated progressive files "
                                          "are shown as such; videos also get frames, GOPs and "
                                          "bits per frame).")
    p.add_argument("file", help="bitstream file (.ncb image or .ncv video)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _scan(path: str) -> dict:
    """Read the whole container with bounded memory; return a JSON-ready summary."""
    from neuralcodec.container import ContainerReader
    from neuralcodec.errors import InputError

    try:
        size = os.path.getsize(path)
        reader = ContainerReader(path, allow_truncated=True, skip_data=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    with reader:         # data is checked in chunks, not kept: memory stays flat, also on pipes
        streams = [{"name": s.name, "bytes": s.size, "declared_bytes": s.declared_length,
                    "truncatable": s.truncatable, "truncated": s.truncated,
                    "crc_checked": s.size == s.declared_length} for s in reader]
    h = reader.header
    header = {"codec": h.codec, "weights_hash": h.weights_hash.hex(), "kind": h.kind,
              "width": h.width, "height": h.height, "frames": h.frames, "fps": list(h.fps),
              "pixel_format": h.pixel_format, "quality": h.quality, "params": h.params}
    info = {"file": path, "file_bytes": size, "format_version": "%d.%d" % reader.version,
            "complete": reader.complete, "header": header, "substreams": streams}
    if h.kind == "video":
        from neuralcodec.cli.video import video_summary
        info["video"] = video_summary(streams, header)
    return info


def _flags(s: dict) -> str:
    words = ["truncatable"] if s["truncatable"] else []
    if s["bytes"] < s["declared_bytes"]:
        words.append(f"truncated: {s['bytes']} of {s['declared_bytes']} bytes, CRC not checked")
    elif s["truncated"]:
        words.append("truncated")
    return ", ".join(words) or "-"


def _text(info: dict) -> str:
    h = info["header"]
    lines = [f"file:       {info['file']} ({info['file_bytes']} bytes)",
             f"format:     {info['format_version']}" +
             ("" if info["complete"] else " (file truncated, end record missing)"),
             f"codec:      {h['codec']}",
             f"weights:    {h['weights_hash'][:12]} (sha256 prefix)",
             f"kind:       {h['kind']}",
             f"size:       {h['width']}x{h['height']} {h['pixel_format']}"]
    if h["kind"] == "video":
        num, den = h["fps"]
        counted = info.get("video", {}).get("frames")
        frames = h["frames"] or (f"{counted} (counted; the header leaves the count open)"
                                 if counted is not None else "not recorded")
        rate = f"{num}/{den} fps ({num / den:.3f})" if num else "fps unspecified"
        lines.append(f"frames:     {frames} @ {rate}")
    if "video" in info:
        from neuralcodec.cli.video import video_lines
        lines += video_lines(info["video"])
    lines.append(f"quality:    {h['quality']}")
    lines.append(f"params:     {json.dumps(h['params'], sort_keys=True)}")
    subs = info["substreams"]
    lines.append(f"substreams: {len(subs)}")
    width = max([len(s["name"]) for s in subs] + [4])
    for i, s in enumerate(subs):
        lines.append(f"  {i:>4}  {s['name']:<{width}}  {s['bytes']:>10} bytes  {_flags(s)}")
    return "\n".join(lines)


def run(args) -> int:
    info = _scan(args.file)
    print(json.dumps(info, indent=2) if args.json else _text(info))
    return 0
