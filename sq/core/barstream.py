"""Market stream → bars stream, batch by batch (docs/streams.md "bars"; kernel in `sq.core.bars`).

`BarStream` maps symbols to global ids, validates each batch with vectorised NumPy (unknown
kinds, bad trade and tick prices or quantities are exit 65 naming the row), and hands the arrays
to the numba kernel in one call; bars still open at the end of a batch carry over to the next,
so the output does not depend on where the input was cut.

Where prices come from, per symbol: its `trade` rows (price and qty: volume, trade count and
VWAP), or — until its first trade (a Zerodha ticker stream in ltp mode has none; quote and full
streams carry trades derived from the day volume) — the last price of its `tick` rows (volume 0,
`trades` and `vwap` null); its first trade drops the bar its ticks opened. A symbol with neither (a
stream of book levels only) takes its mid price: every change of the mid of its rebuilt book
(`sq.core.bookstream`, depth 1) is a price, with volume 0, and since only the end of the input
proves a symbol had no trades or ticks, its bars are written at the end. Volume bars need
traded volume: symbols without trades make none.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import pyarrow as pa
from numba import njit

from sq.core import bars as K
from sq.core import schemas as S
from sq.core.exits import DataError
from sq.core.sessions import UTC_DAY, TradingSession
from sq.core.streams import SymbolRegistry, market_arrays

BOOK_KINDS = (S.LEVEL, S.CLEAR, S.SNAPSHOT_END)
MAX_SPLIT_BARS = 10_000_000  # volume bars one batch may add beyond one per row (huge trades, tiny bars)
# the market columns bars read (the mid of a book needs side and seq)
BARS_INPUT_COLUMNS = ("ts", "symbol", "kind", "side", "price", "qty", "seq")


@njit(cache=True, _nrt=False)
def _mid_changes(codes, mid, last, keep):
    """keep[i] = the mid of row i is a number and differs from its symbol's previous mid."""
    for i in range(len(codes)):
        m = mid[i]
        s = codes[i]
        keep[i] = m == m and m != last[s]
        if keep[i]:
            last[s] = m


class BarStream:
    """Stateful converter from market batches to bar batches for `sq bars`."""

    def __init__(self, instruments: Mapping[str, S.Instrument], spec: K.BarSpec, *,
                 session_of: Callable[[str], TradingSession] | None = None, warn: Callable[[str], None] = lambda m: None):
        self.instruments = dict(instruments)
        self.spec = spec
        self.session_of = session_of
        self.warn = warn
        self.registry = SymbolRegistry()
        self.sessions: list[TradingSession] = []
        self.state = K.BarState(spec)
        self.mid: _MidBars | None = None
        self.schema = S.bars_schema(self.instruments, spec.label)
        self.rows_in = 0
        self.rows_out = 0
        self.ranks = np.zeros(0, dtype=np.int64)
        self._dict: pa.Array | None = None

    def _learn_symbols(self) -> None:
        names = self.registry.symbols
        if len(names) == len(self.sessions):
            return
        for name in names[len(self.sessions):]:
            session = UTC_DAY
            if self.spec.mode == K.BAR_SESSION and self.session_of is not None:
                session = self.session_of(name)
            self.sessions.append(session)
        self.ranks = np.empty(len(names), dtype=np.int64)
        self.ranks[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
        self.state.ensure(self.sessions, self.ranks)
        if self.mid is not None:
            self.mid.state.ensure(self.sessions, self.ranks)

    def _symbol_dictionary(self) -> pa.Array:
        if self._dict is None or len(self._dict) != len(self.registry.symbols):
            self._dict = self.registry.dictionary()
        return self._dict

    def _validate(self, row0: int, codes, kind, price, qty) -> None:
        bad_kind = (kind < S.LEVEL) | (kind > S.TICK)
        if bad_kind.any():
            j = int(np.argmax(bad_kind))
            raise DataError(f"{self._where(row0, codes, j)}: unknown event kind {int(kind[j])} (known: 1 level, 2 trade, 3 clear, 4 snapshot_end, 5 tick)")
        trade = kind == S.TRADE
        with np.errstate(invalid="ignore"):
            bad_px = ((kind == S.TICK) | trade) & ~(np.isfinite(price) & (price >= 0))
            bad_qty = trade & ~(np.isfinite(qty) & (qty >= 0))
        bad = bad_px | bad_qty
        if bad.any():
            j = int(np.argmax(bad))
            what = f"price {float(price[j])!r}" if bad_px[j] else f"qty {float(qty[j])!r}"
            raise DataError(f"{self._where(row0, codes, j)}: {S.KIND_NAMES[int(kind[j])]} {what} is not a finite non-negative number")

    def _where(self, row0: int, codes, j: int) -> str:
        return f"row {row0 + j} ({self.registry.symbols[int(codes[j])]})"

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch | None:
        """Apply one market batch; returns the bars it closed (None when there are none)."""
        n = batch.num_rows
        if n == 0:
            return None
        row0 = self.rows_in
        self.rows_in += n
        a = market_arrays(batch, self.registry, row0, ("ts", "kind", "symbol", "price", "qty"))
        codes, kind, price, qty = a["symbol"], a["kind"], a["price"], a["qty"]
        self._learn_symbols()
        self._validate(row0, codes, kind, price, qty)
        if self.spec.mode != K.BAR_VOLUME:
            self._feed_mid(batch, codes, kind)
        cap = self.state.capacity(kind, qty)
        if cap - n > MAX_SPLIT_BARS:
            raise DataError(f"rows {row0}..{row0 + n - 1}: their trades fill more than {MAX_SPLIT_BARS:,} volume bars of "
                            f"{self.spec.label}; choose a larger bar volume")
        out = self.state.outputs(cap)
        r = self.state.run(a["ts"], codes, kind, price, qty, row0, out)
        return self._batch(out, r)

    def _feed_mid(self, batch: pa.RecordBatch, codes, kind) -> None:
        """Book rows of symbols that have shown no trade or tick yet go to the mid-price bars."""
        undecided = self.state.si[:, K.I_SRC] == K.SRC_NONE
        if not undecided.any():
            return
        mask = undecided[codes] & np.isin(kind, BOOK_KINDS)
        if not mask.any():
            return
        if self.mid is None:
            self.mid = _MidBars(self)
            self.mid.state.ensure(self.sessions, self.ranks)
        self.mid.feed(batch.filter(pa.array(mask)))

    def finish(self) -> list[pa.RecordBatch]:
        """The bars still open at the end of the input, then the mid-price bars of symbols that
        never showed a trade or a tick."""
        out = self.state.outputs(self.state.symbols + 1)
        batches = [self._batch(out, self.state.finish(out))]
        if self.mid is not None:
            never = np.flatnonzero(self.state.si[:, K.I_SRC] == K.SRC_NONE)
            for b in self.mid.finish():
                keep = np.isin(b.column("symbol").indices.to_numpy(zero_copy_only=False), never)
                batches.append(b.filter(pa.array(keep)) if not keep.all() else b)
            if len(never):
                self.warn(f"{', '.join(self.registry.symbols[s] for s in never)}: no trades or ticks; bars follow the mid price (volume 0)")
        return [b for b in batches if b is not None and b.num_rows]

    def _batch(self, out, r: int) -> pa.RecordBatch | None:
        """Output rows [0, r) as a bars batch (NumPy arrays handed to Arrow without copies)."""
        if r == 0:
            return None
        ts, sym, trades, src, f = out
        not_traded = src[:r] != K.SRC_TRADES
        volume = f[K.F_VOL, :r]
        with np.errstate(invalid="ignore", divide="ignore"):
            vwap = f[K.F_PQ, :r] / volume
        cols = [
            pa.array(ts[:r], type=pa.int64()).view(S.TS),
            S.dict_column(sym[:r], self._symbol_dictionary()),
            pa.array(f[K.F_OPEN, :r]),
            pa.array(f[K.F_HIGH, :r]),
            pa.array(f[K.F_LOW, :r]),
            pa.array(f[K.F_CLOSE, :r]),
            pa.array(volume),
            pa.array(trades[:r], mask=not_traded),
            pa.array(vwap, mask=not_traded | ~(volume > 0)),
            pa.nulls(r, type=pa.float64()),
        ]
        self.rows_out += r
        return pa.RecordBatch.from_arrays(cols, schema=self.schema)

    def warnings(self) -> list[str]:
        """End-of-run findings for stderr: rows left out and why."""
        g = self.state.g
        msgs = []
        if g[K.G_OUTSIDE]:
            msgs.append(f"{int(g[K.G_OUTSIDE])} trade(s) outside their symbol's trading session left out")
        if g[K.G_LATE]:
            msgs.append(f"{int(g[K.G_LATE])} trade(s) came after their bar had begun or closed (timestamps went backwards; "
                        f"first at row {int(g[K.G_LATE_ROW])}); left out")
        if g[K.G_NOVOL] and (self.state.si[:, K.I_SRC] == K.SRC_TICKS).any():  # a symbol that never traded
            msgs.append(f"{int(g[K.G_NOVOL])} tick row(s) carry no traded volume; volume bars count trades only")
        return msgs


class _MidBars:
    """Bars of the mid price, for symbols whose input has neither trades nor ticks."""

    def __init__(self, owner: BarStream):
        from sq.core import book as B
        from sq.core.bookstream import BookStream

        self.owner = owner
        self.book = BookStream(owner.instruments, depth=1, mode=B.MODE_CHANGE)
        self.state = K.BarState(owner.spec)
        self.last = np.zeros(0, dtype=np.float64)
        self.bars: list[pa.RecordBatch] = []

    def feed(self, batch: pa.RecordBatch) -> None:
        self._rows(self.book.process(batch))

    def _rows(self, rows: pa.RecordBatch | None) -> None:
        if rows is None or rows.num_rows == 0:
            return
        owner = self.owner
        codes = owner.registry.codes(rows.column("symbol")).astype(np.int32, copy=False)
        if len(self.last) < len(owner.registry.symbols):
            self.last = np.concatenate([self.last, np.full(len(owner.registry.symbols) - len(self.last), np.nan)])
        mid = rows.column("mid").to_numpy(zero_copy_only=False)
        keep = np.empty(len(codes), dtype=np.bool_)
        _mid_changes(codes, mid, self.last, keep)
        n = int(keep.sum())
        if n == 0:
            return
        kind = np.full(n, S.TICK, dtype=np.uint8)
        out = self.state.outputs(self.state.capacity(kind, np.zeros(n)))
        r = self.state.run(np.ascontiguousarray(S.int64_view(rows.column("ts"))[keep]), np.ascontiguousarray(codes[keep]), kind,
                           np.ascontiguousarray(mid[keep]), np.zeros(n), 0, out)
        self._keep(out, r)

    def _keep(self, out, r: int) -> None:
        b = self.owner._batch(out, r)
        if b is not None:
            self.bars.append(b)

    def finish(self) -> list[pa.RecordBatch]:
        self._rows(self.book.finish())
        out = self.state.outputs(self.state.symbols + 1)
        self._keep(out, self.state.finish(out))
        return self.bars


def build_bars(env, source, writer_factory, spec: K.BarSpec, *, session_of: Callable[[str], TradingSession] | None = None,
               adjust: Callable[[pa.Table], pa.Table] | None = None) -> BarStream:
    """Run a whole market source through a BarStream into the writer `writer_factory(schema)` makes.
    With `adjust` (corporate actions: a dividend's factor needs the close before its ex-date), the
    bars are collected — they are few next to the trades they come from — adjusted as one series,
    then written."""
    bs = BarStream(source.instruments, spec, session_of=session_of, warn=env.warn)
    if adjust is not None:
        made = [out for batch in source.batches() if (out := bs.process(batch)) is not None] + list(bs.finish())
        table = adjust(pa.Table.from_batches(made, schema=bs.schema).combine_chunks())
        with writer_factory(table.schema) as writer:
            for out in table.to_batches():
                writer.write(out)
    else:
        with writer_factory(bs.schema) as writer:
            for batch in source.batches():
                out = bs.process(batch)
                if out is not None:
                    writer.write(out)
            for out in bs.finish():
                writer.write(out)
    for m in bs.warnings():
        env.warn(m)
    return bs
