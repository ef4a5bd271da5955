"""An independent computation of time bars (polars `group_by_dynamic`) to check `sq bars` against."""

from __future__ import annotations

import pyarrow as pa

from sq.core import schemas as S

POLARS_EVERY = {"s": "s", "m": "m", "h": "h", "d": "d"}


def polars_time_bars(market: pa.Table, every: str):
    """Bars of the trade rows of a market table: one row per symbol and epoch-aligned `every`
    bucket with trades, sorted by (ts, symbol); columns as the bars stream (oi left out)."""
    import polars as pl

    df = pl.from_arrow(market.select(["ts", "symbol", "kind", "price", "qty"]))
    trades = df.filter(pl.col("kind") == S.TRADE).with_columns(pl.col("symbol").cast(pl.String)).sort("symbol", "ts", maintain_order=True)
    bars = trades.group_by_dynamic("ts", every=every, group_by="symbol").agg(
        pl.col("price").first().alias("open"),
        pl.col("price").max().alias("high"),
        pl.col("price").min().alias("low"),
        pl.col("price").last().alias("close"),
        pl.col("qty").sum().alias("volume"),
        pl.len().cast(pl.Int64).alias("trades"),
        ((pl.col("price") * pl.col("qty")).sum() / pl.col("qty").sum()).alias("vwap"),
    )
    return bars.select("ts", "symbol", "open", "high", "low", "close", "volume", "trades", "vwap").sort("ts", "symbol")


def as_frame(bars: pa.Table):
    """A bars stream (Arrow) as a polars frame comparable with `polars_time_bars`, sorted the same."""
    import polars as pl

    df = pl.from_arrow(bars.drop(["oi"]))
    return df.with_columns(pl.col("symbol").cast(pl.String)).sort("ts", "symbol")


def assert_same_bars(got, want) -> None:
    """Every column equal (exactly), vwap within 1e-12 relative."""
    import polars as pl

    assert got.columns == want.columns
    assert got.height == want.height, (got.height, want.height)
    for col in got.columns:
        if col == "vwap":
            continue
        a, b = got[col], want[col]
        if col == "ts":
            a, b = a.cast(pl.Int64), b.cast(pl.Int64)
        assert a.to_list() == b.to_list(), col
    rel = ((got["vwap"] - want["vwap"]).abs() / want["vwap"].abs()).max()
    assert rel is not None and rel <= 1e-12, rel
