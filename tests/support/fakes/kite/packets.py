"""Kite ticker binary packets built with plain `struct` — the fake's encoder and the tests'
independent reference (it shares no code with sq's numba parser).

Layouts (big-endian): ltp 8 bytes; index quote 28 / full 32; quote 44; full 184 with 5 + 5 depth
entries of (qty u32, price i32, orders u16, 2 pad bytes). Prices are multiplied by the segment's
divisor (CDS 1e7, BCD/NCO 1e4, else 100) and rounded.
"""

from __future__ import annotations

import struct
from typing import Sequence


def divisor(token: int) -> float:
    seg = token & 0xFF
    return 10_000_000.0 if seg == 3 else 10_000.0 if seg in (6, 12) else 100.0


def _p(token: int, price: float) -> int:
    return int(round(price * divisor(token)))


def ltp(token: int, last: float) -> bytes:
    return struct.pack(">Ii", token, _p(token, last))


def index_quote(token: int, last: float, high: float, low: float, open_: float, close: float, change: float) -> bytes:
    return struct.pack(">Iiiiiii", token, *(_p(token, x) for x in (last, high, low, open_, close, change)))


def index_full(token: int, last: float, high: float, low: float, open_: float, close: float, change: float, ts: int) -> bytes:
    return index_quote(token, last, high, low, open_, close, change) + struct.pack(">I", ts)


def quote(token: int, last: float, last_qty: int, avg: float, volume: int, buy_qty: int, sell_qty: int,
          open_: float, high: float, low: float, close: float) -> bytes:
    return struct.pack(">IiIiIIIiiii", token, _p(token, last), last_qty, _p(token, avg), volume, buy_qty, sell_qty,
                       _p(token, open_), _p(token, high), _p(token, low), _p(token, close))


def full(token: int, last: float, last_qty: int, avg: float, volume: int, buy_qty: int, sell_qty: int,
         open_: float, high: float, low: float, close: float, last_trade_time: int, oi: int, oi_high: int, oi_low: int,
         ts: int, bids: Sequence[tuple[float, int, int]], asks: Sequence[tuple[float, int, int]]) -> bytes:
    """`bids`/`asks`: up to five (price, qty, orders) each, best first; missing entries are zeros."""
    out = quote(token, last, last_qty, avg, volume, buy_qty, sell_qty, open_, high, low, close)
    out += struct.pack(">IIIII", last_trade_time, oi, oi_high, oi_low, ts)
    for side in (bids, asks):
        side = list(side)[:5]
        for px, q, n in side:
            out += struct.pack(">IiHxx", int(q), _p(token, px), int(n))
        out += b"\x00" * (12 * (5 - len(side)))
    assert len(out) == 184
    return out


def frame(packets: Sequence[bytes]) -> bytes:
    """One binary frame: int16 count, then (int16 length, packet) for each packet."""
    return struct.pack(">H", len(packets)) + b"".join(struct.pack(">H", len(p)) + p for p in packets)


HEARTBEAT = b"\x00"
