"""Binance's public data archive files (data.binance.vision daily CSVs, zipped) → sq tables.

    read_archive(data, *, name, symbol, market, kind, interval=None) -> pyarrow.Table

`data` is a `.zip` as downloaded (one CSV inside) or a bare `.csv`. The kinds and their columns:

    trades      id, price, qty, quote_qty, time, is_buyer_maker[, is_best_match]
    aggTrades   agg_trade_id, price, qty, first_trade_id, last_trade_id, time, is_buyer_maker[, is_best_match]
    bookTicker  update_id, best_bid_price, best_bid_qty, best_ask_price, best_ask_qty, transaction_time, event_time
    klines      open_time, open, high, low, close, volume, close_time, quote_volume, count,
                taker_buy_volume, taker_buy_quote_volume, ignore

Nothing about a file's dialect is assumed, it is detected: a header row (futures files have one,
spot files do not) is a first row whose first field is not a number, and the unit of every time
column (spot files from 2025-01-01 on are in microseconds, older and futures files in
milliseconds) comes from the values' magnitude. A file that fits none of this is a DataError
naming it and the problem.

Rows become:
* trades, aggTrades → the market schema: one `trade` row per line, `side` the aggressor (+1 when
  the buyer was not the maker), `ts` = `recv_ts` = trade time (ns), `seq` = the (aggregate) trade id;
* bookTicker → the market schema the way sq writes any top-N venue's snapshot: per update a
  `clear`, the best bid and best ask `level` rows and a `snapshot_end`, all four sharing the
  update id as `seq`; `ts` = transaction time, `recv_ts` = event time. `sq book` rebuilds the top
  of book from them (the instrument's `depth_view` = 1 tells it the venue shows one level);
* klines → the bars schema (`ts` = open time, `trades` = count, `vwap` = quote volume / volume
  where volume > 0, `oi` null) with `sq.interval` metadata.

The schema carries `sq.stream` (and `sq.interval` for bars) but no instruments: the caller adds
them (it knows the venue's tick sizes). Parsing is pyarrow's CSV reader over the zip member as a
stream; the rows are built with NumPy, never a Python loop per row.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from sq.core import schemas as S
from sq.core.exits import DataError

KINDS = ("trades", "aggTrades", "bookTicker", "klines")

# per kind: the column counts a file may have, and the columns read (position → role)
_LAYOUT = {
    "trades": ((6, 7), {0: "id", 1: "price", 2: "qty", 4: "time", 5: "buyer_maker"}),
    "aggTrades": ((7, 8), {0: "id", 1: "price", 2: "qty", 5: "time", 6: "buyer_maker"}),
    "bookTicker": ((7,), {0: "update_id", 1: "bid_px", 2: "bid_qty", 3: "ask_px", 4: "ask_qty", 5: "time", 6: "event_time"}),
    "klines": ((12,), {0: "time", 1: "open", 2: "high", 3: "low", 4: "close", 5: "volume", 7: "quote_volume", 8: "count"}),
}
_TYPES = {"id": pa.int64(), "update_id": pa.int64(), "time": pa.int64(), "event_time": pa.int64(), "count": pa.int64(),
          "buyer_maker": pa.bool_()}

# time units by magnitude: milliseconds since 1973 .. 5138, microseconds since 1973 .. 5138
_MS_RANGE = (10**11, 10**14)
_US_RANGE = (10**14, 10**17)

_MARKET_SCHEMA = S.make_schema("market", S.MARKET_FIELDS)


def read_archive(data: bytes, *, name: str, symbol: str, market: str, kind: str, interval: str | None = None) -> pa.Table:
    """One archive file (zip or bare CSV bytes) of `kind` as a market or bars table for `symbol`
    (the canonical name written in the `symbol` column). `market` (spot, futures) only names the
    file in messages: the layout is detected. DataError naming `name` when it is not such a file."""
    if kind not in _LAYOUT:
        raise ValueError(f"unknown archive kind {kind!r}")
    if kind == "klines" and not interval:
        raise ValueError("klines need their interval")
    columns = _read_columns(data, name, kind, market)
    return build_table(columns, name=name, symbol=symbol, kind=kind, interval=interval)


def build_table(columns: dict[str, np.ndarray], *, name: str, symbol: str, kind: str, interval: str | None = None) -> pa.Table:
    """The table of `kind` from its columns by role (as `_LAYOUT` names them; times in the file's
    unit, detected here). Shared by the archive reader and the REST history, so both give the
    same rows for the same trades."""
    if kind == "klines":
        return _bars_table(columns, name, symbol, interval or "")
    if kind == "bookTicker":
        return _book_ticker_table(columns, name, symbol)
    return _trades_table(columns, name, symbol)


def to_ns(values: np.ndarray, *, name: str, column: str) -> np.ndarray:
    """Millisecond or microsecond epoch times → int64 ns, the unit told by the magnitude of the
    whole column (it must be one unit); DataError naming the file otherwise."""
    values = np.asarray(values, dtype=np.int64)
    if len(values) == 0:
        return values
    lo, hi = int(values.min()), int(values.max())
    if _MS_RANGE[0] <= lo and hi < _MS_RANGE[1]:
        return values * 1_000_000
    if _US_RANGE[0] <= lo and hi < _US_RANGE[1]:
        return values * 1_000
    raise DataError(f"{name}: the {column} column holds neither millisecond nor microsecond epoch times (from {lo} to {hi})")


# ----------------------------------------------------------------------------------------------
# reading


def _read_columns(data: bytes, name: str, kind: str, market: str) -> dict[str, np.ndarray]:
    try:
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                member = _csv_member(zf, name)
                with zf.open(member) as head:
                    first = head.readline()
                with zf.open(member) as stream:
                    return _parse(stream, first, name, kind, market)
        return _parse(io.BytesIO(data), data.split(b"\n", 1)[0], name, kind, market)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise DataError(f"{name}: broken zip file: {e}") from None


def _csv_member(zf: zipfile.ZipFile, name: str) -> str:
    members = [i.filename for i in zf.infolist() if i.filename.lower().endswith(".csv")]
    if len(members) != 1:
        raise DataError(f"{name}: expected one CSV file in the zip, found {len(members)}")
    return members[0]


def _parse(stream: IO[bytes], first: bytes, name: str, kind: str, market: str) -> dict[str, np.ndarray]:
    counts, roles = _LAYOUT[kind]
    first = first.strip(b"\r\n")
    if not first.strip():
        return {role: np.empty(0, dtype=_numpy_type(role)) for role in roles.values()}
    fields = first.split(b",")
    if len(fields) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise DataError(f"{name}: not a Binance {market} {kind} file: {len(fields)} columns, expected {want}")
    header = not _is_number(fields[0])
    names = [f"c{i}" for i in range(len(fields))]
    include = [f"c{i}" for i in roles]
    types = {f"c{i}": _TYPES.get(role, pa.float64()) for i, role in roles.items()}
    try:
        table = pa_csv.read_csv(
            stream,
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1 if header else 0, block_size=1 << 22),
            convert_options=pa_csv.ConvertOptions(column_types=types, include_columns=include),
        )
    except pa.ArrowInvalid as e:
        raise DataError(f"{name}: not a Binance {market} {kind} file: {_first_line(e)}") from None
    out = {}
    for i, role in roles.items():
        col = table.column(f"c{i}")
        if col.null_count:
            raise DataError(f"{name}: {col.null_count} empty values in column {i + 1} ({role})")
        out[role] = col.to_numpy()
    return out


def _numpy_type(role: str) -> type:
    t = _TYPES.get(role, pa.float64())
    return np.bool_ if t == pa.bool_() else np.int64 if t == pa.int64() else np.float64


def _is_number(text: bytes) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# ----------------------------------------------------------------------------------------------
# building sq tables


def _symbol_codes(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.int32)


def _trades_table(c: dict[str, np.ndarray], name: str, symbol: str) -> pa.Table:
    n = len(c["id"])
    ts = to_ns(c["time"], name=name, column="trade time")
    side = np.where(np.asarray(c["buyer_maker"], dtype=bool), -1, 1).astype(np.int8)
    batch = S.market_batch(
        _MARKET_SCHEMA, S.symbol_dictionary([symbol]), ts, ts, _symbol_codes(n), np.full(n, S.TRADE, np.uint8), side,
        c["price"], c["qty"], c["id"],
    )
    return pa.Table.from_batches([batch], schema=_MARKET_SCHEMA)


def _book_ticker_table(c: dict[str, np.ndarray], name: str, symbol: str) -> pa.Table:
    """Four rows per update (clear, bid level, ask level, snapshot end), one seq."""
    n = len(c["update_id"])
    ts = np.repeat(to_ns(c["time"], name=name, column="transaction time"), 4)
    recv = np.repeat(to_ns(c["event_time"], name=name, column="event time"), 4)
    kind = np.tile(np.array([S.CLEAR, S.LEVEL, S.LEVEL, S.SNAPSHOT_END], np.uint8), n)
    side = np.tile(np.array([0, 1, -1, 0], np.int8), n)
    zero = np.zeros(n)
    price = np.column_stack([zero, c["bid_px"], c["ask_px"], zero]).ravel()
    qty = np.column_stack([zero, c["bid_qty"], c["ask_qty"], zero]).ravel()
    seq = np.repeat(np.asarray(c["update_id"], np.int64), 4)
    batch = S.market_batch(_MARKET_SCHEMA, S.symbol_dictionary([symbol]), ts, recv, _symbol_codes(4 * n), kind, side, price, qty, seq)
    return pa.Table.from_batches([batch], schema=_MARKET_SCHEMA)


def _bars_table(c: dict[str, np.ndarray], name: str, symbol: str, interval: str) -> pa.Table:
    n = len(c["time"])
    schema = S.make_schema("bars", S.BARS_FIELDS, None, {S.META_INTERVAL.decode(): interval})
    volume = np.asarray(c["volume"], np.float64)
    quote = np.asarray(c["quote_volume"], np.float64)
    traded = volume > 0
    vwap = np.divide(quote, volume, out=np.zeros(n), where=traded)
    cols = [
        pa.array(to_ns(c["time"], name=name, column="open time"), type=pa.int64()).view(S.TS),
        S.dict_column(_symbol_codes(n), S.symbol_dictionary([symbol])),
        *(pa.array(np.asarray(c[k], np.float64)) for k in ("open", "high", "low", "close")),
        pa.array(volume),
        pa.array(np.asarray(c["count"], np.int64)),
        pa.array(vwap, mask=~traded),
        pa.nulls(n, type=pa.float64()),
    ]
    return pa.Table.from_arrays(cols, schema=schema)
