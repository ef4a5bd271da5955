"""What the market rules cost the engine (docs/market-rules.md), on the shared synthetic stream.

A symbol with a market calendar makes the engine prepare a batch before running it (to split it
at local midnights and square-off times) instead of running small batches in the same compiled
call. Both runs below trade the same: the calendar is open around the clock (a day-long session,
no closed days, no square-off), so only its bookkeeping differs.

1. Backtest, `mm` requoting every book change: events/s with the calendar; ratio vs without.
2. Paper, 1-event batches through `Engine.process(complete=True)`: p50 / p99 per event with the
   calendar, and the p50 without it (the baseline).
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np

from bench.synthetic import SYMBOL, synthetic_market

MM = {"clip": 1.0, "threshold": 0.6, "max_order_size": 10.0, "max_position": 20.0, "max_loss": 1e12}


def _engine(calendar: bool):
    from sq.core.config import Config
    from sq.core.engine import Engine, FillModelConfig
    from sq.core.schemas import Instrument
    from sq.core.sessions import MarketCalendar, TradingSession

    e = Engine("mm", {SYMBOL: Instrument(SYMBOL, "sim", 0.01, 1.0)}, {SYMBOL: MM}, config=Config(),
               fill=FillModelConfig(order_latency_ns=1_000_000, queue_model="prob"))
    if calendar:
        e.set_calendar(SYMBOL, MarketCalendar(TradingSession(dt.time(0), dt.time(23, 59, 59)), weekend=frozenset()))
    return e


def _backtest(batch, calendar: bool) -> float:
    e = _engine(calendar)
    t0 = time.perf_counter()
    e.process(batch)
    e.finish()
    return time.perf_counter() - t0


def _latency(table, calendar: bool, n_events: int = 60_000) -> np.ndarray:
    e = _engine(calendar)
    batches = table.slice(0, n_events).to_batches(max_chunksize=1)
    for b in batches[:200]:
        e.process(b, complete=True)
    lat = np.empty(len(batches) - 200)
    clock = time.perf_counter_ns
    for k, b in enumerate(batches[200:]):
        t0 = clock()
        e.process(b, complete=True)
        lat[k] = clock() - t0
    return lat / 1e3


def run(report) -> None:
    from sq.core.config import Config
    from sq.core.engine.runner import warm_up

    table = synthetic_market()
    n = table.num_rows
    warm_up(Config())
    batch = table.combine_chunks().to_batches()[0]
    _backtest(batch.slice(0, 1000), True)
    plain = n / min(_backtest(batch, False) for _ in range(3)) / 1e6
    ruled = n / min(_backtest(batch, True) for _ in range(3)) / 1e6
    report(f"backtest mm with a market calendar ({n:,} events), events/s", ruled, "M/s", baseline=plain)
    base = _latency(table, False)
    lat = _latency(table, True)
    report("paper 1-event batches with a market calendar: any event, p50", float(np.percentile(lat, 50)), "us",
           baseline=float(np.percentile(base, 50)), lower_is_better=True)
    report("paper 1-event batches with a market calendar: any event, p99", float(np.percentile(lat, 99)), "us",
           target=50.0, lower_is_better=True)
