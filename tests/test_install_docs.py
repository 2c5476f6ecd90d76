"""The README's install command is what CI runs, and it installs the CPU build of the torch
that pyproject.toml pins."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _first_command() -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(r"```bash\n(.+?)\n```", readme, re.S).group(1).strip()


def test_ci_runs_the_readme_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _first_command() in ci


def test_cpu_index_installs_the_pinned_torch():
    command = _first_command()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in command
    pins = dict(re.findall(r'"(torch|torchvision)==([^"]+)"', (ROOT / "pyproject.toml").read_text()))
    assert set(pins) == {"torch", "torchvision"}
    for name, version in pins.items():
        assert f"{name}=={version} " in command
    # the CPU wheels come first; the package install then finds its pins satisfied
    assert command.index("download.pytorch.org") < command.index('-e ".[cpu,test]"')
