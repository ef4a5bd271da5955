"""The fake ticker's market: one SIM matching-engine book per instrument token (sq.venues.sim).

The SIM flow generator trades against a price-time book; we read its top five levels a side
and its trades (last price/qty, volume, VWAP, OHLC) and encode them as Kite packets. Index tokens
(segment 9) get the mid of their own SIM book as the index value and no depth. Deterministic for
a seed and a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sq.core.schemas import Instrument
from sq.venues.sim import state as SS
from sq.venues.sim.book import SimBook
from tests.support.fakes.kite import packets

SCAN = 4096  # ladder levels scanned for the top five


@dataclass
class Tape:
    """Last-trade statistics of one token."""

    close: float
    last: float = math.nan
    last_qty: int = 0
    volume: int = 0
    turnover: float = 0.0
    open: float = math.nan
    high: float = -math.inf
    low: float = math.inf
    last_trade_s: int = 0
    trades: int = field(default=0)


class SimMarket:
    """`specs`: token → (symbol, tick, lot, start price)."""

    def __init__(self, specs: dict[int, tuple[str, float, float, float]], *, seed: int = 7, start_ns: int):
        self.books: dict[int, SimBook] = {}
        self.tapes: dict[int, Tape] = {}
        self.specs = specs
        for token, (sym, tick, lot, price) in specs.items():
            inst = Instrument("SIM:" + sym.replace(":", "_").replace(" ", "_"), "sim", tick, lot, {"start_price": price})
            self.books[token] = SimBook(inst, seed, start_ns)
            self.tapes[token] = Tape(close=price)
        self.now_ns = start_ns

    def advance(self, t_ns: int) -> None:
        """Run every book's flow up to t_ns and fold its trades into the tapes."""
        self.now_ns = t_ns
        for token, book in self.books.items():
            tape = self.tapes[token]
            while True:
                done = book.run(t_ns, 1 << 16)
                rows = book.take()
                tr = rows.kind == 2
                if tr.any():
                    px, q, ts = rows.price[tr], rows.qty[tr], rows.ts[tr]
                    if math.isnan(tape.open):
                        tape.open = float(px[0])
                    tape.high = max(tape.high, float(px.max()))
                    tape.low = min(tape.low, float(px.min()))
                    tape.last, tape.last_qty = float(px[-1]), int(q[-1])
                    tape.volume += int(q.sum())
                    tape.turnover += float((px * q).sum())
                    tape.last_trade_s = int(ts[-1] // 1_000_000_000)
                    tape.trades += int(tr.sum())
                if done:
                    break

    def depth(self, token: int) -> tuple[list[tuple[float, int, int]], list[tuple[float, int, int]]]:
        """Top five (price, qty, orders) a side, best first."""
        book = self.books[token]
        st = book.st
        out = []
        for si, start, step in ((0, int(st.ints[SS.R_BEST_BID]), -1), (1, int(st.ints[SS.R_BEST_ASK]), 1)):
            lv, side = start, []
            for _ in range(SCAN):
                if len(side) == 5 or lv < 0 or lv >= len(st.lcnt[si]):
                    break
                if st.lcnt[si, lv] > 0:
                    side.append((book.price_of(lv), int(round(float(st.lqty[si, lv]) * book.lot)), int(st.lcnt[si, lv])))
                lv += step
            out.append(side)
        return out[0], out[1]

    def mid(self, token: int) -> float:
        b, _, a, _ = self.books[token].top()
        return (b + a) / 2 if math.isfinite(b) and math.isfinite(a) else self.tapes[token].close

    def packet(self, token: int, mode: str) -> bytes:
        """The Kite packet of `token` in `mode` (ltp | quote | full) at the current clock."""
        tape = self.tapes[token]
        now_s = self.now_ns // 1_000_000_000
        if (token & 0xFF) == 9:  # index
            v = round(self.mid(token), 2)
            if mode == "ltp":
                return packets.ltp(token, v)
            hi = max(tape.high, v) if math.isfinite(tape.high) else v
            lo = min(tape.low, v) if math.isfinite(tape.low) else v
            op = tape.open if not math.isnan(tape.open) else v
            args = (token, v, hi, lo, op, tape.close, round(v - tape.close, 2))
            return packets.index_full(*args, now_s) if mode == "full" else packets.index_quote(*args)
        last = tape.last if not math.isnan(tape.last) else tape.close
        if mode == "ltp":
            return packets.ltp(token, last)
        bids, asks = self.depth(token)
        avg = tape.turnover / tape.volume if tape.volume else last
        op = tape.open if not math.isnan(tape.open) else last
        hi = tape.high if math.isfinite(tape.high) else last
        lo = tape.low if math.isfinite(tape.low) else last
        common = (token, last, tape.last_qty, avg, tape.volume, sum(q for _, q, _ in bids), sum(q for _, q, _ in asks), op, hi, lo, tape.close)
        if mode == "quote":
            return packets.quote(*common)
        oi = 0 if self.specs[token][0].split(":")[0] in ("NSE", "BSE") else 100_000 + tape.trades
        return packets.full(*common, tape.last_trade_s or now_s, oi, oi, 100_000, now_s, bids, asks)

    def quote_entry(self, token: int) -> dict:
        """Fields of a /quote answer that come from the market (the rest from the mock)."""
        tape = self.tapes[token]
        bids, asks = self.depth(token) if (token & 0xFF) != 9 else ([], [])
        last = tape.last if not math.isnan(tape.last) else tape.close
        pad = lambda side: [{"price": p, "quantity": q, "orders": n} for p, q, n in side] + [{"price": 0, "quantity": 0, "orders": 0}] * (5 - len(side))
        return {"instrument_token": token, "last_price": last, "last_quantity": tape.last_qty, "volume": tape.volume,
                "depth": {"buy": pad(bids), "sell": pad(asks)}}

