"""Helpers for the Binance tests: open a source against the fake, and a plain dict book.

The reference book is independent of the code under test (docs/architecture.md): a dict per symbol
of (side, price) → qty that applies market rows message by message.
"""

from __future__ import annotations

import math

import numpy as np

from sq.core.config import load_config
from sq.core.environment import Environment
from sq.core.symbols import parse_symbols
from sq.venues.registry import SourceOptions


def open_source(symbols, **kw):
    """A Binance market source on the current environment (the fake's URLs)."""
    from sq.venues.binance import open_market_source

    opts = {k: kw.pop(k) for k in ("limit", "duration_ns", "raw_path", "replay_path", "mode") if k in kw}
    tuning = {"stall_s": 5.0, "backoff_base_s": 0.05, "backoff_cap_s": 0.5, "snapshot_retry_s": 0.05, **kw}
    return open_market_source(parse_symbols(symbols), SourceOptions(config=load_config(None), env=Environment(), **opts), **tuning)


def rows_of(batch) -> list[tuple]:
    """(ts, symbol, kind, side, price, qty, seq) tuples of a market batch."""
    sym = batch.column("symbol").to_pylist()
    cols = [batch.column(c).to_numpy(zero_copy_only=False) for c in ("kind", "side", "price", "qty", "seq")]
    ts = batch.column("ts").cast("int64").to_numpy()
    return [(int(ts[i]), sym[i], int(cols[0][i]), int(cols[1][i]), float(cols[2][i]), float(cols[3][i]), int(cols[4][i]))
            for i in range(batch.num_rows)]


class DictBook:
    """Plain-Python L2 books built from market rows, message by message."""

    def __init__(self):
        self.books: dict[str, dict] = {}
        self.synced: set[str] = set()
        self.in_snapshot: set[str] = set()

    def apply(self, row) -> None:
        _, sym, kind, side, price, qty, _ = row
        book = self.books.setdefault(sym, {})
        if kind == 3:
            book.clear()
            self.in_snapshot.add(sym)
        elif kind == 4:
            self.in_snapshot.discard(sym)
            self.synced.add(sym)
        elif kind == 1:
            if qty > 0:
                book[(side, price)] = qty
            else:
                book.pop((side, price), None)


def messages(rows):
    """Split rows into messages: runs of the same (symbol, seq)."""
    out, cur, key = [], [], None
    for r in rows:
        k = (r[1], r[6])
        if cur and k != key:
            out.append(cur)
            cur = []
        key = k
        cur.append(r)
    if cur:
        out.append(cur)
    return out


def same_book(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(math.isclose(a[k], b[k], rel_tol=0, abs_tol=1e-9) for k in a)


def top(book: dict) -> tuple[float, float]:
    bids = [p for s, p in book if s > 0]
    asks = [p for s, p in book if s < 0]
    return (max(bids) if bids else np.nan), (min(asks) if asks else np.nan)
