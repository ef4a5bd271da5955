"""The six stream schemas (docs/streams.md), their metadata, and fast batch builders.

Every stream between commands carries `sq.stream` (market, book, bars, orders, fills, pnl),
`sq.schema_version` and, for market, book and bars streams, `sq.instruments` (a JSON map symbol →
{tick_size, lot_size, venue, …}) so a reader never guesses tick sizes. This module is the one
place that knows the canonical column types; `conform` casts foreign or polars-produced data
(which drops metadata and may use string_view/large_string) back to them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa

from sq.core.arrowsetup import keep_pandas_unloaded

keep_pandas_unloaded()

SCHEMA_VERSION = "1"
STREAM_KINDS = ("market", "book", "bars", "orders", "fills", "pnl", "funding")

# market `kind` codes
LEVEL, TRADE, CLEAR, SNAPSHOT_END, TICK = 1, 2, 3, 4, 5
KIND_NAMES = {LEVEL: "level", TRADE: "trade", CLEAR: "clear", SNAPSHOT_END: "snapshot_end", TICK: "tick"}
# `side` codes of every stream (market: bid/ask or the aggressor; orders, fills: our side)
BUY, SELL, NO_SIDE = 1, -1, 0
SIDE_NAMES = {BUY: "buy", SELL: "sell", NO_SIDE: "none"}
LEVEL_SIDE_NAMES = {BUY: "bid", SELL: "ask", NO_SIDE: "none"}  # a book level's side

TS = pa.timestamp("ns", tz="UTC")
SYMBOL = pa.dictionary(pa.int32(), pa.string())

META_STREAM = b"sq.stream"
META_VERSION = b"sq.schema_version"
META_INSTRUMENTS = b"sq.instruments"
META_END = b"sq.end"
META_ROWS = b"sq.rows"
# market streams on a pipe: "1" when every batch ends at the end of a venue message (no message
# spans two batches), so a reader may complete a batch's last message at once instead of
# waiting for the next batch to show it ended (docs/streams.md). Never in files: their readers
# cut batches of their own.
META_WHOLE_MESSAGES = b"sq.whole_messages"


@dataclass(frozen=True)
class Instrument:
    """What a reader needs to know about a symbol: price and size grids, venue, extras."""

    symbol: str
    venue: str
    tick_size: float
    lot_size: float = 1.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = {"tick_size": self.tick_size, "lot_size": self.lot_size, "venue": self.venue}
        d.update(self.extra)
        return d

    @classmethod
    def from_json(cls, symbol: str, d: Mapping[str, Any]) -> "Instrument":
        rest = {k: v for k, v in d.items() if k not in ("tick_size", "lot_size", "venue")}
        return cls(symbol, str(d.get("venue", "")), float(d["tick_size"]), float(d.get("lot_size", 1.0)), rest)


def instruments_to_json(instruments: Mapping[str, Instrument]) -> str:
    return json.dumps({s: i.to_json() for s, i in instruments.items()}, sort_keys=True)


def instruments_from_json(text: str | bytes) -> dict[str, Instrument]:
    raw = json.loads(text)
    return {s: Instrument.from_json(s, d) for s, d in raw.items()}


MARKET_FIELDS = [
    pa.field("ts", TS, nullable=False),
    pa.field("recv_ts", TS, nullable=False),
    pa.field("symbol", SYMBOL, nullable=False),
    pa.field("kind", pa.uint8(), nullable=False),
    pa.field("side", pa.int8(), nullable=False),
    pa.field("price", pa.float64(), nullable=False),
    pa.field("qty", pa.float64(), nullable=False),
    pa.field("orders", pa.int32(), nullable=True),
    pa.field("seq", pa.int64(), nullable=False),
]

# bars: one row per symbol and interval; `ts` is the bar's open (ns UTC). `trades` and `vwap` are
# null where the source has no trade count or notional (candles of some venues); `oi` (open
# interest) is null except for derivatives whose source reports it.
BARS_FIELDS = [
    pa.field("ts", TS, nullable=False),
    pa.field("symbol", SYMBOL, nullable=False),
    pa.field("open", pa.float64(), nullable=False),
    pa.field("high", pa.float64(), nullable=False),
    pa.field("low", pa.float64(), nullable=False),
    pa.field("close", pa.float64(), nullable=False),
    pa.field("volume", pa.float64(), nullable=False),
    pa.field("trades", pa.int64(), nullable=True),
    pa.field("vwap", pa.float64(), nullable=True),
    pa.field("oi", pa.float64(), nullable=True),
]
META_INTERVAL = b"sq.interval"  # bars: the bar interval as written by the producer (1m, 1h, 1d, 500t, 100v …)

ORDERS_FIELDS = [
    pa.field("ts", TS),
    pa.field("symbol", SYMBOL),
    pa.field("client_order_id", pa.string()),
    pa.field("venue_order_id", pa.string()),
    pa.field("event", pa.string()),
    pa.field("side", pa.int8()),
    pa.field("price", pa.float64()),
    pa.field("qty", pa.float64()),
    pa.field("filled_qty", pa.float64()),
    pa.field("leaves_qty", pa.float64()),
    pa.field("reason", pa.string()),
]
ORDER_EVENTS = (
    "new", "accepted", "rejected", "modified", "cancel_sent", "canceled",
    "cancel_rejected", "filled", "partially_filled", "expired", "triggered",
)

FILLS_FIELDS = [
    pa.field("ts", TS),
    pa.field("symbol", SYMBOL),
    pa.field("client_order_id", pa.string()),
    pa.field("venue_order_id", pa.string()),
    pa.field("trade_id", pa.string()),
    pa.field("side", pa.int8()),
    pa.field("price", pa.float64()),
    pa.field("qty", pa.float64()),
    pa.field("fee", pa.float64()),
    pa.field("fee_ccy", pa.string()),
    pa.field("liquidity", pa.string()),
]

PNL_FIELDS = [
    pa.field("ts", TS),
    pa.field("symbol", SYMBOL),
    pa.field("position", pa.float64()),
    pa.field("avg_price", pa.float64()),
    pa.field("realized", pa.float64()),
    pa.field("unrealized", pa.float64()),
    pa.field("total", pa.float64()),
    pa.field("volume", pa.float64()),
    pa.field("mark", pa.float64()),  # the mid the row was marked at (NaN before the symbol's first two-sided book)
]

FUNDING_FIELDS = [  # a perpetual's funding times (docs/funding.md)
    pa.field("ts", TS),
    pa.field("symbol", SYMBOL),
    pa.field("rate", pa.float64()),
    pa.field("mark", pa.float64()),
]

BOOK_FEATURES = ("mid", "spread", "microprice", "imbalance", "last_trade_px", "agg_trade_ratio", "vwap", "volatility")
BOOK_STALE = ("bid_stale_count", "bid_stale_qty", "ask_stale_count", "ask_stale_qty")


def book_fields(depth: int, *, stale: bool = False) -> list[pa.Field]:
    """Columns of the book stream for `depth` levels a side (docs/streams.md).

    None is ever null (an undefined level or feature is NaN), and the schema says so: a Parquet
    writer then stores no definition levels, a tenth of `sq book`'s writing time."""
    def col(name: str, typ: pa.DataType) -> pa.Field:
        return pa.field(name, typ, nullable=False)

    fields = [col("ts", TS), col("symbol", SYMBOL), col("seq", pa.int64())]
    for side in ("bid", "ask"):
        fields += [col(f"{side}_px_{i}", pa.float64()) for i in range(depth)]
        fields += [col(f"{side}_qty_{i}", pa.float64()) for i in range(depth)]
    fields += [col(name, pa.float64()) for name in BOOK_FEATURES]
    if stale:
        fields += [col(name, pa.float64()) for name in BOOK_STALE]
    return fields


def make_schema(
    kind: str,
    fields: list[pa.Field],
    instruments: Mapping[str, Instrument] | None = None,
    extra_metadata: Mapping[str, str] | None = None,
) -> pa.Schema:
    if kind not in STREAM_KINDS:
        raise ValueError(f"unknown stream kind {kind!r}")
    md = {META_STREAM: kind.encode(), META_VERSION: SCHEMA_VERSION.encode()}
    if instruments is not None:
        md[META_INSTRUMENTS] = instruments_to_json(instruments).encode()
    for k, v in (extra_metadata or {}).items():
        md[k.encode()] = v.encode()
    return pa.schema(fields, metadata=md)


def market_schema(instruments: Mapping[str, Instrument], extra_fields: Iterable[pa.Field] = ()) -> pa.Schema:
    return make_schema("market", MARKET_FIELDS + list(extra_fields), instruments)


def book_schema(depth: int, instruments: Mapping[str, Instrument], *, stale: bool = False) -> pa.Schema:
    return make_schema("book", book_fields(depth, stale=stale), instruments)


def bars_schema(instruments: Mapping[str, Instrument], interval: str) -> pa.Schema:
    return make_schema("bars", BARS_FIELDS, instruments, {META_INTERVAL.decode(): interval})


def bars_interval(schema: pa.Schema) -> str | None:
    v = (schema.metadata or {}).get(META_INTERVAL)
    return v.decode() if v else None


def orders_schema() -> pa.Schema:
    return make_schema("orders", ORDERS_FIELDS)


def fills_schema() -> pa.Schema:
    return make_schema("fills", FILLS_FIELDS)


def pnl_schema() -> pa.Schema:
    return make_schema("pnl", PNL_FIELDS)


def stream_kind(schema: pa.Schema) -> str | None:
    md = schema.metadata or {}
    v = md.get(META_STREAM)
    return v.decode() if v else None


def schema_instruments(schema: pa.Schema) -> dict[str, Instrument]:
    md = schema.metadata or {}
    raw = md.get(META_INSTRUMENTS)
    return instruments_from_json(raw) if raw else {}


def symbol_dictionary(symbols: Iterable[str]) -> pa.Array:
    """The dictionary array for a stream's symbol column; reuse one per stream for every batch."""
    return pa.array(list(symbols), type=pa.string())


def numpy_column(values: np.ndarray, dtype, type: pa.DataType) -> pa.Array:
    """A NumPy array (converted to `dtype` and made contiguous if it is not) as an Arrow array of
    `type` without nulls, zero-copy: ~1 µs where `pa.array` takes several (most of the cost of
    the small batches of a live stream)."""
    a = np.ascontiguousarray(values, dtype=dtype)
    return pa.Array.from_buffers(type, len(a), [None, pa.py_buffer(a)])


def dict_column(codes: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(numpy_column(codes, np.int32, pa.int32()), dictionary)


def market_batch(
    schema: pa.Schema,
    dictionary: pa.Array,
    ts: np.ndarray,
    recv_ts: np.ndarray,
    symbol: np.ndarray,
    kind: np.ndarray,
    side: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    seq: np.ndarray,
    orders: np.ndarray | None = None,
) -> pa.RecordBatch:
    """Build a market batch from NumPy arrays (no per-row Python objects).

    `orders` may be None (all null) or an int32 array where negative values mean null.
    """
    n = len(ts)
    if orders is None:
        orders_arr = pa.nulls(n, type=pa.int32())
    else:
        o = np.asarray(orders, dtype=np.int32)
        neg = o < 0
        orders_arr = pa.array(o, mask=neg, type=pa.int32()) if neg.any() else numpy_column(o, np.int32, pa.int32())
    cols = [
        numpy_column(ts, np.int64, TS),
        numpy_column(recv_ts, np.int64, TS),
        dict_column(symbol, dictionary),
        numpy_column(kind, np.uint8, pa.uint8()),
        numpy_column(side, np.int8, pa.int8()),
        numpy_column(price, np.float64, pa.float64()),
        numpy_column(qty, np.float64, pa.float64()),
        orders_arr,
        numpy_column(seq, np.int64, pa.int64()),
    ]
    cols += [pa.nulls(n, type=schema.field(i).type) for i in range(len(cols), len(schema))]
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def int64_view(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Timestamps (or any 64-bit column) as an int64 NumPy array without copying where possible."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    return arr.view(pa.int64()).to_numpy(zero_copy_only=False)


_CANONICAL = {
    "market": MARKET_FIELDS,
    "bars": BARS_FIELDS,
    "orders": ORDERS_FIELDS,
    "fills": FILLS_FIELDS,
    "pnl": PNL_FIELDS,
    "funding": FUNDING_FIELDS,
}


def canonical_fields(kind: str) -> list[pa.Field] | None:
    return _CANONICAL.get(kind)


def guess_kind(schema: pa.Schema) -> str | None:
    """Infer the stream kind of a foreign (non-sq) schema from its columns."""
    names = set(schema.names)
    if {"kind", "side", "price", "qty", "symbol", "ts"} <= names:
        return "market"
    if {"bid_px_0", "ask_px_0", "symbol", "ts"} <= names:
        return "book"
    if {"open", "high", "low", "close", "volume", "symbol", "ts"} <= names:
        return "bars"
    if {"client_order_id", "event"} <= names:
        return "orders"
    if {"trade_id", "liquidity"} <= names:
        return "fills"
    if {"position", "realized", "unrealized"} <= names:
        return "pnl"
    return None


def conform(batch: pa.RecordBatch, kind: str, target: pa.Schema) -> pa.RecordBatch:
    """Cast a batch to the canonical column types of `target`, keeping extra columns.

    Raises KeyError naming the first required column that is missing, and pyarrow errors on
    columns that cannot be cast (callers turn both into exit 65).
    """
    if batch.schema.equals(target, check_metadata=False):  # already canonical: every batch of an sq stream
        return batch if batch.schema.metadata == target.metadata else batch.replace_schema_metadata(target.metadata)
    required = {f.name for f in (_CANONICAL.get(kind) or [])}
    cols = []
    fields = []
    for f in target:
        if f.name not in batch.schema.names:
            if f.name in required and not f.nullable:
                raise KeyError(f.name)
            cols.append(pa.nulls(batch.num_rows, type=f.type))
            fields.append(f)
            continue
        col = batch.column(f.name)
        if not col.type.equals(f.type):
            if pa.types.is_dictionary(f.type) and not pa.types.is_dictionary(col.type):
                col = col.cast(pa.string()).dictionary_encode()
                col = col.cast(f.type)
            elif pa.types.is_dictionary(f.type) and pa.types.is_dictionary(col.type):
                col = col.cast(pa.string()).dictionary_encode().cast(f.type)
            elif pa.types.is_timestamp(f.type) and pa.types.is_timestamp(col.type):
                col = col.cast(f.type)
            else:
                col = col.cast(f.type)
        cols.append(col)
        fields.append(f)
    for name in batch.schema.names:
        if name not in target.names:
            cols.append(batch.column(name))
            fields.append(batch.schema.field(name))
    return pa.RecordBatch.from_arrays(cols, schema=pa.schema(fields, metadata=target.metadata))
