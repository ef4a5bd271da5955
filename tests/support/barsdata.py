"""Bars for bar-strategy tests: hand-made rows and seeded NSE-like sessions of trending prices."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sq.core import schemas as S

NS_PER_MIN = 60_000_000_000
IST = dt.timedelta(hours=5, minutes=30)
DAY0 = dt.date(2024, 1, 8)  # a Monday
UNIT_MIN = {"1m": 1, "5m": 5, "15m": 15, "1h": 60}


def instruments(symbols, tick: float = 0.05, lot: float = 1.0) -> dict[str, S.Instrument]:
    return {s: S.Instrument(s, "zerodha" if s.startswith(("NSE:", "BSE:", "NFO:")) else s.split(":")[0].lower(), tick, lot)
            for s in symbols}


def bars_batch(rows: list[tuple], interval: str = "1m", *, tick: float = 0.05, lot: float = 1.0) -> pa.RecordBatch:
    """rows: (ts_ns, symbol, open, high, low, close[, volume]) → one bars batch (symbols sorted)."""
    syms = sorted({r[1] for r in rows})
    ins = instruments(syms, tick, lot)
    schema = S.bars_schema(ins, interval)
    idx = {s: i for i, s in enumerate(syms)}
    n = len(rows)
    col = lambda k, default=0.0: pa.array([float(r[k]) if len(r) > k else default for r in rows], pa.float64())  # noqa: E731
    arrays = [pa.array([r[0] for r in rows], pa.int64()).view(S.TS),
              S.dict_column(np.array([idx[r[1]] for r in rows]), S.symbol_dictionary(syms)),
              col(2), col(3), col(4), col(5), col(6, 100.0),
              pa.array([1] * n, pa.int64()), pa.nulls(n, pa.float64()), pa.nulls(n, pa.float64())]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def session_bars(symbols=("NSE:SBIN", "NSE:INFY"), days: int = 6, interval: str = "1m", seed: int = 7,
                 start: float = 500.0, tick: float = 0.05) -> pa.Table:
    """`days` weekdays of NSE sessions (09:15–15:30 IST) of `interval` bars per symbol, in
    (time, symbol) order: a seeded random walk whose drift changes every hour, so trend and
    breakout strategies find trends and reversals."""
    step = UNIT_MIN[interval]
    rng = np.random.default_rng(seed)
    per_day = 375 // step
    rows_ts, rows_sym, o, h, lo, c, v = [], [], [], [], [], [], []
    price = {s: start * (1 + 0.3 * k) for k, s in enumerate(symbols)}
    day, done = DAY0, 0
    while done < days:
        if day.weekday() < 5:
            open_utc = dt.datetime.combine(day, dt.time(9, 15), tzinfo=dt.timezone.utc) - IST
            t0 = int(open_utc.timestamp()) * 1_000_000_000
            drift = {s: 0.0 for s in symbols}
            for i in range(per_day):
                for s in symbols:
                    if (i * step) % 60 == 0:
                        drift[s] = rng.normal(0, 0.0009) * np.sqrt(step)
                    p0 = price[s]
                    path = p0 * np.exp(np.cumsum(drift[s] / 4 + rng.normal(0, 0.0012 * np.sqrt(step) / 2, 4)))
                    q = lambda x: round(round(x / tick) * tick, 10)  # noqa: E731
                    op, cl = q(p0 * (1 + rng.normal(0, 0.0002))), q(path[-1])
                    rows_ts.append(t0 + i * step * NS_PER_MIN)
                    rows_sym.append(s)
                    o.append(op)
                    c.append(cl)
                    h.append(q(max(op, cl, path.max())))
                    lo.append(q(min(op, cl, path.min())))
                    v.append(float(rng.integers(100, 5000)))
                    price[s] = cl
            done += 1
        day += dt.timedelta(days=1)
    syms = sorted(symbols)
    idx = {s: i for i, s in enumerate(syms)}
    schema = S.bars_schema(instruments(syms, tick), interval)
    n = len(rows_ts)
    batch = pa.RecordBatch.from_arrays(
        [pa.array(rows_ts, pa.int64()).view(S.TS), S.dict_column(np.array([idx[s] for s in rows_sym]), S.symbol_dictionary(syms)),
         pa.array(o), pa.array(h), pa.array(lo), pa.array(c), pa.array(v), pa.array(np.ones(n, np.int64)),
         pa.nulls(n, pa.float64()), pa.nulls(n, pa.float64())], schema=schema)
    return pa.Table.from_batches([batch])


def write_bars(table: pa.Table, path: Path) -> str:
    """One Parquet file of bars (the schema's metadata kept: interval, instruments)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return str(path)
