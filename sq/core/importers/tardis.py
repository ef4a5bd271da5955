"""Tardis.dev's downloadable CSV files → market rows.

Every Tardis CSV starts with `exchange,symbol,timestamp,local_timestamp`: the exchange's time
and the time Tardis received the message, both in microseconds since the epoch (`timestamp`
falls back to `local_timestamp` where the exchange gives none). They become `ts` and `recv_ts`.

* `incremental_book_L2` (`is_snapshot,side,price,amount`): one `level` row per source row (side
  bid +1, ask −1; amount 0 deletes the level). Tardis's rule for snapshots: when a snapshot row
  follows a non-snapshot row the book starts over — so each run of `is_snapshot=true` rows is one
  message `clear` + levels + `snapshot_end`; other rows group into one message per
  (timestamp, local_timestamp).
* `trades` (`id,side,price,amount`): one `trade` row per trade, side the aggressor's
  (buy +1, sell −1, unknown 0).
* `quotes` (`ask_amount,ask_price,bid_price,bid_amount`): each quote is a top-of-book snapshot
  `clear` + bid + ask + `snapshot_end` (an empty side is left out).
* `book_snapshot_25` / `book_snapshot_5` (`asks[i].price,asks[i].amount,bids[i].price,…`): each row
  a snapshot of that many levels a side, the same way.

A file of a whole exchange (several symbols in its `symbol` column) keeps only the rows of the
symbol imported (its name after the prefix: `BINANCE-FUT:BTCUSDT` → `BTCUSDT`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from sq.core.exits import DataError
from sq.core.importers.files import read_frame
from sq.core.importers.rows import Parsed, level_rows, snapshot_rows, trade_rows
from sq.core.importers.timestamps import epoch_ns

COMMON = ("exchange", "symbol", "timestamp", "local_timestamp")
TIMES = {"timestamp": pl.Int64, "local_timestamp": pl.Int64}
L2_COLUMNS = COMMON + ("is_snapshot", "side", "price", "amount")
TRADE_COLUMNS = COMMON + ("id", "side", "price", "amount")
QUOTE_COLUMNS = COMMON + ("ask_amount", "ask_price", "bid_price", "bid_amount")
L2_SIDES = {"bid": 1, "ask": -1}
TRADE_SIDES = {"buy": 1, "sell": -1, "unknown": 0}


def snapshot_columns(depth: int) -> tuple[str, ...]:
    """The columns of a `book_snapshot_<depth>` file, in Tardis's order."""
    cols = []
    for i in range(depth):
        cols += [f"asks[{i}].price", f"asks[{i}].amount", f"bids[{i}].price", f"bids[{i}].amount"]
    return COMMON + tuple(cols)


def _frame(path: Path, columns: tuple[str, ...], dtypes: dict, symbol: str) -> pl.DataFrame:
    """The file's `columns` (without `exchange`), narrowed to `symbol` when it holds several."""
    wanted = [c for c in columns if c != "exchange"]
    df = read_frame(path, columns=wanted, dtypes={**TIMES, **dtypes})
    names = df.get_column("symbol").unique(maintain_order=True)
    if len(names) > 1:
        df = df.filter(pl.col("symbol") == symbol)
        if df.height == 0:
            shown = ", ".join(str(n) for n in names.head(10).to_list())
            raise DataError(f"{path}: holds several symbols ({shown}{', …' if len(names) > 10 else ''}) and none is {symbol!r}")
    return df


def _times(df: pl.DataFrame, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(ts, recv_ts) in ns from Tardis's microsecond columns."""
    recv = epoch_ns(df.get_column("local_timestamp"), unit="us", column="local_timestamp", where=where)
    exch = df.get_column("timestamp").fill_null(df.get_column("local_timestamp"))
    return epoch_ns(exch, unit="us", column="timestamp", where=where), recv


def _sides(series: pl.Series, codes: dict[str, int], where: str) -> np.ndarray:
    """Side words → +1/−1/0; an unknown word is a DataError naming it and its row."""
    mapped = series.str.to_lowercase().replace_strict(codes, default=None, return_dtype=pl.Int8)
    if mapped.null_count():
        row = int(mapped.is_null().arg_max())
        raise DataError(f"{where}: data row {row + 1}: side {series[row]!r} is not one of {', '.join(codes)}")
    return mapped.to_numpy()


def _floats(df: pl.DataFrame, name: str) -> np.ndarray:
    return df.get_column(name).cast(pl.Float64).to_numpy()


def parse_incremental_book_l2(path: Path, symbol: str) -> Parsed:
    where = str(path)
    df = _frame(path, L2_COLUMNS, {"is_snapshot": pl.Boolean, "side": pl.String, "price": pl.Float64, "amount": pl.Float64}, symbol)
    ts, recv = _times(df, where)
    snap = df.get_column("is_snapshot")
    if snap.null_count():
        raise DataError(f"{where}: data row {int(snap.is_null().arg_max()) + 1}: is_snapshot is empty")
    side = _sides(df.get_column("side"), L2_SIDES, where)
    return level_rows(ts, recv, snap.to_numpy(), side, _floats(df, "price"), _floats(df, "amount"), where)


def parse_trades(path: Path, symbol: str) -> Parsed:
    where = str(path)
    df = _frame(path, TRADE_COLUMNS, {"id": pl.String, "side": pl.String, "price": pl.Float64, "amount": pl.Float64}, symbol)
    ts, recv = _times(df, where)
    side = _sides(df.get_column("side"), TRADE_SIDES, where)
    return trade_rows(ts, recv, side, _floats(df, "price"), _floats(df, "amount"), where)


def parse_quotes(path: Path, symbol: str) -> Parsed:
    where = str(path)
    df = _frame(path, QUOTE_COLUMNS, {c: pl.Float64 for c in QUOTE_COLUMNS[4:]}, symbol)
    ts, recv = _times(df, where)

    def col(name: str) -> np.ndarray:
        return _floats(df, name).reshape(-1, 1)

    return snapshot_rows(ts, recv, col("bid_price"), col("bid_amount"), col("ask_price"), col("ask_amount"), where)


def parse_book_snapshot(path: Path, symbol: str, depth: int) -> Parsed:
    where = str(path)
    columns = snapshot_columns(depth)
    df = _frame(path, columns, {c: pl.Float64 for c in columns[4:]}, symbol)
    ts, recv = _times(df, where)

    def grid(side: str, field: str) -> np.ndarray:
        return np.column_stack([_floats(df, f"{side}[{i}].{field}") for i in range(depth)]) if depth else np.zeros((df.height, 0))

    return snapshot_rows(ts, recv, grid("bids", "price"), grid("bids", "amount"), grid("asks", "price"), grid("asks", "amount"), where)
