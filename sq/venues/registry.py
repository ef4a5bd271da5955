"""Which venue package serves a symbol, and the one way commands open market sources, gateways
and auth flows. Each venue package (`sq.venues.sim`, `sq.venues.binance`, `sq.venues.zerodha`)
exposes the same module-level functions:

    open_market_source(symbols: list[Symbol], options: SourceOptions) -> MarketSource
    open_gateway(config: Config, env: Environment, **kw) -> OrderGateway

and real venues an `auth` module with `login(env, config, options) -> dict`,
`status(env, config) -> dict` and `require_credentials(config)` (raises when none are set up,
without network). Venue packages are imported only when a symbol needs them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sq.core.exits import UsageError
from sq.core.symbols import Symbol

if TYPE_CHECKING:  # pragma: no cover
    from sq.core.config import Config
    from sq.core.environment import Environment
    from sq.venues.base import MarketSource

VENUES = ("sim", "binance", "zerodha")


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


def venue_module(venue: str, sub: str | None = None) -> Any:
    """Import `sq.venues.<venue>[.<sub>]`, turning a missing optional SDK into a usage error."""
    if venue not in VENUES:
        raise UsageError(f"unknown venue {venue!r} (known: {', '.join(VENUES)})")
    name = f"sq.venues.{venue}" + (f".{sub}" if sub else "")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (e.name.startswith("sq.venues") or e.name.split(".")[0] in ("kiteconnect", "binance")):
            extra = {"zerodha": "zerodha", "binance": "binance"}.get(venue, venue)
            raise UsageError(f"the {venue} adapter is not available: install it with pip install 'sq[{extra}]'") from None
        raise


def open_market_source(symbols: list[Symbol], options: SourceOptions) -> "MarketSource":
    """One market source for all `symbols`; they must belong to one venue."""
    venues = sorted({s.venue for s in symbols})
    if len(venues) != 1:
        raise UsageError(f"symbols from several venues in one command ({', '.join(venues)}); run one command per venue")
    if options.mode not in ("ltp", "quote", "full"):
        raise UsageError(f"--mode must be ltp, quote or full; got {options.mode!r}")
    if venues[0] == "sim" and (options.raw_path or options.replay_path):
        raise UsageError("SIM: symbols have no raw venue frames: --raw and --replay are for BINANCE and Zerodha symbols")
    if venues[0] != "sim" and options.clock == "sim" and not options.replay_path:
        options = replace(options, clock="real")  # real venues only run on the wall clock
    return venue_module(venues[0]).open_market_source(symbols, options)
