"""Any CSV or Parquet file whose columns are named by a mapping (`--map ts=time,price=px`).

The mapping names, for each of sq's fields, the file's column that holds it; a field left out
is looked for under its own name. Which fields are there decides what the rows are:

* bars — `open`, `high`, `low`, `close` (with `ts` the bar's open, `volume`; optional `trades`,
  `vwap`, `oi`): the bars stream, its interval from `--interval` or the commonest step between
  bars;
* quotes — `bid_price`/`ask_price` (with `bid_qty`, `ask_qty`): one top-of-book snapshot per row;
* trades — otherwise: `ts`, `price`, `qty`, and the aggressor from `side` (buy/sell, b/s, 1/−1;
  empty or 0 unknown) or `buyer_maker` (true: the seller was the aggressor, as in Binance's
  `is_buyer_maker`).

`recv_ts` defaults to `ts`. Times are converted by `sq.core.importers.timestamps` (the unit from
`--ts-unit` or detected). A mapping that is not `FIELD=COLUMN` or names an unknown field is a
usage error (2); a mapped column the file does not have, or a field that is needed and cannot be
found, is a data error (65) listing the file's columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import polars as pl
import pyarrow as pa

from sq.core import schemas as S
from sq.core.exits import DataError, UsageError
from sq.core.importers.files import columns_of, read_frame
from sq.core.importers.rows import Parsed, snapshot_rows, trade_rows
from sq.core.importers.timestamps import epoch_ns

TRADE_FIELDS = ("ts", "recv_ts", "price", "qty", "side", "buyer_maker")
QUOTE_FIELDS = ("ts", "recv_ts", "bid_price", "bid_qty", "ask_price", "ask_qty")
BAR_FIELDS = ("ts", "open", "high", "low", "close", "volume", "trades", "vwap", "oi")
FIELDS = tuple(dict.fromkeys(TRADE_FIELDS + QUOTE_FIELDS + BAR_FIELDS))
REQUIRED = {"trades": ("ts", "price", "qty"), "quotes": ("ts", "bid_price", "bid_qty", "ask_price", "ask_qty"),
            "bars": ("ts", "open", "high", "low", "close", "volume")}
SIDE_WORDS = {"buy": 1, "b": 1, "bid": 1, "1": 1, "+1": 1, "1.0": 1, "sell": -1, "s": -1, "ask": -1, "-1": -1, "-1.0": -1,
              "0": 0, "0.0": 0, "": 0, "unknown": 0}
TRUTH = {"true": True, "t": True, "1": True, "yes": True, "false": False, "f": False, "0": False, "no": False}
INTERVAL_UNITS = ((86_400_000_000_000, "d"), (3_600_000_000_000, "h"), (60_000_000_000, "m"), (1_000_000_000, "s"),
                  (1_000_000, "ms"), (1, "ns"))


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """`["ts=time,price=px", "qty=size"]` → {field: column}; bad syntax or fields are usage errors."""
    out: dict[str, str] = {}
    for item in items:
        for part in str(item).split(","):
            if not part.strip():
                continue
            field, sep, column = part.partition("=")
            field, column = field.strip().lower(), column.strip()
            if not sep or not field or not column:
                raise UsageError(f"--map {part.strip()!r}: write FIELD=COLUMN (e.g. --map ts=time,price=px)")
            if field not in FIELDS:
                raise UsageError(f"--map {part.strip()!r}: unknown field {field!r} (known: {', '.join(FIELDS)})")
            if field in out and out[field] != column:
                raise UsageError(f"--map gives {field} twice ({out[field]!r} and {column!r})")
            out[field] = column
    return out


def resolve(path: Path, mapping: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """(shape, {field: column}) for this file: which fields it has and where; DataError when a
    mapped column is missing or a needed field cannot be found."""
    columns = columns_of(path)
    present = set(columns)
    shown = ", ".join(columns[:20]) + (", …" if len(columns) > 20 else "")
    for field, column in mapping.items():
        if column not in present:
            raise DataError(f"{path}: --map {field}={column}: the file has no column {column!r} (its columns: {shown})")
    found = {f: mapping.get(f, f) for f in FIELDS if f in mapping or f in present}
    if any(f in found for f in ("open", "high", "low", "close")):
        shape = "bars"
    elif "bid_price" in found or "ask_price" in found:
        shape = "quotes"
    else:
        shape = "trades"
    missing = [f for f in REQUIRED[shape] if f not in found]
    if missing:
        hint = " ".join(f"--map {f}=COLUMN" for f in missing)
        raise DataError(f"{path}: no column for {', '.join(missing)} of {shape} rows; name it with {hint} (its columns: {shown})")
    return shape, found


def parse(path: Path, mapping: Mapping[str, str], *, ts_unit: str | None = None, interval: str | None = None) -> Parsed:
    """Read one mapped file into market (trades, quotes) or bars rows."""
    shape, found = resolve(path, mapping)
    fields = [f for f in found if f in {"trades": TRADE_FIELDS, "quotes": QUOTE_FIELDS, "bars": BAR_FIELDS}[shape]]
    columns = list(dict.fromkeys(found[f] for f in fields))
    df = read_frame(path, columns=columns)
    where = str(path)
    ts = epoch_ns(df.get_column(found["ts"]), unit=ts_unit, column=found["ts"], where=where)
    recv = ts if "recv_ts" not in fields else epoch_ns(df.get_column(found["recv_ts"]), unit=ts_unit, column=found["recv_ts"], where=where)

    def floats(field: str) -> np.ndarray:
        return _numbers(df.get_column(found[field]), found[field], where)

    if shape == "trades":
        side = _side(df, found, where)
        parsed = trade_rows(ts, recv, side, floats("price"), floats("qty"), where)
    elif shape == "quotes":
        def level(field: str) -> np.ndarray:
            return floats(field).reshape(-1, 1) if field in fields else np.full((df.height, 1), np.nan)

        parsed = snapshot_rows(ts, recv, level("bid_price"), level("bid_qty"), level("ask_price"), level("ask_qty"), where)
    else:
        parsed = _bars(df, found, ts, where, interval)
    parsed.label = shape
    return parsed


def _numbers(series: pl.Series, column: str, where: str) -> np.ndarray:
    try:
        return series.cast(pl.Float64).to_numpy()
    except pl.exceptions.PolarsError:
        raise DataError(f"{where}: column {column!r} holds values that are not numbers") from None


def _side(df: pl.DataFrame, found: Mapping[str, str], where: str) -> np.ndarray:
    """The aggressor side per row from `side` or `buyer_maker`; 0 (unknown) without either."""
    if "side" in found:
        col = df.get_column(found["side"])
        if col.dtype.is_numeric() and not col.is_null().any():
            side = col.cast(pl.Float64).to_numpy()
            bad = (side != 1) & (side != -1) & (side != 0)
            if bad.any():
                row = int(np.argmax(bad))
                raise DataError(f"{where}: data row {row + 1}: side {side[row]!r} is not 1 (buy), -1 (sell) or 0")
            return side.astype(np.int8)
        raw = col.cast(pl.String).fill_null("").str.strip_chars().str.to_lowercase()
        words = raw.replace_strict(SIDE_WORDS, default=None, return_dtype=pl.Int8)
        if words.null_count():
            row = int(words.is_null().arg_max())
            raise DataError(f"{where}: data row {row + 1}: side {raw[row]!r} is not buy/sell, b/s, bid/ask or 1/-1")
        return words.to_numpy()
    if "buyer_maker" in found:
        col = df.get_column(found["buyer_maker"])
        if col.dtype != pl.Boolean or col.null_count():
            raw = col.cast(pl.String).str.strip_chars().str.to_lowercase()
            col = raw.replace_strict(TRUTH, default=None, return_dtype=pl.Boolean)
            if col.null_count():
                row = int(col.is_null().arg_max())
                raise DataError(f"{where}: data row {row + 1}: buyer_maker {raw[row]!r} is not true/false")
        return np.where(col.to_numpy(), -1, 1).astype(np.int8)
    return np.zeros(df.height, dtype=np.int8)


def _bars(df: pl.DataFrame, found: Mapping[str, str], ts: np.ndarray, where: str, interval: str | None) -> Parsed:
    cols = [pa.array(ts).view(S.TS)]
    for field in ("open", "high", "low", "close", "volume"):
        v = _numbers(df.get_column(found[field]), found[field], where)
        bad = ~np.isfinite(v) | (v < 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{where}: data row {row + 1}: {field} {float(v[row])!r} is not a finite non-negative number")
        cols.append(pa.array(v))
    for field, typ in (("trades", pa.int64()), ("vwap", pa.float64()), ("oi", pa.float64())):
        if field in found:
            try:
                cols.append(df.get_column(found[field]).cast(pl.Int64 if field == "trades" else pl.Float64).to_arrow().cast(typ))
            except pl.exceptions.PolarsError:
                raise DataError(f"{where}: column {found[field]!r} ({field}) holds values that are not numbers") from None
        else:
            cols.append(pa.nulls(len(ts), type=typ))
    fields = [f for f in S.BARS_FIELDS if f.name != "symbol"]
    table = pa.Table.from_arrays(cols, schema=pa.schema(fields))
    return Parsed("bars", table, len(ts), interval or infer_interval(ts, where))


def infer_interval(ts: np.ndarray, where: str) -> str:
    """The bar interval as the commonest step between distinct bar times (`1m`, `1h`, `1d` …)."""
    steps = np.diff(np.unique(ts))
    if len(steps) == 0:
        raise DataError(f"{where}: one bar time only: cannot tell the bar interval; give --interval (e.g. 1m)")
    values, counts = np.unique(steps, return_counts=True)
    step = int(values[np.argmax(counts)])
    for unit_ns, unit in INTERVAL_UNITS:
        if step % unit_ns == 0:
            return f"{step // unit_ns}{unit}"
    return f"{step}ns"  # pragma: no cover - the ns unit always divides
