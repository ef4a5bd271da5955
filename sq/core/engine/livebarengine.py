"""`LiveBarEngine`: a bar strategy trading on a real venue, inside the event engine `sq live` runs.

Live trading has one path — the event `Engine` with `sim_venue=False`, whose outbox the venue
gateway sends from, with the run's journal, circuit breaker, reconcile and kill registry around
it (`sq.runs.live`). This engine puts a bar strategy on that path. It *is* an `Engine` whose
declaration is the strategy's executor (`sq.core.strategy.executor`: the same name and
parameters, numba handlers on the public ctx API), plus the bars:

`process(batch)` first feeds the market batch to a `BarStream` at the strategy's interval (the
code of `sq bars`). For every bar that closes, the strategy's signals are computed over that
symbol's whole history (`sq.core.engine.barhistory`, shared with `BarEngine`), and each new
bar's signal becomes the wanted position exactly as the bar executor turns it into one
(`barexec._wanted`: a target, or entry/exit flags relative to the current position; whole lots),
with its stop-loss and take-profit for an entry. They are written into the symbol's executor
state row (`us`, in place). Then the batch goes through `Engine.process` as for any strategy:
the executor's handlers see the current book and work toward the wanted position with real
orders, through the same risk checks, order manager and outbox.

Bars close as the market's clock passes their end (`sq.core.bars`), so a signal is acted on at
the first book update after its bar closed. The history is part of `snapshot_state`; a live
`--resume` rebuilds positions from its journal instead, so its bars start again from the feed.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping

import numpy as np
import pyarrow as pa

from sq.core import schemas as S
from sq.core.engine import barexec as X
from sq.core.engine import barhistory
from sq.core.engine import layout as L
from sq.core.engine import params as engine_params
from sq.core.engine.context import round_lots
from sq.core.engine.runner import Engine, EngineOutput, FillModelConfig
from sq.core.exits import DataError
from sq.core.sessions import UTC_DAY, TradingSession
from sq.core.strategy import executor as E
from sq.core.strategy.declaration import BarStrategy


class LiveBarEngine(Engine):
    """A bar strategy's run on the event engine: `process` market batches (see the module docstring)."""

    def __init__(self, strategy: BarStrategy, instruments: Mapping[str, S.Instrument], params: Mapping[str, Mapping[str, float]], *,
                 config, fill: FillModelConfig | None = None, seed: int = 0, sim_venue: bool = False,
                 session_of: Callable[[str], TradingSession] | None = None):
        from sq.core.bars import parse_interval
        from sq.core.strategy import loader

        loader.check_bar_strategy(strategy)
        self.bar_strategy = strategy
        super().__init__(E.executor(strategy), instruments, params, config=config, fill=fill, seed=seed, sim_venue=sim_venue)
        self.spec = parse_interval(strategy.interval)
        self.session_of = session_of or (lambda symbol: UTC_DAY)
        self.history = barhistory.BarHistory(strategy, self.session_of)
        self.builder = None  # a BarStream, made on the first market batch
        self.bars_in = 0
        self._initial = np.array(E.initial_state(strategy.execution, strategy.offset), np.float64)
        X._wanted(np.zeros((1, L.NSF)), 0, math.nan, 0, math.nan)  # its compiled code loaded now, not at the first bar

    # -- symbols
    def _ensure_symbols(self, batch, codes, kind, price) -> None:
        old = self.n
        super()._ensure_symbols(batch, codes, kind, price)
        if self.n > old:
            self.us[old:self.n, :E.NSLOTS] = self._initial

    # -- input
    def process(self, batch: pa.RecordBatch, *, complete: bool = False) -> EngineOutput:
        """Close the bars this market batch completes and set what their signals want, then run
        the batch through the event engine (whose executor trades toward it)."""
        if batch.num_rows:
            t0 = time.perf_counter()
            names = batch.schema.names  # a market stream may carry the day's OHLC as extras (Kite ticks); a bars stream has no `kind`
            if S.stream_kind(batch.schema) == "bars" or ("open" in names and "kind" not in names):
                raise DataError(f"strategy {self.strategy} trades live from market data; the input is a bars stream")
            if self.builder is None:
                self.builder = barhistory.bar_stream(batch, self.instruments, self.spec, self.session_of, self.warnings.append)
            bars = self.builder.process(batch)
            if bars is not None and bars.num_rows:
                self._on_bars(batch, bars)
            self.elapsed += time.perf_counter() - t0
        return super().process(batch, complete=complete)

    def _on_bars(self, batch: pa.RecordBatch, bars: pa.RecordBatch) -> None:
        codes, new = barhistory.read_bars(bars, self.registry, self.spec, self.bars_in)
        if len(self.registry.symbols) != self.n:  # a symbol first seen in this batch: its engine state now
            self._ensure_from(batch)
        self.bars_in += len(codes)
        for s in np.unique(codes).tolist():
            rows = np.flatnonzero(codes == s)
            name = self.registry.symbols[s]
            params = self.params.get(name) or self.params.get(engine_params.ALL) or self.bar_strategy.defaults()
            sig = self.history.add(s, name, {k: v[rows] for k, v in new.items()}, params)
            for i in range(len(rows)):
                self._want(s, float(sig.target[i]), int(sig.flags[i]), float(sig.size[i]), float(sig.stop[i]), float(sig.take[i]))

    def _ensure_from(self, batch: pa.RecordBatch) -> None:
        codes = self.registry.codes(batch.column("symbol"))
        kind = np.asarray(batch.column("kind").to_numpy(zero_copy_only=False), np.uint8)
        price = np.asarray(batch.column("price").fill_null(math.nan).to_numpy(zero_copy_only=False), np.float64)
        self._ensure_symbols(batch, codes, kind, price)

    def _want(self, s: int, target: float, flags: int, size: float, stop: float, take: float) -> None:
        """One bar's signal → symbol `s`'s wanted position (and its entry's stop and take-profit).
        While the venue holds the position's protective orders (`W_VENUE`), a later bar that keeps
        the position and gives a stop or take-profit moves it (the run then modifies the venue's
        order; backtest and paper move theirs alike: `barexec._move_protection`)."""
        want = float(X._wanted(self.sf, s, target, flags, size))
        st = self.us[s]
        pos = float(self.sf[s, L.SF_POS])
        if want != want:
            self._move_protection(st, pos, stop, take)
            return  # no opinion: the wanted position stays
        lot = float(self.sf[s, L.SF_LOT])
        want = math.copysign(round_lots(abs(want), lot), want) if lot > 0.0 else want
        if want != pos:
            entry = abs(want) > abs(pos) or want * pos < 0.0
            st[E.W_WSTOP] = stop if entry else st[E.W_STOP]
            st[E.W_WTAKE] = take if entry else st[E.W_TAKE]
        else:
            self._move_protection(st, pos, stop, take)
        st[E.W_WANT] = want
        st[E.W_EXIT] = 0.0

    @staticmethod
    def _move_protection(st, pos: float, stop: float, take: float) -> None:
        if st[E.W_VENUE] == 0.0 or pos == 0.0:
            return
        if stop == stop:
            st[E.W_STOP] = st[E.W_WSTOP] = stop
        if take == take:
            st[E.W_TAKE] = st[E.W_WTAKE] = take

    # -- reporting
    def wanted(self) -> dict[str, float | None]:
        """Per symbol: the position its last signal asked for (None: no signal yet)."""
        out = {}
        for s in range(self.n):
            w = float(self.us[s, E.W_WANT])
            out[self.registry.symbols[s]] = None if math.isnan(w) else w
        return out

    def summary(self) -> dict[str, Any]:
        s = super().summary()
        s.update(bars=self.bars_in, interval=self.spec.label, execution=self.bar_strategy.execution, wanted=self.wanted())
        return s

    # -- resume
    def snapshot_state(self) -> dict[str, Any]:
        state = super().snapshot_state()
        state.update(self.history.snapshot())
        state["bars_in"] = self.bars_in
        return state

    def restore_state(self, state: Mapping[str, Any]) -> None:
        super().restore_state(state)
        self.bars_in = int(state.get("bars_in", 0))
        self.history.restore(state)
