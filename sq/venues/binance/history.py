"""`sq fetch` for Binance: whole UTC days from the public data archive, the last few from REST.

The venue's side of the history protocol (`sq.venues.base`): `KINDS`, `INTERVALS`, `calendar`,
`open_history` → `BinanceHistory`.

Where a day comes from (the base URL is `[binance] data_url` / `SQ_BINANCE_DATA_URL`):

    spot     /data/spot/daily/{kind}/{SYMBOL}/{SYMBOL}-{kind}-{YYYY-MM-DD}.zip
    futures  /data/futures/um/daily/{kind}/{SYMBOL}/{SYMBOL}-{kind}-{YYYY-MM-DD}.zip
    klines   /data/…/daily/klines/{SYMBOL}/{interval}/{SYMBOL}-{interval}-{YYYY-MM-DD}.zip

Every zip has a `.CHECKSUM` beside it (`<sha256 hex>  <file name>`) and is verified against it.
A mismatch, a broken zip or an unreadable CSV is downloaded once more; failing again, the day is
reported and left out, never written in part. A day the archive does not have (404) comes from
the REST API when the kind has REST history (aggTrades, klines) and the day is one of the last
`REST_DAYS` (the archive publishes a day or so late); otherwise it is reported missing — a range
before a symbol's listing is a run of missing days. Days not over yet (UTC) are never fetched:
a day written is a complete day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import TYPE_CHECKING, Callable, Iterator

from sq.core.datasets import date_range
from sq.core.exits import DataError, UsageError
from sq.core.schemas import Instrument
from sq.core.symbols import Symbol, parse_symbols
from sq.venues.base import DayResult
from sq.venues.binance import http
from sq.venues.binance.archive import read_archive
from sq.venues.binance.endpoints import FUTURES, SPOT, Endpoints, endpoints, market_of

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from sq.venues.binance.rest_history import RestHistory

KINDS: dict[str, str] = {"trades": "market", "aggTrades": "market", "bookTicker": "market", "klines": "bars", "funding": "funding"}
INTERVALS: tuple[str, ...] = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
FUTURES_ONLY = ("bookTicker", "funding")  # the spot archive has no bookTicker; spot is never funded
REST_KINDS = ("aggTrades", "klines")  # kinds whose recent days the REST API can give
REST_DAYS = 7  # a day the archive lacks is asked of REST when it ended at most this many days ago
ATTEMPTS = 2  # a broken download is tried once more
DOWNLOAD_TIMEOUT_S = 60.0
_CHECKSUM = re.compile(rb"^\s*([0-9a-fA-F]{64})\b")


def calendar(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every UTC day in [start, end]: crypto trades every day (start after end: usage error)."""
    return date_range(start, end)


def archive_path(market: str, kind: str, venue_symbol: str, day: dt.date, interval: str | None = None) -> str:
    """The archive path of one day's zip (see the module docstring)."""
    root = "/data/futures/um/daily" if market == FUTURES else "/data/spot/daily"
    if kind == "klines":
        return f"{root}/klines/{venue_symbol}/{interval}/{venue_symbol}-{interval}-{day.isoformat()}.zip"
    return f"{root}/{kind}/{venue_symbol}/{venue_symbol}-{kind}-{day.isoformat()}.zip"


def check_request(symbols: list[str], kind: str, interval: str | None) -> list[Symbol]:
    """The parsed symbols, after checking kind, interval and markets without any request."""
    if kind not in KINDS:
        raise UsageError(f"--kind {kind!r} is not a Binance history kind; choose one of {', '.join(KINDS)}")
    bars = KINDS[kind] == "bars"
    if bars and not interval:
        raise UsageError(f"--kind {kind} needs --interval, one of {', '.join(INTERVALS)}")
    if bars and interval not in INTERVALS:
        raise UsageError(f"--interval {interval!r} is not a Binance {kind} interval; choose one of {', '.join(INTERVALS)}")
    if not bars and interval:
        raise UsageError(f"--interval is for --kind klines; {kind} has none")
    parsed = parse_symbols(symbols)
    if not parsed:
        raise UsageError("give at least one symbol to fetch (e.g. BINANCE:BTCUSDT)")
    for s in parsed:
        if market_of(s) == SPOT and kind in FUTURES_ONLY:
            raise UsageError(f"--kind {kind} is archived for USD-M futures only: use BINANCE-FUT:{s.name}, not {s.canonical}")
    return parsed


def open_history(config, env, *, symbols: list[str], kind: str, interval: str | None, **options: bool) -> "BinanceHistory":
    """Check the request (usage errors before any request), then load the symbols' instruments
    from exchangeInfo (an unknown symbol is a usage error with close matches). `options` are other
    venues' fetch flags (Kite's oi, continuous): Binance's archive has none of them."""
    from sq.venues.binance.instruments import ExchangeInfo

    for flag, on in options.items():
        if on:
            raise UsageError(f"--{flag} is a Zerodha candles option; Binance history has no such data")

    parsed = check_request(symbols, kind, interval)
    ep = endpoints(config.binance)
    infos = {m: ExchangeInfo.load(ep, m) for m in sorted({market_of(s) for s in parsed})}
    instruments: dict[str, Instrument] = {}
    venue_symbols: dict[str, Symbol] = {}
    for s in parsed:
        inst = infos[market_of(s)].get(s.name, s.canonical).instrument(s.canonical)
        if kind == "bookTicker":  # the archive shows the best level a side: a top-1 venue to `sq book`
            inst = Instrument(inst.symbol, inst.venue, inst.tick_size, inst.lot_size, {**inst.extra, "depth_view": 1})
        instruments[s.canonical] = inst
        venue_symbols[s.canonical] = s
    return BinanceHistory(venue_symbols, instruments, kind=kind, interval=interval, endpoints=ep, data_url=config.binance.data_url)


class BinanceHistory:
    """Days of one kind for Binance symbols (a `HistoryClient`): archive first, REST for the rest."""

    def __init__(self, symbols: dict[str, Symbol], instruments: dict[str, Instrument], *, kind: str, interval: str | None,
                 endpoints: Endpoints, data_url: str, get: Callable[..., http.Reply] = http.get, today: dt.date | None = None):
        self.symbols = symbols
        self.instruments = instruments
        self.kind = kind
        self.interval = interval
        self.endpoints = endpoints
        self.data_url = data_url.rstrip("/")
        self.get = get
        self.today = today or dt.datetime.now(dt.timezone.utc).date()
        self._rest: dict[str, "RestHistory"] = {}

    def fetch(self, symbol: str, days: list[dt.date]) -> Iterator[DayResult]:
        """One DayResult per day, in the order given (a download per day)."""
        s = self.symbols[symbol]
        for day in days:
            yield self._day(s, day)

    def close(self) -> None:
        for rest in self._rest.values():
            session = getattr(rest.rest.client, "session", None)
            if session is not None:
                session.close()
        self._rest.clear()

    # -------------------------------------------------------------- one day

    def _day(self, s: Symbol, day: dt.date) -> DayResult:
        if day >= self.today:
            return DayResult(day, None, "none", "the day is not over yet (UTC)")
        market = market_of(s)
        if self.kind == "funding":  # the REST API keeps every settled funding rate: one request a day
            table = self._funding_day(s, day)
            return DayResult(day, table, "rest") if table.num_rows else DayResult(day, None, "rest", "no funding time that day")
        path = archive_path(market, self.kind, s.name, day, self.interval)
        found = self._archive(s, market, path, day)
        if found is not None:
            return found
        if self.kind not in REST_KINDS:
            return DayResult(day, None, "none", f"not in the archive, and Binance keeps no REST history of {self.kind}")
        if (self.today - day).days > REST_DAYS:
            return DayResult(day, None, "none", "not in the archive (before the symbol's listing, or never published)")
        table = self._rest_day(s, market, day)
        if table.num_rows == 0:
            return DayResult(day, None, "rest", "not in the archive, and the REST API has no data for the day")
        return DayResult(day, table, "rest")

    def _archive(self, s: Symbol, market: str, path: str, day: dt.date) -> DayResult | None:
        """The day from the archive; None when the archive does not have it (404)."""
        url = self.data_url + path
        name = path.rsplit("/", 1)[-1]
        downloaded = 0
        problem = ""
        for attempt in range(ATTEMPTS):
            reply = self.get(url, timeout=DOWNLOAD_TIMEOUT_S)
            if reply.status == 404 and attempt == 0:
                return None
            downloaded += len(reply.body)
            if not reply.ok:
                problem = f"{name}: HTTP {reply.status}"
                continue
            try:
                self._verify(url, name, reply.body)
                table = read_archive(reply.body, name=name, symbol=s.canonical, market=market, kind=self.kind, interval=self.interval)
            except DataError as e:
                problem = e.message
                continue
            return DayResult(day, table, "archive", bytes=downloaded)
        return DayResult(day, None, "archive", f"{problem}; downloaded {ATTEMPTS} times", bytes=downloaded)

    def _verify(self, url: str, name: str, body: bytes) -> None:
        reply = self.get(url + ".CHECKSUM", timeout=DOWNLOAD_TIMEOUT_S)
        if not reply.ok:
            raise DataError(f"{name}: no checksum file (HTTP {reply.status})")
        m = _CHECKSUM.match(reply.body)
        if m is None:
            raise DataError(f"{name}: unreadable checksum file")
        published, actual = m.group(1).decode().lower(), hashlib.sha256(body).hexdigest()
        if actual != published:
            raise DataError(f"{name}: checksum mismatch: SHA-256 {actual[:16]}… where {name}.CHECKSUM says {published[:16]}…")

    def _funding_day(self, s: Symbol, day: dt.date) -> "pa.Table":
        """The day's settled funding of a USD-M perpetual (`GET /fapi/v1/fundingRate`): ts, symbol,
        rate, mark and the symbol's funding interval (`interval_h`, from fundingInfo) — the funding
        file of docs/funding.md."""
        import pyarrow as pa

        rest = self._rest.get(FUTURES)
        if rest is None:
            rest = self._rest[FUTURES] = _open_rest(self.endpoints, FUTURES)
        start = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp() * 1000)
        rows = rest.rest.call(FUTURES, "get", "fundingRate", signed=False, weight=1, what="funding rate history", symbol=s.name,
                              startTime=start, endTime=start + 86_400_000 - 1, limit=1000)
        rows = sorted(rows or [], key=lambda r: int(r["fundingTime"]))
        ts = pa.array([int(r["fundingTime"]) * 1_000_000 for r in rows], pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
        mark = [float(r["markPrice"]) if r.get("markPrice") not in (None, "") else float("nan") for r in rows]
        hours = float(self.instruments[s.canonical].extra.get("funding_interval_h") or 8.0)  # fundingInfo's, else 8 h
        return pa.table({"ts": ts, "symbol": pa.array([s.canonical] * len(rows), pa.string()),
                         "rate": pa.array([float(r["fundingRate"]) for r in rows], pa.float64()), "mark": pa.array(mark, pa.float64()),
                         "interval_h": pa.array([hours] * len(rows), pa.float64())})

    def _rest_day(self, s: Symbol, market: str, day: dt.date) -> "pa.Table":
        rest = self._rest.get(market)
        if rest is None:
            rest = self._rest[market] = _open_rest(self.endpoints, market)
        if self.kind == "klines":
            return rest.klines(s.name, s.canonical, self.interval or "", day)
        return rest.agg_trades(s.name, s.canonical, day)


def _open_rest(ep: Endpoints, market: str) -> "RestHistory":
    """Public REST history of one market, inside that market's request-weight limit."""
    from sq.venues.binance.rest import BinanceRest, Limits
    from sq.venues.binance.rest_history import RestHistory

    limits = Limits(weight_1m=2400) if market == FUTURES else Limits()
    return RestHistory(BinanceRest(ep, None, limits=limits), market)  # python-binance missing: sq's cli names it (exit 78)
