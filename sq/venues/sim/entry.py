"""The registry entry points of the simulated exchange (see sq.venues.registry).

    open_market_source(symbols, options) -> SimMarketSource   (its `.venue.gateway()` trades
                                                               on the same books)
    open_gateway(config, env, venue=..., symbols=..., seed=..., clock=...) -> SimGateway
    instrument_info(symbols, config) -> {symbol: Instrument}

Per-symbol grids and start prices come from the config's `[sim.NAME]` sections.
"""

from __future__ import annotations

from typing import Any, Iterable

from sq.core.schemas import Instrument
from sq.venues.sim.instruments import sim_instrument
from sq.venues.sim.venue import SimVenue


def sim_settings(config: Any, symbol: str) -> Any:
    """The config's `[sim.NAME]` table for `SIM:NAME` (or NAME), or None."""
    tables = getattr(config, "sim", None) or {}
    return tables.get(symbol.strip().upper().split(":", 1)[-1])


def instruments_from_config(config: Any, symbols: Iterable[str]) -> dict[str, Instrument]:
    """`sim_instrument` for each symbol with the config's `[sim.NAME]` overrides applied."""
    out: dict[str, Instrument] = {}
    for s in symbols:
        sc = sim_settings(config, s)
        inst = sim_instrument(s, tick_size=getattr(sc, "tick_size", None), price=getattr(sc, "price", None), lot_size=getattr(sc, "lot_size", None))
        out[inst.symbol] = inst
    return out


def instrument_info(symbols: Iterable, config: Any) -> dict[str, Instrument]:
    """The registry's instrument look-up: each `SIM:` symbol's grid (the config's `[sim.NAME]` over
    the name's defaults); no network, so it always answers."""
    return instruments_from_config(config, [getattr(s, "canonical", s) for s in symbols])


def open_market_source(symbols: list, options: Any):
    """A SIM market source for parsed `Symbol`s (or strings) under registry `SourceOptions`."""
    names = [getattr(s, "canonical", s) for s in symbols]
    venue = SimVenue(
        names,
        seed=options.seed,
        clock=options.clock,
        instruments=instruments_from_config(getattr(options, "config", None), names),
    )
    return venue.market_source(limit=options.limit, duration_ns=options.duration_ns)


def open_gateway(config: Any, env: Any = None, *, venue: SimVenue | None = None, symbols: list | None = None, seed: int = 1, clock: str = "real"):
    """The gateway of `venue` (the one behind a market source: `source.venue`), or of a new
    venue over `symbols` when none is given."""
    if venue is None:
        if not symbols:
            raise ValueError("open_gateway needs the SimVenue of the market source, or symbols")
        names = [getattr(s, "canonical", s) for s in symbols]
        venue = SimVenue(names, seed=seed, clock=clock, instruments=instruments_from_config(config, names))
    return venue.gateway()


def open_account(config: Any, env: Any = None, *, symbols=(), order_timeout_s: float | None = None, push: bool = False):
    """A gateway on a new simulated exchange over `symbols` (its books start at the config's
    `[sim.NAME]` grid); SIM orders answer at once, so there is no timeout and nothing to push."""
    return open_gateway(config, env, symbols=list(symbols))
