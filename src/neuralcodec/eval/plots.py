"""RD plots (PNG and SVG) with matplotlib's object API (no pyplot global state)."""
from __future__ import annotations

from pathlib import Path

from neuralcodec.eval.results import METRIC_LABELS, Curve

RATE_LABELS = {"bpp": "bits per pixel", "bitrate_kbps": "bitrate [kbit/s]"}


def rd_figure(curves: list[Curve], metric: str, rate: str = "bpp", title: str = ""):
    """A matplotlib Figure with one line per curve that has ``metric``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.8), dpi=110)
    ax = fig.add_subplot()
    for i, c in enumerate(curves):
        if not (c.has(metric) and c.has(rate)):
            continue
        style = dict(linestyle="--", marker="x", alpha=0.8) if c.included else dict(marker="o")
        ax.plot(c.values[rate], c.values[metric], label=c.name, markersize=4, linewidth=1.4,
                color=f"C{i % 10}", **style)
    ax.set_xlabel(RATE_LABELS.get(rate, rate))
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(True, alpha=0.35)
    if title:
        ax.set_title(title)
    if ax.lines:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def save_rd_plot(curves, metric, out_dir, rate: str = "bpp", title: str = "") -> bytes:
    """Write rd-<metric>.png and .svg into ``out_dir``; return the PNG's bytes (for the report)."""
    from neuralcodec.eval.files import output_path

    fig = rd_figure(curves, metric, rate, title)
    for ext in ("png", "svg"):
        with output_path(Path(out_dir) / f"rd-{metric}.{ext}") as tmp:
            fig.savefig(tmp, format=ext)
    return (Path(out_dir) / f"rd-{metric}.png").read_bytes()
