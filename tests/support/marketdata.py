"""Small hand-made market streams for tests (independent of the simulated exchange)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sq.core import schemas as S


def instruments(*symbols: str, tick: float = 0.01, lot: float = 1.0) -> dict[str, S.Instrument]:
    return {s: S.Instrument(s, s.split(":")[0].lower(), tick, lot) for s in symbols}


def market_rows(rows: list[tuple], symbols: list[str] | None = None, tick: float = 0.01) -> pa.RecordBatch:
    """rows: (ts, symbol, kind, side, price, qty, seq) tuples → one market batch."""
    syms = symbols or sorted({r[1] for r in rows})
    ins = instruments(*syms, tick=tick)
    schema = S.market_schema(ins)
    d = S.symbol_dictionary(syms)
    idx = {s: i for i, s in enumerate(syms)}
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    return S.market_batch(
        schema,
        d,
        ts,
        ts + 1000,
        np.array([idx[r[1]] for r in rows], dtype=np.int32),
        np.array([r[2] for r in rows], dtype=np.uint8),
        np.array([r[3] for r in rows], dtype=np.int8),
        np.array([r[4] for r in rows], dtype=np.float64),
        np.array([r[5] for r in rows], dtype=np.float64),
        np.array([r[6] for r in rows], dtype=np.int64),
    )


def simple_book_batch(n_messages: int = 50, symbol: str = "SIM:TEST") -> pa.RecordBatch:
    """A snapshot then `n_messages` one-level updates, deterministic."""
    rows = [(1_000, symbol, S.CLEAR, 0, 0.0, 0.0, 1)]
    for i in range(5):
        rows.append((1_000, symbol, S.LEVEL, 1, 100.0 - 0.01 * (i + 1), 10.0 + i, 1))
        rows.append((1_000, symbol, S.LEVEL, -1, 100.0 + 0.01 * (i + 1), 10.0 + i, 1))
    rows.append((1_000, symbol, S.SNAPSHOT_END, 0, 0.0, 0.0, 1))
    rng = np.random.default_rng(3)
    for m in range(n_messages):
        side = 1 if rng.random() < 0.5 else -1
        lvl = int(rng.integers(1, 6))
        px = round(100.0 - side * 0.01 * lvl, 2)
        rows.append((2_000 + m, symbol, S.LEVEL, side, px, float(rng.integers(0, 30)), 2 + m))
    return market_rows(rows, [symbol])


def _ints_for_times(t):
    """Timestamp columns as int64 ns (pyarrow turns ns timestamps into Python objects only with pandas)."""
    for i, f in enumerate(t.schema):
        if pa.types.is_timestamp(f.type):
            t = t.set_column(i, f.name, t.column(i).cast(pa.int64())) if isinstance(t, pa.Table) else \
                pa.RecordBatch.from_arrays([c.cast(pa.int64()) if j == i else c for j, c in enumerate(t.columns)],
                                           names=t.schema.names)
    return t


def pylist(t) -> list[dict]:
    return _ints_for_times(t).to_pylist()


def pydict(t) -> dict[str, list]:
    return _ints_for_times(t).to_pydict()


def random_market(seed: int, n: int, symbols: tuple[str, ...] = ("SIM:A", "SIM:B", "SIM:C"), *, start_ns: int = 1_717_372_800_000_000_000,
                  mean_gap_ns: int = 200_000_000, level_share: float = 0.3, tick: float = 0.01) -> pa.Table:
    """`n` market rows in time order: trades (integer quantities) and book levels of several
    symbols, each on its own random-walk price, with exponential gaps and now and then a pause
    of minutes to hours (so bars have holes). Deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(mean_gap_ns, n).astype(np.int64)
    pause = rng.random(n) < 0.01
    gaps[pause] += rng.integers(60_000_000_000, 4 * 3_600_000_000_000, int(pause.sum()))
    ts = start_ns + np.cumsum(gaps)
    sym = rng.integers(0, len(symbols), n).astype(np.int32)
    walk = np.zeros(n, dtype=np.int64)
    steps = rng.integers(-2, 3, n)
    for s in range(len(symbols)):  # one walk per symbol (a loop over symbols, not rows)
        mine = sym == s
        walk[mine] = 10_000 + 1_000 * s + np.cumsum(steps[mine])
    is_level = rng.random(n) < level_share
    kind = np.where(is_level, S.LEVEL, S.TRADE).astype(np.uint8)
    side = rng.choice(np.array([1, -1], dtype=np.int8), n)
    offset = rng.integers(1, 4, n)
    ticks = np.where(is_level, walk - side * offset, walk)
    qty = np.where(is_level, rng.integers(0, 50, n), rng.integers(1, 20, n)).astype(np.float64)
    ins = instruments(*symbols, tick=tick)
    schema = S.market_schema(ins)
    batch = S.market_batch(schema, S.symbol_dictionary(list(symbols)), ts, ts + 1_000, sym, kind, side, ticks * tick, qty,
                           np.arange(1, n + 1, dtype=np.int64))
    return pa.Table.from_batches([batch])


def write_daily_dataset(root, table: pa.Table) -> list:
    """Write a market table as the sq dataset layout (`sq.core.datasets`): one `day.parquet` per
    symbol and UTC day, with the stream's metadata. Returns the files written."""
    import pyarrow.compute as pc

    from sq.core import datasets

    ts = table.column("ts").cast(pa.int64()).to_numpy()
    days = ts // datasets.NS_PER_DAY
    symbols = table.column("symbol").cast(pa.string()).to_numpy(zero_copy_only=False)
    md = dict(table.schema.metadata or {})
    md[S.META_END] = b"ok"
    files = []
    for sym in sorted(set(symbols)):
        for day in sorted(set(days[symbols == sym])):
            part = table.filter(pc.and_(pc.equal(table.column("symbol").cast(pa.string()), sym), pa.array(days == day)))
            directory = datasets.partition_dir(root, sym.split(":")[0].lower(), sym, int(day) * datasets.NS_PER_DAY)
            files.append(datasets.write_partition_file(directory, "day.parquet", part.replace_schema_metadata(md)))
    return files


def spread_over_days(table: pa.Table, days: int) -> pa.Table:
    """The same rows with their venue messages shifted onto `days` successive UTC days (the k-th
    of `days` equal runs of messages moved k days later): a multi-day market in time order,
    with every message kept whole."""
    from sq.core import datasets

    seq = table.column("seq").to_numpy()
    message = np.concatenate([[0], np.cumsum(seq[1:] != seq[:-1])])
    shift = (message * days // (message[-1] + 1)).astype(np.int64) * datasets.NS_PER_DAY
    out = table
    for name in ("ts", "recv_ts"):
        moved = pa.array(table.column(name).cast(pa.int64()).to_numpy() + shift).cast(S.TS)
        out = out.set_column(out.schema.get_field_index(name), table.schema.field(name), moved)
    return out.replace_schema_metadata(table.schema.metadata)


def write_market_file(table: pa.Table, path) -> str:
    """A market table as one finished Parquet file (`sq.end = ok` in its metadata); its path."""
    import pyarrow.parquet as pq

    md = dict(table.schema.metadata or {})
    md[S.META_END] = b"ok"
    pq.write_table(table.replace_schema_metadata(md), path)
    return str(path)


IST_OFFSET_NS = 19_800_000_000_000  # UTC+05:30


def ist_ns(day: str, clock: str) -> int:
    """UTC ns of an Indian local time: `ist_ns("2026-01-23", "15:19:30")`."""
    import datetime as dt

    d = dt.date.fromisoformat(day)
    t = dt.time.fromisoformat(clock)
    naive = dt.datetime.combine(d, t).replace(tzinfo=dt.timezone.utc)
    return int(naive.timestamp()) * 1_000_000_000 + t.microsecond * 1000 - IST_OFFSET_NS


def market_table(rows: list[tuple], instruments: dict[str, S.Instrument]) -> pa.Table:
    """rows: (ts, symbol, kind, side, price, qty, seq) tuples → a market table whose metadata
    carries `instruments` (venue, tick and lot size, extras such as circuit limits)."""
    syms = sorted(instruments)
    idx = {s: i for i, s in enumerate(syms)}
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    batch = S.market_batch(S.market_schema(instruments), S.symbol_dictionary(syms), ts, ts + 1000,
                           np.array([idx[r[1]] for r in rows], dtype=np.int32), np.array([r[2] for r in rows], dtype=np.uint8),
                           np.array([r[3] for r in rows], dtype=np.int8), np.array([r[4] for r in rows], dtype=np.float64),
                           np.array([r[5] for r in rows], dtype=np.float64), np.array([r[6] for r in rows], dtype=np.int64))
    return pa.Table.from_batches([batch])


def quoted_minutes(symbol: str, day: str, start: str, minutes: int, *, bid: float, ask: float, qty: float = 100.0,
                   seq0: int = 1, trades: bool = True) -> list[tuple]:
    """A two-sided book of `symbol` refreshed every minute from local `start` on `day` (IST),
    `minutes` updates: one venue message each (both touches, and with `trades` a one-lot buy at
    the ask, so bars can be made of it), sequence numbers from `seq0`."""
    t0 = ist_ns(day, start)
    rows = []
    for k in range(minutes):
        t = t0 + k * 60_000_000_000
        rows.append((t, symbol, S.LEVEL, 1, bid, qty + k, seq0 + k))
        rows.append((t, symbol, S.LEVEL, -1, ask, qty + k, seq0 + k))
        if trades:
            rows.append((t, symbol, S.TRADE, 1, ask, 1.0, seq0 + k))
    return rows


# a strategy file for market-rule tests: buys one lot at the ask on every book update while under its limit
BUYER_STRATEGY = '''
from sq.strategy import BUY, Strategy

strategy = Strategy("buyer", "Buys one lot at the ask on every book update while under its position limit.")


@strategy.on_book
def on_book(ctx, s):
    if ctx.has_ask(s) and ctx.position(s) + ctx.lot_size(s) <= ctx.max_position(s):
        ctx.take(s, BUY, ctx.ask(s), ctx.lot_size(s))
'''
