"""Market rows the way sq's venue parsers write them, built from whole columns at once.

The conventions (docs/streams.md, `sq.core.book`): every venue message is a run of rows sharing
a `seq`; a book snapshot is one message `clear` + its levels + `snapshot_end`; a `level` row sets
the quantity at a price (0 deletes it); a `trade` row's side is the aggressor's (+1 buy, −1 sell,
0 unknown); `clear` and `snapshot_end` rows have side 0, price NaN and qty 0. `ts` is the
exchange's time, `recv_ts` the time the data was received. A file's messages are numbered 1, 2, …
in file order (`seq`; the store lifts them above a base per data type): vendor files carry no
venue update ids that hold across data types.

Each builder takes NumPy columns and returns a `Parsed` table of the market columns without
`symbol` (added when written); no Python loop touches a row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sq.core import schemas as S
from sq.core.exits import DataError

NAN = float("nan")
MARKET_COLUMNS = [f for f in S.MARKET_FIELDS if f.name != "symbol"]


@dataclass
class Parsed:
    """One source file in sq's terms: a market or bars table without its `symbol` column.

    `source_rows` counts the file's data rows used; `interval` is the bar interval (bars only);
    `label` names the dataset file the rows go to (`import-<label>.parquet`).
    """

    stream: str
    table: pa.Table
    source_rows: int
    interval: str | None = None
    label: str = ""


def fit_columns(table: pa.Table, fields: list[pa.Field], what: str) -> pa.Table:
    """`table` with exactly `fields`: each column cast to its type, a missing one all null; a
    column that cannot be cast (pyarrow has no such cast, or a value does not fit) is a data
    error naming `what` (exit 65)."""
    try:
        cols = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
                for f in fields]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise DataError(f"{what}: {str(e).splitlines()[0][:160]}") from None
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def market_table(ts, recv_ts, kind, side, price, qty, seq) -> pa.Table:
    """The market columns (less `symbol`) from NumPy arrays; `orders` is null (vendors omit it)."""
    n = len(ts)
    cols = [
        pa.array(np.asarray(ts, dtype=np.int64)).view(S.TS),
        pa.array(np.asarray(recv_ts, dtype=np.int64)).view(S.TS),
        pa.array(np.asarray(kind, dtype=np.uint8)),
        pa.array(np.asarray(side, dtype=np.int8)),
        pa.array(np.asarray(price, dtype=np.float64)),
        pa.array(np.asarray(qty, dtype=np.float64)),
        pa.nulls(n, type=pa.int32()),
        pa.array(np.asarray(seq, dtype=np.int64)),
    ]
    return pa.Table.from_arrays(cols, schema=pa.schema(MARKET_COLUMNS))


def check_priced(price: np.ndarray, qty: np.ndarray, where: str, what: str = "row") -> None:
    """Prices and quantities must be finite and non-negative (a DataError names the first bad row)."""
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(price) & (price >= 0) & np.isfinite(qty) & (qty >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{where}: data row {i + 1}: {what} price {float(price[i])!r} / amount {float(qty[i])!r} "
                        "is not a finite non-negative number")


def trade_rows(ts, recv_ts, side, price, qty, where: str) -> Parsed:
    """One `trade` row and message per source row."""
    check_priced(price, qty, where, "trade")
    n = len(ts)
    kind = np.full(n, S.TRADE, dtype=np.uint8)
    return Parsed("market", market_table(ts, recv_ts, kind, side, price, qty, np.arange(1, n + 1, dtype=np.int64)), n)


def snapshot_rows(ts, recv_ts, bid_px, bid_qty, ask_px, ask_qty, where: str) -> Parsed:
    """One snapshot message per source row: `clear`, its bids best first, its asks best first,
    `snapshot_end`. The level arrays are (rows, levels); a level whose price and amount are both
    empty (NaN) is absent, one with only one of them is a DataError."""
    n, depth = bid_px.shape
    px = np.concatenate([np.full((n, 1), NAN), bid_px, ask_px, np.full((n, 1), NAN)], axis=1)
    qt = np.concatenate([np.zeros((n, 1)), bid_qty, ask_qty, np.zeros((n, 1))], axis=1)
    have_px, have_qty = np.isfinite(px), np.isfinite(qt)
    levels = slice(1, 1 + 2 * depth)
    half = (have_px[:, levels] != have_qty[:, levels]) | ((px[:, levels] < 0) | (qt[:, levels] < 0))
    if half.any():
        i = int(np.argmax(half.any(axis=1)))
        raise DataError(f"{where}: data row {i + 1}: a book level with a price but no amount (or the reverse, or a negative value)")
    keep = have_px & have_qty
    keep[:, 0] = keep[:, -1] = True
    kinds = np.array([S.CLEAR] + [S.LEVEL] * (2 * depth) + [S.SNAPSHOT_END], dtype=np.uint8)
    sides = np.array([0] + [1] * depth + [-1] * depth + [0], dtype=np.int8)
    per_row = keep.sum(axis=1)
    flat = keep.ravel()
    kind = np.broadcast_to(kinds, keep.shape).ravel()[flat]
    side = np.broadcast_to(sides, keep.shape).ravel()[flat]
    price, qty = px.ravel()[flat], qt.ravel()[flat]
    seq = np.repeat(np.arange(1, n + 1, dtype=np.int64), per_row)
    table = market_table(np.repeat(ts, per_row), np.repeat(recv_ts, per_row), kind, side, price, qty, seq)
    return Parsed("market", table, n)


def level_rows(ts, recv_ts, is_snapshot, side, price, qty, where: str) -> Parsed:
    """Incremental L2 rows: each source row is a `level` row; a run of snapshot rows is one
    message framed by `clear` and `snapshot_end` (the book is rebuilt from it); other rows form
    one message per (ts, recv_ts)."""
    check_priced(price, qty, where, "level")
    n = len(ts)
    if n == 0:
        return Parsed("market", market_table(*([np.zeros(0)] * 7)), 0)
    snap = np.asarray(is_snapshot, dtype=bool)
    prev = np.concatenate([[False], snap[:-1]])
    nxt = np.concatenate([snap[1:], [False]])
    start, end = snap & ~prev, snap & ~nxt
    new_msg = start.copy()
    new_msg[1:] |= ~snap[1:] & (prev[1:] | (ts[1:] != ts[:-1]) | (recv_ts[1:] != recv_ts[:-1]))
    new_msg[0] = True
    msg = np.cumsum(new_msg, dtype=np.int64)
    # where each source row lands once a clear goes before each run and a snapshot_end after it
    pos = np.arange(n, dtype=np.int64) + np.cumsum(start) + np.cumsum(end) - end
    total = n + int(start.sum()) + int(end.sum())
    out_kind = np.empty(total, dtype=np.uint8)
    out_side = np.zeros(total, dtype=np.int8)
    out_px = np.full(total, NAN)
    out_qty = np.zeros(total)
    out_ts = np.empty(total, dtype=np.int64)
    out_recv = np.empty(total, dtype=np.int64)
    out_seq = np.empty(total, dtype=np.int64)
    out_kind[pos], out_side[pos], out_px[pos], out_qty[pos] = S.LEVEL, side, price, qty
    for rows, at, kind in ((start, pos[start] - 1, S.CLEAR), (end, pos[end] + 1, S.SNAPSHOT_END)):
        out_kind[at] = kind
        out_ts[at], out_recv[at], out_seq[at] = ts[rows], recv_ts[rows], msg[rows]
    out_ts[pos], out_recv[pos], out_seq[pos] = ts, recv_ts, msg
    return Parsed("market", market_table(out_ts, out_recv, out_kind, out_side, out_px, out_qty, out_seq), n)
