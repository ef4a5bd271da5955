"""The venue half of `sq kill`: cancel every open order directly at each venue with credentials.

A hung `sq live` (SIGSTOP, a deadlock, a wedged socket) cannot cancel its own orders, so `sq
kill` goes to the venue itself. Each venue package owns how: its `kill` module (standard library
only, sharing `sq.venues.panic`) offers

    account(config) -> object | None      # the credentials to cancel with; None: none (no network)
    kill(account, *, symbol, flatten, max_qty, t0) -> list[VenueResult]

This module only picks the venues, runs their kills in parallel and sets the order cap of
`--flatten`. Each `kill` module is imported by name, and only when asked for, so `sq kill` loads
no venue SDK and no code of a venue it does not touch.
"""

from __future__ import annotations

import importlib
import threading
import time
from typing import Any

from sq.venues.panic import VenueResult

VENUES = ("binance", "zerodha")  # venues whose orders live at the venue (SIM orders live in the process)
ANSWER_WITHIN_S = 60


def order_cap(config: Any):
    """The largest order `--flatten` may send for a symbol at a price: the instrument's
    `max_order_size` and the account's `risk.max_notional` (None = no limit)."""

    def cap(symbol: str, price: float) -> float | None:
        caps = []
        inst = config.instrument(symbol)
        if inst is not None and inst.max_order_size:
            caps.append(float(inst.max_order_size))
        if config.risk.max_notional and price > 0:
            caps.append(float(config.risk.max_notional) / price)
        return min(caps) if caps else None

    return cap


def cancel_everywhere(config: Any, *, venue: str | None = None, symbol: str | None = None, flatten: bool = False,
                      t0: float | None = None) -> list[VenueResult]:
    """Cancel (and flatten) at every venue with credentials (or only `venue`, or the venue of
    `symbol`), venues in parallel; one result per market. No credentials anywhere → []."""
    t0 = time.perf_counter() if t0 is None else t0
    if symbol and venue is None:
        exchange = symbol.strip().upper().split(":", 1)[0]
        venue = "sim" if exchange == "SIM" else "binance" if exchange.startswith("BINANCE") else "zerodha"
    modules = {name: importlib.import_module(f"sq.venues.{name}.kill") for name in VENUES if venue in (None, name)}
    cap = order_cap(config)
    results: dict[str, list[VenueResult]] = {}

    def run(name: str) -> None:
        try:
            acct = modules[name].account(config)
            results[name] = [] if acct is None else modules[name].kill(acct, symbol=symbol, flatten=flatten, max_qty=cap, t0=t0)
        except Exception as e:  # never let one venue's surprise hide another's result
            results[name] = [VenueResult(name, "", error=f"{name}: {type(e).__name__}")]

    threads = [threading.Thread(target=run, args=(name,), daemon=True) for name in modules]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(ANSWER_WITHIN_S)
    return [r for name in modules for r in results.get(name, [VenueResult(name, "", error=f"{name}: no answer within {ANSWER_WITHIN_S}s")])]
