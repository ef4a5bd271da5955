"""Market stream → book stream, batch by batch (docs/streams.md).

`BookStream` owns one `BookState` and turns each conformed market batch into zero or more book
rows: it maps symbols to global ids, learns tick sizes (instrument metadata, else inferred from
the prices with a warning) and top-N view depths, validates the batch (one numba pass; NumPy
names the first bad row: bad prices/quantities, unknown kinds), converts level prices to int64
ticks and hands the arrays to the numba kernel in one call. The message of the last event of a
batch stays pending in the kernel, so venue messages may span batches, unless the caller says
the batch ends at a message end (`process(batch, complete=True)`: a live pipe whose writer says
so, docs/streams.md). Output batches are Arrow arrays over the kernel's output buffers, without
copies.

A live pipe's batches are a row or a few: for those (≤ `SMALL_ROWS` in, ≤ `MESSAGE_ROWS` out) the
per-column Python work would be most of the cost, so the input is read through one Arrow C export
by one compiled call (`sq.core.smallbatch`) and the kernel writes its rows straight into a pooled
Arrow IPC message that one read turns into the batch (`sq.core.arrow_message`): ~25 µs a one-row
batch instead of ~85.
"""

from __future__ import annotations

import sys
from typing import Callable, Mapping

import numpy as np
import pyarrow as pa
from numba import njit

from sq.core import book as B
from sq.core import schemas as S
from sq.core import smallbatch as SB
from sq.core.arrow_message import NO_GROUP, BufferPool, MessageLayout, write_metadata
from sq.core.exits import DataError
from sq.core.streams import SymbolRegistry, market_arrays

_MAX_TICKS = float(2**53)
S_LEVEL = S.LEVEL
S_TRADE = S.TRADE
S_TICK = S.TICK


@njit(cache=True, _nrt=False)
def _level_ticks(kind, codes, price, tick_sizes, out):
    """out[i] = rint(price / tick size) for level rows, 0 elsewhere (one pass, no temporaries);
    returns the first level row whose tick count is out of range (|x| ≥ 2^53), else -1."""
    for i in range(len(kind)):
        if kind[i] == S_LEVEL:
            x = price[i] / tick_sizes[codes[i]]
            if not abs(x) < _MAX_TICKS:
                return i
            out[i] = np.int64(np.rint(x))
        else:
            out[i] = 0
    return -1


@njit(cache=True, _nrt=False)
def _all_valid(kind, side, price, qty):
    """Whether every row passes `BookStream._validate`'s checks (one pass, no temporaries: most
    of a small live batch's validation cost was NumPy's per-call overhead)."""
    for i in range(len(kind)):
        k = kind[i]
        if k < S_LEVEL or k > S_TICK:
            return False
        if k == S_LEVEL or k == S_TRADE or k == S_TICK:
            p = price[i]
            q = qty[i]
            if not (np.isfinite(p) and p >= 0.0 and np.isfinite(q) and q >= 0.0):
                return False
            if k == S_LEVEL and side[i] != 1 and side[i] != -1:
                return False
    return True


def infer_tick_size(prices: np.ndarray) -> float:
    """The coarsest power-of-ten grid (1 … 1e-8) every price sits on; 0.01 when there are no prices."""
    p = prices[np.isfinite(prices)]
    if len(p) == 0:
        return 0.01
    p = np.unique(p)[:10_000]
    for d in range(0, 9):
        tick = 10.0 ** -d
        x = p / tick
        if np.all(np.abs(x - np.rint(x)) <= 1e-9 * np.abs(x) + 1e-7):
            return tick
    return 1e-8


# `sq book` hands the kernel market batches in pieces of at most this many events: its first
# output reaches the writer (a Parquet writer thread, a pipe) after 64K events instead of a
# whole 256K-row input batch, so writing starts sooner and the two overlap in finer steps.
PIECE_ROWS = 65_536
_OUT_ROWS = PIECE_ROWS + 1  # output buffer sets are at least this long (a piece + the pending message's row)
_OUT_SETS = 16  # sets kept for reuse: one being filled, the rest held by batches waiting to be written
MESSAGE_ROWS = 1024  # batches of up to this many rows (live pipes) are written as one IPC message (`_message_outputs`)
# (a Parquet row group of 128K rows is 3-4 pieces' rows; two groups queued and one being written)


def _refcounts(out) -> list[int]:
    """Reference counts of the memory behind an output set's arrays. NumPy views (the columns
    handed to Arrow) refer to the array's base (here the Arrow buffer), not to the array."""
    return [sys.getrefcount(a if a.base is None else a.base) for a in out]


def _watched_buffer(a: np.ndarray) -> tuple[pa.Buffer, int]:
    """An Arrow buffer holding a reference to the object `_refcounts` watches for `a`, and `a`'s
    start in it, in items (Arrow array offset)."""
    buf = pa.py_buffer(a if a.base is None else a.base)
    return buf, (a.ctypes.data - buf.address) // a.itemsize


class BookStream:
    """Stateful converter from market batches to book batches for `sq book` and the engine."""

    def __init__(
        self,
        instruments: Mapping[str, S.Instrument],
        *,
        depth: int = 5,
        mode: int = B.MODE_CHANGE,
        every: int = 1,
        interval_ns: int = 0,
        vwap_window_ns: int = 60_000_000_000,
        vol_halflife: float = 100.0,
        view_depth: int | None = None,
        stale: bool = False,
        stale_max_age_ns: int = 60_000_000_000,
        skip_bad: bool = False,
        warn: Callable[[str], None] = lambda m: None,
    ):
        self.instruments = dict(instruments)
        self.depth = int(depth)
        self.view_depth = view_depth
        self.stale = stale
        self.skip_bad = skip_bad
        self.warn = warn
        self.state = B.BookState(depth=depth, mode=mode, every=every, interval_ns=interval_ns,
                                 vwap_window_ns=vwap_window_ns, vol_halflife=vol_halflife,
                                 stale_max_age_ns=stale_max_age_ns)
        self.registry = SymbolRegistry()
        self.tick_sizes: list[float] = []
        self.views: list[int] = []
        self.rows_in = 0
        self.rows_out = 0
        self.bad_rows = 0
        self.first_bad: str | None = None
        self.schema = S.book_schema(self.depth, self.instruments, stale=stale)
        self._ncols_out = 4 * self.depth + len(S.BOOK_FEATURES) + (len(S.BOOK_STALE) if stale else 0)
        self._dict: pa.Array | None = None
        self._spare: list[tuple[tuple[np.ndarray, ...], list[int]]] = []
        self._layouts: dict[int, MessageLayout] = {}
        self._pool = BufferPool()
        self._no_nulls = np.zeros(1, np.int64)
        self._symbol_field = self.schema.field("symbol")
        self._small = SB.SmallReader()

    # -- symbols
    def _learn_symbols(self, codes: np.ndarray, kind: np.ndarray, price: np.ndarray) -> None:
        n = len(self.registry.symbols)
        if n == len(self.tick_sizes):
            return
        for s in range(len(self.tick_sizes), n):
            name = self.registry.symbols[s]
            inst = self.instruments.get(name)
            if inst is not None and inst.tick_size > 0:
                tick = float(inst.tick_size)
            else:
                mine = (codes == s) & ((kind == S.LEVEL) | (kind == S.TRADE))
                tick = infer_tick_size(price[mine])
                self.warn(f"{name}: no tick size in the stream's instrument metadata; inferred {tick:g} from its prices")
                self.instruments[name] = S.Instrument(name, inst.venue if inst else "", tick)
            view = self.view_depth
            if view is None:
                view = int((inst.extra.get("depth_view") if inst is not None else 0) or 0)
            self.tick_sizes.append(tick)
            self.views.append(view)
        self.state.ensure(n, self.tick_sizes, self.views)

    def _outputs(self, cap: int):
        """Output buffers for `cap` rows, reusing a set no Arrow array refers to any more.

        Book batches are handed to Arrow zero-copy, so a set is busy until the writer has
        written (and dropped) its batch; a free set's pages are already mapped, where fresh
        memory costs a page fault and page zeroing per 4 KiB (about a tenth of `sq book`).
        """
        for out, refs in self._spare:
            if len(out[0]) >= cap and _refcounts(out) == refs:
                return out
        out = self.state.outputs(max(cap, _OUT_ROWS), self._ncols_out)
        if len(self._spare) < _OUT_SETS:
            self._spare.append((out, _refcounts(out)))
        return out

    def _message_outputs(self, rows: int) -> tuple[MessageLayout, np.ndarray, tuple[np.ndarray, ...]]:
        """A message buffer from the pool with room for `rows` book rows, and the kernel's output
        arrays as views of its body (sq.core.arrow_message): the kernel writes the rows where the
        IPC message that becomes the batch holds them. The float columns sit at equal distances
        in the body, so one 2-D view (its rows that far apart) covers them all."""
        cap = max(64, (rows + 63) // 64 * 64)
        layout = self._layouts.get(cap)
        if layout is None:
            layout = self._layouts[cap] = MessageLayout(self.schema, [NO_GROUP] * len(self.schema), cap)
            gaps = {int(b - a) for a, b in zip(layout.values[3:], layout.values[4:])}
            if len(gaps) > 1:
                raise AssertionError("the book's float columns must be equally spaced in the message")
        message = self._pool.take(layout.size)
        v = layout.values
        stride = int(v[4] - v[3]) // 8 if len(v) > 4 else cap
        out = (np.ndarray(cap, np.int64, message, int(v[0])), np.ndarray(cap, np.int32, message, int(v[1])),
               np.ndarray(cap, np.int64, message, int(v[2])), np.ndarray((self._ncols_out, stride), np.float64, message, int(v[3])))
        return layout, message, out

    def _message_batch(self, layout: MessageLayout, message: np.ndarray, r: int) -> pa.RecordBatch | None:
        """The first `r` rows the kernel wrote into `message`, as a batch read zero-copy from it
        (one read of the IPC message, ~10 µs, where building 30-odd columns from buffers cost
        ~30 µs of a live pipe's one-row batch); the symbol indices rewrapped with the dictionary."""
        if r == 0:
            return None
        write_metadata(message, layout.header, layout.length_pos, layout.plan, r, self._no_nulls)
        b = layout.read(message)
        self.rows_out += r
        return b.set_column(1, self._symbol_field,
                            pa.DictionaryArray.from_arrays(b.column(1), self._symbol_dictionary(), safe=False))

    def _symbol_dictionary(self) -> pa.Array:
        if self._dict is None or len(self._dict) != len(self.registry.symbols):
            self._dict = self.registry.dictionary()
        return self._dict

    # -- validation
    def _where(self, rows: np.ndarray, codes: np.ndarray, j: int) -> str:
        return f"row {int(rows[j])} ({self.registry.symbols[int(codes[j])]})"

    def _validate(self, rows, codes, kind, side, price, qty):
        """Raise DataError for unknown kinds; for bad values raise, or return a keep-mask with --skip-bad."""
        if _all_valid(kind, side, price, qty):
            return None
        bad_kind = (kind < S.LEVEL) | (kind > S.TICK)
        if bad_kind.any():
            j = int(np.argmax(bad_kind))
            raise DataError(f"{self._where(rows, codes, j)}: unknown event kind {int(kind[j])} (known: 1 level, 2 trade, 3 clear, 4 snapshot_end, 5 tick)")
        priced = (kind == S.LEVEL) | (kind == S.TRADE) | (kind == S.TICK)
        with np.errstate(invalid="ignore"):
            bad_px = priced & ~(np.isfinite(price) & (price >= 0))
            bad_qty = priced & ~(np.isfinite(qty) & (qty >= 0))
        bad_side = (kind == S.LEVEL) & (side != 1) & (side != -1)
        bad = bad_px | bad_qty | bad_side
        if not bad.any():
            return None
        j = int(np.argmax(bad))
        what = (f"price {float(price[j])!r} is not a finite non-negative number" if bad_px[j]
                else f"qty {float(qty[j])!r} is not a finite non-negative number" if bad_qty[j]
                else f"level side {int(side[j])} is neither +1 (bid) nor -1 (ask)")
        msg = f"{self._where(rows, codes, j)}: {S.KIND_NAMES[int(kind[j])]} {what}"
        if not self.skip_bad:
            raise DataError(msg + " (use --skip-bad to skip such rows)")
        self.bad_rows += int(bad.sum())
        if self.first_bad is None:
            self.first_bad = msg
        return ~bad

    # -- processing
    def process(self, batch: pa.RecordBatch, complete: bool = False) -> pa.RecordBatch | None:
        """Apply one market batch; returns the book rows it completed (None when there are none).
        `complete`: the batch ends at the end of a venue message, so its last message is
        completed (and its row made) now rather than when the next batch starts another."""
        n = batch.num_rows
        if n == 0:
            return None
        row0 = self.rows_in
        self.rows_in += n
        columns = self._small.read(batch, n) if n <= SB.SMALL_ROWS and self._small.prepare_schema(batch.schema) else None
        if columns is not None:  # a live pipe's batch: one export, one compiled read
            ts, kind, side, price, qty, seq, codes = columns
        else:
            a = market_arrays(batch, self.registry, row0, ("ts", "kind", "side", "seq", "symbol", "price", "qty"))
            codes, kind, side, price, qty, seq, ts = (a[k] for k in ("symbol", "kind", "side", "price", "qty", "seq", "ts"))
            if n <= SB.SMALL_ROWS and self._small.plan is not None:
                self._small.learn_dictionary(batch, self.registry.id)
        rows = np.arange(row0, row0 + n, dtype=np.int64)
        self._learn_symbols(codes, kind, price)
        keep = self._validate(rows, codes, kind, side, price, qty)
        if keep is not None:
            codes, kind, side, price, qty, seq, ts, rows = (a[keep] for a in (codes, kind, side, price, qty, seq, ts, rows))
        tick = self._ticks(rows, codes, kind, price)
        as_message = len(ts) + 1 <= MESSAGE_ROWS
        if as_message:
            layout, message, out = self._message_outputs(len(ts) + 1)
        else:
            out = self._outputs(len(ts) + 1)
        try:
            r = self.state.run(np.ascontiguousarray(ts), np.ascontiguousarray(codes), np.ascontiguousarray(kind),
                               np.ascontiguousarray(side), tick, np.ascontiguousarray(price),
                               np.ascontiguousarray(qty), np.ascontiguousarray(seq), rows, out, final=complete)
        except OverflowError as e:
            raise self._span_error(int(e.args[0])) from None
        if as_message:
            del out  # the views into the message: the pool sees it free again once its batch is gone
            return self._message_batch(layout, message, r)
        return self._batch(out, r)

    def finish(self) -> pa.RecordBatch | None:
        """Complete the last message at the end of the input; returns its row if it makes one."""
        out = self.state.outputs(1, self._ncols_out)
        return self._batch(out, self.state.flush(out))

    def _ticks(self, rows, codes, kind, price) -> np.ndarray:
        tick = np.empty(len(price), dtype=np.int64)
        j = _level_ticks(kind, codes, price, np.asarray(self.tick_sizes, dtype=np.float64), tick)
        if j >= 0:
            raise DataError(f"{self._where(rows, codes, j)}: price {float(price[j])!r} is out of range for tick size {self.tick_sizes[int(codes[j])]:g}")
        return tick

    def _span_error(self, s: int) -> DataError:
        name = self.registry.symbols[s]
        return DataError(f"{name}: live price levels span more than {B.MAX_WINDOW // 2} ticks of {self.tick_sizes[s]:g}; "
                         "is the tick size right, or is a stale far-away level never deleted?")

    def _batch(self, out, r: int) -> pa.RecordBatch | None:
        """The first `r` rows of an output set as a record batch, zero-copy.

        Each column is an Arrow array over a `pa.py_buffer` of the memory `_refcounts` watches,
        so the set counts as busy while any column lives (`pa.array` of a NumPy view did the
        same at ~10 µs a column, most of a small live batch's cost; this is ~1 µs).
        """
        if r == 0:
            return None
        out_ts, out_sym, out_seq, out_f = out
        (ts_buf, ts_at), (sym_buf, sym_at), (seq_buf, seq_at), (f_buf, f_at) = (_watched_buffer(a) for a in out)
        cap = out_f.shape[1]
        f64 = pa.float64()
        cols = [
            pa.Array.from_buffers(S.TS, r, [None, ts_buf], offset=ts_at),
            pa.DictionaryArray.from_arrays(pa.Array.from_buffers(pa.int32(), r, [None, sym_buf], offset=sym_at), self._symbol_dictionary()),
            pa.Array.from_buffers(pa.int64(), r, [None, seq_buf], offset=seq_at),
        ]
        ncols = 4 * self.depth + len(S.BOOK_FEATURES) + (len(S.BOOK_STALE) if self.stale else 0)
        cols += [pa.Array.from_buffers(f64, r, [None, f_buf], offset=f_at + j * cap) for j in range(ncols)]
        self.rows_out += r
        return pa.RecordBatch.from_arrays(cols, schema=self.schema)

    # -- reporting
    def warnings(self) -> list[str]:
        """End-of-run findings for stderr: locked/crossed books, time going backwards, skipped rows."""
        g = self.state.g
        msgs = []
        locked, crossed = int(g[B.G_LOCKED]), int(g[B.G_CROSSED])
        if locked or crossed:
            msgs.append(f"{locked} message(s) left a locked book and {crossed} a crossed book "
                        f"(first at row {int(g[B.G_XROW])}, {self.registry.symbols[int(g[B.G_XSYM])]}); kept as received")
        back = int(g[B.G_BACK])
        if back:
            msgs.append(f"timestamps went backwards within a symbol {back} time(s) "
                        f"(first at row {int(g[B.G_BACKROW])}, {self.registry.symbols[int(g[B.G_BACKSYM])]})")
        if self.bad_rows:
            msgs.append(f"skipped {self.bad_rows} bad row(s); first: {self.first_bad}")
        return msgs

    @property
    def counts(self) -> dict[str, int]:
        g = self.state.g
        return {"rows_in": self.rows_in, "rows_out": self.rows_out, "messages": int(g[B.G_MESSAGES]),
                "locked": int(g[B.G_LOCKED]), "crossed": int(g[B.G_CROSSED]), "backwards": int(g[B.G_BACK]),
                "bad_rows": self.bad_rows}


def pieces(batch: pa.RecordBatch, rows: int = PIECE_ROWS):
    """`batch` as zero-copy slices of at most `rows` rows."""
    n = batch.num_rows
    if n <= rows:
        yield batch
        return
    for i in range(0, n, rows):
        yield batch.slice(i, rows)


def build_book(env, source, writer_factory, **options) -> BookStream:
    """Run a whole market source through a BookStream into the writer `writer_factory(schema)` makes.

    When the source's batches end at message ends (`source.whole_messages`: a live pipe from a
    source that says so), each batch's last message is completed with the batch, so its row
    goes out now, not when the next batch arrives (on a live pipe: the next burst of events)."""
    bs = BookStream(source.instruments, warn=env.warn, **options)
    whole = getattr(source, "whole_messages", False)
    with writer_factory(bs.schema) as writer:
        for batch in source.batches():
            left = batch.num_rows
            for piece in pieces(batch, PIECE_ROWS):
                left -= piece.num_rows
                out = bs.process(piece, complete=whole and left == 0)
                if out is not None:
                    writer.write(out)
        out = bs.finish()
        if out is not None:
            writer.write(out)
    for m in bs.warnings():
        env.warn(m)
    return bs
