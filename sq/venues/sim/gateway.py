"""The order gateway of the simulated exchange (sq.venues.base.OrderGateway).

Orders go into the same FIFO books the background flow trades against: a resting limit order
waits behind the quantity already at its price and is filled when flow takes it out (fills
with `liquidity="maker"`); a marketable order trades at once (`"taker"`). Requests are
processed at the venue's current exchange time (the book's clock in simulated time, the wall
clock in real time) as one exchange action each, so they also appear in the market stream.

Order states are `OrderState` objects updated in place as fills arrive; `new_fills()` returns
the fills since the last call (what an engine polls between market batches); positions follow
fills at fill price with fees.
"""

from __future__ import annotations

import itertools
import math

from sq.core.exits import UsageError
from sq.venues.base import Fill, GatewayBase, OrderRequest, OrderState, Position
from sq.venues.sim import matching as M
from sq.venues.sim.state import LADDER_WIDTH, R_NFILL

TIFS = {"gtc": M.TIF_GTC, "ioc": M.TIF_IOC, "fok": M.TIF_FOK, "post_only": M.TIF_POST_ONLY}
MAKER_FEE = 0.0  # fraction of notional
TAKER_FEE = 0.0005
FEE_CCY = "USD"
ACTIVE = ("accepted", "partially_filled")


class _Order:
    __slots__ = ("state", "oid", "slot", "symbol")

    def __init__(self, state: OrderState, oid: int, slot: int, symbol: str):
        self.state, self.oid, self.slot, self.symbol = state, oid, slot, symbol


class SimGateway(GatewayBase):
    """Place, cancel, modify and query orders on a `SimVenue` (get it with `venue.gateway()`)."""

    def __init__(self, venue, *, maker_fee: float = MAKER_FEE, taker_fee: float = TAKER_FEE):
        self.venue = venue
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self._orders: dict[str, _Order] = {}  # client_order_id → order
        self._by_oid: dict[tuple[str, int], _Order] = {}
        self._fills: list[Fill] = []
        self._new: list[Fill] = []
        self._positions: dict[str, Position] = {}
        self._ids = itertools.count(1)
        self._oids = itertools.count(1)

    # -- requests
    def place(self, request: OrderRequest) -> OrderState:
        """Submit an order; returns its state after the exchange processed it."""
        v = self.venue
        with v.lock:
            book = v.book(request.symbol)
            cid = request.client_order_id or f"sim-{next(self._ids)}"
            if cid in self._orders:
                raise UsageError(f"duplicate client_order_id {cid!r}")
            voi = f"{next(self._oids)}"
            st = OrderState(cid, voi, book.symbol, int(request.side), float(request.price), float(request.qty), status="accepted")
            st.ts = v.now(book.symbol)
            order = _Order(st, int(voi), -1, book.symbol)
            self._orders[cid] = order
            self._by_oid[(book.symbol, order.oid)] = order
            reason = self._check(book, request)
            if reason:
                return self._reject(st, reason)
            si = 0 if request.side > 0 else 1
            lots = book.to_lots(request.qty)
            if request.order_type == "market":
                lvl = (LADDER_WIDTH - 1) if si == 0 else 0
                tif = M.TIF_IOC
                st.price = float("nan")
            else:
                lvl = book.to_level(request.price)
                tif = TIFS[request.time_in_force]
            res, rem, slot = book.submit(si, lvl, lots, tif, order.oid, st.ts)
            self._collect(book)
            if res == M.REJECT_POST_ONLY:
                return self._reject(st, "post-only order would cross the book")
            if res == M.REJECT_FOK:
                return self._reject(st, "fill-or-kill order cannot be filled in full")
            if res == M.REJECT_NO_SLOT:
                return self._reject(st, "simulated exchange out of order slots")
            order.slot = slot
            if slot < 0 and st.status in ACTIVE:
                # nothing rests: the unfilled rest of an IOC or market order is cancelled
                st.status = "canceled" if st.filled_qty > 0 else "expired"
                st.reason = "no liquidity left for the rest of the market order" if request.order_type == "market" else "IOC remainder cancelled"
            return st

    def cancel(self, symbol: str, client_order_id: str) -> OrderState:
        v = self.venue
        with v.lock:
            order = self._orders.get(client_order_id)
            if order is None or order.symbol != v.book(symbol).symbol:
                raise UsageError(f"unknown order {client_order_id!r} on {symbol}")
            st = order.state
            if st.status not in ACTIVE or order.slot < 0:
                st.reason = f"cancel rejected: order is {st.status}"
                return st
            book = v.book(symbol)
            q = book.cancel(order.slot, order.oid, v.now(book.symbol))
            self._collect(book)
            if q >= 0:
                st.status = "canceled"
                st.reason = ""
                st.ts = book.now
                order.slot = -1
            return st

    def cancel_all(self, symbol: str | None = None) -> list[OrderState]:
        with self.venue.lock:
            return [self.cancel(o.symbol, cid) for cid, o in list(self._orders.items()) if o.state.status in ACTIVE and (symbol is None or o.symbol == self.venue.book(symbol).symbol)]

    def modify(self, symbol: str, client_order_id: str, *, price: float | None = None, qty: float | None = None) -> OrderState:
        """Change price and/or total quantity. Same price with less quantity keeps the queue
        position; anything else goes to the back of the queue (and may trade)."""
        v = self.venue
        with v.lock:
            order = self._orders.get(client_order_id)
            if order is None or order.symbol != v.book(symbol).symbol:
                raise UsageError(f"unknown order {client_order_id!r} on {symbol}")
            st = order.state
            book = v.book(symbol)
            if st.status not in ACTIVE or order.slot < 0:
                st.reason = f"modify rejected: order is {st.status}"
                return st
            new_px = st.price if price is None else float(price)
            new_qty = st.qty if qty is None else float(qty)
            lvl = book.to_level(new_px)
            leaves = book.to_lots(new_qty - st.filled_qty) if new_qty > st.filled_qty else None
            if lvl is None or leaves is None:
                st.reason = "modify rejected: price off the tick grid/band or quantity not above the filled quantity"
                return st
            res, rem, slot = book.modify(order.slot, order.oid, lvl, leaves, v.now(book.symbol))
            st.price, st.qty, st.ts = new_px, new_qty, book.now
            self._collect(book)
            order.slot = slot
            if res == M.REJECT_NO_SLOT:
                st.status, st.reason = "canceled", "simulated exchange out of order slots"
            elif slot < 0 and st.status in ACTIVE:
                st.status = "filled" if rem == 0 else "canceled"
            return st

    # -- queries
    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        with self.venue.lock:
            want = self.venue.book(symbol).symbol if symbol else None
            return [o.state for o in self._orders.values() if o.state.status in ACTIVE and (want is None or o.symbol == want)]

    def order(self, client_order_id: str) -> OrderState:
        return self._orders[client_order_id].state

    def find_order(self, symbol: str, client_order_id: str) -> OrderState | None:
        """Any order this gateway placed, open or closed (None: never placed here)."""
        with self.venue.lock:
            o = self._orders.get(client_order_id)
            return None if o is None else o.state

    def positions(self) -> list[Position]:
        with self.venue.lock:
            self._collect_all()
            return list(self._positions.values())

    def fills(self, symbol: str | None = None) -> list[Fill]:
        with self.venue.lock:
            self._collect_all()
            want = self.venue.book(symbol).symbol if symbol else None
            return [f for f in self._fills if want is None or f.symbol == want]

    def new_fills(self) -> list[Fill]:
        """Fills since the previous call (in exchange order)."""
        with self.venue.lock:
            self._collect_all()
            out, self._new = self._new, []
            return out

    # -- internals
    def _check(self, book, r: OrderRequest) -> str:
        if r.side not in (1, -1):
            return f"side must be +1 or -1, got {r.side!r}"
        if r.order_type not in ("limit", "market"):
            return f"unknown order type {r.order_type!r}"
        if r.order_type == "limit" and r.time_in_force not in TIFS:
            return f"unknown time in force {r.time_in_force!r}"
        if book.to_lots(r.qty) is None:
            return f"quantity {r.qty} is not a positive multiple of the lot size {book.lot}"
        if r.order_type == "limit":
            if not math.isfinite(r.price) or book.to_level(r.price) is None:
                lo, hi = book.price_band()
                return f"price {r.price} is off the tick grid ({book.tick}) or outside the band {lo}..{hi}"
        return ""

    def _reject(self, st: OrderState, reason: str) -> OrderState:
        st.status = "rejected"
        st.reason = reason
        return st

    def _collect_all(self) -> None:
        for b in self.venue.books.values():
            self._collect(b)

    def _collect(self, book) -> None:
        """Turn the book's fill records into Fill objects, order states and positions."""
        if book.st.ints[R_NFILL] == 0:
            return
        f = book.take_fills()
        for i in range(len(f)):
            order = self._by_oid.get((book.symbol, int(f.oid[i])))
            if order is None:
                continue
            st = order.state
            px, q = float(f.price[i]), float(f.qty[i])
            maker = int(f.liquidity[i]) == M.LIQ_MAKER
            fee = abs(px * q) * (self.maker_fee if maker else self.taker_fee)
            fill = Fill(
                int(f.ts[i]), book.symbol, st.client_order_id, st.venue_order_id, f"{book.symbol}-{int(f.trade[i])}",
                int(f.side[i]), px, q, fee, FEE_CCY, "maker" if maker else "taker",
            )
            self._fills.append(fill)
            self._new.append(fill)
            st.filled_qty = round(st.filled_qty + q, 12)
            st.ts = fill.ts
            if st.filled_qty >= st.qty - 1e-12:
                st.status = "filled"
                order.slot = -1
            else:
                st.status = "partially_filled"
            self._apply_position(book.symbol, fill)

    def _apply_position(self, symbol: str, fill: Fill) -> None:
        p = self._positions.setdefault(symbol, Position(symbol))
        signed = fill.qty * fill.side
        p.realized -= fill.fee
        if p.qty == 0 or (p.qty > 0) == (signed > 0):
            total = p.qty + signed
            p.avg_price = (p.avg_price * abs(p.qty) + fill.price * abs(signed)) / abs(total)
            p.qty = total
        else:
            closing = min(abs(signed), abs(p.qty))
            p.realized += closing * (fill.price - p.avg_price) * (1 if p.qty > 0 else -1)
            p.qty = round(p.qty + signed, 12)
            if p.qty == 0:
                p.avg_price = 0.0
            elif (p.qty > 0) == (signed > 0):
                p.avg_price = fill.price
        p.extra["volume"] = p.extra.get("volume", 0.0) + abs(fill.qty)
        p.extra["fees"] = p.extra.get("fees", 0.0) + fill.fee
