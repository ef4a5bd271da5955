"""Behind `sq report`: what a run's journal says it did, and two runs side by side.

For each run (a paper, live or shadow journal directory, sealed or not): orders sent, fills,
volume, rejections by reason, fill ratio, PnL gross / costs / net from the last mark of each
symbol, and **markouts**: for every fill, how far the mid moved in the fill's favour 1 s, 10 s and
60 s later (side × (mid(t + h) − price)), averaged per unit and in basis points of the price —
positive is a fill that was good for us. Mids come from the `marks.parquet` a shadow run keeps
(the mid once a second of data time; sq.runs.shadow); a run whose journal has none (and no
shadow beside it) reports markouts as unavailable.

Two runs compare as A, B and B − A. `sq report LIVE_DIR` compares a live run with its shadow
(`LIVE_DIR/shadow`) when it has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sq.core import journal as J
from sq.core.exits import NoInputError, UsageError

from sq.core.analytics import HORIZONS_S  # 1 s, 10 s, 60 s


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


def marks_of(*dirs: Path) -> Any:
    """The first `marks.parquet` (ts, symbol, mid) among `dirs` and their `shadow/` subdirectories."""
    import pyarrow.parquet as pq

    from sq.runs.shadow import MARKS_FILE, SHADOW_DIR

    for d in dirs:
        for p in (d / MARKS_FILE, d / SHADOW_DIR / MARKS_FILE):
            if p.is_file():
                return pq.read_table(p)
    return None


def markouts(fills: Any, marks: Any) -> dict[str, dict[str, float | None]]:
    """Average markout per horizon over all fills: `per_unit` (price units, quantity-weighted) and
    `bps` (of the fill price, quantity-weighted); None where no mid exists that late. The
    computation is the run summaries' own (`sq.core.analytics.markouts`, docs/metrics.md)."""
    from sq.core.analytics import markouts as compute

    if marks is None or fills.num_rows == 0:
        return {f"{h}s": {"per_unit": None, "bps": None, "fills": 0} for h in HORIZONS_S}
    fsym = fills.column("symbol").cast("string").to_pylist()
    msym = marks.column("symbol").cast("string").to_pylist()
    codes: dict[str, int] = {}
    fcode = np.array([codes.setdefault(x, len(codes)) for x in fsym], np.int64)
    mcode = np.array([codes.setdefault(x, len(codes)) for x in msym], np.int64)
    return compute(fills.column("ts").cast("int64").to_numpy(), fcode,
                   fills.column("side").to_numpy(zero_copy_only=False).astype(np.float64),
                   fills.column("price").to_numpy(zero_copy_only=False), fills.column("qty").to_numpy(zero_copy_only=False),
                   marks.column("ts").cast("int64").to_numpy(), mcode, marks.column("mid").to_numpy(zero_copy_only=False),
                   HORIZONS_S)


def facts(directory: str | Path, marks: Any = None) -> RunFacts:
    """What the journal in `directory` says its run did."""
    d = Path(directory)
    if not J.log_path(d).is_file():
        raise NoInputError(f"{d}: no sq journal there ({J.LOG_NAME} not found); give a run's journal directory")
    loaded = J.load(d)
    start = loaded.start
    orders = J.table_of(loaded, "orders")
    fills = J.table_of(loaded, "fills")
    pnl = J.table_of(loaded, "pnl")
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
    ts = pnl.column("ts").cast("int64").to_numpy() if pnl.num_rows else np.zeros(0, np.int64)
    equity = _equity(pnl) if pnl.num_rows else {"ts": [], "net": []}
    return RunFacts(
        journal=str(d), run_id=str(start.get("run_id", "")), mode=str(start.get("mode", "")), strategy=str(start.get("strategy", "")),
        symbols=list(start.get("symbols") or []), params=list(start.get("params") or []), sealed=loaded.sealed,
        orders=sum(1 for e in events if e == "new"), fills=fills.num_rows, volume=float(qty.sum()),
        notional=float((qty * price).sum()), fill_ratio=float(qty.sum() / sent_qty) if sent_qty > 0 else None,
        rejections=rejections, position={s: float(r["position"]) for s, r in last.items()},
        pnl={"gross": net + fees, "costs": fees, "net": net}, markouts=markouts(fills, marks),
        equity=equity if len(ts) else {"ts": [], "net": []})


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


def resolve_runs(runs: list[str]) -> list[Path]:
    """One or two journal directories; one live run with a shadow beside it compares with it."""
    from sq.runs.shadow import SHADOW_DIR

    if not 1 <= len(runs) <= 2:
        raise UsageError(f"sq report takes one run or two to compare; got {len(runs)}")
    dirs = [Path(r) for r in runs]
    if len(dirs) == 1 and J.log_path(dirs[0] / SHADOW_DIR).is_file():
        dirs.append(dirs[0] / SHADOW_DIR)
    return dirs


def compare(runs: list[str]) -> dict[str, Any]:
    """The `sq report` document: each run's facts and, for two, B − A of every number."""
    dirs = resolve_runs(runs)
    marks = marks_of(*dirs)
    found = [facts(d, marks) for d in dirs]
    doc: dict[str, Any] = {"runs": found}
    if len(found) == 2:
        a, b = found
        doc["difference"] = {
            "orders": b.orders - a.orders, "fills": b.fills - a.fills, "volume": b.volume - a.volume,
            "pnl": {k: b.pnl[k] - a.pnl[k] for k in a.pnl},
            "markouts": {h: {k: (None if a.markouts[h][k] is None or b.markouts[h][k] is None else b.markouts[h][k] - a.markouts[h][k])
                             for k in ("per_unit", "bps")} for h in a.markouts}}
    return doc


def as_json(doc: dict[str, Any], *, curves: bool = False) -> dict[str, Any]:
    from dataclasses import asdict

    runs = []
    for r in doc["runs"]:
        d = asdict(r)
        if not curves:
            d.pop("equity")
        runs.append(d)
    return {**doc, "runs": runs}


def render_html(doc: dict[str, Any]) -> str:
    """One self-contained HTML page: the facts side by side and both equity curves."""
    from sq.runs import report as R

    runs: list[RunFacts] = doc["runs"]
    names = [f"{r.mode or 'run'} {r.strategy} ({Path(r.journal).name})" for r in runs]
    head = ["", *names] + (["B − A"] if len(runs) == 2 else [])
    diff = doc.get("difference") or {}

    def row(label: str, vals: list[Any], d: Any = None, fmt=R.money) -> list[str]:
        return [label, *[fmt(v) for v in vals]] + ([fmt(d)] if len(runs) == 2 else [])

    rows = [row("orders", [r.orders for r in runs], diff.get("orders"), R.count),
            row("fills", [r.fills for r in runs], diff.get("fills"), R.count),
            row("volume", [r.volume for r in runs], diff.get("volume")),
            *[row(f"PnL {k}", [r.pnl[k] for r in runs], (diff.get("pnl") or {}).get(k)) for k in ("gross", "costs", "net")],
            *[row(f"markout {h} (bps)", [r.markouts[h]["bps"] for r in runs], ((diff.get("markouts") or {}).get(h) or {}).get("bps"))
              for h in runs[0].markouts]]
    xs = sorted({t for r in runs for t in r.equity["ts"]})
    series = []
    for i, r in enumerate(runs):
        if not r.equity["ts"]:
            continue
        at = np.searchsorted(np.asarray(r.equity["ts"]), np.asarray(xs), side="right") - 1
        net = np.asarray(r.equity["net"])
        series.append((names[i], [float(net[j]) if j >= 0 else 0.0 for j in at], R.PALETTE[i]))
    title = "sq report — " + " vs ".join(names)
    sections = [f"<h1>{R._e(title)}</h1>", "<h2>Side by side</h2>", R._table(head, rows),
                "<h2>Net PnL</h2>", R.line_chart(xs, series),
                '<p class="note">Markouts: side × (mid h seconds after the fill − fill price), quantity-weighted, in basis points '
                "of the price; positive is good for us. Mids from the shadow run's marks (once a second of data time).</p>"]
    return R._page(title, sections)
