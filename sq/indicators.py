"""Technical indicators for strategies: numba kernels usable on NumPy arrays, polars Series and
polars expressions (docs/indicators.md lists each with its warm-up and the reference it matches).

    import polars as pl
    from sq import indicators as ta

    bars.with_columns(fast=ta.sma(pl.col("close"), 10), rsi=ta.rsi(pl.col("close"), 14))
    ta.sma(np.array([...]), 10)            # → ndarray
    ta.macd(bars["close"])                 # → Struct Series: macd, signal, hist

Single-output indicators return the input's kind (ndarray, Series named after the indicator, or
an Expr of Float64). Several outputs come as a tuple of arrays for NumPy input and as a Struct
(Series or Expr) for polars input, with these fields:

    sma(x, n)  ema(x, n)  wma(x, n)  rsi(x, n=14)  atr(high, low, close, n=14)
    vwap(high, low, close, volume, session)                         one output
    macd(x, fast=12, slow=26, signal=9)        macd, signal, hist
    bbands(x, n=20, k=2.0)                     upper, middle, lower
    supertrend(high, low, close, n=10, mult=3.0)   line, direction (+1 up, -1 down)
    donchian(high, low, n=20)                  upper, middle, lower
    opening_range(high, low, ts_ns, session, minutes)   high, low

Warm-up rows are NaN in NumPy output, exactly where TA-Lib / pandas-ta-classic put them, and
null in polars output: polars orders NaN above every number (`close < NaN` is true), while a
comparison with null is null, which `when/then` and filters treat as false.
On a polars frame of several symbols, compute per symbol (`.over("symbol")`); a bar strategy
already gets one symbol at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sq.core import indicators as _core

__all__ = ["sma", "ema", "wma", "rsi", "macd", "atr", "bbands", "supertrend", "donchian", "vwap", "opening_range"]

FIELDS = {
    "macd": ("macd", "signal", "hist"),
    "bbands": ("upper", "middle", "lower"),
    "supertrend": ("line", "direction"),
    "donchian": ("upper", "middle", "lower"),
    "opening_range": ("high", "low"),
}


def _kind(args: tuple) -> str:
    import sys

    pl = sys.modules.get("polars")
    if pl is not None:
        if any(isinstance(a, pl.Expr) for a in args):
            return "expr"
        if any(isinstance(a, pl.Series) for a in args):
            return "series"
    return "numpy"


def _arrays(args: tuple) -> list[np.ndarray]:
    out = []
    for a in args:
        if hasattr(a, "to_numpy"):
            a = a.to_numpy()
        out.append(np.asarray(a))
    return out


def _apply(name: str, inputs: tuple, options: tuple) -> Any:
    """Run indicator `name` of the core over `inputs` (arrays, Series or Exprs) with `options`."""
    fn = getattr(_core, name)
    fields = FIELDS.get(name)
    kind = _kind(inputs)
    if kind == "numpy":
        return fn(*_arrays(inputs), *options)
    import polars as pl

    def compute(series: list) -> Any:
        res = fn(*_arrays(tuple(series)), *options)
        if fields is None:
            return pl.Series(name, res, pl.Float64, nan_to_null=True)
        return pl.struct([pl.Series(f, r, pl.Float64, nan_to_null=True) for f, r in zip(fields, res)], eager=True).alias(name)

    if kind == "series":
        return compute(list(inputs))
    exprs = [a if isinstance(a, pl.Expr) else pl.lit(a) for a in inputs]
    dtype = pl.Float64 if fields is None else pl.Struct({f: pl.Float64 for f in fields})
    if len(exprs) == 1:
        return exprs[0].map_batches(lambda s: compute([s]), return_dtype=dtype)
    return pl.map_batches(exprs, compute, return_dtype=dtype)


def sma(x, n: int) -> Any:
    """Simple moving average of `n` values (TA-Lib SMA)."""
    return _apply("sma", (x,), (n,))


def ema(x, n: int) -> Any:
    """Exponential moving average, α = 2/(n+1), seeded with the SMA of the first n (TA-Lib EMA)."""
    return _apply("ema", (x,), (n,))


def wma(x, n: int) -> Any:
    """Linearly weighted moving average (TA-Lib WMA)."""
    return _apply("wma", (x,), (n,))


def rsi(x, n: int = 14) -> Any:
    """Wilder's relative strength index, 0–100 (TA-Lib RSI)."""
    return _apply("rsi", (x,), (n,))


def macd(x, fast: int = 12, slow: int = 26, signal: int = 9) -> Any:
    """MACD line, signal line, histogram (TA-Lib MACD)."""
    return _apply("macd", (x,), (fast, slow, signal))


def atr(high, low, close, n: int = 14) -> Any:
    """Wilder's average true range (TA-Lib ATR)."""
    return _apply("atr", (high, low, close), (n,))


def bbands(x, n: int = 20, k: float = 2.0) -> Any:
    """Bollinger bands: SMA ± k population standard deviations (TA-Lib BBANDS, matype 0)."""
    return _apply("bbands", (x,), (n, k))


def supertrend(high, low, close, n: int = 10, mult: float = 3.0) -> Any:
    """Supertrend line and direction (pandas-ta-classic supertrend)."""
    return _apply("supertrend", (high, low, close), (n, mult))


def donchian(high, low, n: int = 20) -> Any:
    """Donchian channel: highest high, midpoint, lowest low of the last n bars (pandas-ta-classic)."""
    return _apply("donchian", (high, low), (n,))


def vwap(high, low, close, volume, session) -> Any:
    """Typical-price VWAP that restarts with each `session` id (pandas-ta-classic vwap, anchor D)."""
    return _apply("vwap", (high, low, close, volume, session), ())


def opening_range(high, low, ts_ns, session, minutes: float) -> Any:
    """High and low of each session's first `minutes` (NaN until the range is complete)."""
    return _apply("opening_range", (high, low, ts_ns, session), (minutes,))
