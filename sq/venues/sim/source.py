"""The market source of the simulated exchange: Arrow record batches in the market schema.

Each symbol's stream starts with one message `clear` + every level + `snapshot_end`; after
that every flow action or gateway request is one message (one seq). Symbols interleave by
exchange time; rows of one message are contiguous and never split across batches.

In simulated time the flow runs ahead in rounds sized to give ~64k-row batches (fast, for
files, tests and backtests). In real time the source wakes for each exchange action burst and
emits it as a small batch at once (low latency for pipes and live views). `recv_ts` is `ts`
plus a small per-message feed latency that is a fixed function of (symbol, seq).
"""

from __future__ import annotations

import threading
import time
from typing import Iterator

import numpy as np

from sq.core import schemas
from sq.venues.sim.book import Rows

SIM_BATCH_ROWS = 65_536
REAL_BATCH_ROWS = 16_384
FEED_LATENCY_NS = 150_000  # base latency; plus up to 100 µs per-message jitter
FEED_JITTER_NS = 100_003
MAX_SLEEP_S = 0.02


class SimMarketSource:
    """MarketSource over a `SimVenue` (sq.venues.base.MarketSource).

    `limit` stops after that many rows (at the end of the message that reaches it, so the
    total may exceed `limit` by the rest of one message); `duration_ns` stops after that much
    exchange time. Without either, runs until `close()`, which may be called from a signal
    handler or another thread and ends iteration within one round (≤ ~20 ms in real time).
    """

    def __init__(self, venue, *, limit: int | None = None, duration_ns: int | None = None, batch_rows: int | None = None):
        self.venue = venue
        # rows of one message never span two batches: say so to readers of the pipe
        self.schema = venue.schema.with_metadata({**(venue.schema.metadata or {}), schemas.META_WHOLE_MESSAGES: b"1"})
        self.instruments = venue.instruments
        self.limit = int(limit) if limit is not None else None
        self.duration_ns = int(duration_ns) if duration_ns is not None else None
        default_rows = SIM_BATCH_ROWS if venue.clock == "sim" else REAL_BATCH_ROWS
        self.batch_rows = int(batch_rows) if batch_rows else default_rows
        self.rows = 0
        self._stop = threading.Event()
        self._codes = {s: i for i, s in enumerate(venue.symbols)}

    def close(self) -> None:
        """Stop iteration promptly (safe from signal handlers and other threads)."""
        self._stop.set()

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    # -- iteration
    def batches(self) -> Iterator:
        venue = self.venue
        with venue.lock:
            parts = []
            for s, b in venue.books.items():
                b.snapshot(venue.now(s))
                parts.append((self._codes[s], b.take(None)))
        first = self._merge(parts)
        batch, done = self._limit(first)
        yield batch
        if done:
            return
        if venue.clock == "sim":
            yield from self._run_sim()
        else:
            yield from self._run_real()

    def _run_sim(self) -> Iterator:
        venue = self.venue
        cut = max(b.now for b in venue.books.values())
        t_stop = venue.start_ns + self.duration_ns if self.duration_ns is not None else None
        step = 50_000_000  # adapted below so a round gives about batch_rows rows
        per_book = self.batch_rows
        while not self._stop.is_set():
            horizon = cut + step
            if t_stop is not None:
                horizon = min(horizon, t_stop)
            data, cut = self._round(horizon, per_book)
            if len(data):
                step = int(min(max(step * self.batch_rows / len(data), 1_000_000), 60_000_000_000))
                batch, done = self._limit(data)
                yield batch
                if done:
                    return
            else:
                step = min(step * 4, 60_000_000_000)
            if t_stop is not None and cut >= t_stop:
                return

    def _run_real(self) -> Iterator:
        venue = self.venue
        start = time.time_ns()
        t_stop = start + self.duration_ns if self.duration_ns is not None else None
        lag = FEED_LATENCY_NS + FEED_JITTER_NS
        while not self._stop.is_set():
            now = time.time_ns()
            horizon = now - lag
            if t_stop is not None:
                horizon = min(horizon, t_stop)
            data, cut = self._round(horizon, self.batch_rows)
            if len(data):
                batch, done = self._limit(data)
                yield batch
                if done:
                    return
            if t_stop is not None and cut >= t_stop:
                return
            with venue.lock:
                nxt = min(b.next_t for b in venue.books.values())
            wait = (nxt + lag - time.time_ns()) / 1e9
            if wait > 0:
                self._stop.wait(min(wait, MAX_SLEEP_S))

    def _round(self, horizon: int, per_book: int) -> tuple["_Data", int]:
        """Advance every book to `horizon` (or until its buffer is full) and take the rows that
        are final: those at or before the earliest point some book stopped at."""
        venue = self.venue
        with venue.lock:
            cut = horizon
            for b in venue.books.values():
                if not b.run(horizon, per_book):
                    cut = min(cut, b.now)
            parts = [(self._codes[s], b.take(cut)) for s, b in venue.books.items()]
            gw = venue._gateway
            if gw is not None:
                gw._collect_all()
        return self._merge(parts), cut

    # -- assembling batches
    def _merge(self, parts: list[tuple[int, Rows]]) -> "_Data":
        parts = [(c, r) for c, r in parts if len(r)]
        if not parts:
            return _Data.empty()
        if len(parts) == 1:
            c, r = parts[0]
            sym = np.full(len(r), c, dtype=np.int32)
            return _Data(r.ts, r.kind, r.side, r.price, r.qty, r.orders, r.seq, sym)
        cat = [np.concatenate([getattr(r, f) for _, r in parts]) for f in ("ts", "kind", "side", "price", "qty", "orders", "seq")]
        sym = np.concatenate([np.full(len(r), c, dtype=np.int32) for c, r in parts])
        order = np.argsort(cat[0], kind="stable")
        return _Data(*(a[order] for a in cat), sym[order])

    def _limit(self, d: "_Data"):
        """Cut `d` at the end of the message that reaches the limit; build the batch."""
        done = False
        if self.limit is not None and self.rows + len(d) >= self.limit:
            k = max(self.limit - self.rows, 1)
            last_sym, last_seq = d.symbol[k - 1], d.seq[k - 1]
            while k < len(d) and d.symbol[k] == last_sym and d.seq[k] == last_seq:
                k += 1
            d = d.head(k)
            done = True
        self.rows += len(d)
        return self._batch(d), done

    def _batch(self, d: "_Data"):
        recv = d.ts + FEED_LATENCY_NS + (d.seq * 7919 + d.symbol.astype(np.int64) * 104_729) % FEED_JITTER_NS
        return schemas.market_batch(
            self.schema, self.venue.dictionary, d.ts, recv, d.symbol, d.kind, d.side, d.price, d.qty, d.seq, d.orders
        )


class _Data:
    """Merged rows of all symbols, ready to become one record batch."""

    __slots__ = ("ts", "kind", "side", "price", "qty", "orders", "seq", "symbol")

    def __init__(self, ts, kind, side, price, qty, orders, seq, symbol):
        self.ts, self.kind, self.side, self.price = ts, kind, side, price
        self.qty, self.orders, self.seq, self.symbol = qty, orders, seq, symbol

    def __len__(self) -> int:
        return len(self.ts)

    def head(self, k: int) -> "_Data":
        return _Data(*(getattr(self, f)[:k] for f in self.__slots__))

    @classmethod
    def empty(cls) -> "_Data":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z.astype(np.uint8), z.astype(np.int8), z.astype(np.float64), z.astype(np.float64), z.astype(np.int32), z, z.astype(np.int32))
