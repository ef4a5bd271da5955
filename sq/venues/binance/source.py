"""The Binance market source: our own `websockets` client, the book sync, Arrow batches out.

Live: one combined-stream connection per ≤1,024 streams and market (spot, USD-M). Each
connection reconnects with exponential backoff and full jitter, re-opens before Binance's 24 h
cut (`max_age_s`), answers server pings (websockets does) and pings itself, and treats a silent
socket (`stall_s` without a frame) as dead. Every (re)connect restarts the book of its symbols
(buffer → snapshot) — the pipeline emits clear + snapshot rows, so downstream books never mix
sessions. Depth snapshots are fetched over REST in a worker thread, at most `snapshot_concurrency`
at once, with per-symbol backoff on errors and 429/418 honouring Retry-After.

The asyncio loop runs in a background thread and hands finished record batches to `batches()`
through a queue; `close()` may be called from any thread or a signal handler. Replay
(`replay_path`) runs the same pipeline over a raw capture in the caller's thread, no network.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa

from sq.core.exits import SqError, VenueUnavailable
from sq.core.schemas import Instrument, market_batch, market_schema, symbol_dictionary
from sq.venues.binance import http
from sq.venues.binance.endpoints import FUTURES, FUTURES_DEPTH_LIMIT, MAX_STREAMS_PER_CONNECTION, SPOT_DEPTH_LIMIT, Endpoints, stream_names
from sq.venues.binance.errors import raise_for_reply
from sq.venues.binance.pipeline import MarketPipeline, PipeSymbol, Rows
from sq.venues.binance.raw import RawWriter, read_records

log = logging.getLogger("sq.binance")

_END = object()


@dataclass(frozen=True)
class Tuning:
    """Connection behaviour; tests shrink the times."""

    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    max_age_s: float = 23.5 * 3600  # re-open before Binance's 24 h cut
    stall_s: float = 60.0  # no frame for this long → reconnect
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 60.0
    connect_attempts: int = 5  # give up (exit 69) when the first connection never succeeds
    snapshot_concurrency: int = 4
    snapshot_retry_s: float = 0.25
    burst_max: int = 2000


def _queued(ws) -> bool:
    """Whether the connection already holds another received frame (so recv() will not wait)."""
    frames = getattr(getattr(ws, "recv_messages", None), "frames", None)
    return bool(getattr(frames, "queue", None))


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^attempt)]."""
    return rng.uniform(0, min(cap, base * (2 ** min(attempt, 20))))


class BinanceSource:
    """MarketSource over Binance market streams (see the module docstring)."""

    def __init__(self, symbols: list[PipeSymbol], instruments: dict[str, Instrument], endpoints: Endpoints, *,
                 mode: str = "full", limit: int | None = None, duration_ns: int | None = None,
                 raw: RawWriter | None = None, replay_path: str | None = None, tuning: Tuning | None = None,
                 exchange_info_bodies: dict[str, bytes] | None = None):
        self.symbols = symbols
        self.instruments = instruments
        self.endpoints = endpoints
        self.mode = mode
        self.limit = limit
        self.duration_ns = duration_ns
        self.raw = raw
        self.replay_path = replay_path
        self.tuning = tuning or Tuning()
        self.schema = market_schema(instruments)
        self._dict = symbol_dictionary([s.canonical for s in symbols])
        self.pipeline = MarketPipeline(symbols, book={"full": "depth", "quote": "ticker"}.get(mode, "none"))
        self._q: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._rows = 0
        self._t0: int | None = None
        self._rng = random.Random()
        self.connections = 0
        self.reconnects = 0
        self._up: dict[int, bool] = {}  # per stream connection: open now?
        self._exchange_info_bodies = exchange_info_bodies or {}

    @property
    def counters(self) -> dict[str, int]:
        return dict(self.pipeline.counters, connections=self.connections, reconnects=self.reconnects)

    # ------------------------------------------------------------------------------ consumer side

    def batches(self) -> Iterator[pa.RecordBatch]:
        if self.replay_path:
            yield from self._replay()
            return
        self._thread = threading.Thread(target=self._run_loop, name="sq-binance", daemon=True)
        self._thread.start()
        try:
            while True:
                item = self._q.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            if self.raw is not None:
                self.raw.close()

    def close(self) -> None:
        self._closed.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass

    # ------------------------------------------------------------------------------ output

    def _to_batch(self, rows: Rows) -> pa.RecordBatch | None:
        """Rows → one record batch, honouring the limit (never splitting a message)."""
        n = len(rows)
        if n == 0:
            return None
        if self.limit is not None:
            room = self.limit - self._rows
            if room <= 0:
                return None
            if n > room:
                # extend to the end of the message holding row `room - 1`
                key_s, key_q = rows.sym, rows.seq
                cut = room
                while cut < n and key_s[cut] == key_s[cut - 1] and key_q[cut] == key_q[cut - 1]:
                    cut += 1
                rows = Rows(*(getattr(rows, f)[:cut] for f in Rows.__dataclass_fields__))
                n = cut
        self._rows += n
        return market_batch(self.schema, self._dict, rows.ts, rows.recv, rows.sym, rows.kind, rows.side, rows.price, rows.qty, rows.seq)

    def _done(self, now_ns: int) -> bool:
        if self.limit is not None and self._rows >= self.limit:
            return True
        if self.duration_ns is not None and self._t0 is not None and now_ns - self._t0 >= self.duration_ns:
            return True
        return self._closed.is_set()

    # ------------------------------------------------------------------------------ replay

    def _replay(self) -> Iterator[pa.RecordBatch]:
        """The same pipeline over a raw capture: ws frames in bursts, REST snapshots in place."""
        pending: list[bytes] = []
        times: list[int] = []
        market = "spot"
        try:
            for rec in read_records(self.replay_path):
                if self._t0 is None:
                    self._t0 = rec.t
                if self._done(rec.t):
                    break
                if rec.src == "ws":
                    if pending and (rec.market != market or len(pending) >= self.tuning.burst_max):
                        yield from self._emit_replay(pending, times, market)
                        pending, times = [], []
                    market = rec.market
                    pending.append(rec.data)
                    times.append(rec.t)
                    continue
                if pending:
                    yield from self._emit_replay(pending, times, market)
                    pending, times = [], []
                code = self._snapshot_code(rec.stream, rec.market)
                if code is not None:
                    b = self._to_batch(self.pipeline.snapshot(code, rec.data, rec.t))
                    if b is not None:
                        yield b
            if pending and not self._done(times[0]):
                yield from self._emit_replay(pending, times, market)
        finally:
            if self.raw is not None:
                self.raw.close()

    def _emit_replay(self, frames: list[bytes], times: list[int], market: str) -> Iterator[pa.RecordBatch]:
        b = self._to_batch(self.pipeline.feed(frames, np.array(times, dtype=np.int64), market))
        if b is not None:
            yield b

    def _snapshot_code(self, stream: str, market: str) -> int | None:
        """The symbol code of a recorded depth snapshot (`…/depth?symbol=X&limit=N`), else None."""
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(stream)
        if not parts.path.endswith("/depth"):
            return None
        sym = (parse_qs(parts.query).get("symbol") or [""])[0]
        return self.pipeline.code(market, sym)

    # ------------------------------------------------------------------------------ live

    def _run_loop(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # hand every failure to the consumer thread
            self._q.put(e if isinstance(e, SqError) else VenueUnavailable(f"binance market source failed: {type(e).__name__}: {e}"))
        finally:
            self._q.put(_END)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._closed.is_set():
            return
        self._t0 = time.time_ns()
        for market, body in self._exchange_info_bodies.items():
            if self.raw is not None:
                self.raw.write(time.time_ns(), "rest", self.endpoints.path(market, "exchange_info"), body, market)
        tasks = []
        for market in ("spot", FUTURES):
            streams: list[tuple[str, int]] = []
            for code, s in enumerate(self.symbols):
                if s.market == market:
                    streams += [(n, code) for n in stream_names(s.venue_symbol, self.mode, market)]
            for i in range(0, len(streams), MAX_STREAMS_PER_CONNECTION):
                chunk = streams[i : i + MAX_STREAMS_PER_CONNECTION]
                tasks.append(asyncio.create_task(self._connection(market, [n for n, _ in chunk], sorted({c for _, c in chunk}))))
        tasks.append(asyncio.create_task(self._snapshots()))
        if self.duration_ns is not None:
            tasks.append(asyncio.create_task(self._timer(self.duration_ns / 1e9)))
        stop_wait = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait(tasks + [stop_wait], return_when=asyncio.FIRST_COMPLETED)
        for t in tasks + [stop_wait]:
            t.cancel()
        await asyncio.gather(*tasks, stop_wait, return_exceptions=True)
        for t in done:
            if t is not stop_wait and not t.cancelled() and t.exception() is not None:
                raise t.exception()

    async def _timer(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._stop.set()

    def _out(self, rows: Rows) -> None:
        b = self._to_batch(rows)
        if b is not None:
            self._q.put(b)
        if self.raw is not None:
            self.raw.flush()
        if self._done(time.time_ns()):
            self._stop.set()

    @property
    def connected(self) -> bool:
        """Every market-stream connection is open and has delivered data (a live run stops quoting while not)."""
        return bool(self._up) and all(self._up.values())

    async def _connection(self, market: str, streams: list[str], codes: list[int]) -> None:
        """One combined-stream connection, forever: connect, read, reconnect with backoff."""
        import websockets
        from websockets.asyncio.client import connect

        url = self.endpoints.combined_stream_url(market, streams)
        tn = self.tuning
        attempt = 0
        ever = False
        key = len(self._up)
        self._up[key] = False
        while not self._stop.is_set():
            try:
                async with connect(url, ping_interval=tn.ping_interval_s, ping_timeout=tn.ping_timeout_s,
                                   max_size=None, max_queue=None, compression=None, open_timeout=10, close_timeout=2,
                                   proxy=None) as ws:
                    self.connections += 1
                    if ever:
                        self.reconnects += 1
                        self.pipeline.counters["resyncs"] += 1
                    ever = True
                    self.pipeline.reset(codes)
                    opened = time.monotonic()
                    try:
                        got_data = await self._read(ws, market, url, opened, key)
                    finally:
                        self._up[key] = False
                    if got_data:
                        attempt = 0
            except asyncio.CancelledError:
                raise
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
                log.warning("binance %s stream connection: %s: %s", market, type(e).__name__, e)
                if not ever and attempt + 1 >= tn.connect_attempts:
                    raise VenueUnavailable(f"binance: cannot open the {market} market stream at {self.endpoints.ws(market)} "
                                           f"after {attempt + 1} attempts ({type(e).__name__})") from None
            if self._stop.is_set():
                return
            delay = backoff_delay(attempt, tn.backoff_base_s, tn.backoff_cap_s, self._rng)
            attempt += 1
            log.info("binance %s stream: reconnecting in %.2fs", market, delay)
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _read(self, ws, market: str, url: str, opened: float, key: int) -> bool:
        """Read bursts until the socket closes, stalls or ages out; True if any frame came.
        The connection counts as up (`connected`) from its first frame: a server that accepts
        the handshake and closes at once (an outage) never looks up, even for a moment."""
        tn = self.tuning
        got = False
        while not self._stop.is_set():
            age_left = tn.max_age_s - (time.monotonic() - opened)
            if age_left <= 0:
                log.info("binance %s stream: re-opening before the 24 h limit", market)
                await ws.close()
                return got
            try:
                first = await asyncio.wait_for(ws.recv(decode=False), min(tn.stall_s, age_left))
            except asyncio.TimeoutError:
                if time.monotonic() - opened >= tn.max_age_s:
                    continue
                log.warning("binance %s stream: no frame for %.1fs; reconnecting", market, tn.stall_s)
                self.pipeline.counters["stalls"] += 1
                await ws.close()
                return got
            frames = [first]
            times = [time.time_ns()]
            # frames already queued by the socket reader come back without suspending
            while len(frames) < tn.burst_max and _queued(ws):
                frames.append(await ws.recv(decode=False))
                times.append(time.time_ns())
            got = self._up[key] = True
            if self.raw is not None:
                for f, t in zip(frames, times):
                    self.raw.write(t, "ws", url, f, market)
            self._out(self.pipeline.feed(frames, np.array(times, dtype=np.int64), market))
        return got

    async def _snapshots(self) -> None:
        """Fetch REST depth snapshots for the symbols the pipeline wants, with per-symbol backoff."""
        tn = self.tuning
        p = self.pipeline
        inflight: dict[int, asyncio.Task] = {}
        not_before: dict[int, float] = {}
        tries: dict[int, int] = {}
        while not self._stop.is_set():
            now = time.monotonic()
            for code in p.wanted():
                if code in inflight or not_before.get(code, 0) > now or len(inflight) >= tn.snapshot_concurrency:
                    continue
                inflight[code] = asyncio.create_task(self._fetch_snapshot(code))
            for code, task in list(inflight.items()):
                if not task.done():
                    continue
                del inflight[code]
                delay = task.result()
                if delay is None:
                    tries.pop(code, None)
                    # a RETRY verdict keeps the symbol wanted: wait a little for the stream to move on
                    not_before[code] = time.monotonic() + tn.snapshot_retry_s
                else:
                    tries[code] = tries.get(code, 0) + 1
                    not_before[code] = time.monotonic() + max(delay, backoff_delay(tries[code], tn.snapshot_retry_s, tn.backoff_cap_s, self._rng))
            await asyncio.sleep(0.005)
        for t in inflight.values():
            t.cancel()

    async def _fetch_snapshot(self, code: int) -> float | None:
        """GET one depth snapshot and apply it; None on success, else seconds to wait before retrying."""
        s = self.symbols[code]
        limit = FUTURES_DEPTH_LIMIT if s.market == FUTURES else SPOT_DEPTH_LIMIT
        url = self.endpoints.url(s.market, "depth")
        params = {"symbol": s.venue_symbol, "limit": limit}
        try:
            reply = await asyncio.to_thread(http.get, url, params)
        except SqError as e:
            self.pipeline.counters["server_errors"] += 1
            log.warning("binance %s: depth snapshot failed: %s", s.canonical, e.message)
            return 1.0
        recv = time.time_ns()
        if not reply.ok:
            self.pipeline.counters["server_errors"] += 1
            ra = reply.headers.get("retry-after")
            try:
                raise_for_reply(reply, f"depth snapshot {s.canonical}")
            except SqError as e:
                log.warning("%s", e.message)
            return float(ra) if ra else 1.0
        if self.raw is not None:
            self.raw.write(recv, "rest", f"{self.endpoints.path(s.market, 'depth')}?symbol={s.venue_symbol}&limit={limit}", reply.body, s.market)
        self._out(self.pipeline.snapshot(code, reply.body, recv))
        return None
