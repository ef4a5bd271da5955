"""Signed and public REST calls through python-binance, with Binance's limits respected.

`BinanceRest` builds a python-binance `Client` that never reaches for the internet on its own
(`ping=False`, `API_URL`/`FUTURES_URL` pointed at the configured endpoints before the first
call) and wraps every call:

* server-time sync (`timestamp_offset`) at start and after a -1021, so recvWindow errors do not
  happen;
* request weight and order counts read from `X-MBX-USED-WEIGHT-1M` / `X-MBX-ORDER-COUNT-10S`
  after each answer, and pre-emptive throttling: a call that would pass `throttle_at` of a limit
  waits for the window to roll over (or fails with exit 75 when that wait is too long);
* HTTP 429: back off for Retry-After and retry (at most `max_retries`), then exit 75;
  HTTP 418 (IP ban): never retried, exit 75 naming the ban length;
* every Binance error code mapped to a clear message (`errors.py`); network failures → exit 69.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sq.core.exits import SqError, TempFailure, VenueUnavailable
from sq.venues.binance.endpoints import FUTURES, Endpoints
from sq.venues.binance.errors import BinanceError, error_for  # noqa: F401  (BinanceError re-exported)

log = logging.getLogger("sq.binance")


@dataclass
class Limits:
    """Published limits (spot today) and what the last answers said we used."""

    weight_1m: int = 6000
    orders_10s: int = 100
    orders_1d: int = 200_000
    throttle_at: float = 0.9  # start waiting at this share of a limit
    max_wait_s: float = 65.0  # longest pre-emptive or Retry-After wait before giving up (exit 75)
    used_weight: int = 0
    used_weight_at: float = 0.0
    orders_in_10s: int = 0
    orders_at: float = 0.0
    orders_today: int = 0
    history: list = field(default_factory=list)  # (time, used weight) of recent answers

    def update(self, headers: dict) -> None:
        now = time.time()
        h = {k.lower(): v for k, v in headers.items()}
        if "x-mbx-used-weight-1m" in h:
            self.used_weight, self.used_weight_at = int(h["x-mbx-used-weight-1m"]), now
            self.history = (self.history + [(now, self.used_weight)])[-100:]
        if "x-mbx-order-count-10s" in h:
            self.orders_in_10s, self.orders_at = int(h["x-mbx-order-count-10s"]), now
        if "x-mbx-order-count-1d" in h:
            self.orders_today = int(h["x-mbx-order-count-1d"])

    def wait_needed(self, weight: int, is_order: bool) -> float:
        """Seconds to wait before a call of this weight stays under the throttle line."""
        now = time.time()
        wait = 0.0
        if int(self.used_weight_at // 60) == int(now // 60) and self.used_weight + weight > self.weight_1m * self.throttle_at:
            wait = 60 - now % 60 + 0.05
        if is_order and now - self.orders_at < 10 and self.orders_in_10s + 1 > self.orders_10s * self.throttle_at:
            wait = max(wait, 10 - (now - self.orders_at) + 0.05)
        if is_order and self.orders_today + 1 > self.orders_1d * self.throttle_at:
            raise TempFailure(f"binance: {self.orders_today} orders today, near the daily limit of {self.orders_1d}; retry tomorrow")
        return wait


class BinanceRest:
    """python-binance `Client` on the configured endpoints, with the wrapping described above."""

    def __init__(self, endpoints: Endpoints, api_key: str | None, signer_secret: str | None = None,
                 ed25519_key_file: str | None = None, *, limits: Limits | None = None, max_retries: int = 3,
                 recv_window: int = 5000, timeout: float = 10.0, sleep: Callable[[float], None] = time.sleep):
        from binance.client import Client

        kw: dict[str, Any] = {"requests_params": {"timeout": timeout}, "ping": False}
        if ed25519_key_file:
            from pathlib import Path

            kw["private_key"] = Path(ed25519_key_file)
        self.client = Client(api_key, signer_secret, **kw)
        self.client.API_URL = endpoints.rest("spot") + "/api"
        self.client.FUTURES_URL = endpoints.rest(FUTURES) + "/fapi"
        self.client.REQUEST_RECVWINDOW = recv_window
        self.endpoints = endpoints
        self.limits = limits or Limits()
        self.max_retries = max_retries
        self.sleep = sleep
        self.clock_offset_ms = 0
        self.synced = False
        self.retries_429 = 0

    # ------------------------------------------------------------------ time

    def sync_time(self, market: str = "spot") -> int:
        """Measure the server clock offset (ms, server − local, at the round trip's midpoint)."""
        t0 = time.time()
        doc = self.call(market, "get", "time", signed=False, weight=1, sync=False)
        t1 = time.time()
        self.clock_offset_ms = int(doc["serverTime"] - (t0 + t1) / 2 * 1000)
        self.client.timestamp_offset = self.clock_offset_ms
        self.synced = True
        return self.clock_offset_ms

    # ------------------------------------------------------------------ calls

    def call(self, market: str, method: str, path: str, *, signed: bool, weight: int = 1, is_order: bool = False,
             version: int | str | None = None, sync: bool = True, what: str | None = None, **params) -> Any:
        """One REST call (`path` relative to /api/v3 or /fapi/vN) with limits, retries and error mapping."""
        from binance.exceptions import BinanceAPIException, BinanceRequestException
        from requests import exceptions as rex

        what = what or f"{method.upper()} {path}"
        if signed and sync and not self.synced:
            self.sync_time(market)
        attempt = 0
        resynced = False
        while True:
            wait = self.limits.wait_needed(weight, is_order)
            if wait > 0:
                if wait > self.limits.max_wait_s:
                    raise TempFailure(f"binance {what}: request weight near the limit; would need to wait {wait:.0f}s")
                log.info("binance: throttling %.1fs to stay under the rate limits", wait)
                self.sleep(wait)
            try:
                if market == FUTURES:
                    doc = self.client._request_futures_api(method, path, signed, int(version or 1), data=dict(params))
                else:
                    doc = self.client._request_api(method, path, signed, str(version or "v3"), data=dict(params))
                self._headers()
                return doc
            except BinanceAPIException as e:
                self._headers()
                headers = getattr(e.response, "headers", {}) or {}
                ra = headers.get("Retry-After")
                retry_after = float(ra) if ra else None
                if e.status_code == 429 and attempt < self.max_retries:
                    delay = retry_after if retry_after is not None else 2.0 ** attempt
                    if delay > self.limits.max_wait_s:
                        raise error_for(e.code, e.message, 429, what, retry_after) from None
                    attempt += 1
                    self.retries_429 += 1
                    log.warning("binance %s: rate limited (429); backing off %.1fs (attempt %d/%d)", what, delay, attempt, self.max_retries)
                    self.sleep(delay)
                    continue
                if e.code == -1021 and not resynced:
                    resynced = True
                    self.sync_time(market)
                    continue
                raise error_for(e.code, e.message or "", e.status_code, what, retry_after) from None
            except (rex.ConnectionError, rex.Timeout) as e:
                raise VenueUnavailable(f"binance {what}: cannot reach {self.endpoints.rest(market)} ({type(e).__name__})") from None
            except BinanceRequestException as e:
                raise VenueUnavailable(f"binance {what}: unreadable answer ({e.message[:100]})") from None

    def _headers(self) -> None:
        resp = getattr(self.client, "response", None)
        if resp is not None:
            self.limits.update(dict(resp.headers))


def is_error(e: BaseException, *codes: int) -> bool:
    return isinstance(e, BinanceError) and e.code in codes


__all__ = ["BinanceRest", "Limits", "SqError", "is_error"]
