"""The engine seen from a real venue: take its order intents, hand it the venue's answers.

With `sim_venue=False` the `Engine`'s kernels still run strategies, the order manager, risk and
the position keeper, and every request lands in the *outbox* (`ob`/`obf`, layout `OB_*`) for a
real venue gateway to send. `LiveBridge` is the engine's interface to such a gateway (`sq live`
uses it), built on the engine's public `make_room`, `require_symbol` and `take_output`:

* `take_outbox()` → `Intent`s (new / cancel), emptying the outbox;
* `answer(coid, kind, …)` → runs the order manager's own `on_response` kernel for one venue
  answer (ack, fill, canceled, cancel-rejected, expired, rejected), then the loss-limit check and
  the strategy's `on_fill`, so positions, PnL, halts and the strategy follow the real fills
  exactly as they follow simulated ones;
* `seed_fill(symbol, …)` → books a fill into the position keeper without an order (a resumed
  run replaying its journal; a position the account already held).

In-flight accounting follows the simulated venue: a request counts once until its first answer;
every further answer (a later fill, an expiry) is counted in and out, so pool rows are recycled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sq.core.engine import costs
from sq.core.engine import kernel as K
from sq.core.engine import layout as L
from sq.core.engine import orders as O
from sq.core.engine import positions

NEW, CANCEL = L.OUT_NEW, L.OUT_CANCEL
ACK, FILL_MAKER, FILL_TAKER, CANCELED, CANCEL_REJ, EXPIRED, REJECTED = (
    L.K_ACK, L.K_FILL_MAKER, L.K_FILL_TAKER, L.K_CANCELED, L.K_CANCEL_REJ, L.K_EXPIRED, L.K_VENUE_REJ)


ORDER_TYPES = {L.OT_LIMIT: "limit", L.OT_STOP_MARKET: "stop-market", L.OT_STOP_LIMIT: "stop-limit",
               L.OT_TP_MARKET: "take-profit-market", L.OT_TP_LIMIT: "take-profit-limit"}  # sq.venues.base.ORDER_TYPES names


@dataclass(frozen=True)
class Intent:
    """One request the engine wants sent: a new order or a cancel. A stop or take-profit
    (`order_type` other than "limit") carries its trigger; its `price` is the limit (a market one:
    NaN)."""

    kind: int  # NEW | CANCEL
    coid: int
    symbol: str
    side: int
    price: float
    ticks: int
    qty: float
    ioc: bool
    ts: int
    order_type: str = "limit"
    trigger_price: float = float("nan")
    reduce_only: bool = False
    mark: bool = False  # the trigger watches the mark price (else the last trade)


class LiveBridge:
    def __init__(self, engine: Any):
        self.e = engine

    def take_outbox(self) -> list[Intent]:
        e = self.e
        n = int(e.g[L.G_NOB])
        if not n:
            return []
        rows, qty = e.ob[:n].tolist(), e.obf[:n].tolist()  # Python ints and floats: no NumPy scalar per field
        e.g[L.G_NOB] = 0
        out = []
        for r, q in zip(rows, qty):
            s = r[L.OB_SYM]
            tick = e.ticks[s]
            price = round(r[L.OB_PX] * tick, 12)
            ot = r[L.OB_OTYPE]
            if ot == L.OT_LIMIT:
                out.append(Intent(r[L.OB_KIND], r[L.OB_COID], e.registry.symbols[s], r[L.OB_SIDE],
                                  price, r[L.OB_PX], float(q), r[L.OB_TIF] == L.TIF_IOC, r[L.OB_TS]))
                continue
            market = ot in (L.OT_STOP_MARKET, L.OT_TP_MARKET)
            out.append(Intent(int(r[L.OB_KIND]), int(r[L.OB_COID]), e.registry.symbols[s], int(r[L.OB_SIDE]),
                              float("nan") if market else price, int(r[L.OB_PX]), float(q), False, int(r[L.OB_TS]),
                              ORDER_TYPES[ot], round(int(r[L.OB_TRIG]) * tick, 12), bool(r[L.OB_RO]),
                              int(r[L.OB_TSRC]) == L.TRIGGER_MARK))
        return out

    def ticks_of(self, symbol: str, price: float) -> int:
        e = self.e
        return int(round(price / e.ticks[e.registry.id(symbol)]))

    def answer(self, coid: int, kind: int, *, px: int = 0, qty: float = 0.0, reason: int = 0, now: int = 0, first: bool = False) -> bool:
        """Apply one venue answer to order `coid`; `first` when it answers the request in flight.
        Returns False when the engine no longer knows the order (already dead and recycled)."""
        e = self.e
        o = int(O.find_order(e.oi, coid))
        if o < 0:
            return False
        e.make_room(K.ST_FLUSH)
        if not first:
            e.oi[o, L.OI_INFLIGHT] += 1
        now = max(int(now), int(e.g[L.G_LASTLOC]))
        nf0 = int(e.g[L.G_NF])
        filled = O.on_response(e.si, e.sf, e.oi, e.of, e.g, e.gf, e.ob, e.obf, e.oo_i, e.oo_f, e.fo_i, e.fo_f, e.po_i, e.po_f,
                               kind, o, px, qty, reason, now, e.n)
        if filled:
            K._check_halt(e.si, e.sf, e.oi, e.of, e.g, e.gf, e.ob, e.obf, e.oo_i, e.oo_f, e.oi[o, L.OI_SYM], now, e.n)
        try:
            K.answer_fill(e.handlers.addresses, e.context().table, e.g, e.fo_i, e.fo_f, nf0, now)
        except Exception as error:
            raise e.strategy_failure(error) from None
        if e.g[L.G_BAD] != L.BAD_NONE:
            raise e.failure()
        return True

    def working(self) -> dict[int, tuple[str, int, float, float]]:
        """Orders the engine believes are working: coid → (symbol, state, leaves, filled)."""
        e = self.e
        out = {}
        for o in range(e.oi.shape[0]):
            st = int(e.oi[o, L.OI_STATE])
            if st in (L.PENDING_NEW, L.LIVE, L.PENDING_CANCEL):
                out[int(e.oi[o, L.OI_COID])] = (e.registry.symbols[int(e.oi[o, L.OI_SYM])], st,
                                                float(e.of[o, L.OF_LEAVES]), float(e.of[o, L.OF_FILLED]))
        return out

    def filled_of(self, coid: int) -> float | None:
        e = self.e
        o = int(O.find_order(e.oi, coid))
        return None if o < 0 else float(e.of[o, L.OF_FILLED])

    def ensure_symbol(self, symbol: str) -> int:
        e = self.e
        s = e.registry.id(symbol.upper())
        e.require_symbol(s)
        return s

    def seed_fill(self, symbol: str, side: int, price: float, qty: float, maker: bool = True) -> None:
        """Book a fill into the position keeper (charged as a fill of an order of its own, under
        the symbol's cost model or the fill model's fees: `sq.core.engine.costs`)."""
        e = self.e
        s = self.ensure_symbol(symbol)
        fee, _ = costs.fill_cost(e.sf, e.gf, s, int(side), float(price), float(qty), bool(maker), 0.0)
        positions.add_fill(e.sf, s, int(side), float(price), float(qty), float(fee))
        e.g[L.G_FILLS] += 1

    def set_next_coid(self, coid: int) -> None:
        e = self.e
        e.g[L.G_NEXT_COID] = max(int(e.g[L.G_NEXT_COID]), int(coid))

    def output(self) -> Any:
        return self.e.take_output(0)


def warm_up(config: Any, strategy: Any) -> None:
    """Load (or compile) what a live run adds to the engine's kernels — the outbox, the order
    manager's `on_response` for a venue's ack, fill and cancel, a seeded fill — on a tiny made-up
    market, before the run's clock starts (else the first real order answer compiles them, in
    the middle of trading)."""
    import numpy as np

    from sq.core import schemas as S
    from sq.core.engine.runner import Engine

    name = "SIM:WARMUP"
    inst = {name: S.Instrument(name, "sim", 1.0)}
    ts = np.array([1, 1, 2, 3], np.int64)
    batch = S.market_batch(S.market_schema(inst), S.symbol_dictionary([name]), ts, ts, np.zeros(4, np.int32),
                           np.array([S.LEVEL, S.LEVEL, S.TRADE, S.LEVEL], np.uint8), np.array([1, -1, 1, 1], np.int8),
                           np.array([99.0, 101.0, 101.0, 100.0]), np.array([5.0, 5.0, 5.0, 3.0]), np.arange(1, 5, dtype=np.int64))
    e = Engine(strategy, inst, {name: {}}, config=config, sim_venue=False)
    bridge = LiveBridge(e)
    bridge.ensure_symbol(name)
    e.process(batch, complete=True)
    news = [it for it in bridge.take_outbox() if it.kind == NEW]
    for i, it in enumerate(news):
        bridge.answer(it.coid, ACK, px=it.ticks, now=5, first=True)
        if i == 0:
            bridge.answer(it.coid, FILL_TAKER, px=it.ticks, qty=it.qty, now=6)
    bridge.output()
    bridge.seed_fill(name, 1, 100.0, 1.0)
    bridge.working()
    e.cancel_all(10, "warmup")
    for it in bridge.take_outbox():
        if it.kind == CANCEL:
            bridge.answer(it.coid, CANCELED, now=11, first=True)
    bridge.output()
    e.finish()
