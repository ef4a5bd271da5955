"""`sq kill` at the simulated exchange: nothing to do at the venue.

SIM orders live inside the `sq paper` process that simulates the exchange; there is no venue
outside it holding them. Halting the process (SIGTERM: it cancels its orders and seals its
journal; SIGKILL if it hangs) is all a SIM account needs, so there is never an account to cancel
on here and `kill` has nothing to send.
"""

from __future__ import annotations

from typing import Any, Callable

from sq.venues.panic import VenueResult


def account(config: Any) -> None:
    """Always None: SIM orders exist only inside the paper process, which `sq kill` halts."""
    return None


def kill(acct: None, *, symbol: str | None, flatten: bool, max_qty: Callable[[str, float], float | None],
         t0: float) -> list[VenueResult]:
    """Nothing to cancel at a venue: no results."""
    return []
