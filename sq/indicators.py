"""Technical indicators for strategies: `from sq import indicators as ta`.

Every function takes NumPy arrays, polars Series or polars expressions — all its data arguments
of one kind — and returns the same kind:

* NumPy arrays (or anything `numpy.asarray` takes): a float64 array, or a tuple of arrays for the
  indicators with several outputs, in the order listed below;
* polars Series: a Float64 Series named after the indicator, or a Struct Series with one Float64
  field per output;
* polars expressions: an expression of the same shape (evaluated with `map_batches`, so it works
  per group under `.over("symbol")` and in `group_by().agg()`), named after the indicator.

Outputs have the input's length and are NaN on the warm-up rows — null in polars output, where
NaN would compare above every number (`close < NaN` is true) while a comparison with null is null,
which `when/then` and filters treat as false; from the first valid row on they equal the
reference implementation within 1e-9, warm-up rows included (docs/indicators.md):

    function                                       warm-up (NaN) rows      matches
    sma(x, n)                                      n-1                     TA-Lib SMA
    ema(x, n)                                      n-1                     TA-Lib EMA
    wma(x, n)                                      n-1                     TA-Lib WMA
    rsi(x, n=14)                                   n                       TA-Lib RSI
    macd(x, fast=12, slow=26, signal=9)            slow+signal-2           TA-Lib MACD
        -> macd, signal, hist
    atr(high, low, close, n=14)                    n                       TA-Lib ATR
    bbands(x, n=20, k=2.0)                         n-1                     TA-Lib BBANDS (SMA)
        -> upper, middle, lower
    supertrend(high, low, close, n=10, mult=3.0)   n                       pandas-ta-classic
        -> line, direction (+1 long, -1 short)                             supertrend
    donchian(high, low, n=20)                      n-1                     pandas-ta-classic
        -> upper, middle, lower                                            donchian
    vwap(high, low, close, volume, session)        none (NaN while a       pandas-ta-classic
                                                   session has no volume)  vwap(anchor="D")
    opening_range(high, low, ts, session, minutes) each session's first    a polars group_by
        -> or_high, or_low                         `minutes`               (sq's definition)

`session` is an integer id per row (a day number, say); the cumulative VWAP and the opening range
restart whenever it changes. `ts` is nanoseconds since the epoch (int64), or datetimes.

Inputs are assumed finite (no NaN, null or infinity). A period below 1, arrays of unequal length
or a mix of input kinds raise `IndicatorArgumentError`, a ValueError. The numba kernels behind
these functions live in `sq.core.indicators` (`sma_kernel`, …), callable from `@njit` code.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

__all__ = ["sma", "ema", "wma", "rsi", "macd", "atr", "bbands", "supertrend", "donchian", "vwap", "opening_range", "IndicatorArgumentError"]


def sma(x, n: int):
    """Simple moving average of the last n values (TA-Lib SMA)."""
    return _apply("sma", "sma", (x,), (n,))


def ema(x, n: int):
    """Exponential moving average, k = 2/(n+1), seeded by the mean of the first n (TA-Lib EMA)."""
    return _apply("ema", "ema", (x,), (n,))


def wma(x, n: int):
    """Linearly weighted moving average, weights 1..n with the newest heaviest (TA-Lib WMA)."""
    return _apply("wma", "wma", (x,), (n,))


def rsi(x, n: int = 14):
    """Wilder's relative strength index, 0..100 (TA-Lib RSI)."""
    return _apply("rsi", "rsi", (x,), (n,))


def macd(x, fast: int = 12, slow: int = 26, signal: int = 9):
    """MACD line, signal line and histogram (TA-Lib MACD: both EMAs start at row slow-1)."""
    return _apply("macd", "macd", (x,), (fast, slow, signal), ("macd", "signal", "hist"))


def atr(high, low, close, n: int = 14):
    """Wilder's average true range (TA-Lib ATR)."""
    return _apply("atr", "atr", (high, low, close), (n,))


def bbands(x, n: int = 20, k: float = 2.0):
    """Bollinger bands: SMA ± k population standard deviations (TA-Lib BBANDS, matype 0)."""
    return _apply("bbands", "bbands", (x,), (n, k), ("upper", "middle", "lower"))


def supertrend(high, low, close, n: int = 10, mult: float = 3.0):
    """Supertrend line and direction on hl2 ± mult·ATR(n) (pandas-ta-classic supertrend)."""
    return _apply("supertrend", "supertrend", (high, low, close), (n, mult), ("line", "direction"))


def donchian(high, low, n: int = 20):
    """Donchian channel: highest high, midpoint, lowest low of the last n rows
    (pandas-ta-classic donchian)."""
    return _apply("donchian", "donchian", (high, low), (n,), ("upper", "middle", "lower"))


def vwap(high, low, close, volume, session):
    """Cumulative VWAP of (h+l+c)/3, restarted when `session` changes (pandas-ta-classic vwap,
    anchor "D", when `session` is the day)."""
    return _apply("vwap", "vwap", (high, low, close, volume, session), ())


def opening_range(high, low, ts, session, minutes: float):
    """Each session's high and low over its first `minutes` (bars whose ts is before the
    session's first ts + minutes); NaN until that time has passed, then constant for the rest
    of the session."""
    return _apply("opening_range", "opening_range", (high, low, ts, session), (minutes,), ("or_high", "or_low"))


def __getattr__(name: str) -> Any:
    if name == "IndicatorArgumentError":  # without importing numba for the module itself
        return _core().IndicatorArgumentError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _core():
    from sq.core import indicators

    return indicators


def _kind(inputs: tuple) -> str:
    """'numpy', 'series' or 'expr': what every data argument is."""
    pl = sys.modules.get("polars")  # nothing can be a polars object unless polars is imported
    kinds = {"numpy" if pl is None else "series" if isinstance(a, pl.Series) else "expr" if isinstance(a, pl.Expr) else "numpy" for a in inputs}
    if len(kinds) > 1:
        raise _core().IndicatorArgumentError(
            f"indicator inputs must be all NumPy arrays, all polars Series or all polars expressions, got {', '.join(type(a).__name__ for a in inputs)}")
    return kinds.pop()


def _apply(name: str, fn_name: str, inputs: tuple, params: tuple, fields: tuple[str, ...] = ()):
    core = _core()
    fn: Callable = getattr(core, fn_name)
    kind = _kind(inputs)
    if kind == "numpy":
        return fn(*inputs, *params)
    if kind == "series":
        return _to_series(name, fields, fn(*(s.to_numpy() for s in inputs), *params))
    import numpy as np
    import polars as pl

    fn(*(np.zeros(0, dtype=np.int64) for _ in inputs), *params)  # bad parameters fail here, not at collect
    dtype = pl.Struct({f: pl.Float64 for f in fields}) if fields else pl.Float64

    def run(batch: pl.Series) -> pl.Series:
        columns = [batch.struct.field(f"_{i}") for i in range(len(inputs))] if len(inputs) > 1 else [batch]
        return _to_series(name, fields, fn(*(s.to_numpy() for s in columns), *params))

    source = pl.struct(*(e.alias(f"_{i}") for i, e in enumerate(inputs))) if len(inputs) > 1 else inputs[0]
    return source.map_batches(run, return_dtype=dtype).alias(name)


def _to_series(name: str, fields: tuple[str, ...], result):
    import polars as pl

    if not fields:  # warm-up rows as null: polars orders NaN above every number (`close < NaN` is true)
        return pl.Series(name, result, dtype=pl.Float64, nan_to_null=True)
    return pl.DataFrame({f: pl.Series(f, a, dtype=pl.Float64, nan_to_null=True) for f, a in zip(fields, result)}).to_struct(name)
