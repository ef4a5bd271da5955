"""One symbol of the fake Binance: the SIM matching engine's book, seen through Binance's ids.

Every exchange action of the SIM engine (a flow event or an order of ours) is one Binance
*update id*. `advance(t)` runs the engine to time t and folds the new actions into the true
book and the pending diff window; `publish()` turns the window into one `depthUpdate` (U = first
update id in the window, u = last, pu = the previous event's u, quantities absolute, "0"
deletes) plus one trade event per trade. `snapshot(limit)` is the REST depth answer. The book as
of every published `u` is kept (`book_at`) so tests can compare a client's book with the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sq.core.schemas import Instrument
from sq.venues.sim.book import SimBook

KIND_LEVEL, KIND_TRADE = 1, 2


def fmt(x: float, decimals: int = 8) -> str:
    return f"{x:.{decimals}f}"


@dataclass
class SymbolSpec:
    """exchangeInfo facts of a fake symbol."""

    symbol: str = "BTCUSDT"
    tick_size: float = 0.01
    step_size: float = 0.001
    start_price: float = 60_000.0
    min_qty: float = 0.001
    max_qty: float = 9_000.0
    min_notional: float = 5.0
    base: str = "BTC"
    quote: str = "USDT"
    max_num_orders: int = 200


@dataclass
class FakeMarket:
    """The truth about one symbol on one market (spot or futures)."""

    spec: SymbolSpec
    futures: bool
    seed: int
    start_ns: int
    keep_history: int = 5_000
    sim: SimBook = field(init=False)
    update_id: int = field(init=False)
    book: dict = field(init=False, default_factory=dict)  # (side, price) -> qty
    window: dict = field(init=False, default_factory=dict)
    window_first: int = field(init=False, default=-1)
    trades: list = field(init=False, default_factory=list)
    last_u: int = field(init=False, default=-1)
    trade_id: int = field(init=False, default=1_000)
    book_at: dict = field(init=False, default_factory=dict)
    published: list = field(init=False, default_factory=list)  # u of every published depth event

    def __post_init__(self):
        inst = Instrument("SIM:" + self.spec.symbol, "sim", self.spec.tick_size, self.spec.step_size,
                          {"start_price": self.spec.start_price})
        self.sim = SimBook(inst, self.seed, self.start_ns)
        self.update_id = 1_000_000 + (self.seed % 1000) * 1000
        self.sim.snapshot(self.start_ns)
        self._absorb(self.sim.take(), initial=True)
        self.last_u = self.update_id
        self.window.clear()
        self.window_first = -1
        self.trades.clear()
        self.book_at[self.update_id] = dict(self.book)

    def advance(self, t_ns: int) -> None:
        """Run the SIM engine to t_ns and fold its actions in."""
        while not self.sim.run(t_ns, 50_000):
            self._absorb(self.sim.take())
        self._absorb(self.sim.take())

    def absorb_pending(self) -> None:
        """Fold in actions made outside the flow (our own orders)."""
        self._absorb(self.sim.take())

    def _absorb(self, rows, initial: bool = False) -> None:
        n = len(rows)
        if n == 0:
            return
        kind, side, price, qty, seq, ts = rows.kind, rows.side, rows.price, rows.qty, rows.seq, rows.ts
        prev = None
        for i in range(n):
            s = int(seq[i])
            if s != prev:
                prev = s
                if not initial:
                    self.update_id += 1
                    if self.window_first < 0:
                        self.window_first = self.update_id
            k = int(kind[i])
            if k == KIND_LEVEL:
                key = (int(side[i]), float(price[i]))
                q = float(qty[i])
                if q > 0:
                    self.book[key] = q
                else:
                    self.book.pop(key, None)
                if not initial:
                    self.window[key] = q
            elif k == KIND_TRADE and not initial:
                self.trade_id += 1
                self.trades.append((self.trade_id, int(side[i]), float(price[i]), float(qty[i]), int(ts[i])))

    def publish(self, now_ms: int) -> tuple[dict | None, list[dict]]:
        """The depthUpdate for the window (None when nothing changed) and the trade events."""
        depth = None
        s = self.spec.symbol
        if self.window:
            b = [[fmt(p), fmt(q)] for (sd, p), q in sorted(self.window.items(), key=lambda kv: -kv[0][1]) if sd > 0]
            a = [[fmt(p), fmt(q)] for (sd, p), q in sorted(self.window.items(), key=lambda kv: kv[0][1]) if sd < 0]
            depth = {"e": "depthUpdate", "E": now_ms, "s": s, "U": self.window_first, "u": self.update_id, "b": b, "a": a}
            if self.futures:
                depth = {"e": "depthUpdate", "E": now_ms, "T": now_ms, "s": s, "U": self.window_first, "u": self.update_id,
                         "pu": self.last_u, "b": b, "a": a}
            self.last_u = self.update_id
            self.published.append(self.update_id)
            self.book_at[self.update_id] = dict(self.book)
            if len(self.book_at) > self.keep_history:
                for k in list(self.book_at)[: len(self.book_at) - self.keep_history]:
                    del self.book_at[k]
            self.window = {}
            self.window_first = -1
        trades = []
        for tid, side, p, q, ts in self.trades:
            if self.futures:
                trades.append({"e": "aggTrade", "E": now_ms, "s": s, "a": tid, "p": fmt(p), "q": fmt(q), "f": tid, "l": tid,
                               "T": ts // 1_000_000, "m": side < 0})
            else:
                trades.append({"e": "trade", "E": now_ms, "s": s, "t": tid, "p": fmt(p), "q": fmt(q), "T": ts // 1_000_000,
                               "m": side < 0, "M": True})
        self.trades = []
        return depth, trades

    def snapshot(self, limit: int) -> dict:
        """REST depth: lastUpdateId = the latest update id folded in (pending window included)."""
        bids = sorted(((p, q) for (sd, p), q in self.book.items() if sd > 0), reverse=True)[:limit]
        asks = sorted((p, q) for (sd, p), q in self.book.items() if sd < 0)[:limit]
        self.book_at[self.update_id] = dict(self.book)
        out = {"lastUpdateId": self.update_id, "bids": [[fmt(p), fmt(q)] for p, q in bids], "asks": [[fmt(p), fmt(q)] for p, q in asks]}
        if self.futures:
            now = self.sim.now // 1_000_000
            out = {"lastUpdateId": self.update_id, "E": now, "T": now, **{k: out[k] for k in ("bids", "asks")}}
        return out

    def best(self) -> tuple[float, float]:
        bids = [p for (sd, p) in self.book if sd > 0]
        asks = [p for (sd, p) in self.book if sd < 0]
        return (max(bids) if bids else float("nan")), (min(asks) if asks else float("nan"))


def np_float(x) -> float:
    return float(np.float64(x))
