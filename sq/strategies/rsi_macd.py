"""RSI with MACD: buy a MACD upturn that is not overbought, leave on a downturn or when overbought.

Enter long when the MACD line crosses above its signal line while the RSI is below `overbought`;
exit when it crosses back below, or when the RSI rises above `overbought`. With `short=1` the
mirror image trades short (MACD crossing down while the RSI is above `oversold`). An optional
stop `stop_pct` % from the entry bar's close protects every entry.
"""

import polars as pl

from sq import indicators as ta
from sq.strategy import BarStrategy

strategy = BarStrategy("rsi_macd", "RSI + MACD: enter on a MACD crossover the RSI confirms; exit on the reverse.",
                       interval="5m", execution="next_open")
strategy.param("rsi_len", 14, min=2, max=500, doc="bars in the RSI (Wilder)")
strategy.param("fast", 12, min=1, max=500, doc="bars in MACD's fast EMA")
strategy.param("slow", 26, min=2, max=1000, doc="bars in MACD's slow EMA")
strategy.param("signal", 9, min=1, max=500, doc="bars in MACD's signal EMA")
strategy.param("overbought", 70, min=50, max=100, doc="RSI above which longs are not entered and are closed")
strategy.param("oversold", 30, min=0, max=50, doc="RSI below which shorts are not entered and are closed")
strategy.param("stop_pct", 0.0, min=0.0, max=50.0, doc="stop-loss distance from the entry bar's close, % (0: none)")
strategy.param("size", 1.0, above=0.0, doc="position size, base quantity (rounded down to the lot)")
strategy.param("short", 0, choices=(0, 1), doc="1: trade the mirror image short as well")


@strategy.indicators
def indicators(bars, p):
    close = pl.col("close")
    return bars.with_columns(
        rsi=ta.rsi(close, p.rsi_len),
        macd=ta.macd(close, p.fast, p.slow, p.signal),
    ).unnest("macd", separator="_")  # macd_macd, macd_signal, macd_hist


@strategy.signals
def signals(bars, p):
    line, sig, rsi = pl.col("macd_macd"), pl.col("macd_signal"), pl.col("rsi")
    up = (line > sig) & (line.shift(1) <= sig.shift(1))
    down = (line < sig) & (line.shift(1) >= sig.shift(1))
    stop = p.stop_pct / 100.0
    out = bars.with_columns(
        enter_long=up & (rsi < p.overbought),
        exit_long=down | (rsi > p.overbought),
        enter_short=(down & (rsi > p.oversold)) if p.short else pl.lit(False),
        exit_short=up | (rsi < p.oversold),
    )
    if stop > 0:
        out = out.with_columns(stop_loss=pl.when(pl.col("enter_long")).then(pl.col("close") * (1 - stop))
                               .when(pl.col("enter_short")).then(pl.col("close") * (1 + stop)))
    return out
