"""One UTC day of aggregate trades or klines from Binance's REST API, for days the archive lacks.

The archive publishes a day a day or so after it ends; until then `sq fetch` asks
`/api/v3/aggTrades` and `/api/v3/klines` (futures: `/fapi/v1/…`) through `BinanceRest`, which
keeps the request weight under the limit and handles 429/418. Paging follows Binance's rules:

* aggTrades: a startTime/endTime window may span at most one hour, so the first trade of the day
  is found hour by hour; from there `fromId` pages of 1,000 run until a trade lies past the day;
* klines: startTime/endTime pages of 1,000 candles.

The answers' columns go through `archive.build_table`, so a REST day and an archive day of the
same trades are the same rows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from sq.core.datasets import window_ns
from sq.venues.binance.archive import build_table
from sq.venues.binance.endpoints import FUTURES
from sq.venues.binance.rest import BinanceRest

PAGE = 1000
HOUR_MS = 3_600_000
# request weights (Binance's published figures for these limits)
WEIGHTS = {("spot", "aggTrades"): 4, (FUTURES, "aggTrades"): 20, ("spot", "klines"): 2, (FUTURES, "klines"): 5}


def day_bounds_ms(day: dt.date) -> tuple[int, int]:
    """[00:00, next 00:00) of a UTC day in epoch milliseconds."""
    lo, hi = window_ns(day, day)
    return lo // 1_000_000, hi // 1_000_000


class RestHistory:
    """Whole UTC days from the REST API of one market (`rest` is that market's BinanceRest)."""

    def __init__(self, rest: BinanceRest, market: str):
        self.rest = rest
        self.market = market

    def _get(self, path: str, **params) -> list:
        version = 1 if self.market == FUTURES else None
        return self.rest.call(self.market, "get", path, signed=False, weight=WEIGHTS[(self.market, path)], version=version, **params)

    def agg_trades(self, venue_symbol: str, symbol: str, day: dt.date) -> pa.Table:
        """Every aggregate trade of `day` (possibly none) as a market table."""
        lo, hi = day_bounds_ms(day)
        pages: list[list[dict]] = []
        t = lo
        while t < hi and not pages:
            page = self._get("aggTrades", symbol=venue_symbol, startTime=t, endTime=min(t + HOUR_MS, hi) - 1, limit=PAGE)
            if page:
                pages.append(page)
            t += HOUR_MS
        while pages and pages[-1][-1]["T"] < hi:
            page = self._get("aggTrades", symbol=venue_symbol, fromId=pages[-1][-1]["a"] + 1, limit=PAGE)
            if not page:
                break
            pages.append(page)
        rows = pa.Table.from_pylist([r for p in pages for r in p]) if pages else None
        if rows is None or rows.num_rows == 0:
            columns = {"id": np.empty(0, np.int64), "price": np.empty(0), "qty": np.empty(0),
                       "time": np.empty(0, np.int64), "buyer_maker": np.empty(0, bool)}
        else:
            columns = {"id": _ints(rows, "a"), "price": _floats(rows, "p"), "qty": _floats(rows, "q"),
                       "time": _ints(rows, "T"), "buyer_maker": rows.column("m").to_numpy()}
        keep = (columns["time"] >= lo) & (columns["time"] < hi)
        columns = {k: v[keep] for k, v in columns.items()}
        return build_table(columns, name=f"REST aggTrades {venue_symbol} {day}", symbol=symbol, kind="aggTrades")

    def klines(self, venue_symbol: str, symbol: str, interval: str, day: dt.date) -> pa.Table:
        """Every candle opening in `day` (possibly none) as a bars table."""
        lo, hi = day_bounds_ms(day)
        rows: list[list] = []
        start = lo
        while start < hi:
            page = self._get("klines", symbol=venue_symbol, interval=interval, startTime=start, endTime=hi - 1, limit=PAGE)
            rows.extend(page)
            if len(page) < PAGE:
                break
            start = int(page[-1][0]) + 1
        cols = list(zip(*rows)) if rows else [()] * 12
        columns = {
            "time": np.array(cols[0], dtype=np.int64),
            **{k: np.array(cols[i], dtype=np.float64) for i, k in ((1, "open"), (2, "high"), (3, "low"), (4, "close"), (5, "volume"), (7, "quote_volume"))},
            "count": np.array(cols[8], dtype=np.int64),
        }
        keep = (columns["time"] >= lo) & (columns["time"] < hi)
        columns = {k: v[keep] for k, v in columns.items()}
        return build_table(columns, name=f"REST klines {venue_symbol} {interval} {day}", symbol=symbol, kind="klines", interval=interval)


def _ints(rows: pa.Table, name: str) -> np.ndarray:
    return rows.column(name).cast(pa.int64()).to_numpy()


def _floats(rows: pa.Table, name: str) -> np.ndarray:
    """Binance's decimal strings → float64, parsed by Arrow (correctly rounded, as the CSV reader)."""
    return rows.column(name).cast(pa.float64()).to_numpy()
