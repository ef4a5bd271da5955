"""The report's interactive charts, as plotly figures (JSON-able {"data", "layout"} dicts).

Imported only by the report renderer (`sq.runs.report`), which embeds plotly.js once in the page
and draws each figure with `Plotly.newPlot`: nothing is fetched from anywhere.

Every time axis is a plotly date axis fed milliseconds since the epoch (UTC). Large series are
thinned before they get here (`sq.runs.report.thin`: every bucket's minimum and maximum kept),
markers by stride: each line at most MAX_POINTS points, each marker series at most MAX_MARKERS.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MAX_POINTS = 2000
MAX_MARKERS = 2000
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
BUY, SELL = "#1e8449", "#c0392b"
MARKOUT_HORIZONS_S = (0.5, 1, 2, 5, 10, 30, 60)
HEIGHT = 340


def _layout(fig: go.Figure, title: str, *, height: int = HEIGHT, **extra: Any) -> dict[str, Any]:
    base = {"hovermode": "x unified", "legend": {"orientation": "h", "y": -0.18}, "margin": {"l": 64, "r": 20, "t": 44, "b": 40}}
    fig.update_layout(title={"text": title, "x": 0.01, "font": {"size": 15}}, height=height,
                      paper_bgcolor="white", plot_bgcolor="#fbfcfe", **{**base, **extra})
    d = fig.to_plotly_json()
    d["layout"].pop("template", None)  # plotly.js's own defaults: the template would add ~10 KB per chart
    return d


def ms(ts_ns: Any) -> np.ndarray:
    """Nanoseconds since the epoch → milliseconds (what a plotly date axis reads)."""
    return np.asarray(ts_ns, dtype=np.float64) / 1e6


def stride(n: int, cap: int = MAX_MARKERS) -> np.ndarray:
    """At most `cap` evenly spread indices of n items (all of them when n ≤ cap)."""
    if n <= cap:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, cap).round().astype(np.int64))


def price(symbol: str, mids: tuple[np.ndarray, np.ndarray] | None, fills: dict[str, np.ndarray], quotes: dict[str, np.ndarray] | None,
          mid_source: str | None) -> dict[str, Any]:
    """Mid (line), the run's fills (buy ▲ / sell ▼ markers at the fill price) and its quotes (the
    prices of its new and modified orders, small dots) for one symbol."""
    fig = go.Figure()
    if mids is not None and len(mids[0]):
        fig.add_trace(go.Scatter(x=ms(mids[0]), y=mids[1], name="mid", mode="lines", line={"color": "#6b7280", "width": 1}))
    if quotes is not None:
        for side, name, color in ((1, "bid quotes", BUY), (-1, "ask quotes", SELL)):
            m = quotes["side"] == side
            i = stride(int(m.sum()))
            if len(i):
                fig.add_trace(go.Scatter(x=ms(quotes["ts"][m][i]), y=quotes["price"][m][i], name=name, mode="markers",
                                         marker={"color": color, "size": 3, "opacity": 0.35}))
    for side, name, color, symbol_ in ((1, "buy fills", BUY, "triangle-up"), (-1, "sell fills", SELL, "triangle-down")):
        m = fills["side"] == side
        i = stride(int(m.sum()))
        if len(i):
            fig.add_trace(go.Scatter(x=ms(fills["ts"][m][i]), y=fills["price"][m][i], name=name, mode="markers",
                                     marker={"color": color, "size": 8, "symbol": symbol_, "line": {"width": 0.5, "color": "#111"}},
                                     customdata=fills["qty"][m][i], hovertemplate="%{y} × %{customdata}"))
    title = f"{symbol}: price, fills" + (" and quotes" if quotes is not None else "") + ("" if mid_source else " (no mids in this run)")
    return _layout(fig, title, xaxis={"type": "date"}, yaxis={"title": "price"})


def equity(series: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Equity (total PnL net of costs, all symbols) and its drawdown from the running peak, one
    line per run: (name, ts_ns, equity, drawdown)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.06)
    for i, (name, ts, eq, dd) in enumerate(series):
        c = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=ms(ts), y=eq, name=f"{name} equity", mode="lines", line={"color": c, "width": 1.5}, legendgroup=name), 1, 1)
        fig.add_trace(go.Scatter(x=ms(ts), y=dd, name=f"{name} drawdown", mode="lines", line={"color": c, "width": 1}, fill="tozeroy",
                                 legendgroup=name, opacity=0.6), 2, 1)
    fig.update_xaxes(type="date")
    fig.update_yaxes(title_text="PnL", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", row=2, col=1)
    return _layout(fig, "Equity and drawdown", height=440)


def positions(series: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Net position over time (steps), one line per (run, symbol): (name, ts_ns, position)."""
    fig = go.Figure()
    for i, (name, ts, pos) in enumerate(series):
        fig.add_trace(go.Scatter(x=ms(ts), y=pos, name=name, mode="lines", line={"shape": "hv", "color": PALETTE[i % len(PALETTE)], "width": 1.5}))
    return _layout(fig, "Position per symbol", height=280, xaxis={"type": "date"}, yaxis={"title": "position"})


def markouts(series: list[tuple[str, dict[str, dict[str, Any]]]]) -> dict[str, Any]:
    """Mean markout (bps of the fill price, quantity-weighted) against the horizon, one line per run."""
    fig = go.Figure()
    for i, (name, mk) in enumerate(series):
        hs = [h for h in MARKOUT_HORIZONS_S if (mk.get(f"{h:g}s") or {}).get("bps") is not None]
        fig.add_trace(go.Scatter(x=hs, y=[mk[f"{h:g}s"]["bps"] for h in hs], name=name, mode="lines+markers",
                                 line={"color": PALETTE[i % len(PALETTE)]}, customdata=[mk[f"{h:g}s"]["fills"] for h in hs],
                                 hovertemplate="%{x} s: %{y:.3f} bps (%{customdata} fills)"))
    return _layout(fig, "Markouts: mean move of the mid in the fill's favour", height=320, hovermode="closest",
                   xaxis={"title": "seconds after the fill", "type": "log", "tickvals": list(MARKOUT_HORIZONS_S),
                          "ticktext": [f"{h:g}" for h in MARKOUT_HORIZONS_S]},
                   yaxis={"title": "bps", "zeroline": True})


# ----------------------------------------------------------------------------------------------
# a sweep's grid


def _clean(v: Iterable[float]) -> list[float | None]:
    return [None if v_ is None or not math.isfinite(v_) else float(v_) for v_ in v]


def sweep(params: dict[str, np.ndarray], objective: np.ndarray, objective_name: str) -> list[dict[str, Any]]:
    """The objective over the grid: 1 parameter → a line; 2 → a heatmap; more → a heatmap of the
    two parameters whose values move the objective most (the variance of its mean per value; the
    others averaged out) and a parallel-coordinates chart of every point."""
    keys = list(params)
    if not keys or not len(objective):
        return []
    if len(keys) == 1:
        x = params[keys[0]]
        o = np.argsort(x, kind="stable")
        fig = go.Figure(go.Scatter(x=x[o], y=_clean(objective[o]), mode="lines+markers", name=objective_name))
        return [_layout(fig, f"{objective_name} by {keys[0]}", hovermode="closest", xaxis={"title": keys[0]}, yaxis={"title": objective_name})]
    pair = keys[:2] if len(keys) == 2 else sorted(keys, key=lambda k: -_effect(params[k], objective))[:2]
    xs, ys = np.unique(params[pair[0]]), np.unique(params[pair[1]])
    z = np.full((len(ys), len(xs)), np.nan)
    for j, yv in enumerate(ys):
        for i, xv in enumerate(xs):
            m = (params[pair[0]] == xv) & (params[pair[1]] == yv) & np.isfinite(objective)
            if m.any():
                z[j, i] = float(np.mean(objective[m]))
    mixed = bool(np.isfinite(z).any() and np.nanmin(z) < 0 < np.nanmax(z))
    heat = go.Figure(go.Heatmap(x=[f"{v:g}" for v in xs], y=[f"{v:g}" for v in ys], z=[_clean(r) for r in z], colorscale="RdYlGn",
                                zmid=0.0 if mixed else None,
                                colorbar={"title": {"text": objective_name}},
                                text=[[("" if not math.isfinite(v) else f"{v:,.4g}") for v in r] for r in z], texttemplate="%{text}" if z.size <= 150 else None,
                                hovertemplate=f"{pair[0]}=%{{x}} {pair[1]}=%{{y}}: %{{z}}<extra></extra>"))
    more = "" if len(keys) == 2 else " (mean over the other parameter)" if len(keys) == 3 else f" (mean over the other {len(keys) - 2} parameters)"
    out = [_layout(heat, f"{objective_name} over {pair[0]} × {pair[1]}{more}", height=max(300, min(700, 60 + 28 * len(ys))),
                   hovermode="closest", xaxis={"title": pair[0], "type": "category"}, yaxis={"title": pair[1], "type": "category"})]
    if len(keys) > 2:
        fin = np.where(np.isfinite(objective), objective, np.nan)
        dims = [{"label": k, "values": params[k]} for k in keys] + [{"label": objective_name, "values": _clean(fin)}]
        par = go.Figure(go.Parcoords(dimensions=dims, line={"color": _clean(fin), "colorscale": "RdYlGn", "showscale": True}))
        out.append(_layout(par, f"Every grid point: parameters and {objective_name}", height=440, hovermode="closest",
                           margin={"l": 64, "r": 40, "t": 96, "b": 30}))
    return out


def _effect(values: np.ndarray, objective: np.ndarray) -> float:
    """How much a parameter moves the objective: the variance of the objective's mean per value."""
    means = [float(np.nanmean(objective[values == v])) for v in np.unique(values) if np.isfinite(objective[values == v]).any()]
    return float(np.var(means)) if len(means) > 1 else 0.0


# ----------------------------------------------------------------------------------------------
# a walk-forward's folds


def folds(fold: np.ndarray, is_obj: np.ndarray, oos_obj: np.ndarray, objective_name: str) -> dict[str, Any]:
    """In-sample (the best training score) against out-of-sample objective per fold."""
    fig = go.Figure([go.Bar(x=fold, y=_clean(is_obj), name="in-sample (train)", marker_color=PALETTE[0]),
                     go.Bar(x=fold, y=_clean(oos_obj), name="out-of-sample (test)", marker_color=PALETTE[4])])
    return _layout(fig, f"{objective_name} per fold: in-sample vs out-of-sample", barmode="group", hovermode="closest",
                   xaxis={"title": "fold", "dtick": 1}, yaxis={"title": objective_name})


def stitched(ts_ns: np.ndarray, equity_: np.ndarray, boundaries_ns: list[int]) -> dict[str, Any]:
    """The out-of-sample equity of every test window, stitched end to end; dotted lines at the
    start of each test window."""
    fig = go.Figure(go.Scatter(x=ms(ts_ns), y=_clean(equity_), mode="lines", name="OOS equity", line={"color": PALETTE[0]}))
    for b in boundaries_ns:
        fig.add_vline(x=float(b) / 1e6, line={"dash": "dot", "color": "#9ca3af", "width": 1})
    return _layout(fig, "Stitched out-of-sample equity", xaxis={"type": "date"}, yaxis={"title": "PnL"})


def fold_params(fold: np.ndarray, params: dict[str, np.ndarray]) -> dict[str, Any]:
    """The parameters each fold's training chose, one line per parameter."""
    fig = go.Figure()
    for i, (k, v) in enumerate(params.items()):
        fig.add_trace(go.Scatter(x=fold, y=_clean(v), name=k, mode="lines+markers", line={"color": PALETTE[i % len(PALETTE)]}))
    return _layout(fig, "Parameters chosen per fold", hovermode="closest", xaxis={"title": "fold", "dtick": 1}, yaxis={"title": "value"})
