"""Every `from neuralcodec... import name` in the package, the benchmarks and the scripts names
something that exists, including the imports inside functions (a rename once left
`video.train.build_model` importing a helper that had moved, found only on the GPU machine)."""
from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = (sorted((ROOT / "src" / "neuralcodec").rglob("*.py")) + sorted((ROOT / "bench").glob("*.py"))
         + sorted((ROOT / "scripts").glob("*.py")))
LOCAL = {p.stem for p in (ROOT / "bench").glob("*.py")}      # bench modules import each other


def imported_names(path: Path):
    """(line, module, name) of every absolute `from M import name` of ours in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            root = node.module.split(".")[0]
            if root == "neuralcodec" or (path.parent.name == "bench" and root in LOCAL):
                for alias in node.names:
                    if alias.name != "*":
                        yield node.lineno, node.module, alias.name


def test_the_walk_sees_function_level_imports():
    found = list(imported_names(ROOT / "src" / "neuralcodec" / "video" / "train.py"))
    assert any(module == "neuralcodec.train.image_task" and name == "load_init" for _, module, name in found)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_from_import_resolves(path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    missing = []
    for line, module_name, name in imported_names(path):
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:       # an optional third-party dependency of that module
            if (exc.name or "").split(".")[0] in {"neuralcodec", *LOCAL}:
                missing.append(f"line {line}: {module_name} ({exc})")
            continue
        if not hasattr(module, name):
            try:
                importlib.import_module(f"{module_name}.{name}")
            except ImportError:
                missing.append(f"line {line}: {module_name} has no {name}")
    sys.modules.pop("video", None)       # bench/video.py must not shadow anything later
    assert not missing, "; ".join(missing)
