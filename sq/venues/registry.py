"""Which venue serves a symbol, and the one way runs and commands reach a venue package.

This module is the only place that maps a symbol prefix to a venue. Each venue package
(`sq.venues.sim`, `sq.venues.binance`, `sq.venues.zerodha`) offers the same module-level names
(listed in `sq.venues.base`): its prefixes, its order rate, whether a
market holds positions, a market's trading session and calendar, its secret files, `open_market_source`, `open_gateway`, `open_account`,
and (real venues) an `auth` module; every venue has a standard-library-only `kill` module.
Venue packages are imported only when a symbol, a journal or the account needs them.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from sq.core.exits import UsageError
from sq.core.symbols import EXCHANGES, Symbol, parse_symbol, parse_symbols

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from sq.core.config import Config
    from sq.core.environment import Environment
    from sq.core.schemas import Instrument
    from sq.core.sessions import MarketCalendar, TradingSession
    from sq.venues.base import MarketSource, OrderGateway

VENUES = ("sim", "binance", "zerodha")
ACCOUNT_VENUES = ("zerodha", "binance")  # venues with an account: credentials, `sq auth`, `sq live`, `sq kill`
PREFIX_VENUE: dict[str, str] = {
    **{seg: "zerodha" for seg in ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX")},  # Kite exchange segments
    "BINANCE": "binance",  # spot
    "BINANCE-FUT": "binance",  # USD-M futures
    "SIM": "sim",  # the built-in simulated exchange
}
SDK_EXTRA = {"kiteconnect": "zerodha", "binance": "binance"}  # missing SDK module → the pip extra that brings it


@dataclass(frozen=True)
class SourceOptions:
    """How to open a market source: limits, clock, capture and replay."""

    config: "Config"
    env: "Environment"
    seed: int = 1
    limit: int | None = None  # stop after N events
    duration_ns: int | None = None  # stop after this long (real time, or data time when replaying)
    clock: str = "real"  # "real" (wall clock pacing) or "sim" (as fast as possible; SIM only)
    mode: str = "full"  # ltp | quote | full (Zerodha ticker modes; Binance: full = diff depth + trades)
    raw_path: str | None = None  # --raw: also keep raw frames/REST answers as JSON Lines
    replay_path: str | None = None  # --replay: run the parser over a raw capture, no network


# ----------------------------------------------------------------------------------------------
# symbols → venues (parse_symbol/parse_symbols re-exported: the one import for runs and commands)

__all__ = ["EXCHANGES", "PREFIX_VENUE", "parse_symbol", "parse_symbols", "venue_of", "one_venue", "venue_module", "history_module", "trades_live",
           "order_rate", "holds_positions", "corporate_action_markets", "trading_session", "market_calendar", "secret_files", "require_credentials",
           "open_market_source", "open_account", "kill_module", "instrument_info", "ARCHIVE_FORMATS", "read_archive", "SourceOptions",
           "VENUES", "ACCOUNT_VENUES"]


def venue_of(symbol: Symbol | str) -> str:
    """The venue that serves a symbol (`SIM:DEMO` → sim, `BINANCE-FUT:BTCUSDT` → binance)."""
    s = symbol if isinstance(symbol, Symbol) else parse_symbol(str(symbol))
    return PREFIX_VENUE[s.exchange]


def one_venue(symbols: Iterable[Symbol | str], advice: str = "run one command per venue") -> str:
    """The single venue of `symbols`; symbols of several venues are a usage error ending in `advice`."""
    venues = sorted({venue_of(s) for s in symbols})
    if len(venues) != 1:
        raise UsageError(f"symbols from several venues ({', '.join(venues)}); {advice}")
    return venues[0]


# ----------------------------------------------------------------------------------------------
# venue packages and their capabilities


def venue_module(venue: str, sub: str | None = None) -> Any:
    """Import `sq.venues.<venue>[.<sub>]`, turning a missing optional SDK into a usage error."""
    if venue not in VENUES:
        raise UsageError(f"unknown venue {venue!r} (known: {', '.join(VENUES)})")
    name = f"sq.venues.{venue}" + (f".{sub}" if sub else "")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (e.name.startswith("sq.venues") or e.name.split(".")[0] in SDK_EXTRA):
            raise UsageError(f"the {venue} adapter is not available: install it with pip install 'sq[{venue}]'") from None
        raise


def history_module(venue: str) -> Any:
    """The venue's `history` module (what `sq fetch` downloads, see `sq.venues.base`); a venue
    without downloadable history is a usage error."""
    if venue not in VENUES:
        raise UsageError(f"unknown venue {venue!r} (known: {', '.join(VENUES)})")
    if importlib.util.find_spec(f"sq.venues.{venue}.history") is None:
        having = [v for v in VENUES if importlib.util.find_spec(f"sq.venues.{v}.history") is not None]
        prefixes = [p for p, v in PREFIX_VENUE.items() if v in having]
        raise UsageError(f"{venue} symbols have no downloadable history (sq fetch serves {', '.join(p + ':' for p in prefixes) or 'no venue yet'})")
    return venue_module(venue, "history")


def trades_live(venue: str) -> bool:
    """Whether the venue has an account with real money behind it (`sq live` may trade it)."""
    if venue not in VENUES:
        raise UsageError(f"unknown venue {venue!r} (known: {', '.join(VENUES)})")
    return venue in ACCOUNT_VENUES


def order_rate(venue: str) -> float:
    """The venue's published order rate, orders per second."""
    return float(venue_module(venue).ORDER_RATE)


def holds_positions(symbol: str) -> bool:
    """Whether the account has a net position in this symbol's market (spot: balances only)."""
    return bool(venue_module(venue_of(symbol)).holds_positions(symbol))


def corporate_action_markets(symbols: Iterable[Symbol | str]) -> dict[str, int]:
    """Of the venues serving `symbols`: each prefix whose equities have corporate actions (splits,
    bonuses, dividends), with its exchange's UTC offset in minutes (ex-dates are local dates)."""
    out: dict[str, int] = {}
    for venue in sorted({venue_of(s) for s in symbols}):
        out.update(venue_module(venue).CORPORATE_ACTIONS)
    return out


def trading_session(symbol: str) -> "TradingSession":
    """The regular session of the symbol's market (NSE: 09:15–15:30 IST; around-the-clock markets:
    the UTC day). A symbol no venue serves (a foreign stream's name) gets the UTC day."""
    from sq.core.sessions import UTC_DAY

    try:
        venue = venue_of(symbol)
    except UsageError:
        return UTC_DAY
    return venue_module(venue).trading_session(str(symbol))


def market_calendar(symbol: str, config: "Config | None" = None) -> "MarketCalendar | None":
    """The calendar of the symbol's market (`sq.core.sessions.MarketCalendar`: session, closed
    days, the broker's square-off under `config`), or None for a market that trades around the
    clock and for a symbol no venue serves."""
    try:
        venue = venue_of(symbol)
    except UsageError:
        return None
    return venue_module(venue).market_calendar(str(symbol), config)


def secret_files(environ: Any = None) -> list[Path]:
    """Every account venue's credential files (existing or not)."""
    return [Path(p) for v in ACCOUNT_VENUES for p in venue_module(v).secret_files(environ)]


def require_credentials(venue: str, config: "Config") -> None:
    """The venue's trading credentials exist (77 naming how to provide them), checked without network."""
    if trades_live(venue):
        venue_module(venue, "auth").require_credentials(config)


def open_market_source(symbols: list[Symbol], options: SourceOptions) -> "MarketSource":
    """One market source for all `symbols`; they must belong to one venue."""
    venue = one_venue(symbols)
    if options.mode not in ("ltp", "quote", "full"):
        raise UsageError(f"--mode must be ltp, quote or full; got {options.mode!r}")
    if not trades_live(venue) and (options.raw_path or options.replay_path):
        raise UsageError("SIM: symbols have no raw venue frames: --raw and --replay are for BINANCE and Zerodha symbols")
    if trades_live(venue) and options.clock == "sim" and not options.replay_path:
        options = replace(options, clock="real")  # real venues only run on the wall clock
    return venue_module(venue).open_market_source(symbols, options)


def open_account(venue: str, config: "Config", env: "Environment", *, symbols: Iterable[str] = (),
                 order_timeout_s: float | None = None, push: bool = False) -> "OrderGateway":
    """The venue's gateway for a live run (`order_timeout_s`, `push`: its order-update stream)
    or for queries (a reconcile)."""
    return venue_module(venue).open_account(config, env, symbols=tuple(symbols), order_timeout_s=order_timeout_s, push=push)


def kill_module(venue: str) -> Any:
    """The venue's standard-library-only `kill` module (`account(config)`, `kill(account, ...)`)."""
    return venue_module(venue, "kill")


def instrument_info(symbols: Iterable[Symbol], config: "Config") -> dict[str, "Instrument"]:
    """Each symbol's instrument (tick and lot size, venue extras) as its venue publishes it; the
    symbols must belong to one venue. Raises VenueUnavailable (69), AuthError (77) or
    ConfigError (78) when the venue cannot be asked, a usage error for a symbol it does not know."""
    symbols = list(symbols)
    return venue_module(one_venue(symbols)).instrument_info(symbols, config)


# ----------------------------------------------------------------------------------------------
# venue archive files (`sq import --format …`): format name → (venue, the archive's data kind)

ARCHIVE_FORMATS: dict[str, tuple[str, str]] = {
    "binance-trades": ("binance", "trades"),
    "binance-aggtrades": ("binance", "aggTrades"),
    "binance-bookticker": ("binance", "bookTicker"),
    "binance-klines": ("binance", "klines"),
}


def read_archive(fmt: str, data: bytes, *, name: str, symbol: Symbol, interval: str | None = None) -> "pa.Table":
    """Parse one venue archive file (`data`, the bytes of `name`) of archive format `fmt` for
    `symbol` through the venue's `archive.read_archive`: a market (or, for candles, bars) table.
    A symbol of another venue than the format's is a usage error."""
    venue, kind = ARCHIVE_FORMATS[fmt]
    if venue_of(symbol) != venue:
        raise UsageError(f"--format {fmt} reads {venue} archive files; {symbol.canonical} is not a {venue} symbol")
    module = venue_module(venue)
    return venue_module(venue, "archive").read_archive(data, name=name, symbol=symbol.canonical, market=module.market_of(symbol),
                                                       kind=kind, interval=interval)
