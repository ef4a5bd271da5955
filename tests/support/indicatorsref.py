"""What the indicator tests compare with: seeded random-walk OHLCV bars over several sessions,
the opening range computed independently with a polars group_by, and one comparison that
treats NaN rows as part of the answer."""

from __future__ import annotations

import numpy as np

MIN = 60_000_000_000
DAY = 1_440 * MIN
SESSION_OPEN = (9 * 60 + 15) * MIN  # 09:15 after midnight UTC


def random_ohlcv(seed: int, days: int = 40, bars_per_day: int = 75, step_min: int = 5) -> dict[str, np.ndarray]:
    """`days` sessions of `bars_per_day` bars `step_min` minutes apart from 09:15 (75 five-minute
    bars: 09:15–15:30), weekends skipped, on a random walk with a gap at each open; the last
    session is cut to 3 bars (shorter than any opening range the tests ask for). Columns: ts
    (int64 ns), session (the day number), open, high, low, close, volume (float64)."""
    rng = np.random.default_rng(seed)
    start = 19_723  # 2024-01-01, a Monday
    day_numbers = [d for d in range(start, start + days * 2) if (d - start) % 7 < 5][:days]
    ts = np.concatenate([d * DAY + SESSION_OPEN + np.arange(bars_per_day if i < days - 1 else 3) * step_min * MIN
                         for i, d in enumerate(day_numbers)]).astype(np.int64)
    session = ts // DAY
    n = ts.shape[0]
    gaps = np.r_[0.0, np.diff(session) != 0] * rng.normal(0, 2.0, n)
    close = 100.0 + np.cumsum(rng.normal(0, 0.4, n) + gaps)
    open_ = np.r_[close[0], close[:-1]] + rng.normal(0, 0.05, n)
    high = np.maximum(open_, close) + rng.exponential(0.2, n)
    low = np.minimum(open_, close) - rng.exponential(0.2, n)
    flat = rng.random(n) < 0.02  # a few bars without range
    high[flat] = low[flat] = open_[flat] = close[flat]
    volume = rng.integers(1, 5_000, n).astype(np.float64)
    return {"ts": ts, "session": session, "open": open_, "high": high, "low": low, "close": close, "volume": volume}


def polars_opening_range(ts: np.ndarray, session: np.ndarray, high: np.ndarray, low: np.ndarray, minutes: float) -> tuple[np.ndarray, np.ndarray]:
    """The opening range by a polars group_by: per session, max(high)/min(low) over the rows with
    ts < the session's first ts + minutes, shown on the rows at or after that time, NaN before."""
    import polars as pl

    span = round(minutes * MIN)
    df = pl.DataFrame({"ts": ts, "session": session, "high": high, "low": low})
    ranges = df.group_by("session").agg(
        start=pl.col("ts").min(),
        or_high=pl.col("high").filter(pl.col("ts") < pl.col("ts").min() + span).max(),
        or_low=pl.col("low").filter(pl.col("ts") < pl.col("ts").min() + span).min(),
    )
    out = df.join(ranges, on="session", how="left", maintain_order="left").with_columns(
        ready=pl.col("ts") >= pl.col("start") + span,
    ).select(
        pl.when("ready").then("or_high").otherwise(None).fill_null(float("nan")),
        pl.when("ready").then("or_low").otherwise(None).fill_null(float("nan")),
    )
    return out["or_high"].to_numpy(), out["or_low"].to_numpy()


def assert_same(got, want, *, rtol: float = 1e-9, atol: float = 1e-9) -> None:
    """NaN in exactly the same rows, and the other rows equal within rtol (atol near 0)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    assert np.array_equal(nan_got, nan_want), (
        f"NaN rows differ: first at {int(np.argmax(nan_got != nan_want))}; got {int(nan_got.sum())} NaN, want {int(nan_want.sum())}")
    np.testing.assert_allclose(got[~nan_got], want[~nan_want], rtol=rtol, atol=atol)
