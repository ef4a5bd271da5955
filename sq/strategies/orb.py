"""Opening range breakout, session-aware: trade the first break of the day's opening range.

The opening range is the high and low of the first `minutes` of each trading session (NSE:
09:15 IST on; around-the-clock markets: the UTC day). After it is complete, the first bar of
the session that closes above the range's high goes long (below its low: short, with `short=1`)
with a stop at the other side of the range and a take-profit `reward` ranges away. One entry a
session; every position is closed `exit_min` minutes before the session's close.
"""

import polars as pl

from sq import indicators as ta
from sq.strategy import BarStrategy

strategy = BarStrategy("orb", "Opening range breakout: the session's first close beyond its opening range, stop at the other side.",
                       interval="1m", execution="next_open")
strategy.param("minutes", 15, min=1, max=600, doc="length of the opening range, minutes from the session's open")
strategy.param("reward", 2.0, min=0.0, doc="take-profit distance in opening-range widths (0: none)")
strategy.param("exit_min", 15, min=0, max=600, doc="close every position this many minutes before the session's close")
strategy.param("size", 1.0, above=0.0, doc="position size, base quantity (rounded down to the lot)")
strategy.param("short", 1, choices=(0, 1), doc="1: trade downside breaks short as well")


@strategy.indicators
def indicators(bars, p):
    rng = ta.opening_range(pl.col("high"), pl.col("low"), pl.col("ts").dt.epoch("ns"), pl.col("session"), p.minutes)
    return bars.with_columns(rng=rng).unnest("rng")  # or_high, or_low


@strategy.signals
def signals(bars, p):
    hi, lo, close = pl.col("or_high"), pl.col("or_low"), pl.col("close")
    late = pl.col("ts") >= pl.col("session_close") - pl.duration(minutes=p.exit_min + 1)
    up = (close > hi) & ~late
    down = (close < lo) & ~late & pl.lit(bool(p.short))
    # only the session's first break trades
    broke = (up | down).cast(pl.Int32).cum_sum().over("session")
    first = (up | down) & (broke == 1)
    width = hi - lo
    return bars.with_columns(
        enter_long=first & up,
        enter_short=first & down,
        exit_long=late,
        exit_short=late,
        stop_loss=pl.when(first & up).then(lo).when(first & down).then(hi),
        take_profit=(pl.when(first & up).then(close + p.reward * width).when(first & down).then(close - p.reward * width))
        if p.reward > 0 else pl.lit(None, pl.Float64),
    )
