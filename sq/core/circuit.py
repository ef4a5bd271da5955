"""A circuit breaker for venue calls: closed → open → half-open (README: Design).

`sq live` asks `allow()` before each new order. `failures` consecutive venue failures (timeouts,
dropped connections, 429/418, 5xx) open the circuit: no new orders for `cooldown_s`. Then it is
half-open: one trial order goes out; its success closes the circuit, its failure opens it again
for another cooldown. Cancels are never blocked (taking risk off is always allowed), but their
outcomes count. The clock is injectable so tests need not sleep.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


@dataclass
class CircuitBreaker:
    failures: int = 5
    cooldown_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    state: str = CLOSED
    consecutive: int = 0
    opened_at: float = 0.0
    trips: int = 0
    transitions: list = field(default_factory=list)  # (time, from, to)

    def _move(self, to: str) -> None:
        if to != self.state:
            self.transitions.append((self.clock(), self.state, to))
            self.state = to

    def allow(self) -> bool:
        """May a new order be sent now? (Moves open → half-open when the cooldown is over.)"""
        if self.state == OPEN and self.clock() - self.opened_at >= self.cooldown_s:
            self._move(HALF_OPEN)
            return True
        return self.state != OPEN

    def success(self) -> None:
        self.consecutive = 0
        self._move(CLOSED)

    def failure(self) -> None:
        self.consecutive += 1
        if self.state == HALF_OPEN or self.consecutive >= self.failures:
            if self.state != OPEN:
                self.trips += 1
            self.opened_at = self.clock()
            self._move(OPEN)
