"""Binance spot (`BINANCE:`) and USD-M futures (`BINANCE-FUT:`): market source, order gateway, auth.

    open_market_source(symbols, options) -> BinanceSource   (market rows with a correct local book)
    open_gateway(config, env, **kw)     -> BinanceGateway   (orders over REST, execution reports)
    instrument_info(symbols, config)    -> {symbol: Instrument}   (from exchangeInfo)

Symbols are checked against exchangeInfo (cached daily) when the source or gateway opens: an
unknown symbol is a usage error (exit 2) with close matches. Endpoints come from the config /
`SQ_BINANCE_*_URL` variables (`--testnet` or `testnet = true` selects the testnets).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sq.venues.binance.endpoints import FUTURES, PREFIXES, SPOT, endpoints, market_of  # noqa: F401  (PREFIXES: the package interface)

if TYPE_CHECKING:  # pragma: no cover
    from sq.core.symbols import Symbol
    from sq.venues.binance.gateway import BinanceGateway
    from sq.venues.binance.source import BinanceSource
    from sq.venues.registry import SourceOptions


ORDER_RATE = 10.0  # orders per second: Binance publishes 100 orders / 10 s per account
CORPORATE_ACTIONS: dict[str, int] = {}  # crypto has no splits, bonuses or dividends to adjust for


def holds_positions(symbol: str) -> bool:
    """USD-M futures hold net positions; spot holds balances (never a position to reconcile or flatten)."""
    return market_of(symbol) == FUTURES


def trading_session(symbol: str):
    """Binance trades around the clock: a session bar is the UTC day."""
    from sq.core.sessions import UTC_DAY

    return UTC_DAY


def market_calendar(symbol: str, config=None):
    """None: Binance trades around the clock (no sessions, holidays or square-off)."""
    return None


FUNDING_INTERVAL_H = 8.0  # USD-M perpetuals fund every 8 hours unless /fapi/v1/fundingInfo says otherwise
BNB_DISCOUNT = {SPOT: 0.75, FUTURES: 0.9}  # the fee multiplier when fees are paid in BNB


def funding_interval_h(symbol: str) -> float:
    """Hours between funding times of a USD-M perpetual (0: spot, never funded)."""
    return FUNDING_INTERVAL_H if market_of(symbol) == FUTURES else 0.0


def fee_rates_bps(symbol: str, config) -> tuple[float, float] | None:
    """(maker, taker) bps a simulated run charges on `symbol`: the `[binance]` overrides for its
    market, with the BNB discount when `bnb_fee_discount`; None: the flat `[paper_trading]` fees."""
    b = config.binance
    fut = market_of(symbol) == FUTURES
    maker = b.futures_maker_fee_bps if fut else b.maker_fee_bps
    taker = b.futures_taker_fee_bps if fut else b.taker_fee_bps
    if maker is None and taker is None and not b.bnb_fee_discount:
        return None
    pt = config.paper_trading
    k = BNB_DISCOUNT[FUTURES if fut else SPOT] if b.bnb_fee_discount else 1.0
    return (float(pt.maker_fee_bps if maker is None else maker) * k, float(pt.taker_fee_bps if taker is None else taker) * k)


def funding_state(symbol: str, config) -> tuple[int, float, float] | None:
    """(next funding time ns, rate, mark) of a USD-M perpetual from the public premiumIndex (no
    keys needed: a paper run on the live feed asks it); None for spot."""
    if market_of(symbol) != FUTURES:
        return None
    from sq.core.symbols import parse_symbol
    from sq.venues.binance.costs import funding_state as state
    from sq.venues.binance.rest import BinanceRest

    rest = BinanceRest(endpoints(config.binance), None)
    try:
        return state(rest, parse_symbol(symbol).name)
    finally:
        session = getattr(getattr(rest, "client", None), "session", None)
        if session is not None:
            session.close()


def secret_files(environ=None) -> list:
    """Where `sq auth binance` keeps the API key and secret (mode 0600)."""
    from sq.venues.binance.credentials import store_path

    return [store_path(environ)]


def _capture_exchange_info(path: str) -> dict[str, bytes]:
    """exchangeInfo answers recorded in a raw capture, per market (the first of each)."""
    from sq.venues.binance.raw import read_records

    found: dict[str, bytes] = {}
    for rec in read_records(path):
        if rec.src == "rest" and "exchangeInfo" in rec.stream and rec.market not in found:
            found[rec.market] = rec.data
    return found


def instrument_info(symbols: list["Symbol"], config) -> dict:
    """Each symbol's `Instrument` from its market's exchangeInfo (today's cached copy, else the
    venue): VenueUnavailable (69) when the venue cannot be reached, a usage error for an unknown
    symbol."""
    from sq.venues.binance.instruments import ExchangeInfo

    ep = endpoints(config.binance)
    infos = {m: ExchangeInfo.load(ep, m) for m in sorted({market_of(s) for s in symbols})}
    return {s.canonical: infos[market_of(s)].get(s.name, s.canonical).instrument(s.canonical) for s in symbols}


def open_market_source(symbols: list["Symbol"], options: "SourceOptions", **tuning) -> "BinanceSource":
    """A market source for Binance symbols honouring limit, duration, raw capture and replay."""
    from sq.venues.binance.instruments import ExchangeInfo
    from sq.venues.binance.pipeline import PipeSymbol
    from sq.venues.binance.raw import RawWriter
    from sq.venues.binance.source import BinanceSource, Tuning

    ep = endpoints(options.config.binance)
    markets = sorted({market_of(s) for s in symbols})
    captured = _capture_exchange_info(options.replay_path) if options.replay_path else {}
    infos = {}
    bodies: dict[str, bytes] = {}
    for m in markets:
        if m in captured:
            infos[m] = ExchangeInfo.from_body(m, captured[m])
        else:
            infos[m] = ExchangeInfo.load(ep, m, on_body=lambda path, body, m=m: bodies.__setitem__(m, body))
    pipe_symbols, instruments = [], {}
    for s in symbols:
        m = market_of(s)
        rules = infos[m].get(s.name, s.canonical)
        pipe_symbols.append(PipeSymbol(s.canonical, rules.symbol, m))
        instruments[s.canonical] = rules.instrument(s.canonical)
    raw = RawWriter(options.raw_path) if options.raw_path and not options.replay_path else None
    return BinanceSource(
        pipe_symbols, instruments, ep, mode=options.mode, limit=options.limit, duration_ns=options.duration_ns,
        raw=raw, replay_path=options.replay_path, tuning=Tuning(**tuning), exchange_info_bodies=bodies,
    )


def open_gateway(config, env, **kw) -> "BinanceGateway":
    """An order gateway on the configured (or testnet) account; keys from the config, env or `sq auth binance`."""
    from sq.venues.binance.gateway import BinanceGateway

    return BinanceGateway.open(config, env, **kw)


def open_account(config, env, *, symbols=(), order_timeout_s: float | None = None, push: bool = False) -> "BinanceGateway":
    """The gateway of a live run or a reconcile, requests timing out at the run's order timeout
    (3 retries). Only the markets `symbols` trade on are reached at open (their exchangeInfo,
    and with `push` their execution-report streams; spot when no symbol is given); any other
    market is reached when an order, a journal or the account first needs it. So a futures API
    that cannot be reached (a geo-restriction, a firewall that lets only the spot hosts through)
    never stops spot trading or the reconcile of a spot run."""
    kw = {} if order_timeout_s is None else {"timeout": order_timeout_s, "max_retries": 3}
    markets = tuple(sorted({market_of(s) for s in symbols}))
    gw = open_gateway(config, env, user_stream=False, markets=markets, **kw)
    if push:
        gw.start_user_stream(markets or (SPOT,))
    return gw
