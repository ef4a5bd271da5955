"""The built-in simulated exchange (`SIM:` symbols, README: Design).

    venue = SimVenue(["SIM:DEMO", "SIM:FOO"], seed=7, clock="sim")   # or clock="real"
    source = venue.market_source(limit=100_000)       # MarketSource: .schema, .batches(), .close()
    gateway = venue.gateway()                          # OrderGateway on the same books

Registry entry points: `open_market_source(symbols, options)` and `open_gateway(...)`.

A price–time FIFO matching engine per symbol (numba) and a background order-flow generator,
deterministic from the seed; see `matching`, `flow`, `book`, `source`, `gateway`.
"""

from sq.core.sessions import UTC_DAY
from sq.venues.sim.entry import instrument_info, instruments_from_config, open_account, open_gateway, open_market_source
from sq.venues.sim.instruments import sim_instrument, sim_name
from sq.venues.sim.venue import SimVenue, sim_epoch_ns

PREFIXES = ("SIM",)
ORDER_RATE = float("inf")  # the simulated exchange takes orders as fast as they come
CORPORATE_ACTIONS: dict[str, int] = {}  # no splits or dividends in the simulated exchange


def warm_up() -> None:
    """Load (or compile) the order-flow and matching kernels: one book built and run briefly."""
    from sq.venues.sim.book import SimBook

    book = SimBook(sim_instrument("SIM:WARMUP"), 0, 10**18, None)
    book.run(10**18 + 10**9, 64)
    book.snapshot(book.now)
    book.take()
    book.take_fills()


def holds_positions(symbol: str) -> bool:
    """The simulated exchange keeps a net position per symbol."""
    return True


def trading_session(symbol: str):
    """The simulated exchange trades around the clock: a session bar is the UTC day."""
    return UTC_DAY


def market_calendar(symbol: str, config=None):
    """None: the simulated exchange trades around the clock."""
    return None


def secret_files(environ=None) -> list:
    """No credentials: nothing to keep secret."""
    return []


__all__ = [
    "PREFIXES", "ORDER_RATE", "CORPORATE_ACTIONS", "holds_positions", "secret_files", "trading_session", "market_calendar", "open_account",
    "SimVenue", "sim_instrument", "sim_name", "sim_epoch_ns",
    "open_market_source", "open_gateway", "instrument_info", "instruments_from_config",
]
