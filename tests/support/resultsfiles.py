"""Results files `sq report` reads, made without running anything: a walk-forward's folds (the
contract the walk-forward writer follows: schema metadata `sq.results` = wfo|cv and `sq.wfo` =
JSON {objective, spec, efficiency, stability, oos_equity}) and a sweep's grid (the
`sq.runs.sweep.results_table` layout)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DAY_NS = 86_400 * 1_000_000_000
T0 = 1_704_067_200 * 1_000_000_000  # 2024-01-01 UTC


def wfo_table(folds: int = 5, params: dict[str, list[float]] | None = None, *, kind: str = "wfo", objective: str = "sharpe",
              efficiency: float | None = 0.62, points_per_fold: int = 50, seed: int = 3) -> pa.Table:
    """A walk-forward results table: `folds` rows (train 20 days, test 5 days, rolling), one
    `param.<key>` column per parameter, and the stitched out-of-sample equity in `sq.wfo`."""
    rng = np.random.default_rng(seed)
    params = params or {"clip": [1.0, 2.0, 2.0, 3.0, 2.0], "threshold": [0.2, 0.4, 0.4, 0.6, 0.4]}
    fold = np.arange(folds, dtype=np.int64)
    train_start = T0 + fold * 5 * DAY_NS
    train_end = train_start + 20 * DAY_NS
    test_start, test_end = train_end, train_end + 5 * DAY_NS
    is_obj = rng.normal(1.5, 0.3, folds)
    oos_obj = is_obj * rng.uniform(0.2, 0.9, folds) - 0.2
    oos_pnl = rng.normal(10.0, 5.0, folds)
    ts, equity, level = [], [], 0.0
    for f in range(folds):
        t = np.linspace(test_start[f], test_end[f] - 1, points_per_fold).astype(np.int64)
        steps = np.cumsum(rng.normal(oos_pnl[f] / points_per_fold, 0.5, points_per_fold))
        ts += t.tolist()
        equity += (level + steps).tolist()
        level += float(steps[-1])
    tsn = pa.timestamp("ns", tz="UTC")
    cols = {"fold": pa.array(fold, pa.int64()), "train_start": pa.array(train_start).cast(tsn), "train_end": pa.array(train_end).cast(tsn),
            "test_start": pa.array(test_start).cast(tsn), "test_end": pa.array(test_end).cast(tsn)}
    for k, v in params.items():
        cols[f"param.{k}"] = pa.array(np.asarray(v[:folds], dtype=np.float64))
    cols.update(is_objective=pa.array(is_obj), oos_objective=pa.array(oos_obj), oos_pnl_total=pa.array(oos_pnl),
                oos_fills=pa.array(rng.integers(5, 50, folds), pa.int64()))
    meta = {"objective": objective, "spec": "rolling train=20d test=5d", "efficiency": efficiency,
            "stability": {k: float(np.std(v[:folds]) / (np.mean(v[:folds]) or 1.0)) for k, v in params.items()},
            "oos_equity": {"ts": ts, "equity": equity}}
    table = pa.table(cols)
    return table.replace_schema_metadata({b"sq.results": kind.encode(), b"sq.wfo": json.dumps(meta).encode()})


def write_wfo(path: str | Path, **kw) -> Path:
    """`wfo_table(**kw)` as a Parquet file at `path` (.arrow: an Arrow IPC file)."""
    path = Path(path)
    table = wfo_table(**kw)
    if path.suffix == ".arrow":
        with pa.OSFile(str(path), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
            w.write_table(table)
    else:
        pq.write_table(table, path)
    return path


def sweep_table(axes: dict[str, list[float]], seed: int = 5) -> pa.Table:
    """A sweep's grid as `sq backtest --sweep … -o` writes it, with made-up PnL that depends on
    the first two parameters (so the heatmap has a shape)."""
    from sq.runs.sweep import results_table

    rng = np.random.default_rng(seed)
    keys = list(axes)
    runs = []
    for combo in itertools.product(*axes.values()):
        p = dict(zip(keys, combo))
        total = sum((i + 1) * float(v) for i, v in enumerate(combo[:2])) - 3.0 + float(rng.normal(0, 0.1))
        runs.append({"params": p, "pnl": {"total": total, "realized": total, "unrealized": 0.0, "fees": 0.1}, "max_drawdown": -1.0,
                     "sharpe": total / 2, "orders": 10, "cancels": 2, "fills": 5, "fill_ratio": 0.5, "turnover": 100.0,
                     "rejections": {}, "halted": None, "events": 1000, "elapsed_s": 0.1, "events_per_s": 1e4,
                     "position": {"SIM:DEMO": 0.0}})
    return results_table(runs, keys)


def write_sweep(path: str | Path, axes: dict[str, list[float]]) -> Path:
    path = Path(path)
    pq.write_table(sweep_table(axes), path)
    return path


def demo_file(path: str | Path, limit: int = 20_000, seed: int = 5) -> Path:
    """A SIM:DEMO market stream (a finished file) of `limit` events."""
    from sq.core import schemas as S
    from sq.venues.sim.venue import SimVenue

    v = SimVenue(["SIM:DEMO"], seed=seed)
    table = pa.Table.from_batches(list(v.market_source(limit=limit).batches()))
    md = dict(table.schema.metadata or {})
    md[S.META_END] = b"ok"
    pq.write_table(table.replace_schema_metadata(md), path)
    return Path(path)


def report_inputs(sq, d: Path) -> dict[str, Path]:
    """Every kind of input `sq report` reads, made by sq itself where it can (in `d`): two
    backtest journals (`bt`, `bt2`: clip 1 and 2), a paper run's journal, a sweep's results
    file (2 parameters), a made-up 3-parameter sweep and a walk-forward fixture."""
    import json as _json

    data = demo_file(d / "demo.parquet")
    out = {"data": data}
    for name, clip in (("bt", "1"), ("bt2", "2")):
        r = sq(["backtest", "-s", "mm", str(data), "--param", f"clip={clip}", "--journal", str(d / name), "--json"])
        assert r.exit_code == 0, r.stderr
        out[name] = d / name
        out[f"{name}_summary"] = _json.loads(r.stdout)
    r = sq(["paper", "-s", "mm", "--from", str(data), "--for", "3s", "--journal", str(d / "paper"), "--json"])
    assert r.exit_code == 0, r.stderr
    out["paper"] = d / "paper"
    r = sq(["backtest", "-s", "mm", str(data), "--sweep", "clip=1,2", "--sweep", "threshold=0.2,0.6,1", "-j", "1", "-o", str(d / "grid.parquet")])
    assert r.exit_code == 0, r.stderr
    out["sweep"] = d / "grid.parquet"
    out["sweep3"] = write_sweep(d / "grid3.parquet", {"clip": [1.0, 2.0, 3.0], "threshold": [0.2, 0.4], "max_position": [5.0, 10.0]})
    out["wfo"] = write_wfo(d / "wfo.parquet")
    return out
