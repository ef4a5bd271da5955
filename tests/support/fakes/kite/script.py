"""A scripted Kite market for tests that need exact packets: a list of full-mode states of one
instrument (its five-level book, last trade and day volume), encoded with `packets.full` one
frame each, to play through the fake's ticker (`TickerServer.play`) while its SIM market is
paused. The tests compute by hand what sq must make of them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tests.support.fakes.kite import packets

IST_OFFSET_S = 19_800


@dataclass
class State:
    """One packet: `at` seconds after the script's start (its exchange time and last trade time)."""

    at: int
    last: float
    last_qty: int
    volume: int
    bids: list[tuple[float, int, int]] = field(default_factory=list)  # (price, qty, orders), best first
    asks: list[tuple[float, int, int]] = field(default_factory=list)


def start_time(lead_s: int = 5, span_s: int = 60) -> int:
    """A script's start (epoch seconds): `lead_s` ahead of the wall clock, so every packet's
    exchange time is later than its receive time (the engine's local time then follows the data),
    and moved past an IST midnight the script would otherwise cross (a new trading day)."""
    t0 = int(time.time()) + lead_s
    tod = (t0 + IST_OFFSET_S) % 86_400
    if tod > 86_400 - span_s:
        t0 += 86_400 - tod + 1
    return t0


def full_frames(token: int, states: list[State], t0: int) -> list[bytes]:
    """The states as full packets (one frame each): average price = last, OHLC around it."""
    out = []
    for st in states:
        t = t0 + st.at
        pk = packets.full(token, st.last, st.last_qty, st.last, st.volume, sum(q for _, q, _ in st.bids),
                          sum(q for _, q, _ in st.asks), st.last, st.last, st.last, st.last, t, 0, 0, 0, t, st.bids, st.asks)
        out.append(packets.frame([pk]))
    return out
