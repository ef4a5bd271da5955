"""Indicators (sq.core.indicators, sq.indicators) against independent implementations, warm-up
rows included: TA-Lib for sma/ema/wma/rsi/macd/atr/bbands, pandas-ta-classic for supertrend,
donchian and vwap, a polars group_by for the opening range. Then: the NumPy, polars Series and
polars expression forms give the same values; bad arguments raise a one-line usage error."""

from __future__ import annotations

import numpy as np
import pytest

from sq import indicators as ta
from sq.core import indicators as core
from sq.core.exits import UsageError
from tests.support.indicatorsref import MIN, assert_same, polars_opening_range, random_ohlcv

BARS = {seed: random_ohlcv(seed) for seed in (1, 2)}
SEEDS = list(BARS)


@pytest.fixture(scope="module")
def talib():
    return pytest.importorskip("talib")


@pytest.fixture(scope="module")
def pta():
    return pytest.importorskip("pandas_ta_classic")


def frame(bars):
    """The bars as a pandas DataFrame on a DatetimeIndex (what pandas-ta-classic reads)."""
    import pandas as pd

    return pd.DataFrame({k: bars[k] for k in ("open", "high", "low", "close", "volume")}, index=pd.DatetimeIndex(bars["ts"].astype("datetime64[ns]")))


# ---------------------------------------------------------------------------------------------
# against TA-Lib


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [2, 3, 14, 20, 50, 200])
def test_moving_averages_equal_talib(talib, seed, n):
    c = BARS[seed]["close"]
    assert_same(ta.sma(c, n), talib.SMA(c, n))
    assert_same(ta.ema(c, n), talib.EMA(c, n))
    assert_same(ta.wma(c, n), talib.WMA(c, n))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [2, 5, 14, 30])
def test_rsi_equals_talib(talib, seed, n):
    c = BARS[seed]["close"]
    assert_same(ta.rsi(c, n), talib.RSI(c, n))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("periods", [(12, 26, 9), (3, 10, 1), (5, 5, 3), (2, 3, 2), (8, 40, 15)])
def test_macd_equals_talib(talib, seed, periods):
    c = BARS[seed]["close"]
    got = ta.macd(c, *periods)
    want = talib.MACD(c, *periods)
    for g, w in zip(got, want, strict=True):
        assert_same(g, w)
    assert np.isnan(got[0][periods[1] + periods[2] - 3]) and not np.isnan(got[0][periods[1] + periods[2] - 2])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [1, 2, 14, 30])
def test_atr_equals_talib(talib, seed, n):
    b = BARS[seed]
    assert_same(ta.atr(b["high"], b["low"], b["close"], n), talib.ATR(b["high"], b["low"], b["close"], n))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n,k", [(2, 2.0), (5, 1.0), (20, 2.0), (20, 2.5), (33, 0.5), (100, 3.0)])
def test_bbands_equal_talib(talib, seed, n, k):
    c = BARS[seed]["close"]
    for g, w in zip(ta.bbands(c, n, k), talib.BBANDS(c, n, k, k, 0), strict=True):
        assert_same(g, w)


def test_bbands_keep_their_digits_where_the_spread_is_tiny_against_the_price(talib):
    """Price 1e4, spread 1e-5: E[x²] − mean² would cancel every digit of the variance (1e-10
    against 1e8); the widths agree with TA-Lib's to 1e-6 of themselves (the rest is the rounding
    of prices near 1e4). A flat stretch gives bands of width exactly 0, as TA-Lib's."""
    rng = np.random.default_rng(7)
    x = np.r_[1e4 + rng.normal(0, 1e-5, 300), np.full(80, 1e4 + 0.5), 1e4 + rng.normal(0, 1e-5, 300)]
    upper, middle, lower = ta.bbands(x, 20, 2.0)
    t_upper, t_middle, t_lower = talib.BBANDS(x, 20, 2.0, 2.0, 0)
    assert_same(middle, t_middle)
    assert_same(upper - middle, t_upper - t_middle, rtol=1e-6, atol=0)
    assert_same(middle - lower, t_middle - t_lower, rtol=1e-6, atol=0)
    assert np.nanmin(upper - middle) < 1e-4
    flat = slice(300 + 19, 380)
    assert np.all(upper[flat] == middle[flat]) and np.all(lower[flat] == middle[flat])
    assert np.all(t_upper[flat] == t_middle[flat])


@pytest.mark.parametrize("n", [1, 2, 5, 30])
def test_inputs_shorter_than_the_warm_up_give_nan_everywhere(talib, n):
    b = BARS[1]
    for m in (0, 1, n - 1, n, n + 1):
        h, lo, c = b["high"][:m], b["low"][:m], b["close"][:m]
        if n >= 2:
            assert_same(ta.sma(c, n), talib.SMA(c, n) if m else np.empty(0))
            assert_same(ta.wma(c, n), talib.WMA(c, n) if m else np.empty(0))
            assert_same(ta.rsi(c, n), talib.RSI(c, n) if m else np.empty(0))
            assert_same(ta.bbands(c, n)[0], talib.BBANDS(c, n)[0] if m else np.empty(0))
        assert_same(ta.atr(h, lo, c, n), talib.ATR(h, lo, c, n) if m else np.empty(0))
        assert_same(ta.macd(c, 1, n, 1)[2], np.full(m, np.nan) if m < n else ta.macd(b["close"], 1, n, 1)[2][:m])


def test_long_series_do_not_drift(talib):
    """Running sums are rebuilt (sma, wma, bbands): after 300,000 rows they still agree."""
    rng = np.random.default_rng(3)
    c = 500.0 + np.cumsum(rng.normal(0, 1.0, 300_000))
    c -= c.min() - 10.0
    for n in (2, 20):
        assert_same(ta.sma(c, n), talib.SMA(c, n))
        assert_same(ta.wma(c, n), talib.WMA(c, n))
        for g, w in zip(ta.bbands(c, n), talib.BBANDS(c, n, 2.0, 2.0, 0)):
            assert_same(g, w)


# ---------------------------------------------------------------------------------------------
# against pandas-ta-classic


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n,mult", [(10, 3.0), (7, 2.0), (14, 1.5), (1, 1.0)])
def test_supertrend_equals_pandas_ta_classic(pta, seed, n, mult):
    """pandas-ta-classic leaves 0.0 in the line's row 0 (a zero-initialised array) and +1 in the
    direction of every warm-up row; sq has NaN in both for rows < n (docs/indicators.md). The
    reference's warm-up rows are checked to be exactly that before they are mapped to NaN."""
    b = BARS[seed]
    df = frame(b)
    ref = pta.supertrend(df["high"], df["low"], df["close"], length=n, multiplier=mult)
    want_line, want_dir = ref.iloc[:, 0].to_numpy().copy(), ref.iloc[:, 1].to_numpy().copy()
    assert want_line[0] == 0.0 and np.all(np.isnan(want_line[1:n])) and np.all(want_dir[:n] == 1.0)
    want_line[:n] = np.nan
    want_dir[:n] = np.nan
    line, direction = ta.supertrend(b["high"], b["low"], b["close"], n, mult)
    assert_same(line, want_line)
    assert_same(direction, want_dir)
    assert set(np.unique(direction[n:])) == {-1.0, 1.0}  # the data turns both ways


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [1, 2, 5, 20, 55])
def test_donchian_equals_pandas_ta_classic(pta, seed, n):
    b = BARS[seed]
    df = frame(b)
    ref = pta.donchian(df["high"], df["low"], lower_length=n, upper_length=n)
    upper, middle, lower = ta.donchian(b["high"], b["low"], n)
    assert_same(lower, ref.iloc[:, 0])
    assert_same(middle, ref.iloc[:, 1])
    assert_same(upper, ref.iloc[:, 2])


def test_donchian_in_a_steady_trend():
    """Falling highs: the window's maximum is always its oldest row (the worst case of a running
    maximum that rescans)."""
    x = np.arange(1_000, 0, -1, dtype=np.float64)
    upper, middle, lower = ta.donchian(x, x, 7)
    assert_same(upper, np.r_[np.full(6, np.nan), x[:-6]])
    assert_same(lower, np.r_[np.full(6, np.nan), x[6:]])
    assert_same(middle, (upper + lower) / 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_vwap_equals_pandas_ta_classic_daily_anchor(pta, seed):
    b = BARS[seed]
    df = frame(b)
    want = pta.vwap(df["high"], df["low"], df["close"], df["volume"], anchor="D")
    got = ta.vwap(b["high"], b["low"], b["close"], b["volume"], b["session"])
    assert len(np.unique(b["session"])) == 40
    assert_same(got, want)


def test_vwap_restarts_whenever_the_session_id_changes():
    """Changes, not values: a session id that comes back starts a new sum."""
    h = np.array([10.0, 12.0, 30.0, 33.0, 9.0, 15.0])
    lo = h - 2.0
    c = h - 1.0
    v = np.array([1.0, 3.0, 2.0, 0.0, 0.0, 4.0])
    tp = (h + lo + c) / 3.0
    want = [tp[0], (tp[0] + 3 * tp[1]) / 4, tp[2], tp[2], np.nan, tp[5]]
    assert_same(ta.vwap(h, lo, c, v, np.array([1, 1, 2, 2, 1, 1])), want)


# ---------------------------------------------------------------------------------------------
# the opening range against polars


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("minutes", [5, 7, 15, 30, 60.5])
def test_opening_range_equals_a_polars_group_by(seed, minutes):
    b = BARS[seed]
    want_high, want_low = polars_opening_range(b["ts"], b["session"], b["high"], b["low"], minutes)
    got_high, got_low = ta.opening_range(b["high"], b["low"], b["ts"], b["session"], minutes)
    assert_same(got_high, want_high, rtol=0, atol=0)
    assert_same(got_low, want_low, rtol=0, atol=0)
    last = b["session"] == b["session"][-1]  # 3 bars, 10 minutes: shorter than the longer ranges
    assert np.all(np.isnan(got_high[last])) == (minutes > 10) and np.all(np.isnan(got_low[last])) == (minutes > 10)


def test_opening_range_by_hand():
    ts = np.array([0, 5, 10, 15, 20, 100, 104, 106], dtype=np.int64) * MIN
    session = np.array([1, 1, 1, 1, 1, 2, 2, 2])
    high = np.array([5.0, 7.0, 6.0, 9.0, 1.0, 3.0, 4.0, 8.0])
    low = high - 1.0
    or_high, or_low = ta.opening_range(high, low, ts, session, 10)
    assert_same(or_high, [np.nan, np.nan, 7.0, 7.0, 7.0, np.nan, np.nan, np.nan])
    assert_same(or_low, [np.nan, np.nan, 4.0, 4.0, 4.0, np.nan, np.nan, np.nan])
    dates = (ts + 1_700_000_000 * 1_000_000_000).astype("datetime64[ns]")  # datetimes are read as ns
    assert_same(ta.opening_range(high, low, dates, session, 5)[0], [np.nan, 5.0, 5.0, 5.0, 5.0, np.nan, np.nan, 4.0])


# ---------------------------------------------------------------------------------------------
# NumPy, polars Series and polars expressions


CASES = [  # (function, data columns, parameters, output fields)
    (ta.sma, ("close",), (20,), ()),
    (ta.ema, ("close",), (20,), ()),
    (ta.wma, ("close",), (20,), ()),
    (ta.rsi, ("close",), (14,), ()),
    (ta.macd, ("close",), (12, 26, 9), ("macd", "signal", "hist")),
    (ta.atr, ("high", "low", "close"), (14,), ()),
    (ta.bbands, ("close",), (20, 2.0), ("upper", "middle", "lower")),
    (ta.supertrend, ("high", "low", "close"), (10, 3.0), ("line", "direction")),
    (ta.donchian, ("high", "low"), (20,), ("upper", "middle", "lower")),
    (ta.vwap, ("high", "low", "close", "volume", "session"), (), ()),
    (ta.opening_range, ("high", "low", "ts", "session"), (15,), ("or_high", "or_low")),
]


def bars_frame(bars):
    import polars as pl

    return pl.DataFrame({k: bars[k] for k in ("ts", "session", "high", "low", "close", "volume")}).with_columns(
        pl.col("ts").cast(pl.Datetime("ns")))


@pytest.mark.parametrize("fn,columns,params,fields", CASES, ids=[c[0].__name__ for c in CASES])
def test_numpy_series_and_expression_forms_agree(fn, columns, params, fields):
    import polars as pl

    bars = BARS[2]
    df = bars_frame(bars)
    arrays = fn(*(bars[c] for c in columns), *params)
    series = fn(*(df[c] for c in columns), *params)
    expr = df.select(fn(*(pl.col(c) for c in columns), *params)).to_series()
    name = fn.__name__
    assert series.name == expr.name == name
    if not fields:
        assert isinstance(arrays, np.ndarray) and arrays.dtype == np.float64 and arrays.shape == (df.height,)
        assert series.dtype == expr.dtype == pl.Float64
        assert_same(series.to_numpy(), arrays, rtol=0, atol=0)
        assert_same(expr.to_numpy(), arrays, rtol=0, atol=0)
        return
    assert isinstance(arrays, tuple) and len(arrays) == len(fields)
    assert series.dtype == expr.dtype == pl.Struct({f: pl.Float64 for f in fields})
    for field, values in zip(fields, arrays):
        assert_same(series.struct.field(field).to_numpy(), values, rtol=0, atol=0)
        assert_same(expr.struct.field(field).to_numpy(), values, rtol=0, atol=0)


def test_expressions_run_per_group_under_over():
    import polars as pl

    a, b = BARS[1], BARS[2]
    df = pl.concat([bars_frame(a).with_columns(symbol=pl.lit("A")), bars_frame(b).with_columns(symbol=pl.lit("B"))])
    out = df.with_columns(ta.rsi(pl.col("close"), 14).over("symbol"), ta.bbands(pl.col("close"), 20).over("symbol"))
    for sym, bars in (("A", a), ("B", b)):
        part = out.filter(pl.col("symbol") == sym)
        assert_same(part["rsi"].to_numpy(), ta.rsi(bars["close"], 14), rtol=0, atol=0)
        assert_same(part["bbands"].struct.field("lower").to_numpy(), ta.bbands(bars["close"], 20)[2], rtol=0, atol=0)


def test_integer_series_and_lists_are_read_as_floats():
    import polars as pl

    assert_same(ta.sma(pl.Series("x", [1, 2, 3, 4]), 2).to_numpy(), [np.nan, 1.5, 2.5, 3.5])
    assert_same(ta.sma([1, 2, 3, 4], 2), [np.nan, 1.5, 2.5, 3.5])


def test_the_kernels_run_inside_njit_code():
    from numba import njit

    @njit
    def fast_over_slow(x):
        fast = np.empty(x.shape[0])
        slow = np.empty(x.shape[0])
        core.ema_kernel(x, 5, fast)
        core.sma_kernel(x, 20, slow)
        return fast - slow

    c = BARS[1]["close"]
    assert_same(fast_over_slow(c), ta.ema(c, 5) - ta.sma(c, 20), rtol=0, atol=0)


def test_importing_the_module_does_not_import_numba():
    import subprocess
    import sys

    from tests.support.process import ROOT

    code = "import sys; from sq import indicators; print('numba' in sys.modules, 'polars' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True)
    assert r.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------------------------------------
# usage errors


C = BARS[1]["close"]
H = BARS[1]["high"]


@pytest.mark.parametrize("call,message", [
    (lambda: ta.sma(C, 0), "n must be at least 1, got 0"),
    (lambda: ta.ema(C, -3), "n must be at least 1"),
    (lambda: ta.wma(C, 2.5), "n must be a whole number of rows, got 2.5"),
    (lambda: ta.rsi(C, True), "whole number"),
    (lambda: ta.macd(C, 26, 12, 9), "fast period must not exceed its slow one"),
    (lambda: ta.macd(C, 12, 26, 0), "signal must be at least 1"),
    (lambda: ta.atr(H, H[:-1], C), "same length"),
    (lambda: ta.bbands(C, 20, -1.0), "k must be a non-negative number"),
    (lambda: ta.supertrend(H, H, C, 10, 0.0), "mult must be a positive number"),
    (lambda: ta.donchian(H, H, 0), "n must be at least 1"),
    (lambda: ta.vwap(H, H, C, C, C), "session ids must be integers"),
    (lambda: ta.vwap(H, H, C, C, np.zeros(3, dtype=np.int64)), "same length"),
    (lambda: ta.opening_range(H, H, np.arange(len(H)), np.zeros(len(H), dtype=np.int64), 0), "minutes must be a positive number"),
    (lambda: ta.opening_range(H, H, np.arange(len(H)), np.zeros(len(H), dtype=np.int64), "x"), "minutes must be a number"),
    (lambda: ta.sma(np.ones((3, 3)), 2), "one-dimensional"),
])
def test_bad_arguments_raise_a_usage_error(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert isinstance(info.value, UsageError) and isinstance(info.value, ta.IndicatorArgumentError)
    assert "\n" not in str(info.value)


def test_bad_arguments_of_an_expression_fail_when_it_is_built():
    import polars as pl

    with pytest.raises(ValueError, match="n must be at least 1"):
        ta.atr(pl.col("high"), pl.col("low"), pl.col("close"), 0)
    with pytest.raises(ValueError, match="all NumPy arrays, all polars Series or all polars expressions"):
        ta.atr(pl.col("high"), BARS[1]["low"], pl.col("close"))


def test_every_function_is_documented():
    """The module docstring and docs/indicators.md list every function of the API."""
    from tests.support.process import ROOT

    doc = (ROOT / "docs" / "indicators.md").read_text()
    functions = [name for name in ta.__all__ if name != "IndicatorArgumentError"]
    assert len(functions) == 11
    for name in functions:
        assert f"{name}(" in ta.__doc__ and f"`{name}(" in doc, name
        assert callable(getattr(ta, name)) and callable(getattr(core, f"{name}_kernel"))


def test_polars_warm_up_rows_are_null_not_nan():
    """polars orders NaN above every number: a NaN warm-up row would make `close < lower` true."""
    import polars as pl

    from sq import indicators as ta

    df = pl.DataFrame({"high": [3.0, 4.0, 5.0, 6.0], "low": [1.0, 2.0, 3.0, 4.0], "close": [2.0, 3.0, 4.0, 5.0]})
    out = df.with_columns(dc=ta.donchian(pl.col("high"), pl.col("low"), 3), s=ta.sma(pl.col("close"), 2)).unnest("dc", separator="_")
    assert out["s"].to_list() == [None, 2.5, 3.5, 4.5]
    assert out["dc_lower"].to_list()[:2] == [None, None] and not out["dc_lower"].is_nan().any()
    assert out.filter(pl.col("close") < pl.col("dc_lower")).height == 0
    assert ta.sma(df["close"], 2).null_count() == 1
