"""Supertrend: hold the side the Supertrend line points to.

The Supertrend (an ATR band that flips when the close crosses it) gives a direction each bar:
up → hold `size` long; down → flat, or `size` short with `short=1`. The position follows every
flip; nothing is held before the ATR's warm-up ends.
"""

import polars as pl

from sq import indicators as ta
from sq.strategy import BarStrategy

strategy = BarStrategy("supertrend", "Supertrend: long while the ATR band points up, flat (or short) while down.",
                       interval="15m", execution="next_open")
strategy.param("length", 10, min=1, max=1000, doc="bars in the ATR")
strategy.param("mult", 3.0, above=0.0, max=20.0, doc="band distance in ATRs")
strategy.param("size", 1.0, above=0.0, doc="position size, base quantity (rounded down to the lot)")
strategy.param("short", 0, choices=(0, 1), doc="1: hold a short position while the trend is down")


@strategy.indicators
def indicators(bars, p):
    st = ta.supertrend(pl.col("high"), pl.col("low"), pl.col("close"), p.length, p.mult)
    return bars.with_columns(st=st).unnest("st", separator="_")  # st_line, st_direction


@strategy.signals
def signals(bars, p):
    down = -p.size if p.short else 0.0
    d = pl.col("st_direction")
    return bars.with_columns(target=pl.when(pl.col("st_line").is_null()).then(None)
                             .when(d > 0).then(p.size).when(d < 0).then(down).otherwise(None))
