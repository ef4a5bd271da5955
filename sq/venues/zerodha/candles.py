"""Kite candle answers → `bars` tables, one per IST date (no network here).

Kite's historical API answers `{"status": "success", "data": {"candles": [[ts, o, h, l, c, v(, oi)],
…]}}` where `ts` is the candle's open as ISO 8601 with the IST offset (`2017-12-15T09:15:00+0530`;
a day candle is stamped 00:00 of its date). The candles become the columns of the bars schema in
one pass of NumPy/pyarrow conversions: `ts` in ns UTC, the symbol's canonical name, o/h/l/c and
volume as floats, `trades` and `vwap` null (Kite has neither), `oi` when it was asked for.
`by_ist_day` then cuts that table into zero-copy slices, one per IST date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sq.core.exits import DataError
from sq.core.schemas import TS, dict_column, int64_view, symbol_dictionary

TS_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
IST_OFFSET_NS = (5 * 3600 + 30 * 60) * 1_000_000_000
NS_PER_DAY = 86_400_000_000_000
EPOCH = dt.date(1970, 1, 1)
PLAIN_WIDTH, OI_WIDTH = 6, 7  # [ts, o, h, l, c, v] and the same with oi


def candles_of(doc: Any, what: str) -> list:
    """The candle rows of one Kite answer; anything else is a DataError naming `what`."""
    data = doc.get("data") if isinstance(doc, dict) else None
    candles = data.get("candles") if isinstance(data, dict) else None
    if not isinstance(candles, list):
        raise DataError(f"zerodha: {what}: the answer has no candles list")
    return candles


def candles_table(candles: list, symbol: str, schema: pa.Schema, *, oi: bool, what: str) -> pa.Table:
    """The candles as a bars table in `schema`, sorted by `ts`; a malformed row is a DataError."""
    n = len(candles)
    if n == 0:
        return schema.empty_table()
    rows = np.array(candles, dtype=object)
    if rows.ndim != 2 or rows.shape[1] not in (PLAIN_WIDTH, OI_WIDTH):
        raise DataError(f"zerodha: {what}: candles are not rows of [time, open, high, low, close, volume(, oi)]")
    try:
        stamps = pc.strptime(pa.array(rows[:, 0], type=pa.string()), format=TS_FORMAT, unit="ns")
        values = rows[:, 1:].astype(np.float64)
    except (pa.ArrowException, TypeError, ValueError):
        raise DataError(f"zerodha: {what}: a candle has a malformed time or value") from None
    ts = int64_view(stamps)
    order = np.argsort(ts, kind="stable")
    if np.any(order != np.arange(n)):
        ts, values = ts[order], values[order]
    if oi and rows.shape[1] == OI_WIDTH:
        oi_col = pa.array(values[:, 5])
    else:
        oi_col = pa.nulls(n, type=pa.float64())
    columns = [
        pa.array(ts, type=pa.int64()).view(TS),
        dict_column(np.zeros(n, dtype=np.int32), symbol_dictionary([symbol])),
        *(pa.array(values[:, i]) for i in range(5)),
        pa.nulls(n, type=pa.int64()),
        pa.nulls(n, type=pa.float64()),
        oi_col,
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def ist_day_number(day: dt.date) -> int:
    """Days since 1970-01-01 of an IST calendar date (the key `by_ist_day` splits on)."""
    return (day - EPOCH).days


def by_ist_day(table: pa.Table) -> dict[int, pa.Table]:
    """Slices of a ts-sorted bars table, one per IST date (keyed by `ist_day_number`)."""
    if table.num_rows == 0:
        return {}
    days = (int64_view(table.column("ts")) + IST_OFFSET_NS) // NS_PER_DAY
    keys, starts = np.unique(days, return_index=True)
    ends = np.append(starts[1:], len(days))
    return {int(k): table.slice(int(s), int(e - s)) for k, s, e in zip(keys, starts, ends)}
