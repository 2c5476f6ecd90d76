"""Render the training ledger: docs/training-log.csv -> the table in docs/training-log.md (between
its markers) and docs/training-curve.png (Kodak BD-rate vs cumulative GPU-hours, one line per model).

    python scripts/training_ledger.py
"""
from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
BEGIN, END = "<!-- ledger:begin -->", "<!-- ledger:end -->"


def rows() -> list[dict]:
    with open(DOCS / "training-log.csv", newline="") as f:
        return list(csv.DictReader(f))


def pct(v: str) -> str:
    return f"{float(v):+.1f} %" if v else "—"


def table(entries: list[dict]) -> str:
    head = ("| date | round | model | GPU | GPU min | crops (round / total) | steps x batch | schedule | data "
            "| Kodak BD vs bmshj2018-hyperprior | vs mbt2018-mean | vs VTM | note |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in entries:
        crops = f"{int(r['crops_round']) / 1e6:.2f} M / {int(r['crops_total']) / 1e6:.2f} M"
        steps = f"{int(r['steps']):,} x {r['batch']}" if r["batch"] else "—"
        lines.append(f"| {r['date']} | {r['round']} | `{r['model']}` | {r['gpu']} | {r['gpu_minutes']} | {crops} | "
                     f"{steps} | {r['schedule']} | {r['data']} | {pct(r['bd_bmshj2018_hyperprior'])} | "
                     f"{pct(r['bd_mbt2018_mean'])} | {pct(r['bd_vtm'])} | {r['note']} |")
    return head + "\n".join(lines) + "\n"


def shipped(row: dict) -> bool:
    """Whether a row's weights were shipped: its note neither starts with 'failed' nor says
    'not shipped' in its first clause (up to the first ';')."""
    note = row["note"].lower()
    return not (note.startswith("failed") or "not shipped" in note.split(";")[0])


def curve_points(entries: list[dict]) -> dict[str, list[tuple[float, float, bool]]]:
    """Per model, (GPU-hours, Kodak BD-rate vs bmshj2018-hyperprior, shipped) of each measured row.
    The hours are those of the shipped weights' lineage: a run whose weights were not shipped is
    placed at the lineage's hours plus its own, and does not add to the rows after it."""
    hours: dict[str, float] = defaultdict(float)
    curves: dict[str, list[tuple[float, float, bool]]] = defaultdict(list)
    for r in entries:
        model, ok = r["model"], shipped(r)
        x = hours[model] + float(r["gpu_minutes"] or 0) / 60
        if ok:
            hours[model] = x
        if r["bd_bmshj2018_hyperprior"]:
            point = (x, float(r["bd_bmshj2018_hyperprior"]), ok)
            if not curves[model] or curves[model][-1][:2] != point[:2]:
                curves[model].append(point)
    return curves


def plot(entries: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    curves = curve_points(entries)
    fig = Figure(figsize=(7, 4.2), dpi=110)
    ax = fig.add_subplot()
    for model, pts in curves.items():
        on = [(x, y) for x, y, ok in pts if ok]
        off = [(x, y) for x, y, ok in pts if not ok]
        line, = ax.plot(*zip(*on), marker="o", label=model) if on else ax.plot([], [], marker="o", label=model)
        if off:  # measured, not shipped: hollow markers off the line
            ax.plot(*zip(*off), ls="none", marker="o", mfc="white", mec=line.get_color())
        x, y = (on or off)[-1]
        ax.annotate(f"{y:+.1f} %", (x, y), textcoords="offset points", xytext=(6, 4))
    if any(not ok for pts in curves.values() for *_, ok in pts):
        ax.plot([], [], ls="none", marker="o", mfc="white", mec="grey", label="measured, not shipped")
    ax.set_xlim(0, 1.2 * max(x for pts in curves.values() for x, *_ in pts))
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.text(0.01, 1, "CompressAI bmshj2018-hyperprior", fontsize=8, color="grey",
            transform=ax.get_yaxis_transform())
    ax.set_xlabel("cumulative GPU-hours (wall time of the runs, shared GPUs counted whole)")
    ax.set_ylabel("Kodak BD-rate vs bmshj2018-hyperprior (%)")
    ax.set_title("Training campaign: Kodak BD-rate (PSNR-RGB, real bitstreams)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    tmp.replace(path)


def main() -> int:
    entries = rows()
    md = DOCS / "training-log.md"
    text = md.read_text()
    if BEGIN not in text or END not in text:
        print(f"{md} lacks the ledger markers", file=sys.stderr)
        return 1
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    md.write_text(before + BEGIN + "\n" + table(entries) + END + after)
    plot(entries, DOCS / "training-curve.png")
    print(f"wrote {md} and {DOCS / 'training-curve.png'} ({len(entries)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
