"""Which venue serves a symbol, and the one way runs and commands reach a venue package.

This module is the only place that maps a symbol prefix to a venue. Each venue package
(`sq.venues.sim`, `sq.venues.binance`, `sq.venues.zerodha`) offers the same module-level names
(listed in `sq.venues.base`): its prefixes, its order rate, whether a
market holds positions, a market's trading session and calendar, its charges (optional), its secret files, `open_market_source`, `open_gateway`, `open_account`,
and (real venues) an `auth` module; every venue has a standard-library-only `kill` module.
Venues with dated futures also resolve continuous names (`NFO:NIFTY-FUT`) to contracts
(`resolve_contracts`). Venue packages are imported only when a symbol, a journal or the account
needs them.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from sq.core.exits import ConfigError, UsageError
from sq.core.symbols import EXCHANGES, Symbol, parse_symbol, parse_symbols
from sq.venues.base import EXPIRY_RULES

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from sq.core.config import Config
    from sq.core.costs import CostSchedule
    from sq.core.environment import Environment
    from sq.core.schemas import Instrument
    from sq.core.sessions import MarketCalendar, TradingSession
    from sq.venues.base import Contract, MarketSource, OrderGateway

VENUES = ("sim", "binance", "zerodha")
ACCOUNT_VENUES = ("zerodha", "binance")  # venues with an account: credentials, `sq auth`, `sq live`, `sq kill`
TICKER_ID_VENUES = ("zerodha",)  # venues whose instruments have a numeric id (Kite's instrument_token): a config's `ticker_id`
PREFIX_VENUE: dict[str, str] = {
    **{seg: "zerodha" for seg in ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX")},  # Kite exchange segments
    "BINANCE": "binance",  # spot
    "BINANCE-FUT": "binance",  # USD-M futures
    "SIM": "sim",  # the built-in simulated exchange
}
# a venue SDK's top-level module → the pip package that brings it (all regular dependencies of sq)
SDK_PACKAGES = {"kiteconnect": "kiteconnect", "binance": "python-binance", "orjson": "orjson", "Crypto": "pycryptodome"}


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
    # contract symbol → the continuous futures name it was resolved from (`resolve_contracts`):
    # the source's instruments say so in their extras
    contracts: Mapping[str, "Contract"] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# symbols → venues (parse_symbol/parse_symbols re-exported: the one import for runs and commands)

__all__ = ["EXCHANGES", "PREFIX_VENUE", "parse_symbol", "parse_symbols", "venue_of", "one_venue", "venue_module", "history_module", "trades_live",
           "order_rate", "holds_positions", "corporate_action_markets", "trading_session", "market_calendar", "charges", "funding_interval_h",
           "funding_state", "fee_rates_bps", "secret_files", "require_credentials",
           "open_market_source", "open_account", "kill_module", "instrument_info", "ARCHIVE_FORMATS", "read_archive", "SourceOptions",
           "VENUES", "ACCOUNT_VENUES", "check_venue", "TICKER_ID_VENUES", "check_config", "SDK_PACKAGES", "missing_package", "EXPIRIES",
           "resolve_contracts", "cached_symbols"]


def cached_symbols(incomplete: str = "", environ: Mapping[str, str] | None = None) -> list[str]:
    """Symbols for shell completion: the prefixes (`NSE:` …) and SIM:DEMO while no prefix is typed,
    then the symbols of that prefix in the instrument lists a venue cached (its
    `cached_symbols(prefix, environ)`); nothing is downloaded, a venue without a cache adds none."""
    head, colon, _ = incomplete.upper().partition(":")
    if not colon:
        return ["SIM:DEMO", *(f"{p}:" for p in PREFIX_VENUE if p != "SIM")]
    venue = PREFIX_VENUE.get(head)
    if venue is None:
        return []
    if venue == "sim":
        return ["SIM:DEMO", "SIM:FOO"]
    try:
        module = importlib.import_module(f"sq.venues.{venue}.instruments")
        return list(module.cached_symbols(head, environ))
    except Exception:  # completion never fails the shell
        return []


def check_venue(name: str | None) -> str | None:
    """`--venue NAME` as sq knows it (lower case), None for none; a usage error (exit 2) listing
    the venues otherwise — a typo must not make `sq kill` or `sq reconcile` quietly do nothing."""
    if name is None:
        return None
    v = name.strip().lower()
    if v not in VENUES:
        import difflib

        close = difflib.get_close_matches(v, VENUES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"unknown venue {name!r}{hint}; venues: {', '.join(VENUES)}")
    return v


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
# continuous futures names → dated contracts

EXPIRIES = EXPIRY_RULES  # which listed contract a continuous futures name stands for: near, next, far


def resolve_contracts(symbols: Iterable[Symbol], config: "Config", *, expiry: str | None = None,
                      replay_path: str | None = None) -> tuple[list[Symbol], dict[str, "Contract"]]:
    """`symbols` (of one venue) with every continuous futures name (`NFO:NIFTY-FUT`) replaced by
    the dated contract it stands for now (the venue's `contracts`), duplicates dropped, and
    contract symbol → `Contract` for those. `expiry` (near, next, far; default: the venue's
    config) picks among the listed contracts; given for symbols without a continuous name, it is
    a usage error. A venue without dated futures leaves `symbols` as they are."""
    symbols = list(symbols)
    if expiry is not None and expiry not in EXPIRIES:
        raise UsageError(f"--expiry must be one of {', '.join(EXPIRIES)}; got {expiry!r}")
    pick = getattr(venue_module(one_venue(symbols)), "contracts", None) if symbols else None
    chosen = pick(symbols, config, expiry=expiry, replay_path=replay_path) if pick is not None else []
    if expiry is not None and not chosen:
        raise UsageError(f"--expiry picks the contract of a continuous futures name such as NFO:NIFTY-FUT; "
                         f"{', '.join(s.canonical for s in symbols) or 'no symbol'} names none")
    by_name = {c.continuous: c for c in chosen}
    out = parse_symbols([by_name[s.canonical].symbol if s.canonical in by_name else s.canonical for s in symbols])
    return out, {c.symbol: c for c in chosen}


# ----------------------------------------------------------------------------------------------
# venue packages and their capabilities


def missing_package(error: ImportError) -> ConfigError | None:
    """A package sq needs that cannot be imported (a broken install: a venue SDK or one of its
    own dependencies missing) as a one-line configuration error (exit 78) naming the package and
    how to install it; None when the failing import is one of sq's own modules (a bug in sq)."""
    name = error.name or ""
    top = name.split(".")[0]
    if not top or top == "sq":
        return None
    package = SDK_PACKAGES.get(top, top)
    why = "is not installed" if isinstance(error, ModuleNotFoundError) else "cannot be imported"
    return ConfigError(f"the Python package {package} (module {top}) {why}; sq's installation is incomplete: "
                       f"pip install {package} (or reinstall sq)")


def venue_module(venue: str, sub: str | None = None) -> Any:
    """Import `sq.venues.<venue>[.<sub>]`; a venue SDK that cannot be imported is a
    configuration error naming the package to install (`missing_package`)."""
    if venue not in VENUES:
        raise UsageError(f"unknown venue {venue!r} (known: {', '.join(VENUES)})")
    name = f"sq.venues.{venue}" + (f".{sub}" if sub else "")
    try:
        return importlib.import_module(name)
    except ImportError as e:
        error = missing_package(e)
        if error is None:
            raise
        raise error from None


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


def charges(symbol: str, instrument: Any = None, config: "Config | None" = None) -> "CostSchedule | None":
    """The symbol's charges by trade date (`sq.core.costs.CostSchedule`, docs/costs.md) from its
    venue's `charges`, or None (a venue without one, a market it does not table, a symbol no venue
    serves): the fill model's maker/taker fees then apply."""
    try:
        venue = venue_of(symbol)
    except UsageError:
        return None
    fn = getattr(venue_module(venue), "charges", None)
    return None if fn is None else fn(str(symbol), instrument, config)


def funding_interval_h(symbol: str) -> float:
    """Hours between the funding times of a perpetual future (docs/funding.md); 0 for anything
    that is never funded (and for a symbol no venue serves)."""
    try:
        venue = venue_of(symbol)
    except UsageError:
        return 0.0
    f = getattr(venue_module(venue), "funding_interval_h", None)
    return float(f(str(symbol))) if f is not None else 0.0


def funding_state(symbol: str, config: "Config") -> tuple[int, float, float] | None:
    """(next funding time ns, rate, mark price) of a perpetual from its venue's public data;
    None for anything never funded."""
    f = getattr(venue_module(venue_of(symbol)), "funding_state", None)
    return f(str(symbol), config) if f is not None else None


def fee_rates_bps(symbol: str, config: "Config") -> tuple[float, float] | None:
    """(maker, taker) bps of a simulated run on `symbol` from its venue's config section, or
    None: the flat `[paper_trading]` fees."""
    try:
        venue = venue_of(symbol)
    except UsageError:
        return None
    f = getattr(venue_module(venue), "fee_rates_bps", None)
    return f(str(symbol), config) if f is not None else None


def secret_files(environ: Any = None, config: "Config | None" = None) -> list[Path]:
    """Every account venue's credential files (existing or not), including those the config moves
    (`zerodha.access_token_path`) for a venue whose `secret_files` takes the config."""
    out = []
    for v in ACCOUNT_VENUES:
        files = venue_module(v).secret_files
        out += files(environ, config=config) if "config" in inspect.signature(files).parameters else files(environ)
    return [Path(p) for p in out]


def check_config(config: "Config") -> None:
    """The config's venue facts, a ConfigError (78) naming the file and key when wrong: every
    instrument is on the config's `exchange` (when it names one), and only instruments of a venue
    with numeric instrument ids carry a `ticker_id`. Checked by `sq config check` and whenever a
    run opens a market source or an account."""
    if config is None:
        return
    name = config.source or "<config>"
    for i, inst in enumerate(config.instruments):
        venue = venue_of(inst.symbol)
        if config.exchange and venue != config.exchange:
            raise ConfigError(f"{name}: 'instruments[{i}]' {inst.symbol} is a {venue} symbol but 'exchange' is {config.exchange}")
        if inst.ticker_id is not None and venue not in TICKER_ID_VENUES:
            raise ConfigError(f"{name}: 'instruments[{i}].ticker_id': {venue} instruments have no numeric id "
                              f"(only {', '.join(TICKER_ID_VENUES)}: Kite's instrument_token); remove it")


def require_credentials(venue: str, config: "Config") -> None:
    """The venue's trading credentials exist (77 naming how to provide them), checked without network."""
    if trades_live(venue):
        venue_module(venue, "auth").require_credentials(config)


def warm_up(venue: str) -> None:
    """Load (or compile) the venue's own compiled code, if it has any (the simulated exchange's
    order flow), so a run can do it before its clock starts."""
    hook = getattr(venue_module(venue), "warm_up", None)
    if hook is not None:
        hook()


def open_market_source(symbols: list[Symbol], options: SourceOptions) -> "MarketSource":
    """One market source for all `symbols`; they must belong to one venue."""
    venue = one_venue(symbols)
    check_config(options.config)
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
    check_config(config)
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
