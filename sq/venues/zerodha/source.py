"""The Kite ticker as an sq market source: our own asyncio `websockets` client (not KiteTicker).

A background thread owns the socket: it subscribes and sets the mode, answers nothing but reads
everything, reconnects with exponential backoff (and re-subscribes) when the connection drops or
goes silent (a watchdog: Kite heartbeats every second, so `watchdog_s` without a frame means a dead
link), and gives up with exit 69 after `max_failures` failed attempts in a row. A 401/403 at the
handshake is an expired/revoked token → exit 77. Frames go through a queue to `batches()`, which
parses every burst of queued frames into one record batch (ticker_parser), keeps the `--raw`
capture, routes text frames (order postbacks to `on_order` listeners, errors to warnings), and
stops at the limit (never splitting a packet's rows) or duration. `--replay` runs the same parser
over a capture with no network.
"""

from __future__ import annotations

import asyncio
import json
import queue
import random
import threading
import time
from typing import Callable, Iterator

import pyarrow as pa

from sq.core.exits import VenueUnavailable
from sq.venues.zerodha import quotes
from sq.venues.zerodha.endpoints import Endpoints
from sq.venues.zerodha.errors import token_error
from sq.venues.zerodha.instruments import KiteInstrument, subset_csv
from sq.venues.zerodha.raw import RawWriter
from sq.venues.zerodha.ticker_parser import TickerParser, parse_text

MODES = ("ltp", "quote", "full")
_STOP = object()
REPLAY_CHUNK = 512  # frames per batch when replaying (files batch harder than pipes)


def trim_to_limit(batch: pa.RecordBatch, rows: int) -> pa.RecordBatch:
    """The first `rows` rows of `batch`, extended to the end of the message (seq) they cut into."""
    if rows >= batch.num_rows:
        return batch
    seq = batch.column("seq").to_numpy()
    end = rows
    while end < len(seq) and seq[end] == seq[rows - 1]:
        end += 1
    return batch.slice(0, end)


class ZerodhaSource:
    """MarketSource over the Kite ticker (live) or a raw capture (replay)."""

    backoff_initial = 0.5
    backoff_max = 30.0
    max_failures = 20
    watchdog_s = 5.0
    open_timeout = 10.0

    def __init__(self, kis: list[KiteInstrument], options, *, endpoints: Endpoints | None = None, api_key: str = "",
                 access_token: str = "", dump_csv: str = "", replay_records=None, quote_json: str = ""):
        if options.mode not in MODES:
            from sq.core.exits import UsageError

            raise UsageError(f"--mode must be one of {', '.join(MODES)}; got {options.mode!r}")
        self.options = options
        self.env = options.env
        self.kis = kis
        contracts = options.contracts  # the continuous names resolved to these contracts
        plain = {k.symbol: contracts[k.symbol].annotate(k.to_instrument()) if k.symbol in contracts else k.to_instrument() for k in kis}
        plain = quotes.with_circuits(plain, quotes.circuits(quote_json) if quote_json else {})
        self._quote_json = quote_json  # today's /quote answer (circuit limits), kept in a --raw capture
        self.parser = TickerParser({k.token: k.symbol for k in kis}, plain)
        self.instruments = self.parser.instruments  # marked `trades: "derived"`
        self.schema: pa.Schema = self.parser.schema
        self.endpoints = endpoints
        self._api_key, self._token = api_key, access_token
        self._dump_csv = dump_csv
        self._replay = replay_records
        self._q: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        self._order_listeners: list[Callable[[dict], None]] = []
        self.connects = 0
        self.reconnects = 0
        self.connected = False  # the ticker socket is up now (order postbacks ride on it)
        self.text_errors: list[str] = []

    # ------------------------------------------------------------------ public

    def on_order(self, callback: Callable[[dict], None]) -> None:
        """Call `callback(order_dict)` for every order postback the ticker delivers."""
        self._order_listeners.append(callback)

    @property
    def stats(self):
        return self.parser.stats

    def close(self) -> None:
        """Stop iteration (safe from another thread or a signal handler)."""
        self._closed.set()
        self._q.put(_STOP)
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:
                pass

    def batches(self) -> Iterator[pa.RecordBatch]:
        raw = RawWriter(self.options.raw_path) if self.options.raw_path else None
        try:
            frames = self._replay_frames() if self._replay is not None else self._live_frames(raw)
            yield from self._batched(frames, raw)
        finally:
            self._shutdown()
            if raw is not None:
                raw.close()

    # ------------------------------------------------------------------ parsing

    def _batched(self, bursts, raw: RawWriter | None) -> Iterator[pa.RecordBatch]:
        limit = self.options.limit
        dur = self.options.duration_ns if self._replay is not None else None  # live: _live_frames' deadline
        emitted = 0
        t0 = None
        stream = self.endpoints.ws if self.endpoints else "ticker"
        if limit is not None and limit <= 0:
            return
        for burst in bursts:
            done = False
            if dur is not None and burst:
                t0 = burst[0][0] if t0 is None else t0
                kept = [x for x in burst if x[0] - t0 <= dur]  # replay: data time
                done, burst = len(kept) < len(burst), kept
            binary, recv = [], []
            for t, data in burst:
                if raw is not None:
                    raw.write(t, "ws", stream, data)
                if isinstance(data, (bytes, bytearray)):
                    binary.append(bytes(data))
                    recv.append(t)
                else:
                    self._text(data)
            if raw is not None and burst:
                raw.flush()
            batch = self.parser.parse(binary, recv) if binary else None
            if batch is not None:
                if limit is not None and emitted + batch.num_rows >= limit:
                    yield trim_to_limit(batch, limit - emitted)
                    return
                emitted += batch.num_rows
                yield batch
            if done or self._closed.is_set():
                return

    def _text(self, text: str) -> None:
        msg = parse_text(text)
        if msg is None:
            self.parser.text.bad_text += 1
            return
        self.parser.text.text_messages += 1
        if msg.type == "order" and isinstance(msg.data, dict):
            for cb in self._order_listeners:
                cb(msg.data)
        elif msg.type == "error":
            self.text_errors.append(str(msg.data))
            self.env.warn(f"zerodha ticker: {msg.data}")

    def _replay_frames(self):
        chunk: list = []
        for rec in self._replay:
            if self._closed.is_set():
                break
            if rec.src != "ws":
                continue
            chunk.append((rec.t, rec.data))
            if len(chunk) >= REPLAY_CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    # ------------------------------------------------------------------ live socket

    def _live_frames(self, raw: RawWriter | None):
        if raw is not None:
            raw.write(time.time_ns(), "rest", "/instruments", subset_csv(self._dump_csv, [k.token for k in self.kis]))
            if self._quote_json:
                raw.write(time.time_ns(), "rest", quotes.PATH, self._quote_json)
            raw.flush()
        self._thread = threading.Thread(target=self._thread_main, name="sq-kite-ticker", daemon=True)
        self._thread.start()
        dur = self.options.duration_ns
        deadline = None if dur is None else time.monotonic() + dur / 1e9
        while True:
            timeout = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))
            try:
                item = self._q.get(timeout=timeout)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                if self._closed.is_set():
                    return
                yield []
                continue
            burst = []
            while True:
                if item is _STOP:
                    if burst:
                        yield burst
                    return
                if isinstance(item, BaseException):
                    if burst:
                        yield burst
                    raise item
                burst.append(item)
                if len(burst) >= 4096:
                    break
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
            yield burst

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._run())
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as e:  # surfaced in the consumer thread
            self._q.put(e)
        finally:
            self._q.put(_STOP)
            loop.close()

    async def _run(self) -> None:
        import websockets
        from websockets.exceptions import InvalidStatus

        tokens = [k.token for k in self.kis]
        url = self.endpoints.ticker_url(self._api_key, self._token)
        backoff, failures = self.backoff_initial, 0
        while not self._closed.is_set():
            try:
                async with websockets.connect(url, max_size=None, open_timeout=self.open_timeout, ping_interval=10,
                                              ping_timeout=10, compression=None) as ws:
                    await ws.send(json.dumps({"a": "subscribe", "v": tokens}))
                    await ws.send(json.dumps({"a": "mode", "v": [self.options.mode, tokens]}))
                    if self.connects:
                        self.reconnects += 1
                    self.connects += 1
                    try:
                        while True:
                            msg = await asyncio.wait_for(ws.recv(), timeout=self.watchdog_s)
                            if not self.connected:  # up from the first message (Kite heartbeats every second):
                                # a server that accepts and hangs up never looks up, nor resets the backoff
                                failures, backoff = 0, self.backoff_initial
                                self.connected = True
                            self._q.put((time.time_ns(), msg))
                    finally:
                        self.connected = False
            except asyncio.CancelledError:
                return
            except InvalidStatus as e:
                code = e.response.status_code
                if code in (401, 403):
                    raise token_error(f"ticker refused the access token (HTTP {code})") from None
                failures += 1
                why = f"HTTP {code}"
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
                failures += 1
                why = type(e).__name__
            if failures > self.max_failures:
                raise VenueUnavailable(f"zerodha: ticker unreachable after {failures} attempts ({why})")
            if self.connects:
                self.env.warn(f"zerodha ticker: connection lost ({why}); reconnecting in {backoff:.1f} s")
            await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
            backoff = min(backoff * 2, self.backoff_max)

    def _shutdown(self) -> None:
        self.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
