"""The built-in simulated exchange (`SIM:` symbols, ARCHITECTURE §6).

    venue = SimVenue(["SIM:DEMO", "SIM:FOO"], seed=7, clock="sim")   # or clock="real"
    source = venue.market_source(limit=100_000)       # MarketSource: .schema, .batches(), .close()
    gateway = venue.gateway()                          # OrderGateway on the same books

Registry entry points: `open_market_source(symbols, options)` and `open_gateway(...)`.

A price–time FIFO matching engine per symbol (numba) and a background order-flow generator,
deterministic from the seed; see `matching`, `flow`, `book`, `source`, `gateway`.
"""

from sq.venues.sim.entry import instruments_from_config, open_gateway, open_market_source
from sq.venues.sim.instruments import sim_instrument, sim_name
from sq.venues.sim.venue import SimVenue, sim_epoch_ns

__all__ = [
    "SimVenue", "sim_instrument", "sim_name", "sim_epoch_ns",
    "open_market_source", "open_gateway", "instruments_from_config",
]
