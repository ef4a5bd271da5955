"""Moving-average crossover: long while the fast average is above the slow one.

The classic trend follower. Each bar the fast and slow moving averages of the close (simple, or
exponential with `ema=1`) are compared: above → hold `size` long; below → flat, or `size` short
with `short=1`. No position until both averages exist (the slow one's warm-up).
"""

import polars as pl

from sq import indicators as ta
from sq.strategy import BarStrategy

strategy = BarStrategy("ma_cross", "Moving-average crossover: long while the fast average is above the slow one.",
                       interval="1m", execution="next_open")
strategy.param("fast", 10, min=1, max=10_000, doc="bars in the fast moving average")
strategy.param("slow", 30, min=2, max=10_000, doc="bars in the slow moving average")
strategy.param("ema", 0, choices=(0, 1), doc="1: exponential moving averages, 0: simple")
strategy.param("size", 1.0, above=0.0, doc="position size, base quantity (rounded down to the lot)")
strategy.param("short", 0, choices=(0, 1), doc="1: hold a short position below the slow average, 0: stay flat")


@strategy.indicators
def indicators(bars, p):
    average = ta.ema if p.ema else ta.sma
    return bars.with_columns(fast=average(pl.col("close"), p.fast), slow=average(pl.col("close"), p.slow))


@strategy.signals
def signals(bars, p):
    below = -p.size if p.short else 0.0
    return bars.with_columns(
        target=pl.when(pl.col("fast") > pl.col("slow")).then(p.size)
        .when(pl.col("fast") < pl.col("slow")).then(below)
        .otherwise(None)  # equal, or still warming up: no opinion
    )
