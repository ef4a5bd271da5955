"""Indicator throughput (sq.indicators on NumPy arrays) against the fastest independent
implementation of the same indicator, measured in the same run.

10M one-minute bars (375 a session, ~26,700 sessions) on a seeded random walk. Every sq function
is first run on a slice (numba loads or compiles its kernel), then each pair is timed
alternately, best wall time of REPEAT (of 2 for baselines that take seconds), fresh output
arrays every call on both sides. Each line is sq's M rows/s, its ratio to the baseline's
(target ≥ 1×):

* sma, ema, wma, rsi, macd, atr, bbands: TA-Lib's function of the same name (C, the reference
  these functions match);
* supertrend: pandas-ta-classic's (its band loop is numba, its ATR a pandas ewm; a polars
  expression cannot carry the band recursion);
* donchian, vwap: a polars expression (rolling_max/rolling_min; cum_sum over the session), faster
  than pandas-ta-classic's pandas rolling and groupby-cumsum;
* opening_range: a polars group_by per session joined back (there is no library version).
"""

from __future__ import annotations


import numpy as np

from bench.synthetic import best_pair

N = 10_000_000
BARS_PER_SESSION = 375
REPEAT = 7
MIN = 60_000_000_000
DAY = 1_440 * MIN


def _bars(n: int = N, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    ts = (19_723 + k // BARS_PER_SESSION) * DAY + 555 * MIN + (k % BARS_PER_SESSION) * MIN  # from 09:15
    close = 100.0 + np.cumsum(rng.normal(0, 0.05, n))
    high = close + rng.exponential(0.02, n)
    low = close - rng.exponential(0.02, n)
    volume = rng.integers(1, 1_000, n).astype(np.float64)
    return {"ts": ts.astype(np.int64), "session": ts // DAY, "high": high, "low": low, "close": close, "volume": volume}


def _polars_baselines(b):
    import polars as pl

    df = pl.DataFrame(b)
    span = 30 * MIN

    def donchian():
        return df.select(upper=pl.col("high").rolling_max(20), lower=pl.col("low").rolling_min(20)).with_columns(
            middle=(pl.col("upper") + pl.col("lower")) * 0.5)

    def vwap():
        pv = (pl.col("high") + pl.col("low") + pl.col("close")) / 3.0 * pl.col("volume")
        return df.select(pv.cum_sum().over("session") / pl.col("volume").cum_sum().over("session"))

    def opening_range():
        start = pl.col("ts").min()
        ranges = df.group_by("session").agg(
            start=start,
            or_high=pl.col("high").filter(pl.col("ts") < start + span).max(),
            or_low=pl.col("low").filter(pl.col("ts") < start + span).min())
        ready = pl.col("ts") >= pl.col("start") + span
        return df.join(ranges, on="session", how="left", maintain_order="left").select(
            pl.when(ready).then("or_high"), pl.when(ready).then("or_low"))

    return donchian, vwap, opening_range


def run(report) -> None:
    try:
        import pandas as pd
        import pandas_ta_classic as pta
        import talib
    except ImportError as e:  # both are in the `dev` extra
        print(f"   skipped: the baselines need TA-Lib and pandas-ta-classic ({e})", flush=True)
        return

    from sq import indicators as ta

    b = _bars()
    h, lo, c, v, ts, s = b["high"], b["low"], b["close"], b["volume"], b["ts"], b["session"]
    frame = pd.DataFrame({"high": h, "low": lo, "close": c})
    pl_donchian, pl_vwap, pl_opening_range = _polars_baselines(b)

    cases = [  # (row name, sq, baseline, repeat)
        ("sma(20) vs TA-Lib SMA", lambda: ta.sma(c, 20), lambda: talib.SMA(c, 20), REPEAT),
        ("ema(20) vs TA-Lib EMA", lambda: ta.ema(c, 20), lambda: talib.EMA(c, 20), REPEAT),
        ("wma(20) vs TA-Lib WMA", lambda: ta.wma(c, 20), lambda: talib.WMA(c, 20), REPEAT),
        ("rsi(14) vs TA-Lib RSI", lambda: ta.rsi(c, 14), lambda: talib.RSI(c, 14), REPEAT),
        ("macd(12,26,9) vs TA-Lib MACD", lambda: ta.macd(c), lambda: talib.MACD(c, 12, 26, 9), REPEAT),
        ("atr(14) vs TA-Lib ATR", lambda: ta.atr(h, lo, c, 14), lambda: talib.ATR(h, lo, c, 14), REPEAT),
        ("bbands(20,2) vs TA-Lib BBANDS", lambda: ta.bbands(c, 20, 2.0), lambda: talib.BBANDS(c, 20, 2.0, 2.0, 0), REPEAT),
        ("supertrend(10,3) vs pandas-ta-classic supertrend", lambda: ta.supertrend(h, lo, c, 10, 3.0),
         lambda: pta.supertrend(frame["high"], frame["low"], frame["close"], 10, 3.0), 2),
        ("donchian(20) vs polars rolling_max/min", lambda: ta.donchian(h, lo, 20), pl_donchian, 3),
        ("vwap(session) vs polars cum_sum().over(session)", lambda: ta.vwap(h, lo, c, v, s), pl_vwap, 3),
        ("opening_range(30m) vs polars group_by + join", lambda: ta.opening_range(h, lo, ts, s, 30), pl_opening_range, 3),
    ]
    small = {k: a[:5_000] for k, a in b.items()}  # load (or compile) every kernel before timing
    ta.sma(small["close"], 20), ta.ema(small["close"], 20), ta.wma(small["close"], 20), ta.rsi(small["close"])
    ta.macd(small["close"]), ta.atr(small["high"], small["low"], small["close"]), ta.bbands(small["close"])
    ta.supertrend(small["high"], small["low"], small["close"]), ta.donchian(small["high"], small["low"])
    ta.vwap(small["high"], small["low"], small["close"], small["volume"], small["session"])
    ta.opening_range(small["high"], small["low"], small["ts"], small["session"], 30)
    pta.supertrend(frame["high"][:5_000], frame["low"][:5_000], frame["close"][:5_000], 10, 3.0)  # its numba loop
    for name, ours, base, repeat in cases:
        t_sq, t_base = best_pair(ours, base, repeat)
        report(name, N / t_sq / 1e6, "M rows/s", baseline=N / t_base / 1e6, target=1.0)
