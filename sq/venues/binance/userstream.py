"""Execution reports: the spot WebSocket API subscription and the USD-M listenKey stream.

Spot (the listenKey stream was discontinued on 2026-02-20): connect to the WebSocket API,
send `userDataStream.subscribe.signature` (apiKey + timestamp, signed), then every event arrives
as `{"subscriptionId": N, "event": {…}}`. USD-M: POST a listenKey, read
`<futures ws>/ws/<listenKey>`, keep the key alive every 30 minutes. Both run in one background
thread with their own asyncio loop, reconnect with backoff and jitter, and hand parsed
`ExecReport`s to a callback. A subscription refused for a bad key/signature is fatal
(`error` holds the AuthError) — retrying would not fix it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from sq.core.exits import AuthError, SqError
from sq.venues.binance.errors import error_for

log = logging.getLogger("sq.binance")

MS = 1_000_000


@dataclass(frozen=True)
class ExecReport:
    """One order event in venue terms (spot executionReport or futures ORDER_TRADE_UPDATE)."""

    market: str
    symbol: str
    client_order_id: str
    order_id: int
    side: str
    exec_type: str  # NEW CANCELED REPLACED REJECTED TRADE EXPIRED (futures also AMENDMENT, CALCULATED)
    status: str  # NEW PARTIALLY_FILLED FILLED CANCELED REJECTED EXPIRED
    price: float
    qty: float
    cum_qty: float
    last_qty: float
    last_price: float
    fee: float
    fee_asset: str
    trade_id: int
    maker: bool
    ts: int  # ns
    reason: str = ""


def parse_report(event: dict, market: str) -> ExecReport | None:
    """A spot executionReport or a futures ORDER_TRADE_UPDATE → ExecReport; other events → None."""
    e = event.get("e")
    if e == "executionReport":
        o = event
    elif e == "ORDER_TRADE_UPDATE":
        o = event.get("o", {})
    else:
        return None
    return ExecReport(
        market, o["s"], o.get("c", ""), int(o["i"]), o["S"], o["x"], o["X"], float(o.get("p") or 0), float(o.get("q") or 0),
        float(o.get("z") or 0), float(o.get("l") or 0), float(o.get("L") or 0), float(o.get("n") or 0), o.get("N") or "",
        int(o.get("t", -1) if o.get("t") is not None else -1), bool(o.get("m", False)), int(o.get("T") or event.get("E") or 0) * MS,
        "" if o.get("r") in (None, "NONE") else str(o.get("r")),
    )


class UserStream:
    """Background user-data streams for the markets asked for; `on_report` runs in the stream thread."""

    def __init__(self, *, ws_api_url: str, futures_ws_url: str, api_key: str, signer, rest, markets: tuple[str, ...],
                 on_report: Callable[[ExecReport], None], backoff_cap_s: float = 30.0):
        self.ws_api_url = ws_api_url
        self.futures_ws_url = futures_ws_url.rstrip("/")
        self.api_key = api_key
        self.signer = signer
        self.rest = rest
        self.markets = markets
        self.on_report = on_report
        self.backoff_cap_s = backoff_cap_s
        self.error: SqError | None = None
        self.subscribed = {m: threading.Event() for m in markets}
        self.events = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._rng = random.Random()

    def start(self, wait_s: float = 10.0) -> "UserStream":
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="sq-binance-user", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + wait_s
        for ev in self.subscribed.values():
            while not ev.wait(0.05):
                if self.error is not None:
                    raise self.error
                if time.monotonic() > deadline:
                    break
        if self.error is not None:
            raise self.error
        return self

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(5)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tasks = [asyncio.create_task(self._forever(m)) for m in self.markets]
        await self._stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _forever(self, market: str) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                if market == "spot":
                    await self._spot()
                else:
                    await self._futures()
                attempt = 0
            except asyncio.CancelledError:
                raise
            except AuthError as e:
                self.error = e
                return
            except Exception as e:  # network trouble: reconnect
                log.warning("binance %s user stream: %s: %s; reconnecting", market, type(e).__name__, e)
            self.subscribed[market].clear()
            delay = self._rng.uniform(0, min(self.backoff_cap_s, 0.2 * 2 ** attempt))
            attempt += 1
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _spot(self) -> None:
        from websockets.asyncio.client import connect

        async with connect(self.ws_api_url, compression=None, max_size=None, proxy=None, open_timeout=10) as ws:
            ts = int(time.time() * 1000 + getattr(self.rest, "clock_offset_ms", 0))
            params = self.signer.ws_params({"apiKey": self.api_key, "timestamp": ts})
            await ws.send(json.dumps({"id": "sq-sub", "method": "userDataStream.subscribe.signature", "params": params}))
            async for msg in ws:
                doc = json.loads(msg)
                if doc.get("id") == "sq-sub":
                    if doc.get("status") != 200:
                        err = doc.get("error", {})
                        raise error_for(err.get("code"), err.get("msg", ""), doc.get("status"), "user-data subscription")
                    self.subscribed["spot"].set()
                    continue
                if "event" in doc:
                    self._deliver(doc["event"], "spot")

    async def _futures(self) -> None:
        from websockets.asyncio.client import connect

        key = (await asyncio.to_thread(self.rest.call, "futures", "post", "listenKey", signed=False, what="listenKey"))["listenKey"]
        async with connect(f"{self.futures_ws_url}/ws/{key}", compression=None, max_size=None, proxy=None, open_timeout=10) as ws:
            self.subscribed["futures"].set()
            keepalive = time.monotonic()
            while True:
                try:
                    msg = await asyncio.wait_for(ws.recv(), 60)
                except asyncio.TimeoutError:
                    msg = None
                if time.monotonic() - keepalive > 30 * 60:
                    await asyncio.to_thread(self.rest.call, "futures", "put", "listenKey", signed=False, what="listenKey keepalive")
                    keepalive = time.monotonic()
                if msg is None:
                    continue
                doc = json.loads(msg)
                if doc.get("e") == "listenKeyExpired":
                    return
                self._deliver(doc, "futures")

    def _deliver(self, event: dict, market: str) -> None:
        try:
            rep = parse_report(event, market)
        except (KeyError, TypeError, ValueError) as e:
            log.warning("binance %s user stream: malformed event ignored (%s)", market, type(e).__name__)
            return
        if rep is not None:
            self.events += 1
            self.on_report(rep)
