"""Zerodha's side of `sq fetch`: historical candles from Kite's `/instruments/historical` API.

    KINDS = {"candles": "bars"}         fetch kind → the stream kind it produces
    INTERVALS                            Kite's candle intervals (sq's 1m … 1h, 1d are accepted too)
    calendar(start, end) -> [date]       IST trading days: the weekdays (sq does not know NSE's
                                         holidays: a weekday without candles comes back as
                                         "no candles (holiday?)", not as an error)
    open_history(config, env, *, symbols, kind, interval, oi, continuous) -> KiteHistory

Everything the user can get wrong is refused as a usage error before the first historical
request: the kind, the interval, the symbols (today's instruments dump), `continuous` anywhere but
on day candles of NFO/MCX futures. The stored Kite session gives the token (exit 77 when it is
missing or expired, and when Kite refuses it).

`KiteHistory.fetch(symbol, days)` batches the days into as few requests as Kite's per-request
range limit allows (`MAX_DAYS`), paces them at Kite's historical rate (3/s, ratelimit.py),
retries a 429 or an unreachable Kite with a growing pause (then exit 75, or 69), and yields one
`DayResult` per asked day, in date order, with that IST date's bars (candles.py). Days that are
not over in IST yet are not fetched: a stored day must be a complete day.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlencode

from sq.core.datasets import date_range
from sq.core.exits import DataError, SqError, TempFailure, UsageError, VenueUnavailable
from sq.core.schemas import bars_schema
from sq.venues.base import DayResult
from sq.venues.zerodha.candles import by_ist_day, candles_of, candles_table, ist_day_number
from sq.venues.zerodha.endpoints import Endpoints, headers
from sq.venues.zerodha.errors import from_http_error
from sq.venues.zerodha.instruments import KiteInstrument, load_dump, parse_csv, resolve
from sq.venues.zerodha.ratelimit import KiteLimits
from sq.venues.zerodha.session import IST, access_token

KINDS = {"candles": "bars"}
INTERVALS = ("minute", "3minute", "5minute", "10minute", "15minute", "30minute", "60minute", "day")
# The longest range (calendar days, both ends included) Kite answers in one request per interval,
# as Kite Connect documents it (https://kite.trade/forum/discussion/comment/53245/, "Historical data
# availability through the Kite Connect API"): minute 60; 3-, 5- and 10-minute 100; 15- and
# 30-minute 200; 60-minute 400; day 2000. A longer range is refused with InputException
# "interval exceeds max limit: N days".
MAX_DAYS = {"minute": 60, "3minute": 100, "5minute": 100, "10minute": 100, "15minute": 200, "30minute": 200,
            "60minute": 400, "day": 2000}
# the interval in sq's notation, written into the bars stream's `sq.interval` metadata
BAR_INTERVAL = {"minute": "1m", "3minute": "3m", "5minute": "5m", "10minute": "10m", "15minute": "15m",
                "30minute": "30m", "60minute": "1h", "day": "1d"}
ALIASES = {**{v: k for k, v in BAR_INTERVAL.items()}, "60m": "60minute", "1minute": "minute", "1day": "day"}
# Kite serves continuous (rolled-over) futures data for NFO and MCX futures, as day candles only
# (https://kite.trade/docs/connect/v3/historical/ "Continuous data"; Zerodha support: "Continuous
# data is only available for day candles … for Equity Futures and Commodity contracts").
CONTINUOUS_EXCHANGES = ("NFO", "MCX")
HISTORICAL_PATH = "/instruments/historical/{token}/{interval}"
KITE_TIME = "%Y-%m-%d %H:%M:%S"
NO_CANDLES = "no candles (holiday?)"
NOT_OVER = "not over yet in IST; fetch it once the day has ended"
HTTP_TIMEOUT = 30.0
RETRIES = 4
BACKOFF_S = 0.25


def kite_interval(interval: str | None) -> str:
    """Kite's name of a candle interval (`minute` … `day`, or sq's `1m` … `1h`, `1d`)."""
    choices = ", ".join(INTERVALS)
    if interval is None or not str(interval).strip():
        raise UsageError(f"zerodha candles need an interval: one of {choices}")
    name = str(interval).strip().lower()
    name = ALIASES.get(name, name)
    if name not in MAX_DAYS:
        raise UsageError(f"zerodha: unknown candle interval {interval!r}; Kite has {choices}")
    return name


def calendar(start: dt.date, end: dt.date) -> list[dt.date]:
    """The IST trading days from `start` to `end` (both included): the weekdays."""
    return [d for d in date_range(start, end) if d.weekday() < 5]


def batches(days: Iterable[dt.date], max_days: int) -> list[list[dt.date]]:
    """Sorted, distinct days in runs that one request can cover: first to last ≤ `max_days` days."""
    out: list[list[dt.date]] = []
    for day in sorted(set(days)):
        if out and (day - out[-1][0]).days < max_days:
            out[-1].append(day)
        else:
            out.append([day])
    return out


def open_history(config, env, *, symbols: list[str], kind: str, interval: str | None, oi: bool = False,
                 continuous: bool = False, limits: KiteLimits | None = None,
                 clock: Callable[[], dt.datetime] | None = None, timeout: float = HTTP_TIMEOUT,
                 retries: int = RETRIES, backoff_s: float = BACKOFF_S) -> "KiteHistory":
    """A historical-candles client for `symbols` (canonical `NSE:RELIANCE`, …) after every check
    that needs no historical request. `limits`, `clock` (→ aware now), `timeout`, `retries` and
    `backoff_s` exist for tests and tuning."""
    if kind not in KINDS:
        raise UsageError(f"zerodha: no {kind!r} history; Kite serves {', '.join(KINDS)}")
    name = kite_interval(interval)
    if not symbols:
        raise UsageError("zerodha: no symbol to fetch")
    if continuous:
        if name != "day":
            raise UsageError(f"zerodha: --continuous needs the day interval (Kite serves continuous futures data as day candles only), not {name}")
        for s in symbols:
            exchange = s.strip().upper().split(":", 1)[0]
            if exchange not in CONTINUOUS_EXCHANGES:
                raise UsageError(f"zerodha: --continuous applies to NFO and MCX futures only, not {s} ({exchange})")
    z = config.zerodha
    api_key, token = access_token(z)
    endpoints = Endpoints.from_config(z)
    resolved = resolve(symbols, parse_csv(load_dump(endpoints, api_key, token, cache_dir=z.instruments_cache_dir)))
    if continuous:
        for ki in resolved:
            if ki.instrument_type != "FUT":
                raise UsageError(f"zerodha: --continuous applies to NFO and MCX futures only; {ki.symbol} is {ki.instrument_type or 'not a future'}")
    return KiteHistory(endpoints, api_key, token, resolved, name, env=env, oi=oi, continuous=continuous,
                       limits=limits or KiteLimits(), clock=clock, timeout=timeout, retries=retries, backoff_s=backoff_s)


class KiteHistory:
    """Historical candles of resolved Kite instruments at one interval (see the module doc)."""

    def __init__(self, endpoints: Endpoints, api_key: str, token: str, resolved: list[KiteInstrument], interval: str, *,
                 env, oi: bool, continuous: bool, limits: KiteLimits, clock: Callable[[], dt.datetime] | None,
                 timeout: float, retries: int, backoff_s: float):
        self.endpoints, self.env = endpoints, env
        self.headers = headers(api_key, token)
        self.kite = {ki.symbol: ki for ki in resolved}
        self.instruments = {ki.symbol: ki.to_instrument() for ki in resolved}
        self.interval, self.oi, self.continuous = interval, oi, continuous
        self.limits, self.timeout, self.retries, self.backoff_s = limits, timeout, retries, backoff_s
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.schemas = {s: bars_schema({s: i}, BAR_INTERVAL[interval]) for s, i in self.instruments.items()}

    def fetch(self, symbol: str, days: list[dt.date]) -> Iterator[DayResult]:
        """One DayResult per distinct asked day, in date order: the day's bars, or no table and a
        note (a weekday without candles, a day not over yet). `bytes` counts each answer once, on
        the first day it carries."""
        key = symbol.strip().upper()
        ki = self.kite.get(key)
        if ki is None:
            raise UsageError(f"zerodha: {symbol} was not opened for this fetch (opened: {', '.join(self.kite)})")
        path = HISTORICAL_PATH.format(token=ki.token, interval=self.interval)
        source = f"kite:{path}"
        today = self.clock().astimezone(IST).date()
        asked = sorted(set(days))
        for run in batches([d for d in asked if d < today], MAX_DAYS[self.interval]):
            what = f"{key} {self.interval} {run[0]}..{run[-1]}"
            size, doc = self._get(path, run[0], run[-1], what)
            table = candles_table(candles_of(doc, what), key, self.schemas[key], oi=self.oi, what=what)
            per_day = by_ist_day(table)
            for day in run:
                part = per_day.get(ist_day_number(day))
                if part is None:
                    yield DayResult(day, None, source, NO_CANDLES, size)
                else:
                    yield DayResult(day, part, source, "", size)
                size = 0
        for day in asked:
            if day >= today:
                yield DayResult(day, None, source, NOT_OVER)

    def _url(self, path: str, first: dt.date, last: dt.date) -> str:
        start = dt.datetime.combine(first, dt.time(0, 0, 0))
        end = dt.datetime.combine(last, dt.time(23, 59, 59))
        query = {"from": start.strftime(KITE_TIME), "to": end.strftime(KITE_TIME),
                 "continuous": int(self.continuous), "oi": int(self.oi)}
        return self.endpoints.rest(path) + "?" + urlencode(query)

    def _get(self, path: str, first: dt.date, last: dt.date, what: str) -> tuple[int, Any]:
        """(answer size in bytes, decoded answer) of one historical request. A 429, a 5xx or an
        unreachable Kite is asked again after 0.25, 0.5, 1 … s (`retries` times); Kite's other
        refusals are mapped at once (errors.py)."""
        request = urllib.request.Request(self._url(path, first, last), headers=self.headers)
        for attempt in range(self.retries + 1):
            self.limits.history()
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    body = answer.read()
                break
            except urllib.error.HTTPError as e:
                error: SqError = from_http_error(e.code, e.read())
                transient = e.code == 429 or e.code >= 500
            except (urllib.error.URLError, OSError) as e:
                error = VenueUnavailable(f"zerodha: cannot reach Kite ({getattr(e, 'reason', None) or type(e).__name__})")
                transient = True
            if not transient or attempt == self.retries:
                raise error from None
            pause = self.backoff_s * (2 ** attempt)
            if isinstance(error, TempFailure):
                self.env.warn(f"zerodha: Kite rate-limited the request for {what}; asking again in {pause:g} s")
            time.sleep(pause)
        try:
            doc = json.loads(body)
        except ValueError:
            raise DataError(f"zerodha: {what}: the answer is not JSON") from None
        if not isinstance(doc, dict) or doc.get("status") != "success":
            raise from_http_error(200, body)
        return len(body), doc

    def close(self) -> None:
        """Nothing to release: every request opens and closes its own connection."""
