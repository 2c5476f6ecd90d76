"""No module of the package uses another module's private names (docs/architecture.md).

``X._name`` (read, written or deleted) is allowed only on ``self``, ``cls`` or ``super()``,
or when ``_name`` is bound in the same module (a def, class, assignment, parameter, import
or ``self._name = ...``); ``from M import _name`` only takes a private module or name of the
importing module's own package. Dunder names are not private."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "neuralcodec"
FILES = sorted(PACKAGE.rglob("*.py"))

# Private names of other libraries that are their documented extension points (each one is
# read somewhere in the package; test_allowlist_is_used keeps the list current).
ALLOWED = {
    # torch.nn.Module._apply: what .to() / .cuda() / .half() run; a module holding a model
    # outside its submodules (trit-plane's base) overrides it and passes fn on to that model
    "_apply",
    # torch.Tensor._version: the in-place write counter of autograd's correctness checks
    # (torch has no public accessor); weight caches use it to see in-place updates
    "_version",
}


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path, root: Path) -> str:
    name = module_name(path, root)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def bound_names(tree: ast.AST) -> set[str]:
    """Every name the module binds (see the module docstring)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif (isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load)
              and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def is_own(node: ast.expr) -> bool:
    """Whether ``node`` is ``self``, ``cls`` or ``super()``."""
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def imported_paths(node: ast.AST, package: str):
    """Dotted paths ``a.b.name`` an import statement takes (relative imports resolved)."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        yield from (f"{base}.{a.name}" for a in node.names)


def violations(source: str, path: Path, root: Path = PACKAGE, allowed=frozenset(ALLOWED)) -> list[str]:
    """``file:line: what`` for every private use of another module in ``source``."""
    tree = ast.parse(source, str(path))
    bound = bound_names(tree)
    package = package_of(path, root)
    where = path.relative_to(root.parent)
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and is_private(node.attr) and not is_own(node.value)
                and node.attr not in bound and node.attr not in allowed):
            out.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
        for dotted in imported_paths(node, package):
            parts = dotted.split(".")
            if parts[0] != root.name:
                continue
            for i, part in enumerate(parts):
                if is_private(part) and ".".join(parts[:i]) != package:
                    out.append(f"{where}:{node.lineno}: import of {dotted}")
                    break
    return sorted(out, key=lambda v: int(v.split(":")[1]))


def test_no_module_uses_another_modules_private_names():
    found = [v for f in FILES for v in violations(f.read_text(encoding="utf-8"), f)]
    assert not found, "private names of other modules:\n" + "\n".join(found)


def test_allowlist_is_used():
    read = {node.attr for f in FILES for node in ast.walk(ast.parse(f.read_text(encoding="utf-8")))
            if isinstance(node, ast.Attribute) and not is_own(node.value)}
    assert ALLOWED <= read, f"unused allowlist entries: {sorted(ALLOWED - read)}"


SAMPLE = PACKAGE / "train" / "sample.py"


@pytest.mark.parametrize("source, bad", [
    ("model._params(x)", True),
    ("self.model._device()", True),
    ("model._params = 1", True),
    ("other._apply(fn)", False),                                # allowlisted
    ("self._params(x)", False),
    ("cls._table", False),
    ("super()._apply(fn)", False),
    ("x.__dict__", False),
    ("def _params(h):\n    pass\nmodel._params(x)", False),        # bound in this module
    ("class A:\n    def f(self):\n        self._n = 1\n\nA()._n", False),
    ("from neuralcodec.codecs.tritplane import _interval_mean", True),
    ("from ..codecs import _hidden", True),
    ("import neuralcodec.entropy._rans", True),                # another package's private module
    ("from neuralcodec.train import _shared", False),           # this module's own package
    ("from . import _shared", False),
    ("from neuralcodec.train._shared import helper", False),
    ("from neuralcodec.train._shared import _helper", True),
    ("from torch._subclasses import fake_tensor", False),       # other libraries: imports not checked
])
def test_checker_flags_what_it_should(source, bad):
    assert bool(violations(source, SAMPLE)) == bad, violations(source, SAMPLE)
