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
