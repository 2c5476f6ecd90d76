"""The self-contained HTML report: RD plots, BD tables, per-source tables, times, crops.

Everything (plots, crops) is embedded as data: URIs, and there are no scripts or external
resources, so the file opens offline and can be mailed around.
"""
from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field

import numpy as np

from neuralcodec.eval.bdrate import BDError, bd_quality, bd_rate
from neuralcodec.eval.results import METRIC_LABELS, Curve

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1300px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}.neg{color:#0a7a2f}.pos{color:#b02020}.na{color:#888}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0}.plots img{max-width:640px;border:1px solid #ddd}
.crops{display:flex;flex-wrap:wrap;gap:10px}.crops figure{margin:0;text-align:center;font-size:12px}
.crops img{width:384px;height:384px;image-rendering:pixelated;border:1px solid #bbb}
.small{font-size:12px;color:#555}code{background:#f4f4f4;padding:1px 3px}
"""


@dataclass
class Group:
    """Curves compared together (all images, or one video), with the rate axis to use."""

    title: str
    curves: list
    rate: str = "bpp"
    plots: dict = field(default_factory=dict)  # metric -> PNG bytes


def _e(x) -> str:
    return html.escape(str(x))


def _fmt(v, nd=3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return '<span class="na">–</span>'
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:.{nd}f}" if isinstance(v, float) else _e(v)


def _img(png: bytes, alt: str, cls: str) -> str:
    b64 = base64.b64encode(png).decode()
    return f'<img class="{cls}" alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def bd_rows(curves: list[Curve], anchor: str, metric: str, rate: str):
    """(codec, {column: value or error}) of every curve against the anchor on ``metric``."""
    base = next((c for c in curves if c.name == anchor), None)
    out = []
    if base is None or not base.has(metric):
        return out
    for c in curves:
        if c.name == anchor or not c.has(metric) or not c.has(rate):
            continue
        cells = {}
        for method in ("pchip", "cubic"):
            for col, fn in ((f"BD-rate {method} [%]", bd_rate), (f"BD-{metric} {method}", bd_quality)):
                try:
                    cells[col] = fn(base.values[rate], base.values[metric],
                                    c.values[rate], c.values[metric], method)
                except BDError as exc:
                    cells[col] = exc
        out.append((c.name, cells))
    return out


def published_bd(curves: list[Curve], metric: str, rate: str):
    """(measured codec, [(published curve's label, pchip BD-rate or BDError)]) for every
    measured curve against every published one (curves with ``meta["published"]``)."""
    refs = [c for c in curves if c.meta.get("published") and c.has(metric)]
    out = []
    for c in curves:
        if c.included or not c.has(metric) or not c.has(rate) or not refs:
            continue
        cells = []
        for ref in refs:
            try:
                cells.append((ref.meta["label"], bd_rate(ref.values[rate], ref.values[metric],
                                                         c.values[rate], c.values[metric], "pchip")))
            except BDError as exc:
                cells.append((ref.meta["label"], exc))
        out.append((c.name, cells))
    return out


def _published_table(curves, metric, rate) -> str:
    rows = published_bd(curves, metric, rate)
    if not rows:
        return ""
    head = "".join(f"<th>{_e(label)}</th>" for label, _ in rows[0][1])
    body = []
    for name, cells in rows:
        tds = "".join(f'<td class="na" title="{_e(v)}">n/a</td>' if isinstance(v, Exception)
                      else f'<td class="{"neg" if v < 0 else "pos"}">{v:+.2f}</td>' for _, v in cells)
        body.append(f'<tr><td class="l">{_e(name)}</td>{tds}</tr>')
    return (f'<h4>{_e(METRIC_LABELS.get(metric, metric))}</h4><table class="published-bd" '
            f'data-metric="{_e(metric)}"><tr><th class="l">codec vs</th>{head}</tr>{"".join(body)}</table>')


def _bd_table(curves, anchor, metric, rate) -> str:
    rows = bd_rows(curves, anchor, metric, rate)
    if not rows:
        return f'<p class="na">No BD values for {_e(metric)} (anchor {_e(anchor)} missing or alone).</p>'
    cols = list(rows[0][1])
    head = "".join(f"<th>{_e(c.replace('BD-' + metric, 'BD-' + _short(metric)))}</th>" for c in cols)
    body, notes = [], []
    for name, cells in rows:
        tds = []
        for col in cols:
            v = cells[col]
            if isinstance(v, Exception):
                notes.append(f"{name}, {col}: {v}")
                tds.append(f'<td class="na" title="{_e(v)}">n/a</td>')
            else:
                good = v < 0 if col.startswith("BD-rate") else v > 0
                tds.append(f'<td class="{"neg" if good else "pos"}">{v:+.2f}</td>')
        body.append(f'<tr><td class="l">{_e(name)}</td>{"".join(tds)}</tr>')
    note = "".join(f"<li>{_e(n)}</li>" for n in dict.fromkeys(notes))
    return (f'<table class="bd-table" data-metric="{_e(metric)}"><tr><th class="l">codec vs '
            f'{_e(anchor)}</th>{head}</tr>{"".join(body)}</table>'
            + (f'<ul class="small">{note}</ul>' if note else ""))


def _short(metric: str) -> str:
    return {"psnr-rgb": "PSNR [dB]", "ms-ssim-db-rgb": "MS-SSIM [dB]",
            "psnr-yuv": "PSNR-YUV [dB]"}.get(metric, metric)


def _curve_table(curves: list[Curve], rate: str, metrics) -> str:
    keys = [rate] + [m for m in metrics] + ["encoding_time", "decoding_time"]
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    body = []
    for c in curves:
        if c.included:
            continue
        for i, q in enumerate(c.values.get("quality", [])):
            tds = "".join(f"<td>{_fmt(c.values[k][i], 4)}</td>" if k in c.values else "<td>–</td>"
                          for k in keys)
            body.append(f'<tr><td class="l">{_e(c.name)}</td><td>{q:g}</td>{tds}</tr>')
    return (f'<table class="curves"><tr><th class="l">codec</th><th>quality</th>{head}</tr>'
            f'{"".join(body)}</table>')


def _times_table(rows: list[dict], video: bool) -> str:
    by: dict = {}
    for r in rows:
        if not r.get("error"):
            by.setdefault((r["codec"], r["quality"]), []).append(r)
    if video:
        head = "<th>encode fps</th><th>decode fps</th><th>encode s (total)</th><th>decode s (total)</th>"
    else:
        head = "<th>encode ms (mean)</th><th>decode ms (mean)</th><th>encode ms (max)</th><th>decode ms (max)</th>"
    body = []
    for (codec, q), rs in sorted(by.items()):
        enc = np.array([r["encode_s"] for r in rs])
        dec = np.array([r["decode_s"] for r in rs])
        if video:
            frames = sum(r["frames"] for r in rs)
            cells = [frames / enc.sum(), frames / dec.sum(), enc.sum(), dec.sum()]
            txt = "".join(f"<td>{v:.1f}</td>" for v in cells[:2]) + \
                "".join(f"<td>{v:.2f}</td>" for v in cells[2:])
        else:
            txt = "".join(f"<td>{v * 1000:.1f}</td>" for v in (enc.mean(), dec.mean(), enc.max(), dec.max()))
        body.append(f'<tr><td class="l">{_e(codec)}</td><td>{q:g}</td><td>{len(rs)}</td>{txt}</tr>')
    return (f'<table class="times"><tr><th class="l">codec</th><th>quality</th><th>n</th>{head}</tr>'
            f'{"".join(body)}</table>')


def _source_bd(rows: list[dict], src: str, codec: str, anchor: str, rate: str, metric: str) -> str:
    """pchip BD-rate of one codec against the anchor on one image/video, as a table cell."""
    def pts(c):
        rs = [r for r in rows if r["source"] == src and r["codec"] == c and not r.get("error")]
        return [r[rate] for r in rs], [r.get(metric, math.nan) for r in rs]
    try:
        v = bd_rate(*pts(anchor), *pts(codec), "pchip")
    except BDError as exc:
        return f'<td class="na" title="{_e(exc)}">n/a</td>'
    return f'<td class="{"neg" if v < 0 else "pos"}">{v:+.2f}</td>'


def _per_source_tables(rows: list[dict], metrics, anchor: str, video: bool) -> str:
    """Per codec: one line per image/video with every quality's rate and metrics, and its
    BD-rate against the anchor on that input."""
    parts = []
    rate = "bitrate_kbps" if video else "bpp"
    bd_metric = next((m for m in ("psnr-yuv", "psnr-rgb", "ms-ssim-rgb") if m in metrics), None)
    codecs = {r["codec"] for r in rows}
    for codec in sorted(codecs):
        mine = [r for r in rows if r["codec"] == codec]
        quals = sorted({r["quality"] for r in mine})
        with_bd = bd_metric and codec != anchor and anchor in codecs
        head = "".join(f"<th>q={q:g}<br>{_e(rate)} / " + " / ".join(_e(m) for m in metrics) + "</th>"
                       for q in quals)
        if with_bd:
            head += f"<th>BD-rate vs {_e(anchor)}<br>(pchip, {_e(bd_metric)}) [%]</th>"
        body = []
        for src in sorted({r["source"] for r in mine}):
            cells = []
            for q in quals:
                r = next((x for x in mine if x["source"] == src and x["quality"] == q), None)
                if r is None:
                    cells.append("<td>–</td>")
                elif r.get("error"):
                    cells.append(f'<td class="na" title="{_e(r["error"])}">failed</td>')
                else:
                    vals = [_fmt(r.get(rate), 3)] + [_fmt(r.get(m), 4 if "ms-ssim-rgb" == m else 2)
                                                      for m in metrics]
                    cells.append(f"<td>{' / '.join(vals)}</td>")
            if with_bd:
                cells.append(_source_bd(rows, src, codec, anchor, rate, bd_metric))
            body.append(f'<tr><td class="l">{_e(src)}</td>{"".join(cells)}</tr>')
        parts.append(f'<details{" open" if codec == anchor else ""}><summary>{_e(codec)}</summary>'
                     f'<table class="per-image" data-codec="{_e(codec)}"><tr><th class="l">'
                     f'{"video" if video else "image"}</th>{head}</tr>{"".join(body)}</table></details>')
    return "".join(parts)


def render(*, title: str, kind: str, groups: list[Group], rows: list[dict], anchor: str,
           metrics: list[str], bd_metrics: list[str], codec_info: dict, command: str,
           skipped: list, failed: list, crops: list | None = None, crop_note: str = "",
           elapsed_s: float | None = None, environment: str = "") -> str:
    """The report as one HTML string."""
    video = kind == "videos"
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
           f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>",
           f'<p class="small">Command: <code>{_e(command)}</code><br>{_e(environment)}'
           + (f"<br>Wall time: {elapsed_s:.1f} s" if elapsed_s is not None else "") + "</p>",
           "<h2>Codecs</h2><table class='codecs'><tr><th class='l'>codec</th><th class='l'>settings"
           "</th></tr>" + "".join(f"<tr><td class='l'>{_e(k)}</td><td class='l'>{_e(v)}</td></tr>"
                                  for k, v in codec_info.items()) + "</table>"]
    for g in groups:
        out.append(f'<h2>{_e(g.title)}</h2><section class="rd-plots"><div class="plots">')
        for metric, png in g.plots.items():
            out.append(f"<figure>{_img(png, f'RD plot {metric}', 'rd-plot')}"
                       f"<figcaption class='small'>{_e(METRIC_LABELS.get(metric, metric))}"
                       f"</figcaption></figure>")
        out.append("</div></section>")
        out.append(f"<h3>BD-rate and BD-quality against {_e(anchor)}</h3>"
                   "<p class='small'>Bjøntegaard deltas over the overlapping range; pchip = piecewise "
                   "cubic Hermite (current practice), cubic = VCEG-M33 polynomial fit. Negative BD-rate "
                   "and positive BD-quality mean the codec beats the anchor.</p>")
        for m in bd_metrics:
            out.append(f"<h4>{_e(METRIC_LABELS.get(m, m))}</h4>" + _bd_table(g.curves, anchor, m, g.rate))
        published = "".join(_published_table(g.curves, m, g.rate) for m in bd_metrics)
        if published:
            source = next(c.meta.get("attribution", "") for c in g.curves if c.meta.get("published"))
            out.append("<h3>BD-rate [%] against published Kodak results</h3><p class='small'>pchip, "
                       f"over the overlapping range. Published curves: {_e(source)}.</p>" + published)
        out.append("<h3>Average RD points</h3>" + _curve_table(g.curves, g.rate, bd_metrics))
    out.append(f"<h2>Per-{'video' if video else 'image'} results</h2>")
    out.append(_per_source_tables(rows, metrics, anchor, video))
    out.append("<h2>Encode and decode times</h2><p class='small'>Wall-clock per call, measured in "
               "worker processes that may share cores; compare between codecs of one run only.</p>")
    out.append(_times_table(rows, video))
    if crops:
        out.append(f'<h2>Crops at matched rate</h2><p class="small">{_e(crop_note)}</p><div class="crops">')
        for caption, png in crops:
            out.append(f"<figure>{_img(png, caption, 'crop')}<figcaption>{_e(caption)}</figcaption></figure>")
        out.append("</div>")
    if skipped or failed:
        out.append("<h2>Skipped inputs and failures</h2><ul class='failures'>")
        out += [f"<li>{_e(p)}: {_e(why)}</li>" for p, why in skipped]
        out += [f"<li>{_e(r['source'])} / {_e(r['codec'])} q={r['quality']:g}: {_e(r['error'])}</li>"
                for r in failed]
        out.append("</ul><p class='small'>Averages use only the inputs that succeeded for every "
                   "codec and quality.</p>")
    out.append("</body></html>")
    return "\n".join(out)
