"""`BarEngine`: the engine for bar strategies, with the event engine's interface and state.

It is an `Engine` (same symbols, instruments, parameters, risk arrays, position keeper, journal
rows, summary, snapshot and halt), whose input is bars: a bars stream is used as it is (its
interval must be the strategy's), a market stream is turned into the strategy's bars as they
close (`sq.core.barstream`, the code of `sq bars`). For each batch of new bars, every symbol
that got bars has its signals computed over its whole history so far (one vectorised call of
the strategy's polars functions; the new rows are kept — `sq.core.engine.barhistory`, shared
with the live engine `LiveBarEngine`), then `sq.core.engine.barexec` executes them. So a
backtest (one batch of every bar) and a paper run (a bar at a time) give the same orders and
fills, as long as the strategy does not look ahead.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import numpy as np
import pyarrow as pa
from numba import njit

from sq.core import schemas as S
from sq.core.bars import BAR_SESSION, BAR_TIME
from sq.core.engine import barexec as X
from sq.core.engine import barhistory
from sq.core.engine import funding as FU
from sq.core.engine import kernel as K
from sq.core.engine import layout as L
from sq.core.engine.runner import Engine, EngineOutput, FillModelConfig
from sq.core.exits import DataError
from sq.core.sessions import NS_PER_DAY, UTC_DAY, MarketCalendar, TradingSession
from sq.core.strategy import barsignals
from sq.core.strategy.declaration import EXECUTIONS, BarStrategy


@njit(cache=True)
def _group(codes, nsym, where):
    """Stable counting sort of bars by symbol: fills `where` (each bar's place), returns the
    start of each symbol's run (nsym + 1 offsets)."""
    starts = np.zeros(nsym + 1, np.int64)
    for i in range(len(codes)):
        starts[codes[i] + 1] += 1
    for s in range(nsym):
        starts[s + 1] += starts[s]
    fill = starts[:nsym].copy()
    for i in range(len(codes)):
        s = codes[i]
        where[i] = fill[s]
        fill[s] += 1
    return starts


@njit(cache=True)
def _scatter(src, where):
    out = np.empty_like(src)
    for i in range(len(src)):
        out[where[i]] = src[i]
    return out


class BarEngine(Engine):
    """One bar strategy run: `process` bars or market batches, then `finish` (or `cancel_all`)."""

    def __init__(self, strategy: BarStrategy, instruments: Mapping[str, S.Instrument], params: Mapping[str, Mapping[str, float]], *,
                 config, fill: FillModelConfig | None = None, seed: int = 0, sim_venue: bool = True,
                 session_of: Callable[[str], TradingSession] | None = None):
        super().__init__(strategy, instruments, params, config=config, fill=fill, seed=seed, sim_venue=sim_venue)
        from sq.core.bars import parse_interval

        self.spec = parse_interval(self.declaration.interval)
        self.style = EXECUTIONS.index(self.declaration.execution)
        self.offset = int(self.declaration.offset)
        self.session_of = session_of or (lambda symbol: UTC_DAY)
        self.bi = np.zeros((0, X.NBI), np.int64)
        self.bf = np.zeros((0, X.NBF), np.float64)
        self.history = barhistory.BarHistory(self.declaration, self.session_of)
        self.builder = None  # a BarStream, made on the first market batch
        self.bars_in = 0
        self.rows_in = 0  # input rows: bars, or the market events bars were made of

    # -- market rules
    def set_calendar(self, symbol: str, calendar: MarketCalendar, *, hours: bool = True) -> None:
        """`Engine.set_calendar` for bars of less than a day: a bar acts at its close, so the risk
        check sees the bar's close time, and a bar closing at or after the square-off closes the
        position at its close. A bar of a whole session or more (`session`, `1d`) closes with the
        market and decides for the next session: no calendar applies to it."""
        if self.spec.mode == BAR_SESSION or (self.spec.mode == BAR_TIME and self.spec.size >= NS_PER_DAY):
            return
        super().set_calendar(symbol, calendar, hours=hours)

    # -- symbols
    def _ensure_symbols(self, batch, codes, kind, price) -> None:
        old = self.n
        super()._ensure_symbols(batch, codes, kind, price)
        k = self.n - old
        if k > 0:
            self.bi = np.concatenate([self.bi, np.zeros((k, X.NBI), np.int64)])
            bf = np.zeros((k, X.NBF), np.float64)
            bf[:, X.BF_STOP] = bf[:, X.BF_TAKE] = np.nan
            self.bf = np.concatenate([self.bf, bf])

    # -- input
    def process(self, batch: pa.RecordBatch, *, complete: bool = False) -> EngineOutput:
        """Run a bars batch (or table), or the bars a market batch closes; the journal rows they
        produced."""
        t0 = time.perf_counter()
        if batch.num_rows == 0:
            return self.take_output(0)
        self.rows_in += batch.num_rows
        if self._t0 is None:  # where the run's clock starts (its metrics' time span)
            try:
                self._t0 = int(S.int64_view(batch.column("ts"))[0])
            except (KeyError, TypeError, ValueError, IndexError):
                pass
        if S.stream_kind(batch.schema) == "bars" or "open" in batch.schema.names:
            self._check_interval(batch.schema)
            self._run_bars(batch)
        else:
            bars = self._builder(batch).process(batch)
            if bars is not None and bars.num_rows:
                self._run_bars(bars)
        self.elapsed += time.perf_counter() - t0
        return self.take_output(batch.num_rows)

    def _check_interval(self, schema: pa.Schema) -> None:
        got = S.bars_interval(schema)
        if got is not None and got != self.spec.label:
            raise DataError(f"strategy {self.strategy} reads {self.spec.label} bars; the input holds {got} bars "
                            f"(make {self.spec.label} bars with: sq bars {self.spec.label} DATA)")

    def _builder(self, batch: pa.RecordBatch):
        if self.builder is None:
            self.builder = barhistory.bar_stream(batch, self.instruments, self.spec, self.session_of, self.warnings.append)
        return self.builder

    def _run_bars(self, bars: pa.RecordBatch) -> None:
        codes, new = barhistory.read_bars(bars, self.registry, self.spec, self.bars_in)
        n = len(codes)
        self._ensure_symbols(bars, codes.astype(np.int32), np.full(n, S.TRADE, np.uint8), new["close"])
        ts, tclose, o, h, lo, c = (new[k] for k in ("ts", "tclose", "open", "high", "low", "close"))
        # each symbol's bars made contiguous (in time order) by a counting sort: where[i] is bar
        # i's place; the kernel reads bar i's signal at where[i]
        where = np.empty(n, np.int64)
        starts = _group(codes, self.n, where)
        ordered = {k: _scatter(v, where) for k, v in new.items()}
        sig = barsignals.Signals.empty(n)  # every row is some symbol's: all written below
        for s in np.flatnonzero(np.diff(starts)).tolist():
            a, b = int(starts[s]), int(starts[s + 1])
            got = self._signals(s, {k: v[a:b] for k, v in ordered.items()})
            for attr in barsignals.Signals.__slots__:
                getattr(sig, attr)[a:b] = getattr(got, attr)
        self.bars_in += n
        if self._t0 is None and n:  # where the run's clock starts (funding times crossed without funding data)
            self._t0 = int(ts[0])
        bars_ = (codes, ts, tclose, o, h, lo, c, where)  # per bar; the signals are read at where[i]
        signals = (sig.target, sig.flags, sig.size, sig.stop, sig.take)
        if not self.calendars.entries and self.funding.next_ns == FU.NEVER:
            self._execute(bars_ + signals)
        else:
            def run(a: int, b: int) -> None:
                self._execute((bars_ if a == 0 and b == n else tuple(x[a:b] for x in bars_)) + signals)

            def by_calendar(a: int, b: int, last: bool) -> None:  # a bar acts at its close: calendars split at closes
                if not self.calendars.entries:
                    run(a, b)
                    return
                self._by_calendar(np.maximum.accumulate(tclose[a:b]), lambda x, y, end: run(a + x, a + y))

            # a perpetual's funding at time F is paid on the position held when the first bar
            # opening at or after F starts: the fills of earlier bars are in it, that bar's open
            # fill (an order of the bar closing at F) is not
            self._by_funding(np.maximum.accumulate(ts), by_calendar)
        if self._t0 is not None and self.funding.expected:
            self._check_funding_data()

    def _execute(self, arrays: tuple) -> None:
        """The bar kernel over `arrays` (bars and their signals)."""
        i = 0
        while True:
            st, i = X.run(*arrays, i, self.style, self.offset, self.si, self.sf, self.bi, self.bf, self.oi, self.of,
                          self.g, self.gf, self.rej, self.oo_i, self.oo_f, self.fo_i, self.fo_f, self.po_i, self.po_f,
                          self.eq, self.n, self._margin())
            if st == X.ST_OK:
                return
            self.make_room(st)

    def _at_boundary(self, boundary: int | None = None) -> None:
        """Bars have no open venue message to complete."""

    def _square_off(self, s: int, now: int) -> None:
        """The broker's cut-off for symbol `s`: its next bar (the one closing at or after it)
        cancels its working order and closes its position at that bar's close (`barexec`)."""
        self.si[s, L.SI_SQ] = 1

    def _signals(self, s: int, rows: dict[str, np.ndarray]) -> barsignals.Signals:
        """Symbol `s`'s new bars appended to its history; their signals."""
        name = self.registry.symbols[s]
        params = self.params.get(name) or self.params.get("*") or self.declaration.defaults()
        return self.history.add(s, name, rows, params)

    # -- end
    def finish(self) -> EngineOutput:
        """End of input: the bars a market input still had open, then a closing pnl row per
        traded symbol (working orders stay working, as in the event engine)."""
        t0 = time.perf_counter()
        if self.builder is not None:
            for b in self.builder.finish():
                self._run_bars(b)
        self.make_room(K.ST_FLUSH)
        K.final_rows(self.si, self.sf, self.g, self.po_i, self.po_f, self.n, self.now_ns)
        self.elapsed += time.perf_counter() - t0
        return self.take_output(0)

    def cancel_all(self, ts_ns: int, reason: str = "manual") -> EngineOutput:
        """Halt: no new orders; cancel every working order at `ts_ns`."""
        code = {"max_loss": L.HALT_MAX_LOSS, "daily_loss": L.HALT_DAILY}.get(reason, L.HALT_MANUAL)
        self._manual_reason = reason
        self.make_room(K.ST_FLUSH)
        now = max(int(ts_ns), int(self.g[L.G_LASTLOC]))
        X.halt_all(self.si, self.sf, self.bi, self.bf, self.g, self.oo_i, self.oo_f, self.n, code, now)
        self.g[L.G_HALT_REASON] = self.g[L.G_HALTED]
        return self.take_output(0)

    def summary(self) -> dict[str, Any]:
        s = super().summary()
        s["bars"] = s["events"]
        s["events"] = self.rows_in
        s["events_per_s"] = self.rows_in / self.elapsed if self.elapsed > 0 else 0.0
        s["interval"] = self.spec.label
        s["execution"] = self.declaration.execution
        s.pop("messages", None)
        return s

    # -- resume
    _ARRAYS = Engine._ARRAYS + ("bi", "bf")

    def snapshot_state(self) -> dict[str, Any]:
        state = super().snapshot_state()
        state.update(self.history.snapshot())
        state["bars_in"] = self.bars_in
        state["rows_in"] = self.rows_in
        return state

    def restore_state(self, state: Mapping[str, Any]) -> None:
        super().restore_state(state)
        self.bars_in = int(state.get("bars_in", 0))
        self.rows_in = int(state.get("rows_in", 0))
        self.history.restore(state)


def warm_up(config) -> None:
    """Load (or compile) the bar kernels on three hand-made bars, before a run's clock starts
    (the event engine's own kernels are not needed: a bar run never calls them)."""
    import polars as pl

    name = "SIM:WARMUP"
    inst = {name: S.Instrument(name, "sim", 1.0)}
    strategy = BarStrategy("warmup", "", interval="1m")
    strategy.signals(lambda bars, p: bars.with_columns(target=pl.Series([1.0, -1.0, 0.0])[: bars.height]))
    ts = np.array([0, 60, 120], np.int64) * 1_000_000_000
    schema = S.bars_schema(inst, "1m")
    batch = pa.RecordBatch.from_arrays(
        [pa.array(ts).view(S.TS), S.dict_column(np.zeros(3, np.int32), S.symbol_dictionary([name]))]
        + [pa.array([100.0, 101.0, 102.0])] * 4 + [pa.array([1.0] * 3), pa.array([1] * 3, pa.int64()), pa.nulls(3, pa.float64()),
                                                     pa.nulls(3, pa.float64())], schema=schema)
    for execution in EXECUTIONS:
        strategy.execution = execution
        e = BarEngine(strategy, inst, {name: {}}, config=config)
        e.process(batch)
        e.finish()
        e.cancel_all(10, "warmup")
