"""A local Binance-protocol server on 127.0.0.1: REST (http.server) + WebSocket (websockets).

REST (spot `/api/v3/…`, USD-M `/fapi/…`): time, ping, exchangeInfo, depth, the history endpoints
aggTrades and klines (serving what a test puts in `agg_trades` / `klines`, with Binance's paging
rules: fromId, startTime/endTime — at most an hour apart for aggTrades — and limit), and the signed order
and account endpoints with real HMAC-SHA256 signature checks over Binance's totalParams (query
string + body), `timestamp`/`recvWindow` checks, API-key checks, request-weight accounting with
`X-MBX-USED-WEIGHT-1M` / `X-MBX-ORDER-COUNT-*` headers, 429 + Retry-After past the limit and 418
for a client that keeps going during the back-off.

WebSocket (one port): `/stream?streams=…` spot and `/fut/stream?streams=…` futures combined market
streams fed by the SIM engine every `interval_ms`; `/ws-api/v3` the spot WebSocket API with
`userDataStream.subscribe.signature`; `/fut/ws/<listenKey>` the futures user-data stream.

Fault injection on market streams (`Faults`): dropped, duplicated and reordered depth events,
malformed frames, unknown fields, disconnects and stalls; every injected fault is recorded.

The account's `permissions` are enforced: a key without "FUTURES" gets -2015 (HTTP 401) on every
signed futures call, as Binance answers a key without futures permission. `futures_blocked`
(an HTTP status) makes the whole futures API unreachable from here: every `/fapi` request gets
that status — 451 with Binance's restricted-location answer, anything else an HTML page as a
proxy or firewall sends — and futures WebSocket connections are closed at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tests.support.fakes.binance.exchange import ApiError, Exchange
from tests.support.fakes.binance.market import FakeMarket, SymbolSpec, fmt

WEIGHTS = {"depth": None, "exchangeInfo": 20, "time": 1, "ping": 1, "order": 1, "openOrders": 6, "allOpenOrders": 1,
           "account": 20, "myTrades": 20, "userTrades": 5, "positionRisk": 5, "leverage": 1, "marginType": 1, "dual": 30,
           "listenKey": 1, "aggTrades": 4, "klines": 2, "commission": 20, "commissionRate": 20, "income": 30, "premiumIndex": 1,
           "fundingRate": 1, "fundingInfo": 1, "feeBurn": 30}
FUTURES_WEIGHTS = {"aggTrades": 20, "klines": 5}


@dataclass
class Faults:
    """What to break on market-stream connections (deterministic from `seed`)."""

    drop_every: int = 0  # drop every Nth depth event (per connection); 0 = never
    dup_every: int = 0  # send every Nth depth event twice
    reorder_every: int = 0  # hold every Nth depth event back and send it after the next one
    malformed_every: int = 0  # insert a malformed frame every N frames
    unknown_field: bool = False  # add an unknown field to every depth event
    disconnect_after: int = 0  # close a connection after this many frames (each connection)
    stall_after: int = 0  # stop sending for `stall_s` after this many frames (once per connection)
    stall_s: float = 0.0
    stream_error_every: int = 0  # send a server error frame every N frames
    seed: int = 1
    # what happened
    dropped: list = field(default_factory=list)  # (market, symbol, U, u)
    duplicated: list = field(default_factory=list)
    reordered: list = field(default_factory=list)
    malformed: int = 0
    disconnects: int = 0
    stalls: int = 0
    stream_errors: int = 0


@dataclass
class Account:
    api_key: str = "fake-api-key-0123456789abcdef"
    api_secret: str = "fake-api-secret-0123456789abcdef"
    permissions: tuple = ("SPOT", "FUTURES")
    ed25519_public_pem: str | None = None  # set: the key is an Ed25519 key, signatures are base64 Ed25519


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signature_ok(account: Account, payload: str, sig: str) -> bool:
    """HMAC-SHA256 hex with the secret, or Ed25519 (base64) with the registered public key."""
    if account.ed25519_public_pem:
        import base64

        from Crypto.PublicKey import ECC
        from Crypto.Signature import eddsa

        try:
            eddsa.new(ECC.import_key(account.ed25519_public_pem), "rfc8032").verify(payload.encode(), base64.b64decode(sig))
            return True
        except (ValueError, TypeError):
            return False
    return hmac.compare_digest(sign(account.api_secret, payload), sig)


class FakeBinance:
    """The fake venue; `start()` binds two ports on 127.0.0.1 and runs in background threads."""

    def __init__(self, spot=(SymbolSpec(),), futures=(SymbolSpec(),), *, seed: int = 7, interval_ms: float = 10.0,
                 faults: Faults | None = None, account: Account | None = None, weight_limit: int = 6000,
                 orders_10s: int = 100, clock_offset_ms: int = 0, futures_blocked: int = 0, funding_every_s: float = 0.0,
                 funding_rates: tuple[float, ...] = (0.0001,), funding_hours: dict[str, float] | None = None):
        self.lock = threading.RLock()
        # a futures symbol's own funding interval (hours; fundingInfo lists those not 8-hourly): its
        # premiumIndex says the next time on that grid (with `funding_every_s` 0)
        self.funding_hours = dict(funding_hours or {})
        self.interval = interval_ms / 1000.0
        self.faults = faults or Faults()
        self.account = account or Account()
        self.weight_limit = weight_limit
        self.orders_10s_limit = orders_10s
        self.clock_offset_ms = clock_offset_ms
        self.futures_blocked = futures_blocked  # an HTTP status answering every /fapi request (0: open)
        t0 = time.time_ns()
        self.markets: dict[tuple[str, str], FakeMarket] = {}
        for i, s in enumerate(spot):
            self.markets[("spot", s.symbol)] = FakeMarket(s, False, seed + i, t0)
        for i, s in enumerate(futures):
            self.markets[("futures", s.symbol)] = FakeMarket(s, True, seed + 100 + i, t0)
        self.exchange = Exchange(self.markets, self._user_event)
        # funding of the futures symbols: every `funding_every_s` (0: Binance's 8-hourly times, which
        # a test never reaches), at the `funding_rates` in turn
        self.funding_every_ms = int(funding_every_s * 1000) if funding_every_s > 0 else 8 * 3_600_000
        self.funding_rates = tuple(funding_rates)
        self.funding_count = 0
        now_ms = t0 // 1_000_000
        self.next_funding_ms = (now_ms // self.funding_every_ms + 1) * self.funding_every_ms
        self.used_weight = 0
        self.weight_window = int(time.time() // 60)
        self.order_count_10s: list[float] = []
        self.order_count_day = 0
        self.backoff_until = 0.0
        self.forced: list[tuple[int, int]] = []  # (http status, retry-after s) to answer next, in order
        # faults of new-order requests, taken in order: "timeout" executes the order, then answers only
        # after `order_fault_delay_s` (the client has given up); "drop" executes it and closes the
        # connection without an answer
        self.order_faults: list[str] = []
        self.order_fault_delay_s = 3.0
        # history the REST endpoints serve, as Binance answers it: (market, symbol) → aggTrades
        # dicts ({"a", "p", "q", "f", "l", "T", "m"[, "M"]}) in id order; (market, symbol, interval)
        # → kline arrays in open-time order
        self.agg_trades: dict[tuple[str, str], list[dict]] = {}
        self.klines: dict[tuple[str, str, str], list[list]] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.snapshot_requests = 0
        self.paused = False
        self._conns: set = set()
        self._ws_api: dict = {}  # connection -> subscription id
        self._listen_keys: dict[str, set] = {}
        self.market_outage_until = 0.0  # monotonic time until which market-stream connections are refused
        self.user_outage_until = 0.0  # monotonic time until which user-data connections are refused
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rng = random.Random(self.faults.seed)
        self.http: ThreadingHTTPServer | None = None
        self.ws_port = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeBinance":
        fake = self

        class Handler(_RestHandler):
            server_fake = fake

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, name="fake-binance-rest", daemon=True).start()
        ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._ws_main(ready)), name="fake-binance-ws", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake binance websocket server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop_ev.set)
            self._thread.join(5)
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def env(self) -> dict[str, str]:
        """The SQ_BINANCE_* variables that point sq at this fake."""
        return {
            "SQ_BINANCE_REST_URL": self.rest_url, "SQ_BINANCE_FUTURES_REST_URL": self.rest_url,
            "SQ_BINANCE_WS_URL": self.ws_url, "SQ_BINANCE_FUTURES_WS_URL": self.ws_url + "/fut",
            "SQ_BINANCE_WS_API_URL": self.ws_url + "/ws-api/v3",
        }

    def market(self, symbol: str = "BTCUSDT", market: str = "spot") -> FakeMarket:
        return self.markets[(market, symbol)]

    def kick(self, outage_s: float = 0.0) -> None:
        """Close every market-stream connection now (clients must reconnect) and refuse new ones
        for `outage_s`."""
        self.market_outage_until = time.monotonic() + outage_s
        if self._loop is not None:
            for c in list(self._conns):
                self._loop.call_soon_threadsafe(lambda c=c: asyncio.ensure_future(c.ws.close()))

    def kick_user_streams(self, outage_s: float = 0.0) -> None:
        """Close every user-data connection (spot WebSocket API sessions, futures listenKey
        streams) and refuse new ones for `outage_s`: order events in between are lost to the
        client, as in a real outage."""
        self.user_outage_until = time.monotonic() + outage_s
        if self._loop is None:
            return
        for ws in list(self._ws_api):
            self._loop.call_soon_threadsafe(lambda ws=ws: asyncio.ensure_future(ws.close()))
        for qs in self._listen_keys.values():
            for q in list(qs):
                self._loop.call_soon_threadsafe(q.put_nowait, None)

    # ------------------------------------------------------------------ rate limits

    def charge(self, weight: int, is_order: bool) -> tuple[int, dict]:
        """Account a request; returns (0, headers) or (429|418, headers with Retry-After)."""
        now = time.time()
        with self.lock:
            if self.forced:
                status, ra = self.forced.pop(0)
                if status in (429, 418):
                    self.backoff_until = now + ra
                return status, {"Retry-After": str(ra), "X-MBX-USED-WEIGHT-1M": str(self.used_weight)}
            if now < self.backoff_until:
                # still inside the back-off after a 429: Binance bans the IP (418)
                ra = max(2, int(self.backoff_until - now) * 2 + 1)
                self.backoff_until = now + ra
                return 418, {"Retry-After": str(ra), "X-MBX-USED-WEIGHT-1M": str(self.used_weight)}
            window = int(now // 60)
            if window != self.weight_window:
                self.weight_window, self.used_weight = window, 0
            self.used_weight += weight
            headers = {"X-MBX-USED-WEIGHT-1M": str(self.used_weight)}
            if self.used_weight > self.weight_limit:
                ra = max(1, int(60 - now % 60))
                self.backoff_until = now + ra
                return 429, {**headers, "Retry-After": str(ra)}
            if is_order:
                self.order_count_10s = [t for t in self.order_count_10s if now - t < 10] + [now]
                self.order_count_day += 1
                headers["X-MBX-ORDER-COUNT-10S"] = str(len(self.order_count_10s))
                headers["X-MBX-ORDER-COUNT-1D"] = str(self.order_count_day)
                if len(self.order_count_10s) > self.orders_10s_limit:
                    return 429, {**headers, "Retry-After": "10"}
            return 0, headers

    def check_signed(self, headers, query: str, body: str) -> dict:
        """Verify API key, signature over totalParams, timestamp and recvWindow; the params."""
        key = headers.get("X-MBX-APIKEY")
        if not key:
            raise ApiError(401, -2014, "API-key format invalid.")
        if key != self.account.api_key:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        total = query + body
        params = dict(parse_qsl(query)) | dict(parse_qsl(body))
        sig = params.get("signature")
        if not sig:
            raise ApiError(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        signed_part = _strip_signature(query) + _strip_signature(body)
        if not signature_ok(self.account, signed_part, sig):
            raise ApiError(400, -1022, "Signature for this request is not valid.")
        try:
            ts = int(params["timestamp"])
        except (KeyError, ValueError):
            raise ApiError(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        rw = int(params.get("recvWindow", 5000))
        if rw > 60000:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        server = self.server_ms()
        if ts > server + 1000 or server - ts > rw:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        del total
        return params

    def server_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    # ------------------------------------------------------------------ websocket side

    async def _ws_main(self, ready: threading.Event) -> None:
        from websockets.asyncio.server import serve

        self._loop = asyncio.get_running_loop()
        self._stop_ev = asyncio.Event()
        async with serve(self._ws_handler, "127.0.0.1", 0, compression=None, max_size=None, ping_interval=20,
                         close_timeout=0.5) as server:
            self.ws_port = server.sockets[0].getsockname()[1]
            ready.set()
            pub = asyncio.create_task(self._publisher())
            await self._stop_ev.wait()
            pub.cancel()
            for c in list(self._conns):
                c.q.put_nowait(None)
                await c.ws.close()
            for qs in self._listen_keys.values():
                for q in qs:
                    q.put_nowait(None)
            for ws in list(self._ws_api):
                await ws.close()

    async def _ws_handler(self, ws) -> None:
        parts = urlsplit(ws.request.path)
        path = parts.path
        if path.startswith("/fut") and self.futures_blocked:
            await ws.close(1008, "futures blocked")
            return
        if (path.endswith("/ws-api/v3") or path.startswith("/fut/ws/")) and time.monotonic() < self.user_outage_until:
            await ws.close(1013, "try again later")  # a user-data outage (kick_user_streams)
            return
        if path.endswith("/ws-api/v3"):
            await self._ws_api_session(ws)
            return
        if path.startswith("/fut/ws/"):
            key = path.rsplit("/", 1)[1]
            if key not in self._listen_keys:
                await ws.close(4000, "invalid listenKey")
                return
            q: asyncio.Queue = asyncio.Queue()
            self._listen_keys[key].add(q)
            try:
                await self._pump_user(ws, q)
            finally:
                self._listen_keys[key].discard(q)
            return
        market = "futures" if path.startswith("/fut/") else "spot"
        if time.monotonic() < self.market_outage_until:
            await ws.close(1013, "try again later")  # a market-data outage (kick)
            return
        if not path.endswith("/stream"):
            await ws.close(1008, "unsupported path")
            return
        streams = [s for s in dict(parse_qsl(parts.query)).get("streams", "").split("/") if s]
        if not streams or len(streams) > 1024:
            await ws.close(1008, "1 to 1024 streams per connection")
            return
        conn = _Conn(ws, market, set(streams))
        self._conns.add(conn)
        try:
            await self._pump(conn)
        finally:
            self._conns.discard(conn)

    async def _pump(self, conn: "_Conn") -> None:
        """Send a connection's frames, applying the faults."""
        f = self.faults
        reader = asyncio.create_task(self._drain_client(conn.ws))
        try:
            while True:
                item = await conn.q.get()
                if item is None:
                    return
                name, data, is_depth = item
                frames = []
                if is_depth:
                    conn.depth_n += 1
                    n = conn.depth_n
                    if f.unknown_field:
                        data = {**data, "zz": {"future": [1, 2]}}
                    key = (conn.market, data["s"], data["U"], data["u"])
                    if f.drop_every and n % f.drop_every == 0:
                        f.dropped.append(key)
                        continue
                    if conn.held is not None:
                        frames.append(_frame(name, data))
                        frames.append(conn.held)
                        conn.held = None
                    elif f.reorder_every and n % f.reorder_every == 0:
                        f.reordered.append(key)
                        conn.held = _frame(name, data)
                        continue
                    else:
                        frames.append(_frame(name, data))
                    if f.dup_every and n % f.dup_every == 0:
                        f.duplicated.append(key)
                        frames.append(_frame(name, data))
                else:
                    frames.append(_frame(name, data))
                for fr in frames:
                    conn.sent += 1
                    if f.malformed_every and conn.sent % f.malformed_every == 0:
                        f.malformed += 1
                        await conn.ws.send('{"stream":"x@depth","data":{"e":"depthUpdate","b":[["1",')
                    if f.stream_error_every and conn.sent % f.stream_error_every == 0:
                        f.stream_errors += 1
                        await conn.ws.send('{"error":{"code":-1003,"msg":"fake stream error"},"id":null}')
                    await conn.ws.send(fr)
                    if f.stall_after and conn.sent == f.stall_after:
                        f.stalls += 1
                        await asyncio.sleep(f.stall_s)
                    if f.disconnect_after and conn.sent >= f.disconnect_after:
                        f.disconnects += 1
                        await conn.ws.close()
                        return
        except Exception:  # the client went away
            return
        finally:
            reader.cancel()

    async def _drain_client(self, ws) -> None:
        try:
            async for msg in ws:
                try:
                    req = json.loads(msg)
                    await ws.send(json.dumps({"result": None, "id": req.get("id")}))
                except ValueError:
                    await ws.send(json.dumps({"error": {"code": 2, "msg": "Invalid request"}}))
        except Exception:
            return

    async def _publisher(self) -> None:
        """Every interval: run the SIM engines to now and publish diffs, trades and fills."""
        while True:
            await asyncio.sleep(self.interval)
            if self.paused:
                continue
            now = time.time_ns()
            out: list[tuple[str, str, dict, bool]] = []
            with self.lock:
                for (market, sym), m in self.markets.items():
                    m.advance(now)
                    self.exchange.collect_fills(market, sym)
                    b, a = m.best()
                    self.exchange.check_triggers(market, sym, m.trades[-1][2] if m.trades else None, (b + a) / 2)
                    self.exchange.collect_fills(market, sym)
                if now // 1_000_000 >= self.next_funding_ms:
                    self._settle_funding()
                for (market, sym), m in self.markets.items():
                    depth, trades = m.publish(now // 1_000_000)
                    s = sym.lower()
                    if depth is not None:
                        out.append((market, f"{s}@depth@100ms", depth, True))
                    tname = f"{s}@aggTrade" if market == "futures" else f"{s}@trade"
                    out += [(market, tname, t, False) for t in trades]
            for c in list(self._conns):
                for market, name, data, is_depth in out:
                    if c.market == market and name in c.streams:
                        c.q.put_nowait((name, data, is_depth))

    def funding_interval_h(self, sym: str) -> float:
        """A futures symbol's hours between funding times (fundingInfo's `fundingIntervalHours`)."""
        if self.funding_every_ms != 8 * 3_600_000:
            return self.funding_every_ms / 3_600_000
        return float(self.funding_hours.get(sym, 8.0))

    def funding_rate(self) -> float:
        """The rate of the next funding time."""
        return self.funding_rates[self.funding_count % len(self.funding_rates)]

    def _settle_funding(self) -> None:
        rate = self.funding_rate()
        for (market, sym), m in self.markets.items():
            if market == "futures":
                b, a = m.best()
                self.exchange.settle_funding(sym, rate, round((b + a) / 2, 8), self.next_funding_ms)
        self.funding_count += 1
        self.next_funding_ms += self.funding_every_ms

    def premium_index(self, sym: str) -> dict:
        m = self.markets.get(("futures", sym))
        if m is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        with self.lock:  # the next funding time and its rate as one pair (a settlement moves both)
            b, a = m.best()
            rate, when = self.funding_rate(), self.next_funding_ms
            if sym in self.funding_hours and self.funding_every_ms == 8 * 3_600_000:  # its own schedule
                every = int(self.funding_hours[sym] * 3_600_000)
                when = (self.server_ms() // every + 1) * every
        return {"symbol": sym, "markPrice": fmt((b + a) / 2), "indexPrice": fmt((b + a) / 2), "lastFundingRate": fmt(rate),
                "interestRate": "0.00010000", "nextFundingTime": when, "time": self.server_ms()}

    # ------------------------------------------------------------------ user data

    def _user_event(self, market: str, event: dict) -> None:
        """Called under the lock by the exchange: fan an order event out to subscribers."""
        if self._loop is None:
            return
        if market == "spot":
            for ws, sub in list(self._ws_api.items()):
                if sub is not None:
                    msg = json.dumps({"subscriptionId": sub, "event": event})
                    self._loop.call_soon_threadsafe(lambda ws=ws, msg=msg: asyncio.ensure_future(_safe_send(ws, msg)))
        else:
            msg = json.dumps(event)
            for qs in self._listen_keys.values():
                for q in qs:
                    self._loop.call_soon_threadsafe(q.put_nowait, msg)

    async def _pump_user(self, ws, q: asyncio.Queue) -> None:
        try:
            while True:
                msg = await q.get()
                if msg is None:
                    return
                await ws.send(msg)
        except Exception:
            return

    async def _ws_api_session(self, ws) -> None:
        self._ws_api[ws] = None
        try:
            async for msg in ws:
                try:
                    req = json.loads(msg)
                    rid, method, params = req.get("id"), req.get("method"), dict(req.get("params") or {})
                except (ValueError, AttributeError):
                    await ws.send(json.dumps({"id": None, "status": 400, "error": {"code": -1000, "msg": "Malformed request."}}))
                    continue
                await ws.send(json.dumps(self._ws_api_call(ws, rid, method, params)))
        except Exception:
            pass
        finally:
            self._ws_api.pop(ws, None)

    def _ws_api_call(self, ws, rid, method, params) -> dict:
        limits = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.weight_limit, "count": self.used_weight}]
        try:
            if method == "ping":
                result = {}
            elif method == "time":
                result = {"serverTime": self.server_ms()}
            elif method == "userDataStream.subscribe.signature":
                if params.get("apiKey") != self.account.api_key:
                    raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
                sig = params.pop("signature", "")
                payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
                if not signature_ok(self.account, payload, str(sig)):
                    raise ApiError(400, -1022, "Signature for this request is not valid.")
                ts = int(params.get("timestamp", 0))
                if abs(self.server_ms() - ts) > int(params.get("recvWindow", 5000)):
                    raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
                sub = len([v for v in self._ws_api.values() if v is not None])
                self._ws_api[ws] = sub
                result = {"subscriptionId": sub}
            elif method == "userDataStream.unsubscribe":
                self._ws_api[ws] = None
                result = {}
            else:
                raise ApiError(400, -1100, f"Unknown method {method!r}.")
            return {"id": rid, "status": 200, "result": result, "rateLimits": limits}
        except ApiError as e:
            return {"id": rid, "status": e.http, "error": {"code": e.code, "msg": e.msg}, "rateLimits": limits}

    def new_listen_key(self) -> str:
        key = hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:60]
        self._listen_keys.setdefault(key, set())
        return key

    # ------------------------------------------------------------------ history (aggTrades, klines)

    def _history_symbol(self, market: str, params: dict) -> str:
        sym = params.get("symbol", "")
        known = {s for (m, s) in self.markets if m == market} | {s for (m, s) in self.agg_trades if m == market}
        known |= {s for (m, s, _) in self.klines if m == market}
        if sym not in known:
            raise ApiError(400, -1121, "Invalid symbol.")
        return sym

    @staticmethod
    def _limit(params: dict, default: int, most: int) -> int:
        n = int(params.get("limit", default))
        if not 1 <= n <= most:
            raise ApiError(400, -1100, f"Illegal characters found in parameter 'limit'; legal range is '1-{most}'.")
        return n

    def history_agg_trades(self, market: str, params: dict) -> list[dict]:
        """`GET aggTrades`: fromId, or startTime/endTime (less than an hour apart), else the latest."""
        sym = self._history_symbol(market, params)
        rows = self.agg_trades.get((market, sym), [])
        limit = self._limit(params, 500, 1000)
        if "fromId" in params:
            first = int(params["fromId"])
            return [r for r in rows if r["a"] >= first][:limit]
        if "startTime" in params or "endTime" in params:
            lo = int(params.get("startTime", 0))
            hi = int(params.get("endTime", lo + 3_599_999))
            if "startTime" not in params:
                lo = hi - 3_599_999
            if hi - lo >= 3_600_000:
                raise ApiError(400, -1127, "More than 1 hours between startTime and endTime.")
            return [r for r in rows if lo <= r["T"] <= hi][:limit]
        return rows[-limit:]

    def history_klines(self, market: str, params: dict) -> list[list]:
        """`GET klines`: interval, startTime/endTime, limit (spot 1000, futures 1500 at most)."""
        sym = self._history_symbol(market, params)
        interval = params.get("interval", "")
        if not interval:
            raise ApiError(400, -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
        rows = self.klines.get((market, sym, interval), [])
        limit = self._limit(params, 500, 1500 if market == "futures" else 1000)
        lo = int(params.get("startTime", 0))
        hi = int(params.get("endTime", 1 << 62))
        return [r for r in rows if lo <= r[0] <= hi][:limit]

    # ------------------------------------------------------------------ exchangeInfo

    def exchange_info(self, market: str) -> dict:
        syms = []
        for (mk, s), m in self.markets.items():
            if mk != market:
                continue
            sp = m.spec
            filters = [
                {"filterType": "PRICE_FILTER", "minPrice": f"{sp.tick_size:.8f}", "maxPrice": "1000000.00000000", "tickSize": f"{sp.tick_size:.8f}"},
                {"filterType": "LOT_SIZE", "minQty": f"{sp.min_qty:.8f}", "maxQty": f"{sp.max_qty:.8f}", "stepSize": f"{sp.step_size:.8f}"},
                {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": f"{sp.max_qty:.8f}", "stepSize": "0.00000000"},
                {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2", "askMultiplierUp": "5",
                 "askMultiplierDown": "0.2", "avgPriceMins": 5},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": sp.max_num_orders},
                {"filterType": "ICEBERG_PARTS", "limit": 10},
            ]
            if market == "spot":
                filters.append({"filterType": "NOTIONAL", "minNotional": f"{sp.min_notional:.8f}", "applyMinToMarket": True,
                                "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5})
            else:
                filters.append({"filterType": "MIN_NOTIONAL", "notional": f"{sp.min_notional:.8f}"})
            syms.append({"symbol": s, "status": "TRADING", "baseAsset": sp.base, "quoteAsset": sp.quote,
                         "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"], "filters": filters,
                         "permissions": [], "permissionSets": [["SPOT"]] if market == "spot" else []})
        # a few more names so unknown-symbol suggestions have something to suggest
        for extra in ("ETHUSDT", "BTCUSDC", "BNBUSDT"):
            if all(x["symbol"] != extra for x in syms):
                syms.append({"symbol": extra, "status": "TRADING", "baseAsset": extra[:3], "quoteAsset": extra[3:], "orderTypes": ["LIMIT"],
                             "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
                                         {"filterType": "LOT_SIZE", "minQty": "0.0001", "maxQty": "9000", "stepSize": "0.0001"}]})
        return {"timezone": "UTC", "serverTime": self.server_ms(), "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.weight_limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.orders_10s_limit},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000}], "exchangeFilters": [], "symbols": syms}


@dataclass(eq=False)
class _Conn:
    ws: object
    market: str
    streams: set
    q: asyncio.Queue = field(default_factory=asyncio.Queue)
    depth_n: int = 0
    sent: int = 0
    held: str | None = None


def _frame(name: str, data: dict) -> str:
    return json.dumps({"stream": name, "data": data}, separators=(",", ":"))


async def _safe_send(ws, msg: str) -> None:
    try:
        await ws.send(msg)
    except Exception:
        pass


def _strip_signature(part: str) -> str:
    if not part:
        return ""
    return "&".join(kv for kv in part.split("&") if not kv.startswith("signature="))


class _RestHandler(BaseHTTPRequestHandler):
    """Routes REST calls to the fake; one instance per request (ThreadingHTTPServer)."""

    server_fake: FakeBinance
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms

    def log_message(self, *args) -> None:  # keep test output clean
        return

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PUT(self):
        self._handle("PUT")

    def _send(self, status: int, doc, headers: dict | None = None) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send_blocked(self, status: int) -> None:
        """What a blocked futures API answers: Binance's restricted-location JSON (451), else the
        HTML page of a proxy or firewall."""
        if status == 451:
            self._send(451, {"code": 0, "msg": "Service unavailable from a restricted location according to 'b. Eligibility' in "
                                               "https://www.binance.com/en/terms."})
            return
        body = b"<html><head><title>403 Forbidden</title></head><body>blocked</body></html>"
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        fake = self.server_fake
        parts = urlsplit(self.path)
        path, query = parts.path, parts.query
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        market = "futures" if path.startswith("/fapi/") else "spot"
        name = path.rstrip("/").rsplit("/", 1)[-1]
        params = dict(parse_qsl(query)) | dict(parse_qsl(body))
        if market == "futures" and fake.futures_blocked:
            fake.requests.append((method, path, fake.futures_blocked))
            self._send_blocked(fake.futures_blocked)
            return
        weight = (FUTURES_WEIGHTS if market == "futures" else {}).get(name) or WEIGHTS.get(name, 1)
        if name == "depth":
            lim = int(params.get("limit", 100))
            weight = (5 if lim <= 100 else 25 if lim <= 500 else 50 if lim <= 1000 else 250) if market == "spot" else 20
        is_order = name in ("order", "algoOrder", "oco") and method == "POST"
        status, headers = fake.charge(weight, is_order)
        if status:
            code = -1003
            msg = "Too many requests; current limit is %d requests per minute." % fake.weight_limit if status == 429 else "Way too many requests; IP banned."
            fake.requests.append((method, path, status))
            self._send(status, {"code": code, "msg": msg}, headers)
            return
        try:
            doc = self._route(fake, method, path, name, market, params, query, body)
            fake.requests.append((method, path, 200))
            fault = fake.order_faults.pop(0) if is_order and fake.order_faults else None
            if fault == "drop":
                import socket

                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "timeout":
                time.sleep(fake.order_fault_delay_s)
            self._send(200, doc, headers)
        except ApiError as e:
            fake.requests.append((method, path, e.http))
            self._send(e.http, {"code": e.code, "msg": e.msg}, headers)

    def _route(self, fake: FakeBinance, method, path, name, market, params, query, body):
        ex = fake.exchange
        if name == "time":
            return {"serverTime": fake.server_ms()}
        if name == "ping":
            return {}
        if name == "exchangeInfo":
            return fake.exchange_info(market)
        if name == "depth":
            sym = params.get("symbol", "")
            with fake.lock:
                m = fake.markets.get((market, sym))
                if m is None:
                    raise ApiError(400, -1121, "Invalid symbol.")
                fake.snapshot_requests += 1
                return m.snapshot(int(params.get("limit", 100)))
        if name == "aggTrades":
            return fake.history_agg_trades(market, params)
        if name == "klines":
            return fake.history_klines(market, params)
        if name == "premiumIndex" and market == "futures":
            with fake.lock:
                return fake.premium_index(params.get("symbol", ""))
        if name == "fundingRate" and market == "futures":
            with fake.lock:
                lo, hi = int(params.get("startTime", 0)), int(params.get("endTime", 2**62))
                return [r for r in fake.exchange.funding_history if r["symbol"] == params.get("symbol", r["symbol"])
                        and lo <= r["fundingTime"] <= hi][: int(params.get("limit", 100))]
        if name == "fundingInfo" and market == "futures":
            return [{"symbol": s, "adjustedFundingRateCap": "0.03", "adjustedFundingRateFloor": "-0.03",
                     "fundingIntervalHours": fake.funding_interval_h(s), "disclaimer": False}
                    for (mk, s) in fake.markets if mk == "futures" and fake.funding_interval_h(s) != 8]
        if name == "listenKey" and market == "futures":
            if self.headers.get("X-MBX-APIKEY") != fake.account.api_key or "FUTURES" not in fake.account.permissions:
                raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
            if method == "POST":
                return {"listenKey": fake.new_listen_key()}
            return {}
        p = fake.check_signed(self.headers, query, body)
        if market == "futures" and "FUTURES" not in fake.account.permissions:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        sym = p.get("symbol")
        with fake.lock:
            if name == "order":
                if method == "POST":
                    return ex.place(market, p)
                if method == "DELETE":
                    return ex.cancel(market, p)
                o = ex.find(market, sym or "", p.get("orderId"), p.get("origClientOrderId"))
                return o.doc()
            if name == "openOrders":
                if method == "DELETE":
                    out = ex.cancel_all(market, sym or "")
                    if not out:
                        raise ApiError(400, -2011, "Unknown order sent.")
                    return out
                return ex.open_orders(market, sym)
            if name == "allOpenOrders" and method == "DELETE":
                ex.cancel_all(market, sym or "")
                return {"code": 200, "msg": "The operation of cancel all open order is done."}
            if path.endswith("/orderList/oco") and market == "spot" and method == "POST":
                return ex.place_oco(p)
            if name == "orderList" and market == "spot":
                if method == "DELETE":
                    return ex.cancel_list(p)
                return ex.list_doc(ex.find_list(p))
            if name == "algoOrder" and market == "futures":
                if method == "POST":
                    return ex.place_algo(p)
                if method == "DELETE":
                    return ex.cancel_algo(p)
                return ex.find_algo(p).doc()
            if name == "openAlgoOrders" and market == "futures":
                return ex.open_algos(sym)
            if name == "algoOpenOrders" and market == "futures" and method == "DELETE":
                ex.cancel_all_algos(sym or "")
                return {"code": 200, "msg": "The operation of cancel all open order is done."}
            if name == "account":
                return ex.account(market)
            if name in ("myTrades", "userTrades"):
                return ex.my_trades(market, sym or "")
            if name == "positionRisk":
                return ex.position_risk(sym)
            if name == "leverage":
                ex.leverage[sym] = int(p.get("leverage", 20))
                return {"leverage": ex.leverage[sym], "maxNotionalValue": "1000000", "symbol": sym}
            if name == "marginType":
                mt = p.get("marginType", "CROSSED").lower().replace("crossed", "cross")
                if ex.margin_type.get(sym, "cross") == mt:
                    raise ApiError(400, -4046, "No need to change margin type.")
                ex.margin_type[sym] = mt
                return {"code": 200, "msg": "success"}
            if name == "dual":
                return {"dualSidePosition": ex.dual_side}
            if name == "commission" and market == "spot":
                return ex.spot_commission(sym or "")
            if name == "commissionRate" and market == "futures":
                return ex.futures_commission(sym or "")
            if name == "feeBurn" and market == "futures":
                return {"feeBurn": ex.bnb["futures"]}
            if name == "income" and market == "futures":
                return ex.income_history(p)
        raise ApiError(404, -1100, f"unknown endpoint {method} {path}")
