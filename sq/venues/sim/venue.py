"""`SimVenue`: the simulated exchange for a set of `SIM:` symbols, shared by its market source
and its order gateway (so our orders rest in the same FIFO queues the background flow trades
against).

Two clocks:
  * "sim"  — simulated time, as fast as possible (`--limit N`, tests, backtests); the exchange
    epoch is fixed and derived from the seed, so runs are byte-identical per seed.
  * "real" — wall-clock time (`--for 30s`, live views, paper trading); the clock starts now and
    the source paces the flow to the wall clock.

All kernel calls go through `lock`, so a gateway may be used from another thread than the one
iterating the market source.
"""

from __future__ import annotations

import threading
import time
from typing import Iterable, Mapping

from sq.core import schemas
from sq.core.schemas import Instrument
from sq.venues.sim.book import SimBook
from sq.venues.sim.instruments import sim_instrument, sim_name

SIM_EPOCH_NS = 1_704_096_000 * 1_000_000_000  # 2024-01-01T08:00:00Z
DAY_NS = 86_400 * 1_000_000_000
CLOCKS = ("sim", "real")


def sim_epoch_ns(seed: int) -> int:
    """Start of simulated time for a seed: a fixed day in 2024, one day later per seed step."""
    return SIM_EPOCH_NS + (int(seed) % 366) * DAY_NS


class SimVenue:
    """The simulated exchange: one `SimBook` per symbol, one clock, one lock.

    `symbols` are `SIM:NAME` strings (or bare names); `instruments` may override the defaults
    of `sim_instrument` per symbol (the config passes tick size, lot size and start price).
    """

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        seed: int = 0,
        clock: str = "sim",
        instruments: Mapping[str, Instrument] | None = None,
        start_ns: int | None = None,
        params: dict[int, float] | None = None,
    ):
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, got {clock!r}")
        names: list[str] = []
        for s in symbols:
            canon = f"SIM:{sim_name(s)}"
            if canon not in names:
                names.append(canon)
        if not names:
            raise ValueError("SimVenue needs at least one symbol")
        self.seed = int(seed)
        self.clock = clock
        self.symbols = names
        given = dict(instruments or {})
        self.instruments: dict[str, Instrument] = {s: given.get(s) or sim_instrument(s) for s in names}
        if start_ns is None:
            start_ns = sim_epoch_ns(seed) if clock == "sim" else time.time_ns()
        self.start_ns = int(start_ns)
        self.lock = threading.RLock()
        self.books: dict[str, SimBook] = {s: SimBook(self.instruments[s], self.seed, self.start_ns, params) for s in names}
        self.schema = schemas.market_schema(self.instruments)
        self.dictionary = schemas.symbol_dictionary(names)
        self._gateway = None

    def book(self, symbol: str) -> SimBook:
        """The book of a symbol (`SIM:X` or `X`); KeyError naming the symbol when not served."""
        canon = f"SIM:{sim_name(symbol)}"
        try:
            return self.books[canon]
        except KeyError:
            raise KeyError(f"{canon} is not traded on this simulated venue (symbols: {', '.join(self.symbols)})") from None

    def now(self, symbol: str | None = None) -> int:
        """Exchange time for a new request: the book's clock (sim) or the wall clock (real)."""
        if self.clock == "real":
            t = time.time_ns()
            if symbol is not None:
                t = max(t, self.book(symbol).now)
            return t
        if symbol is not None:
            return self.book(symbol).now
        return max(b.now for b in self.books.values())

    def market_source(self, *, limit: int | None = None, duration_ns: int | None = None, batch_rows: int | None = None):
        """A MarketSource over this venue (see `SimMarketSource`)."""
        from sq.venues.sim.source import SimMarketSource

        return SimMarketSource(self, limit=limit, duration_ns=duration_ns, batch_rows=batch_rows)

    def gateway(self):
        """The OrderGateway of this venue (one per venue: it owns the order registry)."""
        from sq.venues.sim.gateway import SimGateway

        if self._gateway is None:
            self._gateway = SimGateway(self)
        return self._gateway
