"""Behind `sq report`: what a run's journal says it did, and two runs side by side.

For each run (a paper, live or shadow journal directory, sealed or not, or a backtest's
--journal DIR; read by sq.runs.reportinputs): orders sent, fills,
volume, rejections by reason, fill ratio, PnL gross / costs / net from the last mark of each
symbol, and **markouts**: for every fill, how far the mid moved in the fill's favour 1 s, 10 s and
60 s later (side × (mid(t + h) − price)), averaged per unit and in basis points of the price —
positive is a fill that was good for us. Mids come from the `marks.parquet` a shadow run keeps
(the mid once a second of data time; sq.runs.shadow), else from the run's pnl rows (their mark,
or avg price + unrealized / position where the position is not flat); a run with neither reports
markouts as unavailable.

Two runs compare as A, B and B − A. `sq report LIVE_DIR` compares a live run with its shadow
(`LIVE_DIR/shadow`) when it has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sq.core import journal as J
from sq.core.analytics import HORIZONS_S  # 1 s, 10 s, 60 s
from sq.core.exits import UsageError
from sq.runs.reportinputs import RunData


@dataclass
class RunFacts:
    """One run as `sq report` shows it (JSON keys = field names)."""

    journal: str
    run_id: str
    mode: str
    strategy: str
    symbols: list[str]
    params: list[str]
    sealed: bool
    orders: int
    fills: int
    volume: float
    notional: float
    fill_ratio: float | None
    rejections: dict[str, int]
    position: dict[str, float]
    pnl: dict[str, float]
    markouts: dict[str, dict[str, float | None]] = field(default_factory=dict)
    equity: dict[str, list] = field(default_factory=dict)  # ts (ns) and net PnL: the curve a report draws
    metrics: dict[str, Any] = field(default_factory=dict)  # the run summary's `metrics`, when it has them


def markouts(fills: Any, marks: Any, horizons: tuple[float, ...] = HORIZONS_S) -> dict[str, dict[str, float | None]]:
    """Average markout per horizon (seconds; keys like "1s", "0.5s") over all fills of the `fills`
    table against the `marks` table (ts, symbol, mid): `per_unit` and `bps`, quantity-weighted,
    from the first mid at or after fill time + h and no later than LATE_S (or h) past it; None
    where no fill has one. The computation is the run summaries' own (`sq.core.analytics.markouts`,
    docs/metrics.md)."""
    from sq.core.analytics import markouts as compute

    if marks is None or fills.num_rows == 0:
        return {f"{h:g}s": {"per_unit": None, "bps": None, "fills": 0} for h in horizons}
    codes: dict[str, int] = {}
    fcode = np.array([codes.setdefault(str(x), len(codes)) for x in fills.column("symbol").cast("string").to_pylist()], np.int64)
    mcode = np.array([codes.setdefault(str(x), len(codes)) for x in marks.column("symbol").cast("string").to_pylist()], np.int64)
    return compute(fills.column("ts").cast("int64").to_numpy(), fcode,
                   fills.column("side").to_numpy(zero_copy_only=False).astype(np.float64),
                   fills.column("price").to_numpy(zero_copy_only=False), fills.column("qty").to_numpy(zero_copy_only=False),
                   marks.column("ts").cast("int64").to_numpy(), mcode, marks.column("mid").to_numpy(zero_copy_only=False),
                   tuple(horizons))


def facts(run: RunData) -> RunFacts:
    """What a run's journal (read by `sq.runs.reportinputs`) says it did."""
    orders, fills, pnl = run.orders, run.fills, run.pnl
    events = orders.column("event").to_pylist()
    reasons = orders.column("reason").to_pylist()
    rejections: dict[str, int] = {}
    for e, r in zip(events, reasons):
        if e == "rejected":
            rejections[r or "?"] = rejections.get(r or "?", 0) + 1
    sent_qty = float(np.sum([q for e, q in zip(events, orders.column("qty").to_pylist()) if e == "new" and q is not None]))
    qty = fills.column("qty").to_numpy(zero_copy_only=False) if fills.num_rows else np.zeros(0)
    price = fills.column("price").to_numpy(zero_copy_only=False) if fills.num_rows else np.zeros(0)
    fees = float(np.nansum(fills.column("fee").to_numpy(zero_copy_only=False))) if fills.num_rows else 0.0
    last: dict[str, dict] = {}
    for row in J.rows_from_batch(pnl):
        last[row["symbol"]] = row
    net = float(sum(r["total"] for r in last.values()))
    equity = _equity(pnl) if pnl.num_rows else {"ts": [], "net": []}
    return RunFacts(
        journal=run.path, run_id=run.run_id, mode=run.mode, strategy=run.strategy,
        symbols=list(run.symbols), params=list(run.params), sealed=bool(run.sealed) if run.sealed is not None else True,
        orders=sum(1 for e in events if e == "new"), fills=fills.num_rows, volume=float(qty.sum()),
        notional=float((qty * price).sum()), fill_ratio=float(qty.sum() / sent_qty) if sent_qty > 0 else None,
        rejections=rejections, position={s: float(r["position"]) for s, r in last.items()},
        pnl={"gross": net + fees, "costs": fees, "net": net}, markouts=markouts(fills, run.marks),
        equity=equity, metrics=dict(run.metrics))


def _equity(pnl: Any) -> dict[str, list]:
    """Net PnL of all symbols over time: each mark updates its symbol's total."""
    sym = pnl.column("symbol").cast("string").to_pylist()
    ts = pnl.column("ts").cast("int64").to_pylist()
    total = pnl.column("total").to_pylist()
    now: dict[str, float] = {}
    out_ts, out_net = [], []
    for t, s, v in zip(ts, sym, total):
        now[s] = float(v or 0.0)
        if out_ts and out_ts[-1] == t:
            out_net[-1] = sum(now.values())
        else:
            out_ts.append(t)
            out_net.append(sum(now.values()))
    return {"ts": out_ts, "net": out_net}


def compare(runs: list[str]) -> dict[str, Any]:
    """The `sq report` document of runs' journals: each run's facts and, for two, B − A of every number."""
    from sq.runs.reportinputs import RunData, read_inputs

    items = read_inputs(list(runs))
    if not all(isinstance(i, RunData) for i in items):
        raise UsageError("compare takes runs' journal directories")
    return compare_runs(items)


def compare_runs(items: list[RunData]) -> dict[str, Any]:
    """`compare` of runs already read."""
    found = [facts(r) for r in items]
    doc: dict[str, Any] = {"runs": found}
    if len(found) == 2:
        a, b = found
        doc["difference"] = {
            "orders": b.orders - a.orders, "fills": b.fills - a.fills, "volume": b.volume - a.volume,
            "pnl": {k: b.pnl[k] - a.pnl[k] for k in a.pnl},
            "markouts": {h: {k: (None if a.markouts[h][k] is None or b.markouts[h][k] is None else b.markouts[h][k] - a.markouts[h][k])
                             for k in ("per_unit", "bps")} for h in a.markouts},
            "metrics": {k: b.metrics[k] - a.metrics[k] for k in a.metrics
                        if _number(a.metrics.get(k)) and _number(b.metrics.get(k))}}
    return doc


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def as_json(doc: dict[str, Any], *, curves: bool = False) -> dict[str, Any]:
    from dataclasses import asdict

    runs = []
    for r in doc["runs"]:
        d = asdict(r)
        if not curves:
            d.pop("equity")
        runs.append(d)
    return {**doc, "runs": runs}
