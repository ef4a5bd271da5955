"""`sq backtest --report FILE.html`: one self-contained HTML file (inline CSS, inline SVG charts
drawn here; no script, no font, no image and no stylesheet fetched from anywhere).

A single run shows its metadata, the summary metrics, the equity curve (total PnL net of fees,
all symbols), its drawdown, the position per symbol over time, a per-symbol table, the first
fills and the risk rejections by reason. A sweep shows the grid results sorted by total PnL, a
heatmap for a two-parameter grid (PnL against the swept value for one parameter), and the
curves of the best point. The file is written to a temp name beside the target and renamed.

Numbers are printed with `money()` (4 decimals, thousands separators) and `count()`.
"""

from __future__ import annotations

import html
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np

FILLS_SHOWN = 200
GRID_ROWS_SHOWN = 500
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def money(v: Any) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:,.4f}"


def count(v: Any) -> str:
    return "—" if v is None else f"{int(v):,}"


def _num(v: Any) -> str:
    """A parameter value as typed: 2.0 → 2, 0.25 → 0.25."""
    return f"{v:g}" if isinstance(v, float) and v == v and abs(v) < 1e15 else str(v)


def _ts(ns: int | None) -> str:
    if ns is None:
        return "—"
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


# ----------------------------------------------------------------------------------------------
# what a run produced


class RunRecorder:
    """Collects what a report needs while the engine runs: the event time range, the pnl rows
    (marks per symbol at the pnl interval), the first `max_fills` fills and the fill count."""

    def __init__(self, max_fills: int = FILLS_SHOWN):
        self.max_fills = max_fills
        self.t_first: int | None = None
        self.t_last: int | None = None
        self.pnl: list = []
        self.fills: list = []
        self.kept_fills = 0
        self.n_fills = 0

    def market(self, batch) -> None:
        ts = batch.column("ts")
        if len(ts):
            a, b = ts[0].value, ts[len(ts) - 1].value
            self.t_first = a if self.t_first is None else min(self.t_first, a)
            self.t_last = b if self.t_last is None else max(self.t_last, b)

    def output(self, out) -> None:
        _, nf, npnl = out.rows
        if npnl:
            self.pnl.append(out.pnl)
        if nf:
            self.n_fills += nf
            room = self.max_fills - self.kept_fills
            if room > 0:
                b = out.fills.slice(0, room)
                self.fills.append(b)
                self.kept_fills += b.num_rows

    def fill_rows(self) -> list[dict[str, Any]]:
        import pyarrow as pa

        rows: list[dict[str, Any]] = []
        for b in self.fills:
            b = b.set_column(0, "ts", b.column(0).cast(pa.int64()))  # ns, which datetime cannot hold
            rows.extend(b.to_pylist())
        return rows

    def curves(self, max_points: int = 2000) -> dict[str, Any]:
        """Equity (sum over symbols of each one's latest total PnL), drawdown from the running
        peak (starting at 0), and each symbol's position, at the pnl rows' times; thinned to about
        `max_points` keeping every bucket's minimum and maximum equity."""
        import pyarrow as pa

        if not self.pnl:
            return {"ts": [], "equity": [], "drawdown": [], "positions": {}}
        t = pa.Table.from_batches(self.pnl)
        ts = t.column("ts").cast(pa.int64()).to_numpy()
        syms = np.asarray(t.column("symbol").cast(pa.string()).to_pylist(), dtype=object)
        names, inv = np.unique(syms, return_inverse=True)
        total = t.column("total").to_numpy(zero_copy_only=False)
        pos = t.column("position").to_numpy(zero_copy_only=False)
        order = np.argsort(ts, kind="stable")
        ts, inv, total, pos = ts[order], inv[order], total[order], pos[order]
        n = len(ts)
        equity = np.zeros(n)
        positions = {}
        rows = np.arange(n)
        for j, name in enumerate(names):
            last = np.maximum.accumulate(np.where(inv == j, rows, -1))
            seen = last >= 0
            equity += np.where(seen, total[np.maximum(last, 0)], 0.0)
            positions[str(name)] = np.where(seen, pos[np.maximum(last, 0)], 0.0)
        # one point per timestamp (the last row of each)
        keep = np.r_[ts[1:] != ts[:-1], True]
        ts, equity = ts[keep], equity[keep]
        positions = {k: v[keep] for k, v in positions.items()}
        drawdown = equity - np.maximum.accumulate(np.maximum(equity, 0.0))
        idx = _thin(equity, drawdown, max_points)
        return {"ts": ts[idx].tolist(), "equity": equity[idx].tolist(), "drawdown": drawdown[idx].tolist(),
                "positions": {k: v[idx].tolist() for k, v in positions.items()}}


def _thin(a: np.ndarray, b: np.ndarray, max_points: int) -> np.ndarray:
    n = len(a)
    if n <= max_points:
        return np.arange(n)
    keep = {0, n - 1}
    for chunk in np.array_split(np.arange(n), max(1, max_points // 4)):
        if len(chunk):
            for arr in (a, b):
                seg = arr[chunk]
                keep.add(int(chunk[int(np.argmin(seg))]))
                keep.add(int(chunk[int(np.argmax(seg))]))
    return np.array(sorted(keep))


# ----------------------------------------------------------------------------------------------
# SVG


W, H = 960, 230
PAD_L, PAD_R, PAD_T, PAD_B = 78, 16, 14, 34


def _scale(lo: float, hi: float, a: float, b: float):
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    k = (b - a) / (hi - lo)
    return lambda v: a + (v - lo) * k


def line_chart(x: list[float], series: list[tuple[str, list[float], str]], *, x_label=None, x_is_time=True,
               fill: bool = False, step: bool = False, height: int = H) -> str:
    """An inline SVG line chart: one <path> per series, y axis with min/0/max, x axis labels."""
    if not x or not series:
        return '<p class="note">no data</p>'
    ys = [v for _, s, _ in series for v in s if v is not None and math.isfinite(v)]
    lo, hi = min(ys + [0.0]), max(ys + [0.0])
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    fx = _scale(min(x), max(x), PAD_L, W - PAD_R)
    fy = _scale(lo, hi, height - PAD_B, PAD_T)
    out = [f'<svg viewBox="0 0 {W} {height}" width="100%" role="img">',
           f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" height="{height - PAD_T - PAD_B}" class="plot"/>']
    for v in (lo, 0.0, hi) if lo < 0 < hi else (lo, hi):
        y = fy(v)
        out.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" class="{"zero" if v == 0 else "grid"}"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(f"{v:,.4g}")}</text>')
    xs = sorted(set([min(x), max(x), x[len(x) // 2]]))
    for v in xs:
        label = _ts(int(v))[11:19] if x_is_time else _num(float(v))
        anchor = "start" if v == min(x) else "end" if v == max(x) else "middle"
        out.append(f'<text x="{fx(v):.1f}" y="{height - PAD_B + 16}" text-anchor="{anchor}">{_e(label)}</text>')
    if x_label:
        out.append(f'<text x="{(PAD_L + W - PAD_R) / 2:.0f}" y="{height - 4}" text-anchor="middle" class="axis">{_e(x_label)}</text>')
    for name, s, color in series:
        pts = [(fx(a), fy(b)) for a, b in zip(x, s) if b is not None and math.isfinite(b)]
        if not pts:
            continue
        d = [f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            if step:
                d.append(f"H{x1:.1f}V{y1:.1f}")
            else:
                d.append(f"L{x1:.1f},{y1:.1f}")
        path = "".join(d)
        if fill:
            base = fy(0.0)
            out.append(f'<path d="{path}V{base:.1f}H{pts[0][0]:.1f}Z" fill="{color}" fill-opacity="0.25" stroke="none"/>')
        out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.5"><title>{_e(name)}</title></path>')
    if len(series) > 1:
        lx = PAD_L + 8
        for name, _, color in series:
            out.append(f'<rect x="{lx}" y="{PAD_T + 6}" width="10" height="10" fill="{color}"/>'
                       f'<text x="{lx + 14}" y="{PAD_T + 15}">{_e(name)}</text>')
            lx += 24 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)


def _color(v: float, scale: float) -> str:
    """Diverging colour: red for losses, green for gains, white at 0."""
    if v is None or not math.isfinite(v) or scale <= 0:
        return "#eeeeee"
    t = max(-1.0, min(1.0, v / scale))
    if t >= 0:
        r, g, b = 255 - int(t * 190), 255 - int(t * 80), 255 - int(t * 190)
    else:
        r, g, b = 255 - int(-t * 40), 255 - int(-t * 200), 255 - int(-t * 200)
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(xs: list[float], ys: list[float], z: dict[tuple[float, float], float], *, x_label: str, y_label: str) -> str:
    """An inline SVG heatmap of z (total PnL) over a 2-parameter grid, values in the cells when they fit."""
    cw = max(18, min(90, (W - 140) // max(1, len(xs))))
    ch = max(14, min(36, 520 // max(1, len(ys))))
    left, top = 110, 10
    width, height = left + cw * len(xs) + 10, top + ch * len(ys) + 46
    finite = [v for v in z.values() if v is not None and math.isfinite(v)]
    scale = max((abs(v) for v in finite), default=0.0)
    out = [f'<svg viewBox="0 0 {width} {height}" width="{min(width, W)}" role="img">']
    show = cw >= 54 and ch >= 16
    for j, yv in enumerate(ys):
        y = top + ch * (len(ys) - 1 - j)
        out.append(f'<text x="{left - 6}" y="{y + ch / 2 + 4:.1f}" text-anchor="end">{_e(_num(yv))}</text>')
        for i, xv in enumerate(xs):
            v = z.get((xv, yv))
            x = left + cw * i
            tip = f"{x_label}={_num(xv)} {y_label}={_num(yv)}: PnL {money(v)}"
            out.append(f'<rect x="{x}" y="{y}" width="{cw - 1}" height="{ch - 1}" fill="{_color(v, scale)}"><title>{_e(tip)}</title></rect>')
            if show:
                out.append(f'<text x="{x + cw / 2:.1f}" y="{y + ch / 2 + 4:.1f}" text-anchor="middle" class="cell">{_e(f"{v:,.2f}" if v is not None else "")}</text>')
    for i, xv in enumerate(xs):
        out.append(f'<text x="{left + cw * i + cw / 2:.1f}" y="{top + ch * len(ys) + 14}" text-anchor="middle">{_e(_num(xv))}</text>')
    out.append(f'<text x="{left + cw * len(xs) / 2:.0f}" y="{height - 8}" text-anchor="middle" class="axis">{_e(x_label)}</text>')
    out.append(f'<text x="12" y="{top + ch * len(ys) / 2:.0f}" class="axis" transform="rotate(-90 12 {top + ch * len(ys) / 2:.0f})" '
               f'text-anchor="middle">{_e(y_label)}</text>')
    out.append("</svg>")
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# HTML


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;margin:24px auto;max-width:1000px;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums}
td,th{padding:3px 10px;border-bottom:1px solid #eceff4;text-align:right;white-space:nowrap}
th{background:#f4f6fa;font-weight:600}td:first-child,th:first-child{text-align:left}
table.kv td:first-child{color:#5a6272}.neg{color:#c0392b}.pos{color:#1e8449}.note{color:#6b7280;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #dde2ea;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:18px}.card span{color:#5a6272;font-size:12px}
svg text{font-size:11px;fill:#4b5563}svg .axis{font-size:12px;fill:#1d2330}svg .cell{font-size:10px;fill:#111}
svg .plot{fill:#fbfcfe;stroke:#dde2ea}svg .grid{stroke:#e5e7eb}svg .zero{stroke:#9ca3af;stroke-dasharray:4 3}
.scroll{max-height:520px;overflow:auto;border:1px solid #eceff4}
"""


def _sign(v: Any) -> str:
    return ' class="neg"' if isinstance(v, (int, float)) and v < 0 else ' class="pos"' if isinstance(v, (int, float)) and v > 0 else ""


def _kv(rows: Iterable[tuple[str, str]]) -> str:
    return '<table class="kv">' + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _table(head: list[str], rows: list[list[Any]], raw: bool = False) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = []
    for r in rows:
        body.append("<tr>" + "".join(f"<td>{c if raw else _e(c)}</td>" for c in r) + "</tr>")
    return f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _page(title: str, sections: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n")


def _meta_rows(meta: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("strategy", meta["strategy"]), ("parameters", " ".join(meta.get("params") or []) or "defaults (and the config's instruments)"),
            ("input", ", ".join(meta.get("inputs") or [])), ("symbols", ", ".join(meta.get("symbols") or [])),
            ("events", count(meta.get("events"))), ("time range", f"{_ts(meta.get('t_first'))} → {_ts(meta.get('t_last'))}"),
            ("fill model", meta.get("fill") or "—"), ("sq version", meta.get("version", "")),
            ("generated", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))]
    return rows


def _cards(s: dict[str, Any]) -> str:
    pnl = s["pnl"]
    cards = [("PnL total", money(pnl["total"]), pnl["total"]), ("realized (net of fees)", money(pnl["realized"]), pnl["realized"]),
             ("unrealized", money(pnl["unrealized"]), pnl["unrealized"]), ("fees", money(pnl["fees"]), None),
             ("max drawdown", money(s["max_drawdown"]), None), ("Sharpe (annualised)", money(s["sharpe"]), None),
             ("orders", count(s["orders"]), None), ("fills", count(s["fills"]), None), ("cancels", count(s.get("cancels")), None),
             ("fill ratio (qty)", money(s["fill_ratio"]), None), ("turnover", money(s.get("turnover")), None),
             ("events/s", count(s["events_per_s"]), None)]
    return '<div class="cards">' + "".join(
        f'<div class="card"><span>{_e(k)}</span><b{_sign(c)}>{_e(v)}</b></div>' for k, v, c in cards) + "</div>"


COST_NAMES = (("brokerage", "brokerage"), ("tax", "STT / CTT"), ("txn", "exchange charges"), ("regulatory", "SEBI fee"),
              ("stamp", "stamp duty"), ("gst", "GST"), ("total", "total"))


def _costs_section(costs: dict[str, Any] | None) -> list[str]:
    """The costs by component, per symbol (docs/costs.md); nothing when the summary has none."""
    if not costs or not costs.get("by_symbol"):
        return []
    head = ["symbol", *(label for _, label in COST_NAMES)]
    rows = [[sym, *(money(c.get(k)) for k, _ in COST_NAMES)] for sym, c in costs["by_symbol"].items()]
    return ["<h2>Costs</h2>", _table(head, rows)]


def _curve_sections(curve: dict[str, Any], title_suffix: str = "") -> list[str]:
    ts = curve.get("ts") or []
    out = [f"<h2>Equity curve{_e(title_suffix)}</h2>",
           '<p class="note">Total PnL net of fees, all symbols, marked to mid at the pnl interval (UTC times).</p>',
           line_chart(ts, [("total PnL", curve.get("equity") or [], PALETTE[0])]),
           f"<h2>Drawdown{_e(title_suffix)}</h2>", line_chart(ts, [("drawdown", curve.get("drawdown") or [], PALETTE[1])], fill=True, height=180),
           f"<h2>Position{_e(title_suffix)}</h2>",
           line_chart(ts, [(k, v, PALETTE[i % len(PALETTE)]) for i, (k, v) in enumerate((curve.get("positions") or {}).items())],
                      step=True, height=180)]
    return out


def render_run(meta: dict[str, Any], s: dict[str, Any], rec: RunRecorder) -> str:
    """The report of one backtest."""
    title = f"sq backtest — {s['strategy']} on {', '.join(s['symbols'])}"
    sections = [f"<h1>{_e(title)}</h1>", _kv(_meta_rows(meta)), "<h2>Summary</h2>", _cards(s)]
    if s.get("halted"):
        sections.append(f'<p class="neg">The strategy was halted: {_e(s["halted"])}.</p>')
    if s.get("metrics"):
        from sq.core.summary import metrics_rows

        sections += ["<h2>Metrics</h2>", _kv(metrics_rows(s["metrics"])), '<p class="note">Definitions: docs/metrics.md.</p>']
    sections += _curve_sections(rec.curves())
    sections.append("<h2>Per symbol</h2>")
    head = ["symbol", "position", "avg price", "realized", "unrealized", "total", "fees", "volume", "turnover"]
    rows = [[sym, f"{p['position']:g}", money(p["avg_price"]), money(p["realized"]), money(p["unrealized"]), money(p["total"]),
             money(p["fees"]), f"{p['volume']:g}", money(p["turnover"])] for sym, p in s["per_symbol"].items()]
    sections.append(_table(head, rows))
    sections += _costs_section(s.get("charges"))
    sections.append("<h2>Risk rejections</h2>")
    rej = s.get("rejections") or {}
    sections.append(_table(["reason", "orders rejected"], [[k, count(v)] for k, v in sorted(rej.items(), key=lambda kv: -kv[1])])
                    if rej else '<p class="note">none</p>')
    sections.append("<h2>Fills</h2>")
    fills = rec.fill_rows()
    if rec.n_fills > len(fills):
        sections.append(f'<p class="note">The first {len(fills):,} of {rec.n_fills:,} fills; '
                        "every fill is in fills.parquet with --journal DIR.</p>")
    if fills:
        head = ["time (UTC)", "symbol", "side", "price", "qty", "fee", "liquidity", "client order id", "trade id"]
        rows = [[_ts(f["ts"]), f["symbol"], "buy" if f["side"] > 0 else "sell",
                 f"{f['price']:g}", f"{f['qty']:g}", money(f["fee"]), f["liquidity"], f["client_order_id"], f["trade_id"]] for f in fills]
        sections.append('<div class="scroll">' + _table(head, rows) + "</div>")
    else:
        sections.append('<p class="note">no fills</p>')
    return _page(title, sections)


def render_sweep(meta: dict[str, Any], axes: list, runs: list[dict[str, Any]], best_curve: dict[str, Any] | None) -> str:
    """The report of a sweep: the grid sorted by total PnL, a heatmap (2 parameters) or a PnL
    chart (1 parameter), and the best point's curves."""
    keys = [a.key for a in axes]
    title = f"sq backtest sweep — {meta['strategy']} over {' × '.join(keys)} ({len(runs):,} points)"
    ranked = sorted(runs, key=lambda r: -r["pnl"]["total"])
    best = ranked[0]
    sections = [f"<h1>{_e(title)}</h1>", _kv(_meta_rows(meta) + [("swept", "; ".join(f"{a.key} = {', '.join(_num(v) for v in a.values)}" for a in axes)),
                                                              ("jobs", str(meta.get("jobs", ""))), ("wall time", f"{meta.get('wall_s', 0):.2f} s")])]
    sections.append("<h2>Best point</h2>")
    sections.append(f"<p>{_e(' '.join(f'{k}={_num(v)}' for k, v in best['params'].items()))}</p>")
    sections.append(_cards(best))
    if len(axes) == 2:
        xs, ys = list(axes[0].values), list(axes[1].values)
        z = {(r["params"][keys[0]], r["params"][keys[1]]): r["pnl"]["total"] for r in runs}
        sections += ["<h2>Total PnL over the grid</h2>", heatmap(xs, ys, z, x_label=keys[0], y_label=keys[1])]
    elif len(axes) == 1:
        pts = sorted((r["params"][keys[0]], r["pnl"]["total"]) for r in runs)
        sections += ["<h2>Total PnL by parameter</h2>",
                     line_chart([p[0] for p in pts], [("total PnL", [p[1] for p in pts], PALETTE[0])], x_label=keys[0], x_is_time=False)]
    if best_curve:
        sections += _curve_sections(best_curve, " (best point)")
    sections.append("<h2>Grid results (by total PnL)</h2>")
    if len(ranked) > GRID_ROWS_SHOWN:
        sections.append(f'<p class="note">The best {GRID_ROWS_SHOWN:,} of {len(ranked):,} points; all of them are in --json / -o.</p>')
    head = keys + ["PnL total", "realized", "fees", "max DD", "Sharpe", "orders", "fills", "fill ratio", "rejections", "halted"]
    rows = []
    for r in ranked[:GRID_ROWS_SHOWN]:
        rows.append([_e(_num(r["params"][k])) for k in keys] + [f'<span{_sign(r["pnl"]["total"])}>{money(r["pnl"]["total"])}</span>'] +
                    [_e(x) for x in (money(r["pnl"]["realized"]), money(r["pnl"]["fees"]), money(r["max_drawdown"]), money(r["sharpe"]),
                                     count(r["orders"]), count(r["fills"]), money(r["fill_ratio"]),
                                     count(sum((r.get("rejections") or {}).values())), r.get("halted") or "")])
    sections.append('<div class="scroll">' + _table(head, rows, raw=True) + "</div>")
    return _page(title, sections)


def check_target(path: str) -> None:
    """Fail before the run when the report cannot be written there."""
    from sq.core.exits import NoInputError, UsageError

    p = Path(path)
    if p.is_dir():
        raise UsageError(f"--report {path}: is a directory; give a file name such as report.html")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise NoInputError(f"--report {path}: directory {str(parent)!r} does not exist")


def write_report(path: str, text: str) -> None:
    """Write atomically: a temp file beside the target, fsync'd, then renamed over it."""
    from sq.core.paths import fsync_dir

    target = Path(path)
    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(target.parent if str(target.parent) else ".")
