"""Every indicator against an independent implementation to 1e-9, warm-up rows included:
TA-Lib (SMA, EMA, WMA, RSI, MACD, ATR, BBANDS), pandas-ta-classic (supertrend, donchian, vwap)
and a polars group_by for the opening range; the NumPy, Series and Expr forms agree."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sq import indicators as ta
from sq.core.indicators import IndicatorArgumentError

talib = pytest.importorskip("talib")
NS_PER_MIN = 60_000_000_000
N = 3000


@pytest.fixture(scope="module")
def ohlcv():
    """A seeded random walk of 1-minute bars over several 375-bar sessions (NSE-like)."""
    rng = np.random.default_rng(42)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, N)))
    open_ = np.concatenate([[close[0]], close[:-1]]) * (1 + rng.normal(0, 0.0005, N))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.001, N)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.001, N)))
    volume = rng.integers(1, 10_000, N).astype(np.float64)
    session = np.arange(N) // 375
    t0 = 1_704_685_500_000_000_000  # 2024-01-08 03:45 UTC = 09:15 IST
    ts = t0 + session * 86_400_000_000_000 + (np.arange(N) % 375) * NS_PER_MIN
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume, "session": session.astype(np.int64), "ts": ts}


def same(got, want, tol=1e-9):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    assert np.array_equal(np.isnan(got), np.isnan(want)), (np.flatnonzero(np.isnan(got))[-3:], np.flatnonzero(np.isnan(want))[-3:])
    ok = ~np.isnan(want)
    assert ok.sum() > 0
    np.testing.assert_allclose(got[ok], want[ok], rtol=tol, atol=tol)


@pytest.mark.parametrize("n", [1, 2, 14, 50])
def test_moving_averages_match_talib(ohlcv, n):
    c = ohlcv["close"]
    same(ta.sma(c, n), talib.SMA(c, n))
    same(ta.ema(c, n), talib.EMA(c, n))
    same(ta.wma(c, n), talib.WMA(c, n))


@pytest.mark.parametrize("n", [2, 14, 30])
def test_rsi_and_atr_match_talib(ohlcv, n):
    same(ta.rsi(ohlcv["close"], n), talib.RSI(ohlcv["close"], n))
    same(ta.atr(ohlcv["high"], ohlcv["low"], ohlcv["close"], n), talib.ATR(ohlcv["high"], ohlcv["low"], ohlcv["close"], n))


@pytest.mark.parametrize("fast, slow, signal", [(12, 26, 9), (5, 35, 5), (3, 10, 16)])
def test_macd_matches_talib(ohlcv, fast, slow, signal):
    for got, want in zip(ta.macd(ohlcv["close"], fast, slow, signal), talib.MACD(ohlcv["close"], fast, slow, signal)):
        same(got, want)


@pytest.mark.parametrize("n, k", [(20, 2.0), (5, 1.5)])
def test_bbands_match_talib(ohlcv, n, k):
    for got, want in zip(ta.bbands(ohlcv["close"], n, k), talib.BBANDS(ohlcv["close"], n, k, k, 0)):
        same(got, want)


def _frame(ohlcv):
    import pandas as pd

    idx = pd.DatetimeIndex(pd.to_datetime(ohlcv["ts"], utc=True))
    return pd.DataFrame({k: ohlcv[k] for k in ("open", "high", "low", "close", "volume")}, index=idx)


@pytest.mark.parametrize("n, mult", [(10, 3.0), (7, 2.0)])
def test_supertrend_matches_pandas_ta(ohlcv, n, mult):
    pta = pytest.importorskip("pandas_ta_classic")
    df = _frame(ohlcv)
    ref = pta.supertrend(df["high"], df["low"], df["close"], length=n, multiplier=mult)
    line, direction = ta.supertrend(ohlcv["high"], ohlcv["low"], ohlcv["close"], n, mult)
    want = ref.iloc[:, 0].to_numpy(np.float64).copy()
    assert want[0] == 0.0  # pandas-ta-classic writes 0 on its first row, inside the warm-up: a NaN here
    want[0] = np.nan
    same(line, want)
    want_dir = ref.iloc[:, 1].to_numpy(np.float64)
    ok = ~np.isnan(line)
    np.testing.assert_array_equal(direction[ok], want_dir[ok])


@pytest.mark.parametrize("n", [5, 20])
def test_donchian_matches_pandas_ta(ohlcv, n):
    pta = pytest.importorskip("pandas_ta_classic")
    df = _frame(ohlcv)
    ref = pta.donchian(df["high"], df["low"], lower_length=n, upper_length=n)
    upper, middle, lower = ta.donchian(ohlcv["high"], ohlcv["low"], n)
    cols = {c.split("_")[0]: ref[c].to_numpy(np.float64) for c in ref.columns}
    same(lower, cols["DCL"])
    same(middle, cols["DCM"])
    same(upper, cols["DCU"])


def test_vwap_matches_pandas_ta_per_day(ohlcv):
    pta = pytest.importorskip("pandas_ta_classic")
    df = _frame(ohlcv)
    ref = pta.vwap(df["high"], df["low"], df["close"], df["volume"], anchor="D").to_numpy(np.float64)
    day = ohlcv["ts"] // 86_400_000_000_000
    same(ta.vwap(ohlcv["high"], ohlcv["low"], ohlcv["close"], ohlcv["volume"], day), ref)


@pytest.mark.parametrize("minutes", [1, 15, 30])
def test_opening_range_matches_a_polars_group_by(ohlcv, minutes):
    df = pl.DataFrame({k: ohlcv[k] for k in ("high", "low", "session", "ts")})
    first = df.group_by("session").agg(pl.col("ts").min().alias("t0"))
    df = df.join(first, on="session")
    inside = pl.col("ts") < pl.col("t0") + minutes * NS_PER_MIN
    rng = df.filter(inside).group_by("session").agg(pl.col("high").max().alias("rh"), pl.col("low").min().alias("rl"))
    ref = df.join(rng, on="session", how="left").with_columns(
        rh=pl.when(inside).then(None).otherwise(pl.col("rh")), rl=pl.when(inside).then(None).otherwise(pl.col("rl")))
    hi, lo = ta.opening_range(ohlcv["high"], ohlcv["low"], ohlcv["ts"], ohlcv["session"], minutes)
    same(hi, ref["rh"].fill_null(np.nan).to_numpy())
    same(lo, ref["rl"].fill_null(np.nan).to_numpy())


def test_series_and_expr_forms_agree_with_numpy(ohlcv):
    df = pl.DataFrame({k: ohlcv[k] for k in ("high", "low", "close")})
    expr = df.with_columns(s=ta.sma(pl.col("close"), 10), m=ta.macd(pl.col("close")),
                           a=ta.atr(pl.col("high"), pl.col("low"), pl.col("close"), 14)).unnest("m", separator="_")
    same(expr["s"].fill_null(np.nan).to_numpy(), ta.sma(ohlcv["close"], 10))
    same(expr["a"].fill_null(np.nan).to_numpy(), ta.atr(ohlcv["high"], ohlcv["low"], ohlcv["close"], 14))
    for field, want in zip(("macd", "signal", "hist"), ta.macd(ohlcv["close"])):
        same(expr[f"m_{field}"].fill_null(np.nan).to_numpy(), want)
    series = ta.donchian(df["high"], df["low"], 20)
    assert isinstance(series, pl.Series) and series.struct.fields == ["upper", "middle", "lower"]
    # polars output: warm-up rows are null (NaN would compare above every price in polars)
    assert expr["s"].null_count() == 9 and not expr["s"].is_nan().any()


@pytest.mark.parametrize("call", [
    lambda: ta.sma(np.arange(10.0), 0),
    lambda: ta.atr(np.arange(10.0), np.arange(9.0), np.arange(10.0), 3),
    lambda: ta.macd(np.arange(10.0), 0, 5, 3),
])
def test_bad_arguments_raise(call):
    with pytest.raises((IndicatorArgumentError, ValueError)):
        call()
