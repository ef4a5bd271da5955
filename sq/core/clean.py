"""The bad-tick filter: which rows of a market stream to drop before a backtest or a replay sees them.

Rules, per symbol, with their state carried from batch to batch so that the result does not
depend on how the input is cut (`CleanConfig` in `sq.core.config` holds the settings):

* `price` — a level, trade or tick row whose price is not a finite positive number (or is too
  far from zero for its tick size);
* `qty` — a level, trade or tick row whose quantity is negative or not finite;
* `backwards` — a row whose `ts` is more than `max_backward_ns` before the latest `ts` of its
  symbol's kept rows;
* `jump` — a trade more than `max_jump_pct` % away from the symbol's last accepted trade;
* `sigma` — a trade whose log return from the last accepted trade exceeds `sigma_k` × σ, σ the
  EWMA (half-life `sigma_halflife` returns) of the accepted trade-to-trade log returns, never
  below one tick, applied once `warmup` returns are in. A price that really moved (a gap at the
  open, a circuit) is not lost for good: `confirm_trades` rejected trades in a row that are no
  jump from one another prove the move, and the last of them is accepted as the new reference
  (the earlier ones stay dropped, and the gap return is not folded into σ);
* `crossed` — a complete venue message (consecutive rows of one symbol and `seq`) after which
  the symbol's book, built from the kept rows, is locked or crossed (best bid ≥ best ask). Such
  messages are counted (`crossed_messages`) and kept by default: a crossed book in recorded
  data usually means a stale level on the other side, which dropping the new update would not
  remove (every later update on that side would cross again, freezing the book). With
  `drop_crossed` the message's rows are dropped and the book is restored to what it was before
  the message, so what the engine sees stays consistent; to know a message's fate the cleaner
  then holds back the rows of the last (unfinished) message of each batch until the next one.

A dropped row never enters a message: a message is made of the rows the later stages see.
The kernel (`_clean`) is one numba loop over the batch's arrays; the book is `sq.core.book`'s
(`set_level`, `clear_book`), one symbol window each. `Cleaner` is the Python glue: symbol ids,
tick sizes, growing the book and the undo log, filtering batches, counting.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import pyarrow as pa
from numba import njit

from sq.core import book, schemas
from sq.core.exits import DataError
from sq.core.features import vol_alpha
from sq.core.streams import SymbolRegistry

LEVEL, TRADE, CLEAR, SNAPSHOT_END, TICK = schemas.LEVEL, schemas.TRADE, schemas.CLEAR, schemas.SNAPSHOT_END, schemas.TICK

# why a row is dropped (0: kept); the summary's names, in code order
KEEP, R_PRICE, R_QTY, R_BACKWARDS, R_JUMP, R_SIGMA, R_CROSSED = 0, 1, 2, 3, 4, 5, 6
REASONS = ("price", "qty", "backwards", "jump", "sigma", "crossed")
_CONFIRMED = 100  # a trade verdict: a jump confirmed by the trades before it, kept

ST_OK = book.ST_OK
ST_GROW_UNDO = 10  # the undo log needs cg[CG_NEED] entries

# per-symbol floats (columns of `sf`) and integers (`si`)
SF_REF, SF_VAR, SF_CAND, SF_TICK, SF_INV = 0, 1, 2, 3, 4
NSF = 5
SI_HASREF, SI_NRET, SI_NCAND, SI_LASTTS, SI_HASTS = 0, 1, 2, 3, 4
NSI = 5

# stream-wide integers (`cg`)
CG_PEND = 0  # a message is open
CG_PSYM = 1  # …of this symbol
CG_PSEQ = 2  # …and seq
CG_MSTART = 3  # its first row in this batch; -1 when it began in an earlier batch
CG_SNAP0 = 4  # the symbol's snapshot flag before the message (restored by an undo)
CG_ULEN = 5  # entries in the undo log
CG_UNDOING = 6  # an undo was interrupted by a grow request
CG_TAILDROP = 7  # the message carried over from earlier batches was dropped in this batch
CG_CROSSED = 8  # messages that left a locked or crossed book
CG_NEED = 9
NCG = 10

# parameters
IP_WARMUP, IP_CONFIRM, IP_BACK, IP_DROPX = 0, 1, 2, 3
FP_JUMP, FP_K, FP_ALPHA = 0, 1, 2
_MAX_TICKS = float(2**53)


@njit(cache=True, _nrt=False)
def _jump(p, ref, var, nret, tick, ip, fp):
    """Why trade price `p` is no continuation of `ref` (R_JUMP, R_SIGMA), or KEEP."""
    x = p / ref
    if fp[FP_JUMP] > 0.0 and abs(x - 1.0) > fp[FP_JUMP]:
        return R_JUMP
    if fp[FP_K] > 0.0 and nret >= ip[IP_WARMUP]:
        sigma = max(math.sqrt(var), tick / ref)  # never below one tick
        if abs(math.log(x)) > fp[FP_K] * sigma:
            return R_SIGMA
    return KEEP


@njit(cache=True, _nrt=False)
def _trade_verdict(sf, si, s, p, ip, fp):
    """(verdict, the symbol's new count of rejected trades in a row): KEEP, _CONFIRMED, R_JUMP
    or R_SIGMA. Reads the state only; `_trade_commit` applies the verdict."""
    if si[s, SI_HASREF] == 0:
        return KEEP, 0
    var, nret, tick = sf[s, SF_VAR], si[s, SI_NRET], sf[s, SF_TICK]
    r = _jump(p, sf[s, SF_REF], var, nret, tick, ip, fp)
    if r == KEEP:
        return KEEP, 0
    n = si[s, SI_NCAND]
    n = n + 1 if n > 0 and _jump(p, sf[s, SF_CAND], var, nret, tick, ip, fp) == KEEP else 1
    if n >= ip[IP_CONFIRM]:
        return _CONFIRMED, 0
    return r, n


@njit(cache=True, _nrt=False)
def _trade_commit(sf, si, s, p, verdict, ncand, fp):
    if verdict == KEEP:
        if si[s, SI_HASREF] != 0:
            r = math.log(p / sf[s, SF_REF])
            if si[s, SI_NRET] == 0:
                sf[s, SF_VAR] = r * r
            else:
                sf[s, SF_VAR] += fp[FP_ALPHA] * (r * r - sf[s, SF_VAR])
            si[s, SI_NRET] += 1
        sf[s, SF_REF] = p
        si[s, SI_HASREF] = 1
    elif verdict == _CONFIRMED:
        sf[s, SF_REF] = p
    else:
        sf[s, SF_CAND] = p
    si[s, SI_NCAND] = ncand


@njit(cache=True, _nrt=False)
def _undo(qbuf, ist, g, cg, u_side, u_tick, u_q):
    """Restore the open message's book changes, newest first; resumable after a grow request."""
    s = cg[CG_PSYM]
    while cg[CG_ULEN] > 0:
        e = cg[CG_ULEN] - 1
        st, _ = book.set_level(qbuf, ist, g, s, u_side[e], u_tick[e], u_q[e])
        if st != ST_OK:
            return st
        cg[CG_ULEN] = e
    ist[s, book.I_INSNAP] = cg[CG_SNAP0]
    cg[CG_UNDOING] = 0
    return ST_OK


@njit(cache=True, _nrt=False)
def _end_message(i, why, qbuf, ist, g, cg, u_side, u_tick, u_q, ip):
    """The open message ends before row `i`: count a locked/crossed book; with drop_crossed
    mark the message's rows and undo its book changes."""
    cg[CG_PEND] = 0
    s = cg[CG_PSYM]
    if ist[s, book.I_INSNAP] == 0 and ist[s, book.I_NB] > 0 and ist[s, book.I_NA] > 0 and ist[s, book.I_BB] >= ist[s, book.I_BA]:
        cg[CG_CROSSED] += 1
        if ip[IP_DROPX] != 0:
            for j in range(max(cg[CG_MSTART], 0), i):
                if why[j] == KEEP:
                    why[j] = R_CROSSED
            if cg[CG_MSTART] < 0:
                cg[CG_TAILDROP] = 1
            cg[CG_UNDOING] = 1
            return _undo(qbuf, ist, g, cg, u_side, u_tick, u_q)
    cg[CG_ULEN] = 0
    return ST_OK


@njit(cache=True, _nrt=False)
def _row_verdict(i, ts, sym, kind, price, qty, sf, si, ip, fp):
    """Why row `i` is dropped by the per-row rules (KEEP when it is not), the trade's candidate
    count, and a level row's tick. Reads the state only."""
    s = sym[i]
    k = kind[i]
    p = price[i]
    tick = 0
    if k == LEVEL or k == TRADE or k == TICK:
        if not (math.isfinite(p) and p > 0.0):
            return R_PRICE, 0, tick
        if k == LEVEL:
            x = p * sf[s, SF_INV]
            if not abs(x) < _MAX_TICKS:
                return R_PRICE, 0, tick
            tick = np.int64(np.rint(x))
        if not (math.isfinite(qty[i]) and qty[i] >= 0.0):
            return R_QTY, 0, tick
    if si[s, SI_HASTS] != 0 and ts[i] < si[s, SI_LASTTS] - ip[IP_BACK]:
        return R_BACKWARDS, 0, tick
    if k == TRADE:
        v, n = _trade_verdict(sf, si, s, p, ip, fp)
        return v, n, tick
    return KEEP, 0, tick


@njit(cache=True, _nrt=False)
def _clean(ts, sym, kind, side, price, qty, seq, start, final, why,
           qbuf, ist, g, pv_tick, pv_qty, sf, si, cg, u_side, u_tick, u_q, ip, fp):
    """Decide rows `start..n` into `why` (KEEP or a reason); returns (status, next row).

    A status other than ST_OK asks the caller to grow the book window (book.ST_GROW_BOOK, symbol
    and span in `g`) or the undo log (ST_GROW_UNDO, size in `cg`) and call again from the row
    returned; every step before a request is either done or repeated identically. With `final`
    (end of stream) the open message is ended after the last row.
    """
    n = len(ts)
    logging = ip[IP_DROPX] != 0
    cap = len(u_q)
    if cg[CG_UNDOING] != 0:
        st = _undo(qbuf, ist, g, cg, u_side, u_tick, u_q)
        if st != ST_OK:
            return st, start
    i = start
    while i < n:
        s = sym[i]
        k = kind[i]
        v, ncand, tick = _row_verdict(i, ts, sym, kind, price, qty, sf, si, ip, fp)
        if v != KEEP and v != _CONFIRMED:
            why[i] = v
            if v == R_JUMP or v == R_SIGMA:
                _trade_commit(sf, si, s, price[i], v, ncand, fp)
            i += 1
            continue
        if cg[CG_PEND] != 0 and (cg[CG_PSYM] != s or cg[CG_PSEQ] != seq[i]):
            st = _end_message(i, why, qbuf, ist, g, cg, u_side, u_tick, u_q, ip)
            if st != ST_OK:
                return st, i
        if cg[CG_PEND] == 0:
            cg[CG_PEND] = 1
            cg[CG_PSYM] = s
            cg[CG_PSEQ] = seq[i]
            cg[CG_MSTART] = i
            cg[CG_SNAP0] = ist[s, book.I_INSNAP]
            cg[CG_ULEN] = 0
        if k == LEVEL:
            if logging and cg[CG_ULEN] >= cap:
                cg[CG_NEED] = cg[CG_ULEN] + 1
                return ST_GROW_UNDO, i
            st, old = book.set_level(qbuf, ist, g, s, side[i], tick, qty[i])
            if st != ST_OK:
                return st, i
            if logging:
                e = cg[CG_ULEN]
                u_side[e], u_tick[e], u_q[e] = side[i], tick, old
                cg[CG_ULEN] = e + 1
        elif k == CLEAR:
            if logging:
                e = cg[CG_ULEN]
                if e + ist[s, book.I_NB] + ist[s, book.I_NA] > cap:
                    cg[CG_NEED] = e + ist[s, book.I_NB] + ist[s, book.I_NA]
                    return ST_GROW_UNDO, i
                cg[CG_ULEN] = _log_levels(qbuf, ist, s, e, u_side, u_tick, u_q)
            book.clear_book(qbuf, ist, pv_tick, pv_qty, s)
        elif k == SNAPSHOT_END:
            ist[s, book.I_INSNAP] = 0
        elif k == TRADE:
            _trade_commit(sf, si, s, price[i], v, ncand, fp)
        if si[s, SI_HASTS] == 0 or ts[i] > si[s, SI_LASTTS]:
            si[s, SI_LASTTS] = ts[i]
            si[s, SI_HASTS] = 1
        why[i] = KEEP
        i += 1
    if final and cg[CG_PEND] != 0:
        st = _end_message(n, why, qbuf, ist, g, cg, u_side, u_tick, u_q, ip)
        if st != ST_OK:
            return st, n
    return ST_OK, n


@njit(cache=True, _nrt=False)
def _log_levels(qbuf, ist, s, e, u_side, u_tick, u_q):
    """Append every live level of symbol `s` to the undo log from entry `e` (a `clear` is about
    to empty the book); returns the new log length."""
    off, base, w = ist[s, book.I_OFF], ist[s, book.I_BASE], ist[s, book.I_W]
    if ist[s, book.I_NB] > 0:
        for j in range(ist[s, book.I_BLO] - base, ist[s, book.I_BB] - base + 1):
            if qbuf[off + j] != 0.0:
                u_side[e], u_tick[e], u_q[e] = 1, base + j, qbuf[off + j]
                e += 1
    if ist[s, book.I_NA] > 0:
        for j in range(ist[s, book.I_BA] - base, ist[s, book.I_AHI] - base + 1):
            if qbuf[off + w + j] != 0.0:
                u_side[e], u_tick[e], u_q[e] = -1, base + j, qbuf[off + w + j]
                e += 1
    return e


class Cleaner:
    """Cleans market batches one after the other; `counts` and `kept` add up over the stream.

    `settings` is a `CleanConfig` (or anything with its fields); `instruments` gives the tick
    sizes (a symbol without one gets the grid of its first batch's prices, as `sq book` does).
    `clean(batch)` returns the kept rows and this call's drops by reason; `finish()` returns
    what was held back at the end of the stream (with `drop_crossed`); `stream(batches)` does
    both over an iterator.
    """

    def __init__(self, settings: Any, instruments: Mapping[str, schemas.Instrument] | None = None):
        self.settings = settings
        self.instruments = dict(instruments or {})
        self.drop_crossed = bool(settings.drop_crossed)
        self.ip = np.array([int(settings.warmup), int(settings.confirm_trades), int(settings.max_backward_ns),
                            1 if self.drop_crossed else 0], np.int64)
        self.fp = np.array([float(settings.max_jump_pct) / 100.0, float(settings.sigma_k),
                            vol_alpha(float(settings.sigma_halflife))], np.float64)
        self.book = book.BookState(depth=1, mode=book.MODE_NONE, features=False)
        self.registry = SymbolRegistry()
        self.sf = np.zeros((0, NSF), np.float64)
        self.si = np.zeros((0, NSI), np.int64)
        self.cg = np.zeros(NCG, np.int64)
        self.u_side = np.zeros(1024, np.int8)
        self.u_tick = np.zeros(1024, np.int64)
        self.u_q = np.zeros(1024, np.float64)
        self.counts = dict.fromkeys(REASONS, 0)
        self.kept = 0
        self.rows_in = 0
        self._tail: list[tuple[pa.RecordBatch, np.ndarray]] = []  # the open message's rows (drop_crossed)
        self._empty: pa.RecordBatch | None = None  # a batch of the stream's schema without rows

    @property
    def crossed_messages(self) -> int:
        return int(self.cg[CG_CROSSED])

    @property
    def dropped(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> dict[str, Any]:
        """The run summary's `cleaned` entry: rows dropped by reason, rows kept, and the messages
        that left a locked or crossed book (dropped or kept, by `drop_crossed`)."""
        return {"dropped": dict(self.counts), "kept": self.kept, "crossed_messages": self.crossed_messages,
                "drop_crossed": self.drop_crossed}

    def notice(self) -> str | None:
        """A one-line account for stderr when anything was dropped (None when nothing was)."""
        if not self.dropped:
            return None
        parts = ", ".join(f"{v:,} {k}" for k, v in self.counts.items() if v)
        return f"clean: dropped {self.dropped:,} of {self.rows_in:,} market rows ({parts})"

    # -- symbols
    def _learn_symbols(self, codes: np.ndarray, kind: np.ndarray, price: np.ndarray) -> None:
        from sq.core.bookstream import infer_tick_size

        old, n = len(self.sf), len(self.registry.symbols)
        if n == old:
            return
        ticks = []
        for s in range(old, n):
            inst = self.instruments.get(self.registry.symbols[s])
            if inst is not None and inst.tick_size > 0:
                ticks.append(float(inst.tick_size))
            else:
                ticks.append(infer_tick_size(price[(codes == s) & ((kind == LEVEL) | (kind == TRADE))]))
        self.sf = np.concatenate([self.sf, np.zeros((n - old, NSF))])
        self.si = np.concatenate([self.si, np.zeros((n - old, NSI), np.int64)])
        self.sf[old:, SF_TICK] = ticks
        self.sf[old:, SF_INV] = 1.0 / np.asarray(ticks)
        all_ticks = list(self.sf[:, SF_TICK])
        self.book.ensure(n, all_ticks, [0] * n)

    # -- running
    def _run(self, arrays: tuple, why: np.ndarray, final: bool) -> None:
        b = self.book
        i = 0
        while True:
            st, i = _clean(*arrays, i, final, why, b.qbuf, b.ist, b.g, b.pv_tick, b.pv_qty, self.sf, self.si, self.cg,
                           self.u_side, self.u_tick, self.u_q, self.ip, self.fp)
            if st == ST_OK:
                return
            if st == ST_GROW_UNDO:
                size = max(int(self.cg[CG_NEED]), 2 * len(self.u_q))
                self.u_side, self.u_tick, self.u_q = (np.concatenate([a, np.zeros(size - len(a), a.dtype)])
                                                      for a in (self.u_side, self.u_tick, self.u_q))
                continue
            s = int(b.g[book.G_NEED_SYM])
            try:
                b.grow_window(s, int(b.g[book.G_NEED_SPAN]))
            except OverflowError:
                raise DataError(f"{self.registry.symbols[s]}: live price levels span more than {book.MAX_WINDOW // 2} ticks "
                                "(clean builds the book to find crossed quotes)") from None

    def _arrays(self, batch: pa.RecordBatch) -> tuple:
        for name in ("ts", "symbol", "kind", "side", "seq"):
            if batch.column(name).null_count:
                raise DataError(f"market column {name!r} has null values (rows {self.rows_in}..{self.rows_in + batch.num_rows - 1})")
        codes = self.registry.codes(batch.column("symbol")).astype(np.int32, copy=False)

        def col(name: str, dtype) -> np.ndarray:
            return np.ascontiguousarray(batch.column(name).to_numpy(zero_copy_only=False).astype(dtype, copy=False))

        kind, price = col("kind", np.uint8), col("price", np.float64)
        self._learn_symbols(codes, kind, price)
        ts = np.ascontiguousarray(schemas.int64_view(batch.column("ts")))
        return (ts, np.ascontiguousarray(codes), kind, col("side", np.int8), price, col("qty", np.float64), col("seq", np.int64))

    def clean(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, dict[str, int]]:
        """The rows of `batch` that pass (with `drop_crossed`: those whose message has ended,
        after the rows held back from earlier batches), and the rows dropped now by reason."""
        if self._empty is None:
            self._empty = batch.slice(0, 0)
        n = batch.num_rows
        if self.cg[CG_PEND]:
            self.cg[CG_MSTART] = -1
        self.cg[CG_TAILDROP] = 0
        why = np.zeros(n, np.uint8)
        if n:
            self._run(self._arrays(batch), why, False)
        self.rows_in += n
        return self._settle(batch, why)

    def finish(self) -> tuple[pa.RecordBatch | None, dict[str, int]]:
        """End of the stream: end the open message and return the rows held back for it (None
        when no batch was ever cleaned)."""
        if self._empty is None:
            return None, dict.fromkeys(REASONS, 0)
        if self.cg[CG_PEND]:
            self.cg[CG_MSTART] = -1
        self.cg[CG_TAILDROP] = 0
        e64, e32, ef = np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float64)
        self._run((e64, e32, np.zeros(0, np.uint8), np.zeros(0, np.int8), ef, ef, e64), np.zeros(0, np.uint8), True)
        return self._settle(self._empty, np.zeros(0, np.uint8))

    def _settle(self, batch: pa.RecordBatch, why: np.ndarray) -> tuple[pa.RecordBatch, dict[str, int]]:
        """Split the decided rows from the held-back ones, count the decided, filter them."""
        if not self.drop_crossed:
            parts = [(batch, why)]
        elif self.cg[CG_PEND] and self.cg[CG_MSTART] < 0:  # the held-back message goes on through this batch
            self._tail.append((batch, why))
            parts = []
        else:
            parts = [(b, np.where(w == KEEP, R_CROSSED, w).astype(np.uint8) if self.cg[CG_TAILDROP] else w) for b, w in self._tail]
            cut = int(self.cg[CG_MSTART]) if self.cg[CG_PEND] else batch.num_rows
            parts.append((batch.slice(0, cut), why[:cut]))
            self._tail = [(batch.slice(cut), why[cut:])] if self.cg[CG_PEND] else []
        now = dict.fromkeys(REASONS, 0)
        out = []
        for b, w in parts:
            tally = np.bincount(w, minlength=len(REASONS) + 1)
            for code, name in enumerate(REASONS, start=1):
                now[name] += int(tally[code])
            self.kept += int(tally[KEEP])
            out.append(b if tally[KEEP] == len(w) else b.filter(pa.array(w == KEEP)))
        for name, v in now.items():
            self.counts[name] += v
        if not out:
            return batch.slice(0, 0), now
        return (out[0] if len(out) == 1 else pa.concat_batches(out)), now

    def stream(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Every non-empty cleaned batch of `batches`, then what `finish` returns."""
        for batch in batches:
            out, _ = self.clean(batch)
            if out.num_rows:
                yield out
        out, _ = self.finish()
        if out is not None and out.num_rows:
            yield out
