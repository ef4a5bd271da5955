"""The fake Kite ticker: a binary WebSocket server (websockets) on 127.0.0.1.

Checks `api_key` and `access_token` in the URL (HTTP 403 otherwise, like Kite), takes subscribe /
unsubscribe / mode messages (subscribing defaults to quote mode), and every `interval` advances the
SIM market to the wall clock and sends each connection one frame with a packet per subscribed
token in its mode; a 1-byte heartbeat every second. Order postbacks go out as text frames. Tests
can inject raw frames (fuzzing), play a script of packets to a subscribed client (`play`), drop
every connection (reconnect) and make an outage: for a while each new connection is accepted and
closed at once, before any frame.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

from tests.support.fakes.kite import packets
if TYPE_CHECKING:  # pragma: no cover
    from tests.support.fakes.kite import KiteFake


@dataclass(eq=False)
class Conn:
    ws: object
    modes: dict[int, str] = field(default_factory=dict)


class TickerServer:
    def __init__(self, fake: "KiteFake", interval: float = 0.05):
        self.fake = fake
        self.interval = interval
        self.conns: set[Conn] = set()
        self.log: list[dict] = []  # every client message, in order
        self.connections = 0
        self.outage_until = 0.0  # monotonic time until which new connections are hung up at once
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, daemon=True, name="kite-fake-ticker")

    def start(self) -> None:
        self.thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("fake ticker did not start")

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=5)

    # ---------------------------------------------------------------- thread side

    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._serve())
        self.loop.close()

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0, process_request=self._check, compression=None) as srv:
            self.port = srv.sockets[0].getsockname()[1]
            self._ready.set()
            pump = asyncio.create_task(self._pump())
            await self._stop.wait()
            pump.cancel()
            for c in list(self.conns):  # no polite close handshakes at shutdown: tests wait on this
                transport = getattr(c.ws, "transport", None)
                if transport is not None:
                    transport.abort()

    def _check(self, connection, request):
        q = parse_qs(urlparse(request.path).query)
        key, tok = (q.get("api_key") or [""])[0], (q.get("access_token") or [""])[0]
        if key != self.fake.api_key or tok not in self.fake.valid_tokens:
            return connection.respond(403, "Forbidden\n")
        return None

    async def _handler(self, ws) -> None:
        if time.monotonic() < self.outage_until:
            self.connections += 1
            await ws.close(1011, "fake outage")
            return
        c = Conn(ws)
        self.conns.add(c)
        self.connections += 1
        try:
            async for msg in ws:
                try:
                    m = json.loads(msg)
                except ValueError:
                    continue
                self.log.append(m)
                a, v = m.get("a"), m.get("v")
                if a == "subscribe":
                    for t in v:
                        c.modes.setdefault(int(t), "quote")
                elif a == "unsubscribe":
                    for t in v:
                        c.modes.pop(int(t), None)
                elif a == "mode":
                    mode, toks = v
                    for t in toks:
                        if int(t) in c.modes:
                            c.modes[int(t)] = mode
        except Exception:  # a dropped client is normal
            pass
        finally:
            self.conns.discard(c)

    async def _pump(self) -> None:
        last_hb = 0.0
        while True:
            await asyncio.sleep(self.interval)
            now = time.time()
            if self.fake.paused:
                continue
            with self.fake.lock:
                self.fake.market.advance(time.time_ns())
                changed = self.fake.matching.check_triggers() + self.fake.check_gtts()
                filled = [json.dumps({"type": "order", "data": o}) for o in changed + [c for c in self.fake.matching.collect() if c not in changed]]
                frames = {}
                for c in list(self.conns):
                    pk = [self.fake.market.packet(t, m) for t, m in c.modes.items() if t in self.fake.market.books]
                    if pk:
                        frames[c] = packets.frame(pk)
            for c, fr in frames.items():
                await self._send(c, fr)
            for text in filled:
                await self._broadcast(text)
            if now - last_hb >= 1.0:
                last_hb = now
                for c in list(self.conns):
                    await self._send(c, packets.HEARTBEAT)

    async def _send(self, c: Conn, data) -> None:
        try:
            await c.ws.send(data)
        except Exception:
            self.conns.discard(c)

    async def _broadcast(self, data) -> None:
        for c in list(self.conns):
            await self._send(c, data)

    async def _drop(self) -> None:
        for c in list(self.conns):
            await c.ws.close(1011, "fake drop")

    # ---------------------------------------------------------------- test side

    def broadcast(self, data: bytes | str) -> None:
        """Send a raw binary or text frame to every connected client."""
        if self.loop is not None:
            asyncio.run_coroutine_threadsafe(self._broadcast(data), self.loop).result(5)

    def play(self, frames: list[bytes], token: int, mode: str = "full", timeout: float = 120.0) -> None:
        """Once a client has subscribed `token` in `mode`, send it `frames` in order, one WebSocket
        frame each (scripted packets: pause the SIM market first, `fake.paused = True`, or its
        packets interleave). Fails when no client subscribes within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not any(c.modes.get(token) == mode for c in list(self.conns)):
            if time.monotonic() > deadline:
                raise AssertionError(f"no ticker client subscribed {token} in {mode} mode within {timeout:.0f} s")
            time.sleep(0.05)
        for fr in frames:
            self.broadcast(fr)

    def drop_all(self, outage_s: float = 0.0) -> None:
        """Close every client connection (the client should reconnect and re-subscribe);
        for `outage_s` after, new connections are accepted and closed before any frame."""
        self.outage_until = time.monotonic() + outage_s
        if self.loop is not None:
            asyncio.run_coroutine_threadsafe(self._drop(), self.loop).result(5)
