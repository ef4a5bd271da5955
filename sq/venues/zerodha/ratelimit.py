"""Token buckets for Kite's published limits: requests 10/s (quotes 1/s), historical candles
3/s, orders 10/s and 400/min per API key. sq stays below them so Kite never answers 429.

`acquire()` waits when the wait is short (≤ `max_wait`), else raises TempFailure (exit 75) — a
strategy that wants 500 orders a minute is told so instead of being silently throttled.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from sq.core.exits import TempFailure

QUOTE_PER_S = 1.0
HISTORICAL_PER_S = 3.0
# historical requests leave one at a time at 80% of Kite's rate: Kite counts arrivals, and the
# network's jitter must not squeeze four of them into one second
HISTORICAL_PACE = 0.8
REQUESTS_PER_S = 10.0
ORDERS_PER_S = 10.0
ORDERS_PER_MIN = 400.0


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`; thread-safe."""

    def __init__(self, rate: float, burst: float, *, name: str, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, max_wait: float = 1.0):
        self.rate, self.burst, self.name = rate, burst, name
        self.clock, self.sleep, self.max_wait = clock, sleep, max_wait
        self.tokens = burst
        self.t = clock()
        self.lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now

    def wait_time(self, n: float = 1.0) -> float:
        with self.lock:
            self._refill()
            return max(0.0, (n - self.tokens) / self.rate)

    def acquire(self, n: float = 1.0) -> None:
        while True:
            with self.lock:
                self._refill()
                if self.tokens >= n:
                    self.tokens -= n
                    return
                wait = (n - self.tokens) / self.rate
            if wait > self.max_wait:
                raise TempFailure(f"zerodha: {self.name} limit reached (Kite allows {self._limit()}); retry in {wait:.1f} s")
            self.sleep(wait)

    def _limit(self) -> str:
        per_min = self.burst > self.rate * 2  # a bucket sized for a minute's worth of tokens
        return f"{self.rate * 60:.0f}/min" if per_min else f"{self.rate:g}/s"


class KiteLimits:
    """The buckets one client shares: every request, quotes, historical candles, and orders (per
    second and per minute)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.requests = TokenBucket(REQUESTS_PER_S, REQUESTS_PER_S, name="request rate", clock=clock, sleep=sleep)
        self.quotes = TokenBucket(QUOTE_PER_S, QUOTE_PER_S, name="quote rate", clock=clock, sleep=sleep, max_wait=2.0)
        self.historical = TokenBucket(HISTORICAL_PER_S * HISTORICAL_PACE, 1.0, name="historical data rate", clock=clock, sleep=sleep)
        self.orders_s = TokenBucket(ORDERS_PER_S, ORDERS_PER_S, name="order rate", clock=clock, sleep=sleep)
        self.orders_min = TokenBucket(ORDERS_PER_MIN / 60.0, ORDERS_PER_MIN, name="orders per minute", clock=clock, sleep=sleep)

    def request(self) -> None:
        self.requests.acquire()

    def quote(self) -> None:
        self.quotes.acquire()
        self.requests.acquire()

    def history(self) -> None:
        """Historical candles have their own limit, apart from the other endpoints' 10/s."""
        self.historical.acquire()

    def order(self) -> None:
        self.orders_min.acquire()
        self.orders_s.acquire()
        self.requests.acquire()
