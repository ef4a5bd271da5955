"""Orders placed at the fake Kite server rest in, and trade against, the SIM matching engine.

A regular LIMIT/MARKET order on an instrument with a SIM book is submitted to that book (price-
time FIFO behind the background flow); its fills — at once when marketable, later when the flow
takes it out — update the Kite order dict (filled/pending quantity, average price, status), add a
Kite-shaped trade, and go out as ticker order postbacks. Cancel and modify act on the resting SIM
order. Orders on instruments without a SIM book (or other varieties) just rest OPEN.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sq.venues.sim import matching as M
from sq.venues.sim.state import LADDER_WIDTH

if TYPE_CHECKING:  # pragma: no cover
    from tests.support.fakes.kite import KiteFake


class FakeMatching:
    def __init__(self, fake: "KiteFake"):
        self.fake = fake
        self.slots: dict[str, tuple[int, int, int]] = {}  # order id → (token, sim oid, slot)
        self.by_sim: dict[tuple[int, int], str] = {}  # (token, sim oid) → order id
        self._next = 1
        self.trades: list[dict] = []
        self.stops: dict[str, dict] = {}  # SL / SL-M orders waiting for their trigger
        self.triggered: list[tuple[str, float]] = []  # (order id, last price) of each trigger

    def _now(self, token: int) -> int:
        book = self.fake.market.books[token]
        return max(time.time_ns(), book.now)

    def submit(self, order: dict) -> list[dict]:
        """Put a new Kite order dict into its SIM book; return order dicts to post back. Caller holds fake.lock."""
        token = order["instrument_token"]
        book = self.fake.market.books.get(token)
        if book is not None and order["variety"] == "regular" and order["order_type"] in ("SL", "SL-M") and not order.get("triggered"):
            order["status"] = "TRIGGER PENDING"  # waits off the book until the last price crosses its trigger
            self.stops[order["order_id"]] = order
            return []
        if book is None or order["variety"] != "regular" or order["order_type"] not in ("LIMIT", "MARKET", "SL", "SL-M"):
            return []
        lots = book.to_lots(float(order["quantity"]))
        si = 0 if order["transaction_type"] == "BUY" else 1
        if order["order_type"] in ("MARKET", "SL-M"):
            lvl, tif = ((LADDER_WIDTH - 1) if si == 0 else 0), M.TIF_IOC
        else:
            lvl, tif = book.to_level(float(order["price"])), (M.TIF_IOC if order["validity"] == "IOC" else M.TIF_GTC)
        if lots is None or lvl is None:
            order.update(status="REJECTED", status_message="Price or quantity off the instrument's grid")
            return [order]
        oid = self._next
        self._next += 1
        if not self.fake.paused:  # a paused market (a test's scripted moment) stays where it is
            self.fake.market.advance(time.time_ns())
        res, rem, slot = book.submit(si, lvl, lots, tif, oid, self._now(token))
        self.by_sim[(token, oid)] = order["order_id"]
        if slot >= 0:
            self.slots[order["order_id"]] = (token, oid, slot)
        changed = self.collect()
        if slot < 0 and order["status"] == "OPEN":  # IOC / market remainder
            order.update(status="CANCELLED", cancelled_quantity=order["pending_quantity"], pending_quantity=0)
        return changed if order in changed else changed + [order]

    def check_triggers(self) -> list[dict]:
        """Trigger the SL / SL-M orders whose last price crossed the trigger (a sell at or below
        it, a buy at or above): each enters its book as a LIMIT at its price (SL) or a MARKET
        (SL-M). Returns the orders that changed. Caller holds fake.lock."""
        changed = []
        for oid, o in list(self.stops.items()):
            if o["status"] != "TRIGGER PENDING":
                self.stops.pop(oid, None)
                continue
            last = float(self.fake.market.quote_entry(o["instrument_token"])["last_price"])
            sell = o["transaction_type"] == "SELL"
            if (last <= o["trigger_price"]) if sell else (last >= o["trigger_price"]):
                self.stops.pop(oid)
                self.triggered.append((oid, last))
                o.update(status="OPEN", triggered=True)
                changed += self.submit(o)
        return changed

    def cancel(self, order_id: str) -> bool:
        hit = self.slots.pop(order_id, None)
        if hit is None:
            return True  # not in a SIM book: the REST layer just marks it cancelled
        token, oid, slot = hit
        return self.fake.market.books[token].cancel(slot, oid, self._now(token)) >= 0

    def modify(self, order: dict) -> None:
        hit = self.slots.get(order["order_id"])
        if hit is None:
            return
        token, oid, slot = hit
        book = self.fake.market.books[token]
        lvl, lots = book.to_level(float(order["price"])), book.to_lots(float(order["pending_quantity"]))
        if lvl is None or lots is None:
            return
        _, _, nslot = book.modify(slot, oid, lvl, lots, self._now(token))
        if nslot >= 0:
            self.slots[order["order_id"]] = (token, oid, nslot)
        else:
            self.slots.pop(order["order_id"], None)

    def collect(self) -> list[dict]:
        """Apply pending SIM fills to their Kite orders; return the orders that changed."""
        changed = []
        for token, book in self.fake.market.books.items():
            f = book.take_fills()
            for i in range(len(f)):
                order_id = self.by_sim.get((token, int(f.oid[i])))
                o = self.fake.orders.get(order_id) if order_id else None
                if o is None:
                    continue
                q, px = int(round(float(f.qty[i]))), float(f.price[i])
                done = o["filled_quantity"]
                o["average_price"] = round((o["average_price"] * done + px * q) / (done + q), 4)
                o["filled_quantity"] = done + q
                o["pending_quantity"] = max(o["quantity"] - o["filled_quantity"], 0)
                if o["pending_quantity"] == 0:
                    o["status"] = "COMPLETE"
                    self.slots.pop(order_id, None)
                ts = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(f.ts[i]) / 1e9))
                self.trades.append({"trade_id": str(10_000_000 + len(self.trades)), "order_id": order_id, "exchange": o["exchange"],
                                    "tradingsymbol": o["tradingsymbol"], "instrument_token": token, "product": o["product"],
                                    "average_price": px, "quantity": q, "exchange_order_id": o.get("exchange_order_id"),
                                    "transaction_type": o["transaction_type"], "fill_timestamp": ts, "order_timestamp": ts[11:],
                                    "exchange_timestamp": ts})
                if o not in changed:
                    changed.append(o)
        return changed
