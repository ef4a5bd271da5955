"""The one HTML report renderer, behind `sq backtest --report FILE.html` and `sq report -o`.

One self-contained file: inline CSS, plotly.js embedded once (nothing fetched from anywhere: no
script, font, image or stylesheet from a network), and each chart an interactive plotly figure
(`sq.runs.charts`) drawn by an inline `Plotly.newPlot`. A single run shows its metadata, the
summary metrics (and the summary's `metrics` dict, key by key, when it has one), equity and
drawdown, the position per symbol, price with the fills, markouts, a per-symbol table, the
first fills and the risk rejections by reason. A sweep shows the grid's best point, the
objective over the grid (`sweep_sections`, shared with `sq report` of a sweep's results file)
and the best point's curves. The file is written to a temp name beside the target and renamed.

Large runs are thinned so the page stays reasonable: each line at most `charts.MAX_POINTS`
points (every bucket's minimum and maximum kept), each marker series at most
`charts.MAX_MARKERS`; plotly.js itself is about 4.8 MB of the page.

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
MAX_PRICE_CHARTS = 6  # price charts per report (runs × symbols); the rest are named in a note


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
    (marks per symbol at the pnl interval), the first `max_fills` fills and the fill count; with
    `trades`, every fill and every new or modified order (ts, symbol, side, price, qty) for the
    price chart and the markouts."""

    def __init__(self, max_fills: int = FILLS_SHOWN, *, trades: bool = True):
        self.max_fills = max_fills
        self.trades = trades
        self.t_first: int | None = None
        self.t_last: int | None = None
        self.pnl: list = []
        self.fills: list = []
        self.all_fills: list = []
        self.quotes: list = []
        self.kept_fills = 0
        self.n_fills = 0

    def market(self, batch) -> None:
        ts = batch.column("ts")
        if len(ts):
            a, b = ts[0].value, ts[len(ts) - 1].value
            self.t_first = a if self.t_first is None else min(self.t_first, a)
            self.t_last = b if self.t_last is None else max(self.t_last, b)

    def output(self, out) -> None:
        no, nf, npnl = out.rows
        if npnl:
            self.pnl.append(out.pnl)
        if no and self.trades:
            import pyarrow as pa
            import pyarrow.compute as pc

            o = out.orders
            o = o.filter(pc.is_in(o.column("event"), value_set=pa.array(["new", "modified"])))
            if o.num_rows:
                self.quotes.append(o)
        if nf:
            self.n_fills += nf
            if self.trades:
                self.all_fills.append(out.fills)
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

    def pnl_table(self):
        import pyarrow as pa

        from sq.core import schemas as S

        return pa.Table.from_batches(self.pnl) if self.pnl else S.pnl_schema().empty_table()

    def as_run(self, summary: dict[str, Any]):
        """The run as `sq report` reads a backtest's --journal DIR (`RunData`), mids from its pnl rows."""
        import pyarrow as pa

        from sq.core import schemas as S
        from sq.runs.reportinputs import RunData, _string_table, derived_marks

        def table(batches, schema):
            return _string_table(pa.Table.from_batches(batches) if batches else schema.empty_table())

        run = RunData(path="backtest", kind="backtest", mode="backtest", run_id="", strategy=str(summary.get("strategy", "")),
                      symbols=list(summary.get("symbols") or []), params=[], sealed=None,
                      orders=table(self.quotes, S.orders_schema()) if self.trades else None,
                      fills=table(self.all_fills, S.fills_schema()), pnl=_string_table(self.pnl_table()), summary=summary)
        run.marks, run.marks_from = derived_marks(run.pnl)
        return run

    def curves(self, max_points: int = 2000) -> dict[str, Any]:
        """Equity, drawdown and positions (`curves_of`) of the recorded pnl rows."""
        return curves_of(self.pnl_table(), max_points)


def curves_of(pnl, max_points: int = 2000) -> dict[str, Any]:
    """Equity (sum over symbols of each one's latest total PnL), drawdown from the running peak
    (starting at 0), and each symbol's position, at the pnl rows' times; thinned to about
    `max_points` keeping every bucket's minimum and maximum equity and drawdown."""
    import pyarrow as pa

    if pnl is None or pnl.num_rows == 0:
        return {"ts": [], "equity": [], "drawdown": [], "positions": {}}
    t = pnl
    ts = t.column("ts").cast(pa.int64()).to_numpy()
    syms = np.asarray(t.column("symbol").cast(pa.string()).to_pylist(), dtype=object)
    names, inv = np.unique(syms, return_inverse=True)
    total = np.nan_to_num(t.column("total").to_numpy(zero_copy_only=False).astype(np.float64))
    pos = np.nan_to_num(t.column("position").to_numpy(zero_copy_only=False).astype(np.float64))
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
    idx = thin(equity, drawdown, max_points)
    return {"ts": ts[idx].tolist(), "equity": equity[idx].tolist(), "drawdown": drawdown[idx].tolist(),
            "positions": {k: v[idx].tolist() for k, v in positions.items()}}


def thin(a: np.ndarray, b: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of about `max_points` of the n points (all of them when n ≤ max_points): the first,
    the last, and each of max_points / 4 buckets' minimum and maximum of `a` and of `b` — a
    thinned curve keeps every spike."""
    n = len(a)
    if n <= max_points:
        return np.arange(n)
    keep = {0, n - 1}
    for chunk in np.array_split(np.arange(n), max(1, max_points // 4)):
        if len(chunk):
            for arr in (a, b):
                seg = arr[chunk]
                keep.add(int(chunk[int(np.nanargmin(seg))]) if np.isfinite(seg).any() else int(chunk[0]))
                keep.add(int(chunk[int(np.nanargmax(seg))]) if np.isfinite(seg).any() else int(chunk[-1]))
    return np.array(sorted(keep))


_thin = thin


# ----------------------------------------------------------------------------------------------
# HTML


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;margin:24px auto;max-width:1100px;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums}
td,th{padding:3px 10px;border-bottom:1px solid #eceff4;text-align:right;white-space:nowrap}
th{background:#f4f6fa;font-weight:600}td:first-child,th:first-child{text-align:left}
table.kv td:first-child{color:#5a6272}.neg{color:#c0392b}.pos{color:#1e8449}.note{color:#6b7280;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #dde2ea;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:18px}.card span{color:#5a6272;font-size:12px}
.chart{width:100%;margin:4px 0 12px}
.scroll{max-height:520px;overflow:auto;border:1px solid #eceff4}
"""

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "showLink": False, "showSendToCloud": False, "showEditInChartStudio": False}


class Charts:
    """The page's figures: each `add` gives the HTML of one chart (a div and the inline script
    that draws it); `script()` is plotly.js itself, once per page."""

    def __init__(self):
        self.n = 0

    def add(self, figure: dict[str, Any]) -> str:
        from plotly.io.json import to_json_plotly

        self.n += 1
        div = f"sq-chart-{self.n}"
        data = to_json_plotly(figure.get("data", [])).replace("</", "<\\/")
        layout = to_json_plotly(figure.get("layout", {})).replace("</", "<\\/")
        config = to_json_plotly(PLOTLY_CONFIG)
        return (f'<div class="chart" id="{div}"></div>\n'
                f'<script>Plotly.newPlot("{div}", {data}, {layout}, {config});</script>')

    @staticmethod
    def script() -> str:
        from plotly.offline import get_plotlyjs

        return "<script>" + get_plotlyjs().replace("</script", "<\\/script") + "</script>"


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
            f"<style>{CSS}</style>{Charts.script()}</head><body>\n" + "\n".join(sections) + "\n</body></html>\n")


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


# the summary's `metrics` keys whose meaning the key alone does not say well
METRIC_LABELS = {"sharpe": "Sharpe ratio", "sortino": "Sortino ratio", "calmar": "Calmar ratio", "var_95": "VaR 95%", "cvar_95": "CVaR 95%",
                 "max_drawdown": "max drawdown", "max_drawdown_duration_s": "max drawdown duration (s)", "round_trips": "round trips",
                 "win_rate": "win rate", "profit_factor": "profit factor"}


def metric_label(key: str) -> str:
    """A metrics key as a row label: its known name, else the key with its unit spelled out
    (`markout_1s_bps` → "markout 1s (bps)", `…_s` → "(s)", `…_pct` → "(%)")."""
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    for suffix, unit in (("_bps", "bps"), ("_pct", "%"), ("_s", "s"), ("_ns", "ns")):
        if key.endswith(suffix) and len(key) > len(suffix):
            return f"{key[:-len(suffix)].replace('_', ' ')} ({unit})"
    return key.replace("_", " ")


def metric_value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return count(v)
    if isinstance(v, float):
        return money(v)
    if isinstance(v, dict):
        return ", ".join(f"{k} {metric_value(x)}" for k, x in v.items())
    return str(v)


def metrics_section(names: list[str], metrics: list[dict[str, Any]], diff: bool = False) -> list[str]:
    """The runs' `metrics` dicts key by key (side by side, and B − A of numbers for two runs);
    nothing when no run has any."""
    keys: list[str] = []
    for m in metrics:
        keys += [k for k in m if k not in keys]
    if not keys:
        return []
    rows = []
    for k in keys:
        vals = [m.get(k) for m in metrics]
        row = [metric_label(k), *[metric_value(v) for v in vals]]
        if diff:
            a, b = vals
            num = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
            row.append(metric_value(b - a) if num else "")
        rows.append(row)
    head = ["metric", *names] + (["B − A"] if diff else [])
    return ["<h2>Metrics</h2>", _table(head, rows)]


# ----------------------------------------------------------------------------------------------
# a run's charts (one run, or two overlaid)


def _symbols_of(run) -> list[str]:
    found = set(run.symbols or [])
    for t in (run.fills, run.pnl):
        if t is not None and t.num_rows:
            found |= set(t.column("symbol").to_pylist())
    return sorted(s for s in found if s)


def _columns(t, symbol: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = t.filter(pc.equal(t.column("symbol"), symbol))
    out = {}
    for n in names:
        col = t.column(n)
        out[n] = col.cast(pa.int64()).to_numpy() if n == "ts" else col.to_numpy(zero_copy_only=False).astype(np.float64)
    return out


def _mids(run, symbol: str):
    from sq.runs import charts as C

    if run.marks is None or run.marks.num_rows == 0:
        return None
    m = _columns(run.marks, symbol, ("ts", "mid"))
    o = np.argsort(m["ts"], kind="stable")
    ts, mid = m["ts"][o], m["mid"][o]
    ok = np.isfinite(mid)
    ts, mid = ts[ok], mid[ok]
    i = thin(mid, mid, C.MAX_POINTS)
    return ts[i], mid[i]


def _quotes(run, symbol: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    if run.orders is None or run.orders.num_rows == 0:
        return None
    o = run.orders.filter(pc.is_in(run.orders.column("event"), value_set=pa.array(["new", "modified"])))
    q = _columns(o, symbol, ("ts", "side", "price"))
    ok = np.isfinite(q["price"]) & (q["price"] > 0)
    return {k: v[ok] for k, v in q.items()}


def run_chart_sections(charts: Charts, runs: list, names: list[str], curves: list[dict[str, Any]]) -> list[str]:
    """Equity and drawdown, position, price with fills and quotes, and markouts of one run, or
    of two overlaid (a comparison)."""
    from sq.runs import charts as C
    from sq.runs.compare import markouts
    from sq.runs.reportinputs import MARKS_FROM_PNL

    out: list[str] = ["<h2>Equity curve and drawdown</h2>",
                      '<p class="note">Total PnL net of costs, all symbols, marked to mid at the pnl interval (UTC times); '
                      "drawdown from the running peak.</p>"]
    series = [(n, np.asarray(c["ts"]), np.asarray(c["equity"]), np.asarray(c["drawdown"])) for n, c in zip(names, curves) if c["ts"]]
    out.append(charts.add(C.equity(series)) if series else '<p class="note">no pnl rows: nothing to draw</p>')
    out.append("<h2>Position</h2>")
    pos = [((f"{n}: {s}" if len(runs) > 1 else s), np.asarray(c["ts"]), np.asarray(p))
           for n, c in zip(names, curves) for s, p in c["positions"].items()]
    out.append(charts.add(C.positions(pos)) if pos else '<p class="note">no pnl rows: nothing to draw</p>')
    out.append("<h2>Price, fills and quotes</h2>")
    shown, left = 0, []
    for run, name in zip(runs, names):
        for sym in _symbols_of(run):
            if shown >= MAX_PRICE_CHARTS:
                left.append(f"{name}: {sym}")
                continue
            fills = _columns(run.fills, sym, ("ts", "side", "price", "qty"))
            mids = _mids(run, sym)
            if mids is None and not len(fills["ts"]):
                continue
            fig = C.price(sym if len(runs) == 1 else f"{name} — {sym}", mids, fills, _quotes(run, sym), run.marks_from)
            out.append(charts.add(fig))
            shown += 1
    sources = sorted({r.marks_from for r in runs if r.marks_from})
    out.append('<p class="note">Mid: ' + (_e("; ".join(sources)) if sources else "none in this run") +
               (" (where the position is not flat: the mid the engine marked it at)" if MARKS_FROM_PNL in sources else "") +
               ". Quotes: the prices of the run's new and modified orders" +
               ("" if all(r.orders is not None and r.orders.num_rows for r in runs) else " (where the journal has orders)") + ".</p>")
    if left:
        out.append(f'<p class="note">Not drawn (at most {MAX_PRICE_CHARTS} price charts): {_e(", ".join(left))}.</p>')
    if not shown:
        out.append('<p class="note">no mids and no fills: nothing to draw</p>')
    out.append("<h2>Markouts</h2>")
    mk = [(n, markouts(r.fills, r.marks, C.MARKOUT_HORIZONS_S)) for r, n in zip(runs, names)]
    have = [(n, m) for n, m in mk if any(v["bps"] is not None for v in m.values())]
    if have:
        out.append(charts.add(C.markouts(have)))
        out.append('<p class="note">Markout at h: side × (mid h seconds after the fill − fill price) / price, in basis points, '
                   "quantity-weighted over the fills; positive is good for us. The first mid at or after fill time + h "
                   "(at the mids' resolution).</p>")
    for n, m in mk:
        if not any(v["bps"] is not None for v in m.values()):
            why = "no fills" if not any(r.fills.num_rows for r, nn in zip(runs, names) if nn == n) else "no mids in this run"
            out.append(f'<p class="note">Markouts of {_e(n)}: unavailable ({why}).</p>')
    return out


def _run_names(runs: list) -> list[str]:
    names = [r.name for r in runs]
    if len(set(names)) < len(names):
        names = [f"{'AB'[i]}: {n}" for i, n in enumerate(names)]
    return names


def render_runs(runs: list, doc: dict[str, Any]) -> str:
    """`sq report` of one run's journal, or two side by side (`sq.runs.compare` made `doc`)."""
    facts = doc["runs"]
    names = _run_names(runs)
    two = len(runs) == 2
    diff = doc.get("difference") or {}
    title = "sq report — " + " vs ".join(names)
    charts = Charts()
    head = ["", *names] + (["B − A"] if two else [])

    def row(label: str, vals: list[Any], d: Any = None, fmt=money) -> list[str]:
        return [label, *[fmt(v) for v in vals]] + ([fmt(d)] if two else [])

    about = [["journal", *[r.path for r in runs]], ["mode", *[r.mode or "—" for r in runs]], ["run id", *[r.run_id or "—" for r in runs]],
             ["strategy", *[r.strategy or "—" for r in runs]], ["symbols", *[", ".join(r.symbols) or "—" for r in runs]],
             ["parameters", *[" ".join(r.params) or "—" for r in runs]],
             ["sealed", *["—" if r.sealed is None else "yes" if r.sealed else "no (still running, or crashed)" for r in runs]],
             ["mids", *[r.marks_from or "none" for r in runs]]]
    rows = [row("orders", [f.orders for f in facts], diff.get("orders"), count),
            row("fills", [f.fills for f in facts], diff.get("fills"), count),
            row("volume", [f.volume for f in facts], diff.get("volume")),
            row("fill ratio (qty)", [f.fill_ratio for f in facts],
                None if not two or None in (facts[0].fill_ratio, facts[1].fill_ratio) else facts[1].fill_ratio - facts[0].fill_ratio),
            *[row(f"PnL {k}", [f.pnl[k] for f in facts], (diff.get("pnl") or {}).get(k)) for k in ("gross", "costs", "net")],
            *[row(f"markout {h} (bps)", [f.markouts[h]["bps"] for f in facts], ((diff.get("markouts") or {}).get(h) or {}).get("bps"))
              for h in facts[0].markouts],
            row("rejections", [sum(f.rejections.values()) for f in facts],
                sum(facts[1].rejections.values()) - sum(facts[0].rejections.values()) if two else None, count)]
    sections = [f"<h1>{_e(title)}</h1>", '<table class="kv">' + "".join(
        "<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in about) + "</table>",
        "<h2>Side by side</h2>" if two else "<h2>Summary</h2>", _table(head, rows)]
    sections += metrics_section(names, [f.metrics for f in facts], diff=two)
    rej = sorted({k for f in facts for k in f.rejections})
    if rej:
        sections += ["<h2>Risk rejections</h2>", _table(["reason", *names], [[k, *[count(f.rejections.get(k, 0)) for f in facts]] for k in rej])]
    sections += run_chart_sections(charts, runs, names, [curves_of(r.pnl) for r in runs])
    sections.append(f'<p class="note">Generated {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")} by sq report.</p>')
    return _page(title, sections)


def render_run(meta: dict[str, Any], s: dict[str, Any], rec: RunRecorder) -> str:
    """The report of one backtest."""
    title = f"sq backtest — {s['strategy']} on {', '.join(s['symbols'])}"
    charts = Charts()
    sections = [f"<h1>{_e(title)}</h1>", _kv(_meta_rows(meta)), "<h2>Summary</h2>", _cards(s)]
    if s.get("halted"):
        sections.append(f'<p class="neg">The strategy was halted: {_e(s["halted"])}.</p>')
    sections += metrics_section(["backtest"], [s.get("metrics") if isinstance(s.get("metrics"), dict) else {}])
    sections += run_chart_sections(charts, [rec.as_run(s)], ["backtest"], [rec.curves()])
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


# ----------------------------------------------------------------------------------------------
# a sweep's grid


def swept_columns(table) -> list[str]:
    """A backtest results table's swept parameters: the columns before `pnl_total` (`results_table`)."""
    names = table.column_names
    return names[:names.index("pnl_total")] if "pnl_total" in names else []


def sweep_sections(charts: Charts, table) -> list[str]:
    """The objective (total PnL) over the grid of a backtest results table."""
    from sq.runs import charts as C

    keys = swept_columns(table)
    if not keys or table.num_rows < 2:
        return []
    params = {k: table.column(k).to_numpy(zero_copy_only=False).astype(np.float64) for k in keys}
    pnl = table.column("pnl_total").to_numpy(zero_copy_only=False).astype(np.float64)
    figs = C.sweep(params, pnl, "total PnL")
    head = "Total PnL over the grid" if len(keys) >= 2 else "Total PnL by parameter"
    note = ("" if len(keys) <= 2 else
            '<p class="note">More than two swept parameters: the heatmap shows the two whose values move total PnL most '
            "(the variance of its mean per value), averaged over the others; the parallel coordinates show every point.</p>")
    return [f"<h2>{head}</h2>", *([note] if note else []), *[charts.add(f) for f in figs]]


def _grid_rows(table, keys: list[str]) -> list[list[str]]:
    rows = []
    for r in table.to_pylist():
        rej = r.get("rejections")
        rows.append([_e(_num(r[k])) for k in keys] + [f'<span{_sign(r["pnl_total"])}>{money(r["pnl_total"])}</span>'] +
                    [_e(x) for x in (money(r.get("pnl_realized")), money(r.get("fees")), money(r.get("max_drawdown")), money(r.get("sharpe")),
                                     count(r.get("orders")), count(r.get("fills")), money(r.get("fill_ratio")), count(rej), r.get("halted") or "")])
    return rows


GRID_HEAD = ["PnL total", "realized", "fees", "max DD", "Sharpe", "orders", "fills", "fill ratio", "rejections", "halted"]


def _grid_table(table, keys: list[str]) -> list[str]:
    import pyarrow.compute as pc

    ranked = table.take(pc.sort_indices(table, sort_keys=[("pnl_total", "descending")]))
    out = ["<h2>Grid results (by total PnL)</h2>"]
    if ranked.num_rows > GRID_ROWS_SHOWN:
        out.append(f'<p class="note">The best {GRID_ROWS_SHOWN:,} of {ranked.num_rows:,} points; all of them are in --json / -o.</p>')
    out.append('<div class="scroll">' + _table(keys + GRID_HEAD, _grid_rows(ranked.slice(0, GRID_ROWS_SHOWN), keys), raw=True) + "</div>")
    return out


def render_sweep(meta: dict[str, Any], axes: list, runs: list[dict[str, Any]], best_curve: dict[str, Any] | None) -> str:
    """The report of a sweep: the best point, the objective over the grid (`sweep_sections`),
    the best point's curves and the grid sorted by total PnL."""
    from sq.runs import charts as C
    from sq.runs.sweep import results_table

    keys = [a.key for a in axes]
    title = f"sq backtest sweep — {meta['strategy']} over {' × '.join(keys)} ({len(runs):,} points)"
    feasible = [r for r in runs if r.get("feasible", True) and r.get("objective", 0.0) is not None] or runs
    best = max(feasible, key=lambda r: r["objective"] if r.get("objective") is not None else r["pnl"]["total"])  # the search's objective
    charts = Charts()
    sections = [f"<h1>{_e(title)}</h1>", _kv(_meta_rows(meta) + [("swept", "; ".join(f"{a.key} = {', '.join(_num(v) for v in a.values)}" for a in axes)),
                                                              ("jobs", str(meta.get("jobs", ""))), ("wall time", f"{meta.get('wall_s', 0):.2f} s")])]
    sections.append("<h2>Best point</h2>")
    sections.append(f"<p>{_e(' '.join(f'{k}={_num(v)}' for k, v in best['params'].items()))}</p>")
    sections.append(_cards(best))
    table = results_table(runs, keys)
    sections += sweep_sections(charts, table)
    if best_curve and best_curve.get("ts"):
        sections += ["<h2>Equity curve and drawdown (best point)</h2>",
                     charts.add(C.equity([("best point", np.asarray(best_curve["ts"]), np.asarray(best_curve["equity"]),
                                           np.asarray(best_curve["drawdown"]))])),
                     "<h2>Position (best point)</h2>",
                     charts.add(C.positions([(s, np.asarray(best_curve["ts"]), np.asarray(p)) for s, p in best_curve["positions"].items()]))]
    sections += _grid_table(table, keys)
    return _page(title, sections)


# ----------------------------------------------------------------------------------------------
# results files: a sweep's grid, a walk-forward's folds


def _f64(table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)


def results_doc(res) -> dict[str, Any]:
    """What `sq report` prints for a results file (the JSON document; the page says more)."""
    t = res.table
    if res.kind == "backtest":
        keys = swept_columns(t)
        doc: dict[str, Any] = {"kind": "sweep", "file": res.path, "points": t.num_rows, "swept": keys}
        if t.num_rows and "pnl_total" in t.column_names:
            pnl = _f64(t, "pnl_total")
            if "objective" in t.column_names:  # a search's table: the best is the feasible point of the highest objective
                pnl = _f64(t, "objective")
                if "feasible" in t.column_names:
                    pnl = np.where(np.asarray(t.column("feasible").fill_null(False).to_pylist(), dtype=bool), pnl, np.nan)
            i = int(np.nanargmax(pnl)) if np.isfinite(pnl).any() else 0
            row = t.slice(i, 1).to_pylist()[0]
            doc["best"] = {"params": {k: row[k] for k in keys}, "pnl_total": row["pnl_total"]}
        return doc
    m = res.meta
    doc = {"kind": res.kind, "file": res.path, "folds": t.num_rows, "objective": m.get("objective"), "spec": m.get("spec"),
           "efficiency": m.get("efficiency"), "stability": m.get("stability") or {}}
    for name in ("is_objective", "oos_objective", "oos_pnl_total"):
        if name in t.column_names and t.num_rows:
            v = _f64(t, name)
            doc[f"{name}_mean" if name != "oos_pnl_total" else name] = float(np.nanmean(v) if name != "oos_pnl_total" else np.nansum(v))
    return doc


def render_sweep_results(res) -> str:
    """`sq report` of a sweep's results file (`sq backtest --sweep … -o FILE`)."""
    t = res.table
    keys = swept_columns(t)
    doc = results_doc(res)
    title = f"sq report — sweep {res.name} ({t.num_rows:,} points" + (f" over {' × '.join(keys)})" if keys else ")")
    charts = Charts()
    sections = [f"<h1>{_e(title)}</h1>", _kv([("file", res.path), ("points", count(t.num_rows)), ("swept", ", ".join(keys) or "—"),
                                               ("generated", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))])]
    if "best" in doc:
        b = doc["best"]
        sections += ["<h2>Best point</h2>",
                     f"<p>{_e(' '.join(f'{k}={_num(v)}' for k, v in b['params'].items()) or 'one run')}: total PnL {_e(money(b['pnl_total']))}</p>"]
    sections += sweep_sections(charts, t)
    if "pnl_total" in t.column_names:
        sections += _grid_table(t, keys)
    return _page(title, sections)


def render_wfo(res) -> str:
    """`sq report` of a walk-forward (or cross-validation) results file: in-sample against
    out-of-sample objective per fold, the stitched out-of-sample equity, the parameters each
    fold chose, and the folds table."""
    import pyarrow as pa

    from sq.runs import charts as C

    t, m = res.table, res.meta
    objective = str(m.get("objective") or "objective")
    keys = [n for n in t.column_names if n.startswith("param.")]
    fold = t.column("fold").to_numpy(zero_copy_only=False) if "fold" in t.column_names else np.arange(t.num_rows)
    title = f"sq report — {'walk-forward' if res.kind == 'wfo' else 'cross-validation'} {res.name} ({t.num_rows} folds, {objective})"
    charts = Charts()
    eff = m.get("efficiency")
    about = [("file", res.path), ("objective", objective), ("spec", str(m.get("spec") or "—")), ("folds", count(t.num_rows)),
             ("walk-forward efficiency", "—" if eff is None else money(eff)),
             ("generated", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))]
    sections = [f"<h1>{_e(title)}</h1>", _kv(about)]
    stab = m.get("stability") or {}
    if stab:
        sections += ["<h2>Parameter stability</h2>", _table(["parameter", "stability"], [[k, metric_value(v)] for k, v in stab.items()])]
    if "is_objective" in t.column_names and "oos_objective" in t.column_names:
        sections += ["<h2>In-sample vs out-of-sample</h2>", charts.add(C.folds(fold, _f64(t, "is_objective"), _f64(t, "oos_objective"), objective))]
    eq = m.get("oos_equity") or {}
    ts, values = list(eq.get("ts") or []), list(eq.get("equity") or [])
    if ts and len(ts) == len(values):
        ts_a, v_a = np.asarray(ts, dtype=np.int64), np.asarray(values, dtype=np.float64)
        i = thin(v_a, v_a, C.MAX_POINTS)
        starts = []
        if "test_start" in t.column_names:
            starts = [int(x) for x in t.column("test_start").cast(pa.int64()).to_pylist() if x is not None]
        sections += ["<h2>Stitched out-of-sample equity</h2>", charts.add(C.stitched(ts_a[i], v_a[i], starts))]
    else:
        sections.append('<p class="note">no stitched out-of-sample equity in this file</p>')
    if keys:
        sections += ["<h2>Parameters per fold</h2>", charts.add(C.fold_params(fold, {k[len("param."):]: _f64(t, k) for k in keys}))]
    head, rows = ["fold", "train", "test", *[k[len("param."):] for k in keys], "IS " + objective, "OOS " + objective, "OOS PnL", "OOS fills"], []
    for r in t.to_pylist():
        span = lambda a, b: f"{_day(r.get(a))} → {_day(r.get(b))}"  # noqa: E731
        rows.append([str(r.get("fold")), span("train_start", "train_end"), span("test_start", "test_end"), *[_num(r.get(k)) for k in keys],
                     money(r.get("is_objective")), money(r.get("oos_objective")), money(r.get("oos_pnl_total")), count(r.get("oos_fills"))])
    sections += ["<h2>Folds</h2>", '<div class="scroll">' + _table(head, rows) + "</div>"]
    return _page(title, sections)


def _day(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
    try:
        return _ts(int(v))[:16]
    except (TypeError, ValueError):
        return str(v)


# ----------------------------------------------------------------------------------------------
# sq report


def report(paths: list[str], output: str | None = None) -> dict[str, Any]:
    """`sq report RUN… [-o FILE.html]`: read the inputs (one run, two runs to compare, or one
    results file), write the HTML page to `output` when given, return the document the command
    prints (`sq.runs.compare` for runs, `results_doc` for a results file)."""
    from sq.runs.compare import compare_runs
    from sq.runs.reportinputs import ResultsData, read_inputs

    if output:
        check_target(output)
    items = read_inputs(list(paths))
    if isinstance(items[0], ResultsData):
        res = items[0]
        doc = results_doc(res)
        if output:
            write_report(output, render_sweep_results(res) if res.kind == "backtest" else render_wfo(res))
        return doc
    doc = compare_runs(items)
    if output:
        write_report(output, render_runs(items, doc))
    return doc


def check_target(path: str) -> None:
    """Fail before the run (or the reading) when the report cannot be written there: a
    directory (2), a missing directory (66), a directory sq may not write in (77)."""
    from sq.core.exits import ExitStatus, NoInputError, SqError, UsageError

    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{path}: is a directory; give a file name such as report.html")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise NoInputError(f"{path}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise SqError(f"{path}: permission denied (cannot write {'the file' if p.exists() else 'in ' + repr(str(parent))})",
                      status=ExitStatus.NO_PERM)


def write_report(path: str, text: str) -> None:
    """Write atomically: a temp file beside the target, fsync'd, then renamed over it (an existing
    file is replaced whole or left as it was). A failed write is one line: 77 when permission is
    denied, 74 for any other failure (a full disk, a file system that refuses the file)."""
    from sq.core.exits import ExitStatus, IOFailure, SqError, write_failure
    from sq.core.paths import fsync_dir

    target = Path(path)
    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        what = write_failure(e)
        if what:
            raise IOFailure(f"{path}: the report was not written: {what}") from None
        if isinstance(e, PermissionError):
            raise SqError(f"{path}: the report was not written: permission denied", status=ExitStatus.NO_PERM) from None
        if isinstance(e, OSError):
            raise IOFailure(f"{path}: the report was not written: {e.strerror or e}") from None
        raise
    fsync_dir(target.parent if str(target.parent) else ".")
