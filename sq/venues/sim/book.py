"""One simulated symbol: its matching book and flow generator, behind a small Python API.

`SimBook` owns a `SimState`, converts between prices/quantities and ladder levels/lots, runs
the flow kernel up to a time, hands out the market rows produced so far (as NumPy arrays in
venue units) and the fills of gateway-owned orders. It does no locking; `SimVenue` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sq.core.schemas import Instrument
from sq.venues.sim import flow as F
from sq.venues.sim import matching as M
from sq.venues.sim import state as S
from sq.venues.sim.instruments import decimals, name_hash

WARMUP_ACTIONS = 4_000
SEED_LEVELS = 40


def splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


@dataclass
class Rows:
    """Market rows of one symbol in venue units (price and qty 0 on clear/snapshot_end rows)."""

    ts: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    orders: np.ndarray
    seq: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)


@dataclass
class RawFills:
    """Fill records of gateway-owned orders, in venue units."""

    oid: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    ts: np.ndarray
    liquidity: np.ndarray  # 1 maker, 2 taker
    side: np.ndarray
    seq: np.ndarray
    trade: np.ndarray

    def __len__(self) -> int:
        return len(self.oid)


class SimBook:
    """The exchange for one `SIM:` symbol: seeded book, flow, and gateway actions."""

    def __init__(self, instrument: Instrument, seed: int, start_ns: int, params: dict[int, float] | None = None):
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.tick = float(instrument.tick_size)
        self.lot = float(instrument.lot_size)
        self._px_dec = decimals(self.tick)
        self._qty_dec = decimals(self.lot)
        p0 = float(instrument.extra.get("start_price", 100.0))
        p0t = max(1, int(round(p0 / self.tick)))
        w = S.LADDER_WIDTH
        self.base = max(1, p0t - w // 2)
        st = S.new_state(w)
        fl = F.default_params()
        for k, v in (params or {}).items():
            fl[k] = v
        fl[S.F_P0] = p0t - self.base
        fl[S.F_FAIR] = p0t - self.base
        st.flts[:] = fl
        lo = max(self.base + 64, min(self.base + w // 8, p0t // 2))
        st.ints[S.R_LO] = lo - self.base
        st.ints[S.R_HI] = w - w // 8
        st.rng[0] = np.uint64(splitmix64(splitmix64(seed & 0xFFFFFFFFFFFFFFFF) ^ name_hash(self.symbol)) or 1)
        self.st = st
        self.next_oid = 1
        # a settled book before the first event anyone sees
        F.seed_book(st, SEED_LEVELS, start_ns - WARMUP_ACTIONS * 1_000_000)
        room = self._room()
        st = self.st = S.grow_fills(S.grow_out(st, 2 * room), 2 * room)
        while st.ints[S.R_ACTIONS] < WARMUP_ACTIONS:
            F.run(st, start_ns - 1, room, room, WARMUP_ACTIONS - st.ints[S.R_ACTIONS])
            st.ints[S.R_NOUT] = 0
            st.ints[S.R_NFILL] = 0
            if st.ints[S.R_NEXT_T] >= start_ns:
                break
        st.ints[S.R_NOW] = start_ns
        if st.ints[S.R_NEXT_T] < start_ns:
            st.ints[S.R_NEXT_T] = start_ns
        st.ints[S.R_NOUT] = 0
        st.ints[S.R_NFILL] = 0

    # -- clock and flow
    @property
    def now(self) -> int:
        return int(self.st.ints[S.R_NOW])

    @property
    def next_t(self) -> int:
        return int(max(self.st.ints[S.R_NEXT_T], self.st.ints[S.R_NOW]))

    @property
    def pending(self) -> int:
        return int(self.st.ints[S.R_NOUT])

    def _room(self) -> int:
        return 2 * len(self.st.o_lvl) + 8

    def run(self, t_end: int, max_rows: int) -> bool:
        """Run the flow up to t_end or until about max_rows rows are pending.

        Returns True when it reached t_end (every action up to t_end is in the buffer).
        """
        room = self._room()
        self.st = S.grow_out(self.st, max_rows + room)
        self.st = S.grow_fills(self.st, room)
        st = self.st
        F.run(st, t_end, len(st.out_ts) - max_rows, room, 1 << 62)
        return self.next_t > t_end

    def snapshot(self, t: int) -> None:
        self.st = S.grow_out(self.st, self._room())
        M.snapshot(self.st, t)

    def take(self, cut: int | None = None) -> Rows:
        """Remove and return the pending rows with ts <= cut (all of them when cut is None)."""
        st = self.st
        n = int(st.ints[S.R_NOUT])
        k = n if cut is None else int(np.searchsorted(st.out_ts[:n], cut, side="right"))
        kind = st.out_kind[:k].copy()
        lvl = st.out_px[:k]
        price = np.round((lvl + self.base) * self.tick, self._px_dec)
        price[kind >= M.KIND_CLEAR] = 0.0
        qty = st.out_qty[:k] * self.lot
        if self.lot != 1.0:
            qty = np.round(qty, self._qty_dec)
        rows = Rows(
            st.out_ts[:k].copy(), kind, st.out_side[:k].copy(), price, qty.astype(np.float64),
            st.out_ord[:k].copy(), st.out_seq[:k].copy(),
        )
        if k < n:
            for a in (st.out_ts, st.out_kind, st.out_side, st.out_px, st.out_qty, st.out_ord, st.out_seq):
                a[: n - k] = a[k:n]
        st.ints[S.R_NOUT] = n - k
        return rows

    def take_fills(self) -> RawFills:
        st = self.st
        n = int(st.ints[S.R_NFILL])
        f = RawFills(
            st.f_oid[:n].copy(), np.round((st.f_px[:n] + self.base) * self.tick, self._px_dec),
            st.f_qty[:n] * self.lot, st.f_ts[:n].copy(), st.f_liq[:n].copy(), st.f_side[:n].copy(),
            st.f_seq[:n].copy(), st.f_trade[:n].copy(),
        )
        st.ints[S.R_NFILL] = 0
        return f

    # -- units
    def to_level(self, price: float) -> int | None:
        """Ladder level of a price, or None when it is off the tick grid or outside the ladder."""
        x = price / self.tick
        t = round(x)
        if not math.isfinite(x) or abs(x - t) > 1e-6 * max(1.0, abs(x)):
            return None
        lvl = int(t) - self.base
        if lvl < 0 or lvl >= S.LADDER_WIDTH:
            return None
        return lvl

    def to_lots(self, qty: float) -> int | None:
        x = qty / self.lot
        n = round(x)
        if not math.isfinite(x) or n <= 0 or abs(x - n) > 1e-6 * max(1.0, abs(x)):
            return None
        return int(n)

    def price_of(self, lvl: int) -> float:
        return round((lvl + self.base) * self.tick, self._px_dec)

    def price_band(self) -> tuple[float, float]:
        return self.price_of(0), self.price_of(S.LADDER_WIDTH - 1)

    # -- gateway actions (callers hold the venue lock)
    def _prepare(self) -> None:
        room = self._room()
        self.st = S.grow_orders(self.st, 2)
        self.st = S.grow_out(self.st, 2 * len(self.st.o_lvl) + 8)
        self.st = S.grow_fills(self.st, 2 * len(self.st.o_lvl) + 8 + room)

    def submit(self, si: int, lvl: int, lots: int, tif: int, oid: int, t: int) -> tuple[int, int, int]:
        self._prepare()
        res, rem, slot = M.submit(self.st, si, lvl, lots, tif, oid, t)
        return int(res), int(rem), int(slot)

    def cancel(self, slot: int, oid: int, t: int) -> int:
        self._prepare()
        return int(M.cancel(self.st, slot, oid, t))

    def modify(self, slot: int, oid: int, lvl: int, lots: int, t: int) -> tuple[int, int, int]:
        self._prepare()
        res, rem, nslot = M.modify(self.st, slot, oid, lvl, lots, t)
        return int(res), int(rem), int(nslot)

    # -- inspection
    def top(self) -> tuple[float, float, float, float]:
        """(bid, bid_qty, ask, ask_qty); NaN where a side is empty."""
        st = self.st
        b = int(st.ints[S.R_BEST_BID])
        a = int(st.ints[S.R_BEST_ASK])
        nan = float("nan")
        bid = (self.price_of(b), float(st.lqty[0, b]) * self.lot) if b >= 0 else (nan, nan)
        ask = (self.price_of(a), float(st.lqty[1, a]) * self.lot) if a < S.LADDER_WIDTH else (nan, nan)
        return bid[0], bid[1], ask[0], ask[1]

    def levels(self) -> dict[tuple[int, float], tuple[float, int]]:
        """The resting book {(side, price): (qty, orders)} — for tests and inspection."""
        out: dict[tuple[int, float], tuple[float, int]] = {}
        for si in (0, 1):
            idx = np.nonzero(self.st.lcnt[si])[0]
            for lvl in idx:
                out[(1 - 2 * si, self.price_of(int(lvl)))] = (float(self.st.lqty[si, lvl]) * self.lot, int(self.st.lcnt[si, lvl]))
        return out

    def queue(self, side: int, price: float) -> list[tuple[int, float]]:
        """The FIFO at one level as [(oid, qty)], front first (oid -1 = background order)."""
        lvl = self.to_level(price)
        si = 0 if side > 0 else 1
        out = []
        if lvl is None:
            return out
        slot = int(self.st.head[si, lvl])
        while slot != -1:
            out.append((int(self.st.o_oid[slot]), float(self.st.o_qty[slot]) * self.lot))
            slot = int(self.st.o_next[slot])
        return out
