"""Donchian channel breakout (the turtles' system): enter on a new N-bar high, leave on an M-bar low.

Enter long when the close breaks above the highest high of the previous `entry` bars; exit when
it breaks below the lowest low of the previous `exit` bars (shorts mirrored with `short=1`).
Every entry carries the turtles' stop: `stop_atr` ATRs (of `atr_len` bars) from the entry bar's
close.
"""

import polars as pl

from sq import indicators as ta
from sq.strategy import BarStrategy

strategy = BarStrategy("donchian", "Donchian/turtle breakout: a new N-bar high enters, an M-bar low exits, an ATR stop.",
                       interval="1h", execution="next_open")
strategy.param("entry", 20, min=2, max=5000, doc="bars of the breakout channel")
strategy.param("exit", 10, min=1, max=5000, doc="bars of the exit channel")
strategy.param("atr_len", 20, min=1, max=1000, doc="bars in the ATR of the stop")
strategy.param("stop_atr", 2.0, min=0.0, doc="stop distance in ATRs from the entry bar's close (0: none)")
strategy.param("size", 1.0, above=0.0, doc="position size, base quantity (rounded down to the lot)")
strategy.param("short", 1, choices=(0, 1), doc="1: trade downside breakouts short as well")


@strategy.indicators
def indicators(bars, p):
    high, low = pl.col("high"), pl.col("low")
    return bars.with_columns(
        entry=ta.donchian(high, low, p.entry),
        exit=ta.donchian(high, low, p.exit),
        atr=ta.atr(high, low, pl.col("close"), p.atr_len),
    ).unnest("entry", "exit", separator="_")


@strategy.signals
def signals(bars, p):
    close = pl.col("close")
    # the channels of the bars *before* this one: a close above them is a breakout
    up = close > pl.col("entry_upper").shift(1)
    down = (close < pl.col("entry_lower").shift(1)) & pl.lit(bool(p.short))
    dist = p.stop_atr * pl.col("atr")
    return bars.with_columns(
        enter_long=up,
        enter_short=down,
        exit_long=close < pl.col("exit_lower").shift(1),
        exit_short=close > pl.col("exit_upper").shift(1),
        stop_loss=(pl.when(up).then(close - dist).when(down).then(close + dist)) if p.stop_atr > 0 else pl.lit(None, pl.Float64),
    )
