"""Binance symbols and their trading rules from exchangeInfo: resolution, metadata, rounding, checks.

exchangeInfo is cached once a day per endpoint host and market in the cache dir
(`binance/exchangeInfo-<market>-<host>-<YYYY-MM-DD>.json`), and for USD-M futures the public
fundingInfo beside it (each perpetual's funding interval: 8 h unless listed). Its filters become `Rules`
(Decimal, so rounding is exact): PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, NOTIONAL/MIN_NOTIONAL,
PERCENT_PRICE(_BY_SIDE), MAX_NUM_ORDERS, ICEBERG_PARTS. Prices round to the tick (buys down,
sells up, so rounding never makes an order more aggressive), quantities down to the step; an
order that still breaks a filter is refused before it reaches the venue, naming the filter.
An unknown symbol is a usage error (exit 2) with close matches.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from sq.core import paths
from sq.core.exits import DataError, SqError, UsageError
from sq.core.schemas import Instrument
from sq.core.symbols import suggest
from sq.venues.binance.endpoints import FUTURES, Endpoints


class FilterViolation(UsageError):
    """An order that breaks one of the symbol's exchangeInfo filters (named in the message)."""

    def __init__(self, filter_name: str, message: str):
        super().__init__(f"order refused by {filter_name}: {message}")
        self.filter = filter_name


def _d(x: Any) -> Decimal:
    return Decimal(str(x))


def _s(x: Decimal) -> str:
    """A Decimal for messages: plain notation, no trailing zeros (9000000, 0.001)."""
    return format(x.normalize(), "f")


@dataclass(frozen=True)
class Rules:
    """One symbol's filters (Decimal); zero means "no limit" as in Binance's own answers."""

    symbol: str
    market: str
    status: str = "TRADING"
    base: str = ""
    quote: str = ""
    tick_size: Decimal = Decimal(0)
    min_price: Decimal = Decimal(0)
    max_price: Decimal = Decimal(0)
    step_size: Decimal = Decimal(0)
    min_qty: Decimal = Decimal(0)
    max_qty: Decimal = Decimal(0)
    market_step_size: Decimal = Decimal(0)
    market_min_qty: Decimal = Decimal(0)
    market_max_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    max_notional: Decimal = Decimal(0)
    notional_applies_to_market: bool = True
    bid_up: Decimal = Decimal(0)  # PERCENT_PRICE(_BY_SIDE) multipliers, 0 = absent
    bid_down: Decimal = Decimal(0)
    ask_up: Decimal = Decimal(0)
    ask_down: Decimal = Decimal(0)
    max_num_orders: int = 0
    iceberg_parts: int = 0
    order_types: tuple[str, ...] = ()
    raw_filters: tuple[str, ...] = field(default=())
    funding_interval_h: float = 0.0  # USD-M perpetuals: hours between funding times (fundingInfo; 8 unless adjusted)

    # ---------------------------------------------------------------- rounding

    def round_price(self, price: float | Decimal | str, side: int) -> Decimal:
        """To the tick: buys down, sells up (never more aggressive than asked)."""
        p = _d(price)
        if self.tick_size > 0:
            p = (p / self.tick_size).to_integral_value(ROUND_FLOOR if side > 0 else ROUND_CEILING) * self.tick_size
        return p.normalize() if p != 0 else Decimal(0)

    def round_qty(self, qty: float | Decimal | str, market_order: bool = False) -> Decimal:
        """Down to the (market) lot step."""
        q = _d(qty)
        step = self.market_step_size if market_order and self.market_step_size > 0 else self.step_size
        if step > 0:
            q = (q / step).to_integral_value(ROUND_DOWN) * step
        return q.normalize() if q != 0 else Decimal(0)

    # ---------------------------------------------------------------- checks

    def check(self, side: int, qty: Decimal, price: Decimal | None, *, ref_price: Decimal | None = None, open_orders: int = 0) -> None:
        """Raise FilterViolation naming the first filter the order breaks (prices/qtys already rounded)."""
        if self.status != "TRADING":
            raise FilterViolation("symbol status", f"{self.symbol} is {self.status}, not TRADING")
        market = price is None
        if market:
            lo, hi, step, name = self.market_min_qty or self.min_qty, self.market_max_qty or self.max_qty, self.market_step_size, "MARKET_LOT_SIZE"
        else:
            lo, hi, step, name = self.min_qty, self.max_qty, self.step_size, "LOT_SIZE"
        if qty <= 0 or (lo > 0 and qty < lo):
            raise FilterViolation(name, f"quantity {_s(qty)} is below minQty {_s(lo)}")
        if hi > 0 and qty > hi:
            raise FilterViolation(name, f"quantity {_s(qty)} is above maxQty {_s(hi)}")
        if step > 0 and (qty / step) % 1 != 0:
            raise FilterViolation(name, f"quantity {_s(qty)} is not a multiple of stepSize {_s(step)}")
        if not market:
            if self.min_price > 0 and price < self.min_price:
                raise FilterViolation("PRICE_FILTER", f"price {_s(price)} is below minPrice {_s(self.min_price)}")
            if self.max_price > 0 and price > self.max_price:
                raise FilterViolation("PRICE_FILTER", f"price {_s(price)} is above maxPrice {_s(self.max_price)}")
            if self.tick_size > 0 and (price / self.tick_size) % 1 != 0:
                raise FilterViolation("PRICE_FILTER", f"price {_s(price)} is not a multiple of tickSize {_s(self.tick_size)}")
            if ref_price is not None and ref_price > 0:
                up, down = (self.bid_up, self.bid_down) if side > 0 else (self.ask_up, self.ask_down)
                if up > 0 and price > ref_price * up:
                    raise FilterViolation("PERCENT_PRICE", f"price {_s(price)} is more than {_s(up)}× the reference {_s(ref_price)}")
                if down > 0 and price < ref_price * down:
                    raise FilterViolation("PERCENT_PRICE", f"price {_s(price)} is less than {_s(down)}× the reference {_s(ref_price)}")
        px = price if price is not None else ref_price
        if px is not None and (not market or self.notional_applies_to_market):
            notional = px * qty
            if self.min_notional > 0 and notional < self.min_notional:
                raise FilterViolation("NOTIONAL", f"notional {_s(notional)} is below minNotional {_s(self.min_notional)}")
            if self.max_notional > 0 and notional > self.max_notional:
                raise FilterViolation("NOTIONAL", f"notional {_s(notional)} is above maxNotional {_s(self.max_notional)}")
        if self.max_num_orders > 0 and open_orders >= self.max_num_orders:
            raise FilterViolation("MAX_NUM_ORDERS", f"{open_orders} open orders already (limit {self.max_num_orders})")

    def instrument(self, canonical: str) -> Instrument:
        """The `sq.instruments` metadata entry for this symbol."""
        extra = {
            "market": self.market, "status": self.status, "base": self.base, "quote": self.quote,
            "min_price": float(self.min_price), "max_price": float(self.max_price),
            "min_qty": float(self.min_qty), "max_qty": float(self.max_qty),
            "min_notional": float(self.min_notional), "max_num_orders": self.max_num_orders,
        }
        if self.funding_interval_h > 0:
            extra["funding_interval_h"] = self.funding_interval_h
        return Instrument(canonical, "binance", float(self.tick_size), float(self.step_size), extra)


def parse_rules(info: dict, market: str) -> dict[str, Rules]:
    """exchangeInfo JSON → Rules per venue symbol."""
    out: dict[str, Rules] = {}
    for s in info.get("symbols", []):
        kw: dict[str, Any] = {
            "symbol": s["symbol"], "market": market, "status": s.get("status", "TRADING"),
            "base": s.get("baseAsset", ""), "quote": s.get("quoteAsset", ""), "order_types": tuple(s.get("orderTypes", ())),
        }
        names = []
        for f in s.get("filters", []):
            t = f.get("filterType")
            names.append(t)
            if t == "PRICE_FILTER":
                kw.update(tick_size=_d(f["tickSize"]), min_price=_d(f["minPrice"]), max_price=_d(f["maxPrice"]))
            elif t == "LOT_SIZE":
                kw.update(step_size=_d(f["stepSize"]), min_qty=_d(f["minQty"]), max_qty=_d(f["maxQty"]))
            elif t == "MARKET_LOT_SIZE":
                kw.update(market_step_size=_d(f["stepSize"]), market_min_qty=_d(f["minQty"]), market_max_qty=_d(f["maxQty"]))
            elif t == "NOTIONAL":
                kw.update(min_notional=_d(f.get("minNotional", 0)), max_notional=_d(f.get("maxNotional", 0)),
                          notional_applies_to_market=bool(f.get("applyMinToMarket", True)))
            elif t == "MIN_NOTIONAL":
                kw.update(min_notional=_d(f.get("minNotional", f.get("notional", 0))),
                          notional_applies_to_market=bool(f.get("applyToMarket", True)))
            elif t == "PERCENT_PRICE_BY_SIDE":
                kw.update(bid_up=_d(f["bidMultiplierUp"]), bid_down=_d(f["bidMultiplierDown"]),
                          ask_up=_d(f["askMultiplierUp"]), ask_down=_d(f["askMultiplierDown"]))
            elif t == "PERCENT_PRICE":
                up, down = _d(f["multiplierUp"]), _d(f["multiplierDown"])
                kw.update(bid_up=up, bid_down=down, ask_up=up, ask_down=down)
            elif t in ("MAX_NUM_ORDERS",):
                kw["max_num_orders"] = int(f.get("maxNumOrders", f.get("limit", 0)))
            elif t == "ICEBERG_PARTS":
                kw["iceberg_parts"] = int(f.get("limit", 0))
        kw["raw_filters"] = tuple(n for n in names if n)
        out[s["symbol"]] = Rules(**kw)
    return out


def cache_path(endpoints: Endpoints, market: str, environ=None, day: dt.date | None = None) -> Path:
    host = urlsplit(endpoints.rest(market)).netloc.replace(":", "_") or "local"
    day = day or dt.datetime.now(dt.timezone.utc).date()
    return paths.cache_dir(environ) / "binance" / f"exchangeInfo-{market}-{host}-{day.isoformat()}.json"


def cached_symbols(prefix: str, environ=None) -> list[str]:
    """The symbols of the newest cached exchangeInfo of the market `prefix` names (BINANCE: spot,
    BINANCE-FUT: futures), for shell completion; nothing is downloaded."""
    market = FUTURES if prefix.upper() == "BINANCE-FUT" else "spot"
    files = sorted((paths.cache_dir(environ) / "binance").glob(f"exchangeInfo-{market}-*.json"), key=lambda p: p.name[-15:])
    if not files:
        return []
    try:
        doc = json.loads(files[-1].read_bytes())
    except (OSError, ValueError):
        return []
    return sorted(f"{prefix.upper()}:{s['symbol']}" for s in doc.get("symbols", []) if isinstance(s, dict) and s.get("symbol"))


FUNDING_INTERVAL_H = 8.0  # a USD-M perpetual fundingInfo does not list funds every 8 hours


def parse_funding_info(body: bytes | str) -> dict[str, float]:
    """`GET /fapi/v1/fundingInfo` → {venue symbol: fundingIntervalHours}: only the symbols whose
    funding interval (or rate cap) was adjusted are listed; every other one funds every 8 hours."""
    try:
        rows = json.loads(body)
        return {str(r["symbol"]).upper(): float(r["fundingIntervalHours"]) for r in rows if float(r.get("fundingIntervalHours") or 0) > 0}
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"binance fundingInfo is not what sq expects: {type(e).__name__}: {e}") from None


def funding_intervals(endpoints: Endpoints, environ=None, fetch: Callable[[str], "object"] | None = None) -> dict[str, float]:
    """The adjusted funding intervals of USD-M perpetuals (public `GET /fapi/v1/fundingInfo`),
    cached for the day beside exchangeInfo. Unreachable: {} (every symbol 8-hourly), not cached."""
    from sq.venues.binance import http

    path = cache_path(endpoints, FUTURES, environ).with_name(cache_path(endpoints, FUTURES, environ).name.replace("exchangeInfo", "fundingInfo"))
    if path.exists():
        return parse_funding_info(path.read_bytes())
    try:
        reply = (fetch or http.get)(endpoints.url(FUTURES, "funding_info"))
    except SqError:
        return {}
    if not reply.ok:
        return {}
    out = parse_funding_info(reply.body)
    paths.ensure_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(reply.body)
    tmp.replace(path)
    return out


class ExchangeInfo:
    """The rules of every symbol of one market, loaded from the daily cache or the venue."""

    def __init__(self, market: str, rules: dict[str, Rules], raw: bytes):
        self.market = market
        self.rules = rules
        self.raw = raw

    @classmethod
    def from_body(cls, market: str, body: bytes | str) -> "ExchangeInfo":
        try:
            info = json.loads(body)
            return cls(market, parse_rules(info, market), body if isinstance(body, bytes) else body.encode())
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"binance exchangeInfo ({market}) is not what sq expects: {type(e).__name__}: {e}") from None

    @classmethod
    def load(cls, endpoints: Endpoints, market: str, environ=None, fetch: Callable[[str], "object"] | None = None,
             on_body: Callable[[str, bytes], None] | None = None) -> "ExchangeInfo":
        """Today's cached copy, else GET exchangeInfo (and cache it). `on_body(path, body)` sees the answer (raw capture)."""
        from sq.venues.binance import http

        path = cache_path(endpoints, market, environ)
        if path.exists():
            body = path.read_bytes()
        else:
            url = endpoints.url(market, "exchange_info")
            reply = (fetch or http.get)(url)
            if not reply.ok:
                from sq.venues.binance.errors import raise_for_reply

                raise_for_reply(reply, "exchangeInfo")
            body = reply.body
            paths.ensure_dir(path.parent)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(body)
            tmp.replace(path)
        if on_body is not None:
            on_body(endpoints.path(market, "exchange_info"), body)
        info = cls.from_body(market, body)
        if market == FUTURES:
            info.set_funding_intervals(funding_intervals(endpoints, environ, fetch))
        return info

    def set_funding_intervals(self, hours: dict[str, float]) -> None:
        """Each perpetual's hours between funding times: `hours` (fundingInfo's adjusted ones),
        `FUNDING_INTERVAL_H` for the rest."""
        for sym, r in self.rules.items():
            self.rules[sym] = dataclasses.replace(r, funding_interval_h=float(hours.get(sym) or FUNDING_INTERVAL_H))

    def get(self, venue_symbol: str, canonical: str | None = None) -> Rules:
        """Rules of a symbol; unknown → UsageError (exit 2) naming it with close matches."""
        r = self.rules.get(venue_symbol.upper())
        if r is None:
            prefix = "BINANCE-FUT:" if self.market == FUTURES else "BINANCE:"
            close = suggest(venue_symbol, list(self.rules))
            hint = f"; did you mean {', '.join(prefix + c for c in close)}?" if close else ""
            raise UsageError(f"unknown symbol {canonical or prefix + venue_symbol.upper()} on Binance {self.market}{hint}")
        return r
