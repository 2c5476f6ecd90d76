"""The manifest of an ONNX export folder (``manifest.json``) and its validation.

Every file the backend loads is listed with its SHA-256, so a missing, truncated or
replaced file is reported before ONNX Runtime sees it.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from neuralcodec.errors import ModelError

FORMAT = "neuralcodec-onnx-1"
MANIFEST = "manifest.json"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_manifest(folder: Path, manifest: dict) -> Path:
    path = Path(folder) / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(manifest, format=FORMAT), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def read_manifest(folder) -> dict:
    """Read and sanity-check a manifest (ModelError with one line on any problem)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ModelError(f"ONNX export folder {folder} not found")
    if not path.is_file():
        raise ModelError(f"{folder} has no {MANIFEST} (not a neuralcodec ONNX export)")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"{path} is not a {FORMAT} manifest")
    for key in ("codec", "weights_hash", "graphs", "integer_path"):
        if key not in manifest:
            raise ModelError(f"{path} lacks the field {key!r}")
    return manifest


def checked_file(folder, entry: dict, what: str) -> Path:
    """Path of a listed file after checking it exists and matches its recorded SHA-256."""
    try:
        path = Path(folder) / entry["file"]
        expected = entry["sha256"]
    except (KeyError, TypeError):
        raise ModelError(f"manifest entry for {what} is malformed") from None
    if Path(entry["file"]).name != entry["file"]:
        raise ModelError(f"manifest entry for {what} points outside the folder: {entry['file']!r}")
    if not path.is_file():
        raise ModelError(f"{what}: {path} is missing")
    if file_sha256(path) != expected:
        raise ModelError(f"{what}: {path} is corrupt or was replaced (SHA-256 does not match the manifest)")
    return path
