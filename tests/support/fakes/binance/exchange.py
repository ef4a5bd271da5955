"""Orders, fills and accounts of the fake Binance, on top of the SIM matching engine.

Orders of the API user go into the same SIM FIFO books the background flow trades against
(owner 1), so they rest, get filled by flow and show up in the public streams like anyone's.
Each order change produces a spot `executionReport` or a futures `ORDER_TRADE_UPDATE` for the
user-data subscribers. Answers and error codes follow Binance's (`{"code": -N, "msg": …}`).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from decimal import Decimal

from sq.venues.sim import matching as M
from sq.venues.sim.state import LADDER_WIDTH

from tests.support.fakes.binance.market import FakeMarket, fmt


class ApiError(Exception):
    def __init__(self, http: int, code: int, msg: str):
        super().__init__(msg)
        self.http, self.code, self.msg = http, code, msg


@dataclass
class Order:
    market: str
    symbol: str
    order_id: int
    client_id: str
    side: str
    type: str
    tif: str
    price: float
    qty: float
    oid: int  # SIM order id
    slot: int = -1
    executed: float = 0.0
    quote: float = 0.0
    status: str = "NEW"
    time: int = 0
    update: int = 0
    fills: list = field(default_factory=list)
    stop_price: float = 0.0  # spot STOP_LOSS / TAKE_PROFIT (…_LIMIT): resting off the book until triggered
    triggered: bool = False
    reduce_only: bool = False
    list_id: int = -1  # the OCO order list it is a leg of

    def doc(self) -> dict:
        d = {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": self.list_id, "clientOrderId": self.client_id,
            "price": fmt(self.price if self.type != "MARKET" else 0.0), "origQty": fmt(self.qty), "executedQty": fmt(self.executed),
            "cummulativeQuoteQty": fmt(self.quote), "status": self.status, "timeInForce": self.tif, "type": self.type,
            "side": self.side, "time": self.time, "updateTime": self.update, "isWorking": not self.stop_price or self.triggered,
            "workingTime": self.time, "stopPrice": fmt(self.stop_price),
        }
        if self.market == "futures":
            d.update(avgPrice=fmt(self.quote / self.executed if self.executed else 0.0), cumQuote=fmt(self.quote),
                     reduceOnly=self.reduce_only, positionSide="BOTH", closePosition=False)
        return d


SPOT_STOPS = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
ALGO_TYPES = ("STOP", "TAKE_PROFIT", "STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
CALLBACK_RATE = (0.1, 10.0)


def crossed(kind: str, side: str, px: float, trigger: float) -> bool:
    """Has `px` crossed a stop's (against the position) or a take-profit's (in its favour) trigger?"""
    stop = kind.startswith("STOP")
    if side == "BUY":
        return px >= trigger if stop else px <= trigger
    return px <= trigger if stop else px >= trigger


@dataclass
class AlgoOrder:
    """A futures conditional order in the Algo Service (POST /fapi/v1/algoOrder)."""

    algo_id: int
    client_id: str
    symbol: str
    side: str
    type: str
    qty: float
    price: float
    trigger: float
    tif: str
    working_type: str
    reduce_only: bool
    callback_rate: float = 0.0
    activate_price: float = 0.0
    status: str = "NEW"
    actual_order_id: int = 0
    extreme: float = 0.0  # trailing stop: best price since activation
    active: bool = False
    time: int = 0
    update: int = 0

    def doc(self) -> dict:
        return {"algoId": self.algo_id, "clientAlgoId": self.client_id, "algoType": "CONDITIONAL", "orderType": self.type,
                "symbol": self.symbol, "side": self.side, "positionSide": "BOTH", "timeInForce": self.tif, "quantity": fmt(self.qty),
                "algoStatus": self.status, "actualOrderId": str(self.actual_order_id or ""), "triggerPrice": fmt(self.trigger),
                "price": fmt(self.price), "workingType": self.working_type, "reduceOnly": self.reduce_only, "closePosition": False,
                "priceProtect": False, "activatePrice": fmt(self.activate_price), "callbackRate": fmt(self.callback_rate),
                "createTime": self.time, "updateTime": self.update}


def _dec_ok(x: float, step: float) -> bool:
    return (Decimal(repr(x)) / Decimal(repr(step))) % 1 == 0


class Exchange:
    """Order entry and account state for every market of the fake; callers hold the fake's lock."""

    def __init__(self, markets: dict[tuple[str, str], FakeMarket], emit_user_event):
        self.markets = markets
        self.emit = emit_user_event  # (market, event dict) -> None
        self.orders: dict[tuple[str, int], Order] = {}
        self.by_oid: dict[tuple[str, str, int], Order] = {}
        self.trades: list[dict] = []
        self._ids = itertools.count(10_000)
        self._oids = itertools.count(1)
        self._trade_ids = itertools.count(500_000)
        self.positions: dict[str, dict] = {}
        self.leverage: dict[str, int] = {}
        self.margin_type: dict[str, str] = {}
        self.dual_side = False
        self.balances = {"USDT": 100_000.0, "BTC": 2.0}
        self.algos: dict[int, AlgoOrder] = {}
        self.lists: dict[int, dict] = {}  # OCO order lists: {"cid", "symbol", "legs": [Order, Order], "status"}
        self._list_ids = itertools.count(7_000)
        self._algo_ids = itertools.count(3_000_000)
        self.triggered: list[tuple[str, str, float]] = []  # (client id, price kind, price) of each trigger
        # commission: (market, symbol) → (maker, taker) fractions of notional (default maker 0, taker
        # 0.1 %); with `bnb[market]` the account pays in BNB: spot × the `discount` its commission
        # endpoint reports, futures × 0.9 (the fee is still reported in USDT here)
        self.commission: dict[tuple[str, str], tuple[float, float]] = {}
        self.bnb = {"spot": False, "futures": False}
        self.bnb_discount = {"spot": 0.75, "futures": 0.9}
        self.income: list[dict] = []  # futures income history (FUNDING_FEE rows), oldest first
        self.funding_history: list[dict] = []  # settled funding rates: {symbol, fundingTime, fundingRate, markPrice}
        self._tran_ids = itertools.count(9_000_000)

    # ------------------------------------------------------------------ helpers

    def market(self, market: str, symbol: str) -> FakeMarket:
        m = self.markets.get((market, symbol))
        if m is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return m

    def find(self, market: str, symbol: str, order_id=None, client_id=None) -> Order:
        for o in self.orders.values():
            if o.market == market and o.symbol == symbol and (
                (order_id is not None and o.order_id == int(order_id)) or (client_id is not None and o.client_id == client_id)
            ):
                return o
        raise ApiError(400, -2013, "Order does not exist.")

    # ------------------------------------------------------------------ order entry

    def place(self, market: str, p: dict) -> dict:
        symbol = p.get("symbol", "")
        m = self.market(market, symbol)
        side, typ = p.get("side", ""), p.get("type", "")
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        if market == "futures" and typ in ALGO_TYPES:
            raise ApiError(400, -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.")
        if market == "spot" and ("reduceOnly" in p or "workingType" in p):  # spot reads no such parameter
            raise ApiError(400, -1104, f"Not all sent parameters were read; read '{len(p) - 1}' parameter(s) but was sent '{len(p)}'.")
        stop = typ in SPOT_STOPS and market == "spot"
        if typ not in ("LIMIT", "LIMIT_MAKER", "MARKET") and not stop:
            raise ApiError(400, -1116, "Invalid orderType.")
        stop_price = 0.0
        if stop:
            try:
                stop_price = float(p["stopPrice"])
            except (KeyError, ValueError):
                raise ApiError(400, -1102, "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.")
            if typ.endswith("_LIMIT") and "timeInForce" not in p:
                raise ApiError(400, -1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.")
        reduce = str(p.get("reduceOnly", "false")).lower() == "true"
        if reduce:
            amt = self.positions.get(symbol, {"amt": 0.0})["amt"]
            if amt == 0 or (amt > 0) == (side == "BUY") or float(p.get("quantity") or 0) > abs(amt) + 1e-12:
                raise ApiError(400, -2022, "ReduceOnly Order is rejected.")
        try:
            qty = float(p["quantity"])
        except (KeyError, ValueError):
            raise ApiError(400, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        tif = p.get("timeInForce", "GTC" if typ == "LIMIT" else "")
        price = 0.0
        spec = m.spec
        if typ not in ("MARKET", "STOP_LOSS", "TAKE_PROFIT"):
            try:
                price = float(p["price"])
            except (KeyError, ValueError):
                raise ApiError(400, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
            if not _dec_ok(price, spec.tick_size):
                raise ApiError(400, -1013, "Filter failure: PRICE_FILTER")
        if qty < spec.min_qty or qty > spec.max_qty or not _dec_ok(qty, spec.step_size):
            raise ApiError(400, -1013, "Filter failure: LOT_SIZE")
        ref = price if price else (stop_price or (m.best()[1] if side == "BUY" else m.best()[0]))
        if ref * qty < spec.min_notional:
            raise ApiError(400, -1013, "Filter failure: NOTIONAL")
        cid = p.get("newClientOrderId") or f"fake-{next(self._oids)}"
        for o in self.orders.values():
            if o.market == market and o.client_id == cid and o.status in ("NEW", "PARTIALLY_FILLED"):
                raise ApiError(400, -2010, "Duplicate order sent.")
        now = int(time.time() * 1000)
        o = Order(market, symbol, next(self._ids), cid, side, typ, tif or "GTC", price, qty, next(self._oids), time=now, update=now,
                  stop_price=stop_price, reduce_only=reduce)
        if stop:  # rests off the book until the last trade crosses its stop price (`check_triggers`)
            self.orders[(market, o.order_id)] = o
            self.by_oid[(market, symbol, o.oid)] = o
            self._report(o, "NEW")
            doc = o.doc()
            doc["transactTime"] = now
            doc["fills"] = []
            return doc
        return self._submit(m, o, now)

    def _submit(self, m: FakeMarket, o: Order, now: int) -> dict:
        """Put an order (new, or a stop just triggered) into the SIM book; its answer."""
        market, symbol, side, price, qty, tif = o.market, o.symbol, o.side, o.price, o.qty, o.tif
        typ = {"STOP_LOSS": "MARKET", "TAKE_PROFIT": "MARKET", "STOP_LOSS_LIMIT": "LIMIT", "TAKE_PROFIT_LIMIT": "LIMIT"}.get(o.type, o.type)
        sim = m.sim
        si = 0 if side == "BUY" else 1
        lots = sim.to_lots(qty)
        if typ == "MARKET":
            lvl, code = ((LADDER_WIDTH - 1) if si == 0 else 0), M.TIF_IOC
        else:
            lvl = sim.to_level(price)
            if lvl is None:  # beyond the SIM ladder: the fake's stand-in for Binance's PERCENT_PRICE filter
                raise ApiError(400, -1013, "Filter failure: PERCENT_PRICE_BY_SIDE")
            code = {"GTC": M.TIF_GTC, "IOC": M.TIF_IOC, "FOK": M.TIF_FOK}.get(tif, M.TIF_GTC)
            if typ == "LIMIT_MAKER":
                code = M.TIF_POST_ONLY
        if not o.stop_price:
            self.orders[(market, o.order_id)] = o
            self.by_oid[(market, symbol, o.oid)] = o
            self._report(o, "NEW")
        res, rem, slot = sim.submit(si, lvl, lots, code, o.oid, max(time.time_ns(), sim.now))
        m.absorb_pending()
        self.collect_fills(market, symbol)
        if res == M.REJECT_POST_ONLY:
            o.status = "EXPIRED"
            self._report(o, "EXPIRED")
            raise ApiError(400, -2010, "Order would immediately match and take.")
        if res == M.REJECT_FOK:
            o.status = "EXPIRED"
            self._report(o, "EXPIRED")
        elif res == M.REJECT_NO_SLOT:
            raise ApiError(503, -1008, "Server is currently overloaded with other requests. Please try again in a few minutes.")
        else:
            o.slot = slot
            if slot < 0 and o.status in ("NEW", "PARTIALLY_FILLED"):
                o.status = "EXPIRED"
                self._report(o, "EXPIRED")
        doc = o.doc()
        doc["transactTime"] = now
        doc["fills"] = [dict(f) for f in o.fills]
        return doc

    def cancel(self, market: str, p: dict) -> dict:
        symbol = p.get("symbol", "")
        m = self.market(market, symbol)
        try:
            o = self.find(market, symbol, p.get("orderId"), p.get("origClientOrderId"))
        except ApiError:
            raise ApiError(400, -2011, "Unknown order sent.")
        if o.status == "NEW" and o.stop_price and not o.triggered:  # a stop still off the book
            o.status = "CANCELED"
            o.update = int(time.time() * 1000)
            self._report(o, "CANCELED")
            return dict(o.doc(), origClientOrderId=o.client_id)
        if o.status not in ("NEW", "PARTIALLY_FILLED") or o.slot < 0:
            raise ApiError(400, -2011, "Unknown order sent.")
        q = m.sim.cancel(o.slot, o.oid, max(time.time_ns(), m.sim.now))
        m.absorb_pending()
        if q < 0:
            raise ApiError(400, -2011, "Unknown order sent.")
        o.status = "CANCELED"
        o.slot = -1
        o.update = int(time.time() * 1000)
        self._report(o, "CANCELED")
        doc = o.doc()
        doc["origClientOrderId"] = o.client_id
        return doc

    def cancel_all(self, market: str, symbol: str) -> list[dict]:
        self.market(market, symbol)
        out = []
        for o in list(self.orders.values()):
            if o.market == market and o.symbol == symbol and o.status in ("NEW", "PARTIALLY_FILLED"):
                out.append(self.cancel(market, {"symbol": symbol, "orderId": o.order_id}))
        return out

    def open_orders(self, market: str, symbol: str | None) -> list[dict]:
        if symbol:
            self.market(market, symbol)
        return [o.doc() for o in self.orders.values()
                if o.market == market and (not symbol or o.symbol == symbol) and o.status in ("NEW", "PARTIALLY_FILLED")]

    # ------------------------------------------------------------------ spot OCO order lists

    def place_oco(self, p: dict) -> dict:
        """POST /api/v3/orderList/oco: an above and a below leg, one LIMIT_MAKER and one STOP_LOSS
        (…_LIMIT), the prices around the last trade as Binance requires; when one leg fills or
        triggers the other is canceled."""
        symbol, side = p.get("symbol", ""), p.get("side", "")
        m = self.market("spot", symbol)
        legs = {}
        for where in ("above", "below"):
            typ = p.get(f"{where}Type", "")
            if typ not in ("LIMIT_MAKER", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"):
                raise ApiError(400, -1102, f"Mandatory parameter '{where}Type' was not sent, was empty/null, or malformed.")
            legs[where] = typ
        stops = [w for w, t in legs.items() if t.startswith("STOP")]
        if len(stops) != 1:
            raise ApiError(400, -1106, "Parameter 'belowType' sent when not required." if not stops else "OCO needs one stop leg.")
        bid, ask = m.best()
        last = m.trades[-1][2] if m.trades else (bid + ask) / 2
        px = {w: float(p.get(f"{w}StopPrice") or p.get(f"{w}Price") or 0) for w in legs}
        if not px["above"] > last > px["below"]:
            raise ApiError(400, -2010, "The relationship of the prices for the orders is not correct.")
        lid = next(self._list_ids)
        cid = p.get("listClientOrderId") or f"list-{lid}"
        orders = []
        for where, typ in legs.items():
            q = {"symbol": symbol, "side": side, "quantity": p.get("quantity"), "type": typ,
                 "newClientOrderId": p.get(f"{where}ClientOrderId") or f"{cid}-{where}"}
            if typ.startswith("STOP") or typ.startswith("TAKE_PROFIT"):
                q["stopPrice"] = p.get(f"{where}StopPrice")
            if typ in ("LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
                q["price"] = p.get(f"{where}Price")
            if typ.endswith("_LIMIT"):
                q["timeInForce"] = p.get(f"{where}TimeInForce", "GTC")
            self.place("spot", q)
            orders.append(self.find("spot", symbol, client_id=q["newClientOrderId"]))
        for o in orders:
            o.list_id = lid
        self.lists[lid] = {"cid": cid, "symbol": symbol, "legs": orders, "status": "EXEC_STARTED"}
        return self.list_doc(lid)

    def list_doc(self, lid: int) -> dict:
        lst = self.lists[lid]
        done = all(o.status not in ("NEW", "PARTIALLY_FILLED") for o in lst["legs"])
        return {"orderListId": lid, "contingencyType": "OCO", "listStatusType": "ALL_DONE" if done else "EXEC_STARTED",
                "listOrderStatus": "ALL_DONE" if done else "EXECUTING", "listClientOrderId": lst["cid"],
                "transactionTime": int(time.time() * 1000), "symbol": lst["symbol"],
                "orders": [{"symbol": o.symbol, "orderId": o.order_id, "clientOrderId": o.client_id} for o in lst["legs"]],
                "orderReports": [o.doc() for o in lst["legs"]]}

    def find_list(self, p: dict) -> int:
        for lid, lst in self.lists.items():
            if str(lid) == str(p.get("orderListId")) or lst["cid"] in (p.get("listClientOrderId"), p.get("origClientOrderId")):
                return lid
        raise ApiError(400, -2011, "Order list does not exist.")

    def cancel_list(self, p: dict) -> dict:
        lid = self.find_list(p)
        for o in self.lists[lid]["legs"]:
            if o.status in ("NEW", "PARTIALLY_FILLED"):
                self.cancel("spot", {"symbol": o.symbol, "orderId": o.order_id})
        return self.list_doc(lid)

    def _one_cancels_the_other(self, o: Order) -> None:
        """A leg of an OCO filled or triggered: cancel its sibling."""
        if o.list_id < 0 or o.list_id not in self.lists:
            return
        for other in self.lists[o.list_id]["legs"]:
            if other is not o and other.status in ("NEW", "PARTIALLY_FILLED"):
                self.cancel("spot", {"symbol": other.symbol, "orderId": other.order_id})

    # ------------------------------------------------------------------ conditional orders and triggers

    def place_algo(self, p: dict) -> dict:
        """POST /fapi/v1/algoOrder: a futures conditional order, checked as Binance checks it."""
        symbol = p.get("symbol", "")
        m = self.market("futures", symbol)
        if p.get("algoType") != "CONDITIONAL":
            raise ApiError(400, -1116, "Invalid algoType.")
        typ, side = p.get("type", ""), p.get("side", "")
        if typ not in ALGO_TYPES:
            raise ApiError(400, -1116, "Invalid orderType.")
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        wt = p.get("workingType", "CONTRACT_PRICE")
        if wt not in ("MARK_PRICE", "CONTRACT_PRICE"):
            raise ApiError(400, -1116, "Invalid workingType.")
        try:
            qty = float(p["quantity"])
        except (KeyError, ValueError):
            raise ApiError(400, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        if qty < m.spec.min_qty or not _dec_ok(qty, m.spec.step_size):
            raise ApiError(400, -1013, "Filter failure: LOT_SIZE")
        trig = price = rate = act = 0.0
        if typ == "TRAILING_STOP_MARKET":
            rate = float(p.get("callbackRate") or 0)
            if not CALLBACK_RATE[0] <= rate <= CALLBACK_RATE[1]:
                raise ApiError(400, -2007, "Invalid callBack rate.")
            act = float(p.get("activatePrice") or 0)
        else:
            try:
                trig = float(p["triggerPrice"])
            except (KeyError, ValueError):
                raise ApiError(400, -1102, "Mandatory parameter 'triggerPrice' was not sent, was empty/null, or malformed.")
            if not _dec_ok(trig, m.spec.tick_size):
                raise ApiError(400, -1013, "Filter failure: PRICE_FILTER")
        if typ in ("STOP", "TAKE_PROFIT"):
            try:
                price = float(p["price"])
            except (KeyError, ValueError):
                raise ApiError(400, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
        cid = p.get("clientAlgoId") or f"algo-{next(self._oids)}"
        if any(a.client_id == cid and a.status == "NEW" for a in self.algos.values()):
            raise ApiError(400, -2010, "Duplicate order sent.")
        now = int(time.time() * 1000)
        a = AlgoOrder(next(self._algo_ids), cid, symbol, side, typ, qty, price, trig, p.get("timeInForce", "GTC"), wt,
                      str(p.get("reduceOnly", "false")).lower() == "true", rate, act, time=now, update=now)
        self.algos[a.algo_id] = a
        return a.doc()

    def find_algo(self, p: dict) -> AlgoOrder:
        for a in self.algos.values():
            if str(a.algo_id) == str(p.get("algoId")) or (p.get("clientAlgoId") and a.client_id == p.get("clientAlgoId")):
                return a
        raise ApiError(400, -2013, "Order does not exist.")

    def cancel_algo(self, p: dict) -> dict:
        a = self.find_algo(p)
        if a.status != "NEW":
            raise ApiError(400, -2011, "Unknown order sent.")
        a.status, a.update = "CANCELED", int(time.time() * 1000)
        return {"algoId": a.algo_id, "clientAlgoId": a.client_id, "code": "200", "msg": "success"}

    def open_algos(self, symbol: str | None) -> list[dict]:
        return [a.doc() for a in self.algos.values() if a.status == "NEW" and (not symbol or a.symbol == symbol)]

    def cancel_all_algos(self, symbol: str) -> None:
        for a in self.algos.values():
            if a.status == "NEW" and a.symbol == symbol:
                a.status = "CANCELED"

    def check_triggers(self, market: str, symbol: str, last: float | None, mark: float) -> None:
        """Trigger the stops of `symbol` whose price crossed: spot stops on the last trade, futures
        conditional orders on the last trade (CONTRACT_PRICE) or the mark (MARK_PRICE); a triggered
        order enters the book as a limit (…_LIMIT, STOP, TAKE_PROFIT) or a market order."""
        m = self.markets[(market, symbol)]
        now = int(time.time() * 1000)
        for o in list(self.orders.values()):
            if (o.market == market and o.symbol == symbol and o.stop_price and not o.triggered and o.status == "NEW"
                    and last is not None and crossed(o.type, o.side, last, o.stop_price)):
                o.triggered = True
                self.triggered.append((o.client_id, "CONTRACT_PRICE", last))
                self._one_cancels_the_other(o)
                try:
                    self._submit(m, o, now)
                except ApiError:
                    o.status = "EXPIRED"
        if market != "futures":
            return
        for a in list(self.algos.values()):
            if a.status != "NEW" or a.symbol != symbol:
                continue
            px = mark if a.working_type == "MARK_PRICE" else last
            if px is None:
                continue
            if a.type == "TRAILING_STOP_MARKET":
                if not a.active:
                    a.active = not a.activate_price or crossed("TAKE_PROFIT", a.side, px, a.activate_price)
                    a.extreme = px
                    continue
                a.extreme = max(a.extreme, px) if a.side == "SELL" else min(a.extreme, px)
                back = a.extreme * (1 - a.callback_rate / 100) if a.side == "SELL" else a.extreme * (1 + a.callback_rate / 100)
                fire = px <= back if a.side == "SELL" else px >= back
            else:
                fire = crossed(a.type, a.side, px, a.trigger)
            if not fire:
                continue
            a.status, a.update = "TRIGGERED", now
            self.triggered.append((a.client_id, a.working_type, px))
            q = {"symbol": symbol, "side": a.side, "quantity": fmt(a.qty), "newClientOrderId": a.client_id,
                 "type": "LIMIT" if a.type in ("STOP", "TAKE_PROFIT") else "MARKET"}
            if q["type"] == "LIMIT":
                q.update(price=fmt(a.price), timeInForce=a.tif)
            if a.reduce_only:
                q["reduceOnly"] = "true"
            try:
                a.actual_order_id = int(self.place("futures", q)["orderId"])
                a.status = "FINISHED"
            except ApiError:
                a.status = "EXPIRED"  # e.g. a reduce-only order with no position left to reduce

    # ------------------------------------------------------------------ fills and reports

    def collect_fills(self, market: str, symbol: str) -> None:
        """Turn the SIM engine's fills of our orders into order updates, trades and reports."""
        m = self.markets[(market, symbol)]
        f = m.sim.take_fills()
        for i in range(len(f)):
            o = self.by_oid.get((market, symbol, int(f.oid[i])))
            if o is None:
                continue
            px, q = float(f.price[i]), float(f.qty[i])
            o.executed = round(o.executed + q, 10)
            o.quote += px * q
            o.update = int(f.ts[i] // 1_000_000)
            o.status = "FILLED" if o.executed >= o.qty - 1e-12 else "PARTIALLY_FILLED"
            if o.status == "FILLED":
                o.slot = -1
            if not o.stop_price:
                self._one_cancels_the_other(o)
            maker = int(f.liquidity[i]) == M.LIQ_MAKER
            tid = next(self._trade_ids)
            fee = px * q * self.fee_rate(market, symbol, maker)
            o.fills.append({"price": fmt(px), "qty": fmt(q), "commission": fmt(fee), "commissionAsset": "USDT", "tradeId": tid})
            self.trades.append({"market": market, "symbol": symbol, "id": tid, "orderId": o.order_id, "price": fmt(px), "qty": fmt(q),
                                "quoteQty": fmt(px * q), "commission": fmt(fee), "commissionAsset": "USDT", "time": o.update,
                                "isBuyer": o.side == "BUY", "isMaker": maker, "isBestMatch": True, "side": o.side, "maker": maker})
            if market == "futures":
                pos = self.positions.setdefault(symbol, {"amt": 0.0, "entry": 0.0})
                signed = q if o.side == "BUY" else -q
                new = pos["amt"] + signed
                if pos["amt"] == 0 or (pos["amt"] > 0) == (signed > 0):
                    pos["entry"] = (pos["entry"] * abs(pos["amt"]) + px * q) / abs(new) if new else 0.0
                pos["amt"] = round(new, 10)
            self._report(o, "TRADE", last_qty=q, last_px=px, trade_id=tid, maker=maker, fee=fee)

    def _report(self, o: Order, exec_type: str, last_qty=0.0, last_px=0.0, trade_id=-1, maker=False, fee=0.0) -> None:
        now = int(time.time() * 1000)
        if o.market == "spot":
            ev = {"e": "executionReport", "E": now, "s": o.symbol, "c": o.client_id, "S": o.side, "o": o.type, "f": o.tif,
                  "q": fmt(o.qty), "p": fmt(o.price), "P": fmt(0), "F": fmt(0), "g": -1, "C": "", "x": exec_type, "X": o.status,
                  "r": "NONE", "i": o.order_id, "l": fmt(last_qty), "z": fmt(o.executed), "L": fmt(last_px), "n": fmt(fee),
                  "N": "USDT" if trade_id >= 0 else None, "T": o.update, "t": trade_id, "I": o.oid, "w": o.status == "NEW",
                  "m": maker, "M": False, "O": o.time, "Z": fmt(o.quote), "Y": fmt(last_px * last_qty), "Q": fmt(0)}
        else:
            ev = {"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": {
                "s": o.symbol, "c": o.client_id, "S": o.side, "o": o.type, "f": o.tif, "q": fmt(o.qty), "p": fmt(o.price),
                "ap": fmt(o.quote / o.executed if o.executed else 0), "sp": "0", "x": exec_type, "X": o.status, "i": o.order_id,
                "l": fmt(last_qty), "z": fmt(o.executed), "L": fmt(last_px), "N": "USDT", "n": fmt(fee), "T": o.update,
                "t": max(trade_id, 0), "b": "0", "a": "0", "m": maker, "R": False, "ps": "BOTH", "rp": "0"}}
        self.emit(o.market, ev)

    # ------------------------------------------------------------------ commission and funding

    def fee_rate(self, market: str, symbol: str, maker: bool) -> float:
        """The fraction of notional this account pays on a fill (BNB discount included)."""
        mk, tk = self.commission.get((market, symbol), (0.0, 0.001))
        return (mk if maker else tk) * (self.bnb_discount[market] if self.bnb[market] else 1.0)

    def spot_commission(self, symbol: str) -> dict:
        self.market("spot", symbol)
        mk, tk = self.commission.get(("spot", symbol), (0.0, 0.001))
        return {"symbol": symbol, "standardCommission": {"maker": fmt(mk), "taker": fmt(tk), "buyer": "0", "seller": "0"},
                "taxCommission": {"maker": "0", "taker": "0", "buyer": "0", "seller": "0"},
                "discount": {"enabledForAccount": self.bnb["spot"], "enabledForSymbol": True, "discountAsset": "BNB",
                             "discount": fmt(self.bnb_discount["spot"])}}

    def futures_commission(self, symbol: str) -> dict:
        self.market("futures", symbol)
        mk, tk = self.commission.get(("futures", symbol), (0.0, 0.001))
        return {"symbol": symbol, "makerCommissionRate": fmt(mk), "takerCommissionRate": fmt(tk)}

    def settle_funding(self, symbol: str, rate: float, mark: float, t_ms: int) -> None:
        """A funding time: the position pays position × mark × rate (an income of the negative)."""
        self.funding_history.append({"symbol": symbol, "fundingTime": t_ms, "fundingRate": fmt(rate), "markPrice": fmt(mark)})
        amt = self.positions.get(symbol, {"amt": 0.0})["amt"]
        if amt:
            income = -amt * mark * rate
            self.balances["USDT"] += income
            self.income.append({"symbol": symbol, "incomeType": "FUNDING_FEE", "income": fmt(income), "asset": "USDT",
                                "info": "FUNDING_FEE", "time": t_ms, "tranId": next(self._tran_ids), "tradeId": ""})

    def income_history(self, p: dict) -> list[dict]:
        lo, hi = int(p.get("startTime", 0)), int(p.get("endTime", 2**62))
        kind, sym = p.get("incomeType"), p.get("symbol")
        out = [r for r in self.income if lo <= r["time"] <= hi and (not kind or r["incomeType"] == kind) and (not sym or r["symbol"] == sym)]
        return out[: int(p.get("limit", 100))]

    # ------------------------------------------------------------------ accounts

    def account(self, market: str) -> dict:
        if market == "spot":
            return {"makerCommission": 0, "takerCommission": 10, "canTrade": True, "canWithdraw": False, "canDeposit": True,
                    "accountType": "SPOT", "updateTime": int(time.time() * 1000), "permissions": ["SPOT"],
                    "balances": [{"asset": a, "free": fmt(v), "locked": fmt(0)} for a, v in self.balances.items()]}
        return {"totalWalletBalance": fmt(self.balances["USDT"]), "availableBalance": fmt(self.balances["USDT"]), "canTrade": True,
                "assets": [{"asset": "USDT", "walletBalance": fmt(self.balances["USDT"])}],
                "positions": [{"symbol": s, "positionAmt": fmt(p["amt"])} for s, p in self.positions.items()]}

    def position_risk(self, symbol: str | None) -> list[dict]:
        out = []
        for (mk, s), m in self.markets.items():
            if mk != "futures" or (symbol and s != symbol):
                continue
            pos = self.positions.get(s, {"amt": 0.0, "entry": 0.0})
            b, a = m.best()
            mark = (b + a) / 2
            out.append({"symbol": s, "positionAmt": fmt(pos["amt"]), "entryPrice": fmt(pos["entry"]), "markPrice": fmt(mark),
                        "unRealizedProfit": fmt((mark - pos["entry"]) * pos["amt"]), "leverage": str(self.leverage.get(s, 20)),
                        "marginType": self.margin_type.get(s, "cross"), "positionSide": "BOTH", "isolatedMargin": fmt(0)})
        return out

    def my_trades(self, market: str, symbol: str) -> list[dict]:
        self.market(market, symbol)
        keys = ("symbol", "id", "orderId", "price", "qty", "quoteQty", "commission", "commissionAsset", "time")
        out = []
        for t in self.trades:
            if t["market"] == market and t["symbol"] == symbol:
                d = {k: t[k] for k in keys}
                if market == "spot":
                    d.update(isBuyer=t["isBuyer"], isMaker=t["isMaker"], isBestMatch=True)
                else:
                    d.update(side=t["side"], maker=t["maker"], buyer=t["isBuyer"], positionSide="BOTH", realizedPnl="0")
                out.append(d)
        return out
