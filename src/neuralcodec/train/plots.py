"""Training curves as a PNG beside the run's logs (``training.png``): loss, bpp and PSNR over
steps, with the validation points of each quality on the bpp and PSNR panels."""
from __future__ import annotations

import json
import time
from pathlib import Path

PANELS = (("loss", "loss"), ("bpp", "bits per pixel"), ("psnr", "PSNR [dB]"))


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a ``train_log.jsonl`` (empty when the file is missing)."""
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the rows that have ``key``."""
    pts = [(r["step"], r[key]) for r in rows if key in r]
    return [s for s, _ in pts], [v for _, v in pts]


def save_training_plot(rows: list[dict], path: Path, title: str = "") -> bool:
    """Draw ``train/<name>`` curves and ``val/q<q>/<name>`` points of ``rows`` (dicts with a
    ``step``) into ``path`` (written atomically). False when there is nothing to draw."""
    if not any("train/loss" in r for r in rows):
        return False
    from matplotlib.figure import Figure

    from neuralcodec.eval.files import output_path

    fig = Figure(figsize=(11, 3.4), dpi=100)
    val_keys = sorted({k for r in rows for k in r if k.startswith("val/")})
    for i, (name, label) in enumerate(PANELS):
        ax = fig.add_subplot(1, len(PANELS), i + 1)
        steps, values = series(rows, f"train/{name}")
        ax.plot(steps, values, linewidth=1.0, color="C0", label="train")
        for j, key in enumerate(k for k in val_keys if k.endswith(f"/{name}")):
            vs, vv = series(rows, key)
            ax.plot(vs, vv, marker="o", markersize=3, linewidth=0.8, color=f"C{j + 1}",
                    label="val " + key.split("/")[1])
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.35)
        if len(ax.lines) > 1:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with output_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    return True


class TrainingPlot:
    """``training.png`` of a run, redrawn at most once per ``every`` seconds unless forced; a
    failure is reported through ``warn`` and never stops training."""

    def __init__(self, path: Path, title: str, warn, every: float = 60.0):
        self.path, self.title, self.warn, self.every = Path(path), title, warn, every
        self.last = time.monotonic()

    def update(self, rows, force: bool = False) -> None:
        """Redraw from ``rows`` (a list, or a callable returning one, read only when drawing)."""
        if not force and time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        try:
            save_training_plot(rows() if callable(rows) else rows, self.path, self.title)
        except Exception as exc:  # a plot must never stop a training run
            self.warn(f"training.png not written: {type(exc).__name__}: {exc}")
