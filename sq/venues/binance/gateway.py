"""The Binance order gateway (sq.venues.base.OrderGateway) for spot and USD-M futures.

Orders are checked against the symbol's exchangeInfo filters first (price rounded to the tick
toward the passive side, quantity down to the step; anything still breaking a filter is refused
naming the filter, exit 2), then sent over REST (`BinanceRest`: weights, throttling, 429/418,
clock sync, error mapping). Every order carries a `newClientOrderId`, deterministic per gateway
run (`sq-<run>-<n>`) unless the request gives one, so a send whose answer was lost is retried
with the same id and a "Duplicate order" answer is resolved by querying that id — never two
orders. Execution reports (`UserStream`) update the order states and collect fills.
"""

from __future__ import annotations

import dataclasses

import itertools
import logging
import os
import re
import threading
import time
from decimal import Decimal

from sq.core.exits import SqError, UsageError, VenueUnavailable
from sq.core.symbols import parse_symbol
from sq.venues.base import PROTECTIVE_TYPES, Fill, GatewayBase, OrderRequest, OrderState, Position, PushCallback
from sq.venues.binance.endpoints import FUTURES, PREFIXES, SPOT, Endpoints, endpoints, market_of
from sq.venues.binance.instruments import ExchangeInfo, Rules
from sq.venues.binance.rest import BinanceRest, is_error
from sq.venues.binance.userstream import ExecReport, UserStream

log = logging.getLogger("sq.binance")

MS = 1_000_000
CLIENT_ID_RE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
STATUS = {"NEW": "accepted", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled", "CANCELED": "canceled",
          "PENDING_CANCEL": "accepted", "REJECTED": "rejected", "EXPIRED": "expired", "EXPIRED_IN_MATCH": "expired"}
TIF = {"gtc": "GTC", "ioc": "IOC", "fok": "FOK"}
# sq's protective order types → Binance's: spot on /api/v3/order, USD-M futures as conditional
# orders of the Algo Service (POST /fapi/v1/algoOrder, algoType CONDITIONAL; since 2025-12-09
# /fapi/v1/order answers -4120 for these types)
SPOT_TYPES = {"stop-limit": "STOP_LOSS_LIMIT", "take-profit-limit": "TAKE_PROFIT_LIMIT", "stop-market": "STOP_LOSS",
              "take-profit-market": "TAKE_PROFIT"}
FUTURES_TYPES = {"stop-limit": "STOP", "take-profit-limit": "TAKE_PROFIT", "stop-market": "STOP_MARKET",
                 "take-profit-market": "TAKE_PROFIT_MARKET", "trailing-stop": "TRAILING_STOP_MARKET"}
SQ_TYPES = {"LIMIT": "limit", "LIMIT_MAKER": "limit", "MARKET": "market", **{v: k for k, v in SPOT_TYPES.items()},
            **{v: k for k, v in FUTURES_TYPES.items()}}
CALLBACK_RATE = (0.1, 10.0)  # TRAILING_STOP_MARKET callbackRate, %


def _path(p: dict) -> str:
    """The REST path of an order's parameters: conditional futures orders go to the Algo Service,
    a spot OCO to the order-list endpoint."""
    return "algoOrder" if "algoType" in p else "orderList/oco" if "listClientOrderId" in p else "order"


def _protective(market: str, rules, request: OrderRequest, side: int, p: dict) -> dict:
    """The REST parameters of a stop / take-profit / trailing stop (`p`: the common ones).
    What Binance would refuse is refused here (UsageError), naming why."""
    kind = request.order_type
    limit = kind.endswith("-limit")
    trig = request.trigger_price
    if kind != "trailing-stop" and not (trig == trig and trig > 0):
        raise UsageError(f"a {kind} order needs a trigger price")
    tif = request.time_in_force
    if limit and tif not in TIF:
        raise UsageError(f"time in force {tif!r}: a {kind} order takes gtc, ioc or fok")
    if kind == "oco":
        if market != SPOT:
            raise UsageError("an oco is a Binance spot order list; on futures place a stop and a take-profit (reduce-only)")
        if request.reduce_only or request.working_price != "contract":
            raise UsageError("spot has no reduceOnly and triggers on the last trade only")
        if not (request.price == request.price and request.price > 0):
            raise UsageError("an oco needs a take-profit price")
        cid = p["newClientOrderId"]
        tp = {"Type": "LIMIT_MAKER", "Price": _fmt(rules.round_price(request.price, side)), "ClientOrderId": f"{cid}-tp"}
        sl = {"Type": "STOP_LOSS", "StopPrice": _fmt(rules.round_price(trig, -side)), "ClientOrderId": f"{cid}-sl"}
        slp = request.stop_limit_price
        if slp == slp and slp > 0:  # the stop leg as a limit beyond its trigger (a live strategy's slippage band)
            sl.update(Type="STOP_LOSS_LIMIT", Price=_fmt(rules.round_price(slp, side)), TimeInForce="GTC")
        above, below = (tp, sl) if side < 0 else (sl, tp)  # a sell takes profit above, a buy below
        q = {"symbol": p["symbol"], "side": p["side"], "quantity": p["quantity"], "listClientOrderId": cid, "newOrderRespType": "FULL"}
        q.update({f"above{k}": v for k, v in above.items()})
        q.update({f"below{k}": v for k, v in below.items()})
        return q
    if market == SPOT:
        if kind not in SPOT_TYPES:
            raise UsageError(f"{kind} is not offered on Binance spot (futures only)")
        if request.reduce_only:
            raise UsageError("reduce-only applies to futures (BINANCE-FUT:) only; spot has no reduceOnly")
        if request.working_price != "contract":
            raise UsageError("spot stops trigger on the last trade price only (no mark-price trigger)")
        p.update(type=SPOT_TYPES[kind], stopPrice=_fmt(rules.round_price(trig, -side)))
        if limit:
            p.update(price=_fmt(rules.round_price(request.price, side)), timeInForce=TIF[tif])
        return p
    q = {"algoType": "CONDITIONAL", "symbol": p["symbol"], "side": p["side"], "quantity": p["quantity"], "type": FUTURES_TYPES[kind],
         "clientAlgoId": p["newClientOrderId"], "workingType": "MARK_PRICE" if request.working_price == "mark" else "CONTRACT_PRICE"}
    if request.reduce_only:
        q["reduceOnly"] = "true"
    if kind == "trailing-stop":
        rate = request.trailing_pct
        if not (rate == rate and CALLBACK_RATE[0] <= rate <= CALLBACK_RATE[1]):
            raise UsageError(f"a trailing stop's callback rate must be {CALLBACK_RATE[0]:g}–{CALLBACK_RATE[1]:g} %; got {rate}")
        q["callbackRate"] = f"{rate:g}"
        act = request.activation_price
        if act == act and act > 0:
            q["activatePrice"] = _fmt(rules.round_price(act, -side))
        return q
    q["triggerPrice"] = _fmt(rules.round_price(trig, -side))
    if limit:
        q.update(price=_fmt(rules.round_price(request.price, side)), timeInForce=TIF[tif])
    return q


def run_id() -> str:
    """A short id for this gateway run: base36 of the start time (ms) and the pid."""
    n = (int(time.time() * 1000) << 16) ^ os.getpid()
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out[-10:]


def _fmt(d: Decimal) -> str:
    s = format(d.normalize(), "f")
    return s


UNKNOWN_ORDER_CODES = (-2013, -2011)  # "Order does not exist", "Unknown order sent"
REJECT_CODES = (-2010, -1013, -2021, -2022, -4164)  # the venue refused the order itself


class BinanceGateway(GatewayBase):
    """Orders on one Binance account; see the module docstring."""

    def __init__(self, rest: BinanceRest, ep: Endpoints, infos: dict[str, ExchangeInfo], *, run: str | None = None,
                 user_stream: UserStream | None = None):
        self.rest = rest
        self.endpoints = ep
        self.infos = infos
        self.run = run or run_id()
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self.orders: dict[str, OrderState] = {}
        self._algo: set[str] = set()  # client ids of futures conditional (algo) orders
        self._lists: set[str] = set()  # list client ids of spot OCO order lists
        self._requests: dict[str, OrderRequest] = {}  # client id → the request placed (a cancel-replace repeats it)
        self._fills: list[Fill] = []
        self._new: list[Fill] = []
        self._seen_trades: set[tuple[str, int]] = set()
        self.user_stream = user_stream
        self._listeners: list = []
        self._stream_auth: tuple = (None, None)

    def rate_usage(self) -> dict[str, float]:
        """The request weight (per minute) and order counts (per 10 s, per day) the last answers reported,
        as shares of Binance's limits (for the run's metrics)."""
        lim = getattr(self.rest, "limits", None)
        if lim is None:
            return {}
        return {"weight_1m": lim.used_weight / lim.weight_1m if lim.weight_1m else 0.0,
                "orders_10s": lim.orders_in_10s / lim.orders_10s if lim.orders_10s else 0.0,
                "orders_1d": lim.orders_today / lim.orders_1d if lim.orders_1d else 0.0}

    # ------------------------------------------------------------------ construction

    @classmethod
    def open(cls, config, env=None, *, testnet: bool = False, ed25519_key: str | None = None, user_stream: bool = True,
             markets: tuple[str, ...] | None = None, symbols=None, run: str | None = None, **rest_kw) -> "BinanceGateway":
        """Credentials from the config/env or `sq auth binance`, endpoints from the config, streams started.

        `markets` (spot, futures) are those of `symbols` when given, else spot; each gets its
        exchangeInfo and its execution-report stream. A market not among them is reached only
        when a symbol of it is first used (`_resolve`), so one market being unreachable never
        stops work on the other.
        """
        from sq.venues.binance import credentials
        from sq.venues.binance.signing import Signer

        if markets is None:
            markets = tuple(sorted({market_of(s) for s in symbols})) if symbols else (SPOT,)
        creds = credentials.resolve(config, ed25519_key)
        ep = endpoints(config.binance, testnet or creds.testnet)
        secret = creds.api_secret.reveal() if creds.api_secret else None
        rest = BinanceRest(ep, creds.api_key, None if creds.ed25519_key_file else secret, creds.ed25519_key_file, **rest_kw)
        infos = {m: ExchangeInfo.load(ep, m) for m in markets}
        gw = cls(rest, ep, infos, run=run)
        gw._stream_auth = (creds.api_key, lambda: Signer(secret, creds.ed25519_key_file))
        if user_stream:
            gw.start_user_stream(markets)
        return gw

    def start_user_stream(self, markets: tuple[str, ...]) -> None:
        """Open the execution-report streams of `markets` (spot, futures); returns once subscribed."""
        api_key, signer = self._stream_auth
        self.user_stream = UserStream(ws_api_url=self.endpoints.ws_api_url, futures_ws_url=self.endpoints.ws(FUTURES), api_key=api_key,
                                      signer=signer(), rest=self.rest, markets=markets, on_report=self._on_report).start()

    def close(self) -> None:
        if self.user_stream is not None:
            self.user_stream.close()

    def add_listener(self, callback) -> None:
        """Call `callback(client_order_id, state_copy, new_fills)` after each execution report has
        updated the gateway's own state (in the stream's thread: hand it on, do not block)."""
        self._listeners.append(callback)

    def pushing(self) -> bool:
        """Are the execution-report streams up (subscribed, not failed)? While not, order
        updates are only learnt by asking."""
        us = self.user_stream
        return us is not None and us.error is None and all(ev.is_set() for ev in us.subscribed.values())

    # ------------------------------------------------------------------ helpers

    def _resolve(self, symbol: str) -> tuple[str, Rules, str]:
        """(market, rules, canonical) of a Binance symbol; its market's exchangeInfo is loaded the
        first time a symbol of that market is used."""
        sym = parse_symbol(symbol)
        if sym.exchange not in PREFIXES:
            raise UsageError(f"{symbol} is not a Binance symbol")
        market = market_of(sym)
        info = self.infos.get(market)
        if info is None:
            info = self.infos[market] = ExchangeInfo.load(self.endpoints, market)
        return market, info.get(sym.name, sym.canonical), sym.canonical

    def next_client_id(self) -> str:
        return f"sq-{self.run}-{next(self._ids)}"

    def _state(self, doc: dict, canonical: str, side: int | None = None) -> OrderState:
        if "algoId" in doc:
            return self._algo_state(doc, canonical, side)
        if "listClientOrderId" in doc:
            return self._list_state(doc, canonical, side)
        cid = doc.get("clientOrderId") or doc.get("origClientOrderId") or ""
        st = OrderState(
            cid, str(doc.get("orderId", "")), canonical,
            side if side is not None else (1 if doc.get("side") == "BUY" else -1),
            float(doc.get("price") or 0) or float("nan"), float(doc.get("origQty") or 0),
            float(doc.get("executedQty") or 0), STATUS.get(doc.get("status", ""), "accepted"), "",
            int(doc.get("updateTime") or doc.get("transactTime") or doc.get("time") or 0) * MS,
        )
        st.order_type = SQ_TYPES.get(str(doc.get("type") or ""), "")
        if float(doc.get("stopPrice") or 0) > 0:
            st.trigger_price = float(doc["stopPrice"])
        with self._lock:
            self.orders[cid] = st
        return st

    def _list_state(self, doc: dict, canonical: str, side: int | None = None) -> OrderState:
        """A spot OCO order list's state: its list client id, `list:<orderListId>` as the venue id;
        working while the list executes, done (filled, or canceled) once ALL_DONE."""
        cid = doc.get("listClientOrderId") or ""
        reports = doc.get("orderReports") or []
        filled = sum(float(r.get("executedQty") or 0) for r in reports)
        qty = max([float(r.get("origQty") or 0) for r in reports] or [0.0])
        done = doc.get("listOrderStatus") == "ALL_DONE"
        status = "accepted" if not done else ("filled" if filled > 0 else "canceled")
        s = side if side is not None else (1 if (reports[0].get("side") if reports else "") == "BUY" else -1)
        tp = next((r for r in reports if r.get("type") == "LIMIT_MAKER"), {})
        sl = next((r for r in reports if r.get("type", "").startswith("STOP")), {})
        if float(sl.get("price") or 0) > 0 and cid not in self._requests:  # a list placed elsewhere: what a cancel-replace repeats
            self._requests[cid] = OrderRequest(canonical, s, qty, float(tp.get("price") or 0), "oco", "gtc", cid, float(sl.get("stopPrice") or 0),
                                               stop_limit_price=float(sl["price"]))
        st = OrderState(cid, f"list:{doc.get('orderListId', '')}", canonical, s, float(tp.get("price") or 0) or float("nan"), qty, filled,
                        status, "", int(doc.get("transactionTime") or 0) * MS, order_type="oco",
                        trigger_price=float(sl.get("stopPrice") or 0) or float("nan"))
        with self._lock:
            self.orders[cid] = st
            self._lists.add(cid)
        return st

    def _algo_state(self, doc: dict, canonical: str, side: int | None = None) -> OrderState:
        """A futures conditional (algo) order's state: its client algo id, `algo:<algoId>` as the
        venue id; NEW/TRIGGERING/TRIGGERED are working, FINISHED is filled (the triggered order's
        own fills arrive as usual), CANCELED/EXPIRED/REJECTED end it."""
        cid = doc.get("clientAlgoId") or ""
        status = {"NEW": "accepted", "TRIGGERING": "accepted", "TRIGGERED": "accepted", "FINISHED": "filled", "CANCELED": "canceled",
                  "EXPIRED": "expired", "REJECTED": "rejected"}.get(str(doc.get("algoStatus") or "NEW"), "accepted")
        st = OrderState(cid, f"algo:{doc.get('algoId', '')}", canonical,
                        side if side is not None else (1 if doc.get("side") == "BUY" else -1),
                        float(doc.get("price") or 0) or float("nan"), float(doc.get("quantity") or 0),
                        float(doc.get("executedQty") or 0), status, "", int(doc.get("updateTime") or doc.get("createTime") or 0) * MS,
                        order_type=SQ_TYPES.get(str(doc.get("orderType") or ""), ""),
                        trigger_price=float(doc.get("triggerPrice") or 0) or float("nan"),
                        triggered_ids=(str(doc["actualOrderId"]),) if doc.get("actualOrderId") else ())
        with self._lock:
            self.orders[cid] = st
            self._algo.add(cid)
            if cid not in self._requests and st.order_type:  # placed elsewhere: what a cancel-replace repeats
                self._requests[cid] = OrderRequest(canonical, st.side, st.qty, st.price, st.order_type, "gtc", cid, st.trigger_price,
                                                   str(doc.get("reduceOnly")).lower() == "true",
                                                   working_price="mark" if doc.get("workingType") == "MARK_PRICE" else "contract")
        return st

    # ------------------------------------------------------------------ orders

    def prepare(self, request: OrderRequest, *, open_orders: int = 0) -> tuple[str, Rules, str, dict]:
        """Round and check an order against the filters; the REST parameters (raises FilterViolation)."""
        market, rules, canonical = self._resolve(request.symbol)
        side = 1 if request.side > 0 else -1
        is_market = request.order_type == "market"
        priced = request.order_type in ("limit", "stop-limit", "take-profit-limit")
        qty = rules.round_qty(request.qty, market_order=not priced)
        price = rules.round_price(request.price, side) if priced else None
        rules.check(side, qty, price, open_orders=open_orders)
        cid = request.client_order_id or self.next_client_id()
        if not CLIENT_ID_RE.match(cid):
            raise UsageError(f"client order id {cid!r}: 1-36 characters of A-Z a-z 0-9 . : / _ -")
        with self._lock:
            self._requests[cid] = dataclasses.replace(request, client_order_id=cid)
        p = {"symbol": rules.symbol, "side": "BUY" if side > 0 else "SELL", "quantity": _fmt(qty), "newClientOrderId": cid}
        tif = request.time_in_force
        if request.order_type in PROTECTIVE_TYPES:
            return market, rules, canonical, _protective(market, rules, request, side, p)
        if request.reduce_only:
            if market != FUTURES:
                raise UsageError("reduce-only applies to futures (BINANCE-FUT:) only; spot has no reduceOnly")
            p["reduceOnly"] = "true"
        if request.order_type not in ("limit", "market"):
            raise UsageError(f"order type {request.order_type!r} is not offered here")
        if is_market:
            p["type"] = "MARKET"
        elif tif == "post_only":
            if market == FUTURES:
                p.update(type="LIMIT", timeInForce="GTX", price=_fmt(price))
            else:
                p.update(type="LIMIT_MAKER", price=_fmt(price))
        else:
            if tif not in TIF:
                raise UsageError(f"time in force {tif!r}: use gtc, ioc, fok or post_only")
            p.update(type="LIMIT", timeInForce=TIF[tif], price=_fmt(price))
        if market == SPOT:
            p["newOrderRespType"] = "FULL"
        else:
            p["newOrderRespType"] = "RESULT"
        return market, rules, canonical, p

    def place(self, request: OrderRequest) -> OrderState:
        with self._lock:
            working = sum(1 for o in self.orders.values() if o.status in ("accepted", "partially_filled")
                          and o.symbol == parse_symbol(request.symbol).canonical)
        market, rules, canonical, p = self.prepare(request, open_orders=working)
        side = 1 if request.side > 0 else -1
        try:
            doc = self._send_order(market, p)
        except SqError as e:
            if is_error(e, -2010, -2021, -2022, -4164, -1013) or e.status == 2:
                st = OrderState(p.get("newClientOrderId") or p.get("clientAlgoId") or p.get("listClientOrderId", ""), "", canonical, side, request.price, request.qty, status="rejected", reason=e.message)
                with self._lock:
                    self.orders[st.client_order_id] = st
                return st
            raise
        st = self._state(doc, canonical, side)
        for f in doc.get("fills", []) or []:
            self._add_fill(canonical, st, int(f.get("tradeId", -1)), float(f["price"]), float(f["qty"]), float(f.get("commission", 0)),
                           f.get("commissionAsset", ""), "taker", st.ts)
        return st

    def _send_order(self, market: str, p: dict) -> dict:
        """POST the order; a lost answer is re-sent with the same client id, and "Duplicate order"
        (the first send did arrive, or the id is already working) is answered by that order."""
        for attempt in (1, 2):
            try:
                return self.rest.call(market, "post", _path(p), signed=True, weight=1, is_order=True, what="new order", **p)
            except VenueUnavailable:
                if attempt == 2:
                    raise
                log.warning("binance: new order %s: no answer; re-sending with the same client order id", p.get("newClientOrderId") or p.get("clientAlgoId") or p.get("listClientOrderId"))
            except SqError as e:
                if is_error(e, -2010) and "uplicate" in e.message:
                    return self.rest.call(market, "get", "order", signed=True, weight=4, what="query order",
                                          symbol=p["symbol"], origClientOrderId=p["newClientOrderId"])
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def cancel(self, symbol: str, client_order_id: str) -> OrderState:
        market, rules, canonical = self._resolve(symbol)
        if market == SPOT and client_order_id in self._lists:
            return self._cancel_list(rules, canonical, client_order_id)
        if market == FUTURES and self._is_algo(symbol, client_order_id):
            try:
                self.rest.call(market, "delete", "algoOrder", signed=True, weight=1, what="cancel conditional order",
                               clientAlgoId=client_order_id)
            except SqError as e:
                with self._lock:
                    st = self.orders.get(client_order_id) or OrderState(client_order_id, "", canonical, 0, float("nan"), 0.0, status="rejected")
                st.reason = f"cancel rejected: {e.message}"
                return st
            st = self.order(symbol, client_order_id)
            return st
        try:
            doc = self.rest.call(market, "delete", "order", signed=True, weight=1, what="cancel order",
                                 symbol=rules.symbol, origClientOrderId=client_order_id)
        except SqError as e:
            if market == SPOT and is_error(e, -2011, -2013) and self._find_list(rules, canonical, client_order_id) is not None:
                return self._cancel_list(rules, canonical, client_order_id)
            if is_error(e, -2011, -2013):
                with self._lock:
                    st = self.orders.get(client_order_id) or OrderState(client_order_id, "", canonical, 0, float("nan"), 0.0, status="rejected")
                st.reason = f"cancel rejected: {e.message}"
                return st
            raise
        doc = dict(doc, clientOrderId=client_order_id)
        return self._state(doc, canonical)

    def _find_list(self, rules, canonical: str, list_client_id: str) -> OrderState | None:
        """A spot OCO order list by its list client id (GET /api/v3/orderList), or None."""
        try:
            doc = self.rest.call(SPOT, "get", "orderList", signed=True, weight=4, what="query order list", origClientOrderId=list_client_id)
        except SqError as e:
            if is_error(e, -2011, -2013):
                return None
            raise
        reports = [self.rest.call(SPOT, "get", "order", signed=True, weight=4, what="query order", symbol=rules.symbol,
                                  orderId=o["orderId"]) for o in doc.get("orders") or []]
        return self._state(dict(doc, orderReports=reports), canonical)

    def _cancel_list(self, rules, canonical: str, list_client_id: str) -> OrderState:
        try:
            doc = self.rest.call(SPOT, "delete", "orderList", signed=True, weight=1, what="cancel order list", symbol=rules.symbol,
                                 listClientOrderId=list_client_id)
        except SqError as e:
            with self._lock:
                st = self.orders.get(list_client_id) or OrderState(list_client_id, "", canonical, 0, float("nan"), 0.0, status="rejected")
            st.reason = f"cancel rejected: {e.message}"
            return st
        return self._state(doc, canonical)

    def cancel_all(self, symbol: str | None = None) -> list[OrderState]:
        symbols = [symbol] if symbol else sorted({o.symbol for o in self.open_orders()})
        out: list[OrderState] = []
        for s in symbols:
            market, rules, canonical = self._resolve(s)
            if market == FUTURES:
                before = [o for o in self.open_orders(s)]
                self.rest.call(market, "delete", "allOpenOrders", signed=True, weight=1, what="cancel all", symbol=rules.symbol)
                for o in before:
                    o.status = "canceled"
                    out.append(o)
                continue
            try:
                docs = self.rest.call(market, "delete", "openOrders", signed=True, weight=1, what="cancel all", symbol=rules.symbol)
            except SqError as e:
                if is_error(e, -2011):  # nothing open
                    continue
                raise
            out += [self._state(d, canonical) for d in docs if "orderId" in d]
        return out

    def modify(self, symbol: str, client_order_id: str, *, price: float | None = None, qty: float | None = None,
               trigger: float | None = None, new_client_order_id: str = "") -> OrderState:
        """Cancel and replace (not atomic: the new order loses the old one's queue position; Binance
        has no modify). The replacement repeats the original request — its type, trigger, legs,
        reduce-only and trigger price — with the new price (an oco's take-profit), trigger (its
        stop) and quantity, under `new_client_order_id` (else a new id). A spot OCO is canceled as
        a list and placed again as a new list. When the venue refuses the replacement of a
        protective order, the original is placed again (a new id) so a position is not left
        unprotected by a half-done modify: the refused state's `restored` is that order, or None
        when it could not be placed either."""
        with self._lock:
            old = self.orders.get(client_order_id)
        if old is None:
            old = self.lookup(symbol, client_order_id)
        if old is None:
            raise UsageError(f"unknown order {client_order_id!r}")
        with self._lock:
            req0 = self._requests.get(client_order_id)
        if req0 is None:
            kind = old.order_type or "limit"
            req0 = OrderRequest(old.symbol, old.side, old.qty, old.price, kind, "gtc", client_order_id, old.trigger_price)
        canceled = self.cancel(symbol, client_order_id)
        if canceled.status != "canceled":
            return canceled
        left = (qty if qty is not None else old.qty) - canceled.filled_qty
        slp = req0.stop_limit_price
        if trigger is not None and slp == slp and req0.trigger_price == req0.trigger_price:
            slp = slp + (trigger - req0.trigger_price)  # an oco's stop leg keeps its limit's distance from the trigger
        new = dataclasses.replace(req0, qty=left, price=req0.price if price is None else price,
                                  trigger_price=req0.trigger_price if trigger is None else trigger, stop_limit_price=slp,
                                  client_order_id=new_client_order_id or self.next_client_id())
        st = self.place(new)
        if st.status != "rejected" or req0.order_type not in PROTECTIVE_TYPES:
            return st
        again_id = f"{new_client_order_id}r" if new_client_order_id else self.next_client_id()
        again = self.place(dataclasses.replace(req0, qty=old.qty - canceled.filled_qty, client_order_id=again_id))
        st.restored = again if again.status != "rejected" else None
        return st

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        """Open orders of `symbol`, or of every market this gateway has reached (see `open`)."""
        out: list[OrderState] = []
        markets = [self._resolve(symbol)] if symbol else [(m, None, None) for m in self.infos]
        for market, rules, canonical in markets:
            params = {"symbol": rules.symbol} if rules else {}
            path = "openOrders"
            docs = self.rest.call(market, "get", path, signed=True, weight=6 if rules else 80, what="open orders", **params)
            prefix = "BINANCE-FUT:" if market == FUTURES else "BINANCE:"
            out += [self._state(d, canonical or prefix + d["symbol"]) for d in docs]
            if market == FUTURES:  # conditional orders live in the Algo Service, listed apart
                algos = self.rest.call(market, "get", "openAlgoOrders", signed=True, weight=1 if rules else 40, what="open conditional orders", **params)
                out += [self._state(d, canonical or prefix + d["symbol"]) for d in (algos.get("orders", algos) if isinstance(algos, dict) else algos)]
        return out

    def _is_algo(self, symbol: str, client_order_id: str) -> bool:
        """Is this a futures conditional order (known here, or found among the open ones)?"""
        with self._lock:
            if client_order_id in self._algo:
                return True
            if client_order_id in self.orders:
                return False
        self.open_orders(symbol)  # lists the conditional orders too, remembering their ids
        with self._lock:
            return client_order_id in self._algo

    def order(self, symbol: str, client_order_id: str) -> OrderState:
        market, rules, canonical = self._resolve(symbol)
        if market == FUTURES and client_order_id in self._algo:
            doc = self.rest.call(market, "get", "algoOrder", signed=True, weight=1, what="query conditional order", clientAlgoId=client_order_id)
            return self._state(doc, canonical)
        try:
            doc = self.rest.call(market, "get", "order", signed=True, weight=4, what="query order", symbol=rules.symbol,
                                 origClientOrderId=client_order_id)
        except SqError as e:
            if not is_error(e, -2013):
                raise
            if market == SPOT:
                st = self._find_list(rules, canonical, client_order_id)
                if st is None:
                    raise
                return st
            doc = self.rest.call(market, "get", "algoOrder", signed=True, weight=1, what="query conditional order", clientAlgoId=client_order_id)
        return self._state(doc, canonical)

    # ------------------------------------------------------------------ the live-run protocol

    def find_order(self, symbol: str, client_order_id: str) -> OrderState | None:
        """Query one order by client id, open or closed (-2013 for one Binance never saw)."""
        return self.order(symbol, client_order_id)

    def is_unknown_order(self, error: BaseException) -> bool:
        return getattr(error, "code", None) in UNKNOWN_ORDER_CODES or super().is_unknown_order(error)

    def place_idempotent(self, request: OrderRequest) -> tuple[OrderState, list[Fill]]:
        """Send an order so that its outcome is never doubled: a send whose answer was lost is
        looked up by its client id before it is sent again (once), and "Duplicate order" is
        answered by that order. A filter (tick, lot, notional) or the venue refusing it comes
        back as a 'rejected' state; fills in the answer are returned, not collected here."""
        try:
            market, rules, canonical, p = self.prepare(request)
        except SqError as e:  # a filter refuses it before it leaves
            return OrderState(request.client_order_id, "", request.symbol, request.side, request.price, request.qty,
                              status="rejected", reason=e.message), []
        doc = None
        for attempt in range(2):
            try:
                doc = self.rest.call(market, "post", _path(p), signed=True, weight=1, is_order=True, what="new order", **p)
                break
            except VenueUnavailable:
                st = self.lookup(canonical, request.client_order_id)
                if st is not None:  # it was executed: adopt it, never send it again
                    return st, []
                if attempt == 1:
                    raise
            except SqError as e:
                if is_error(e, -2010) and "uplicate" in e.message:
                    st = self.lookup(canonical, request.client_order_id)
                    if st is not None:
                        return st, []
                if e.status in (2, 65) or is_error(e, *REJECT_CODES):
                    return OrderState(request.client_order_id, "", canonical, request.side, request.price, request.qty,
                                      status="rejected", reason=e.message), []
                raise
        st = self._state(doc, canonical, 1 if request.side > 0 else -1)
        fills = [Fill(st.ts, canonical, st.client_order_id, st.venue_order_id, str(f.get("tradeId", "")), st.side, float(f["price"]),
                      float(f["qty"]), float(f.get("commission", 0)), f.get("commissionAsset", ""), "taker")
                 for f in doc.get("fills", []) or []]
        return st, fills

    def follow(self, source: object, push: PushCallback) -> bool:
        """Execution reports of the user-data streams this gateway opened call `push`."""
        if self.user_stream is None:
            return False
        self.add_listener(push)
        return True

    # ------------------------------------------------------------------ account

    def account(self, market: str = SPOT) -> dict:
        return self.rest.call(market, "get", "account", signed=True, weight=20 if market == SPOT else 5,
                              version=2 if market == FUTURES else None, what="account")

    def positions(self) -> list[Position]:
        """Spot balances and futures positions of the markets this gateway has reached (see `open`):
        a gateway that only trades spot never asks the futures API."""
        out: list[Position] = []
        if SPOT in self.infos:
            for b in self.account(SPOT).get("balances", []):
                total = float(b.get("free", 0)) + float(b.get("locked", 0))
                if total:
                    out.append(Position(f"BINANCE:{b['asset']}", total, 0.0, 0.0, {"free": float(b["free"]), "locked": float(b["locked"])}))
        if FUTURES in self.infos:
            dual = self.rest.call(FUTURES, "get", "positionSide/dual", signed=True, weight=30, what="position mode").get("dualSidePosition", False)
            for p in self.rest.call(FUTURES, "get", "positionRisk", signed=True, weight=5, version=2, what="positions"):
                out.append(Position(f"BINANCE-FUT:{p['symbol']}", float(p["positionAmt"]), float(p["entryPrice"]), 0.0, {
                    "leverage": int(float(p.get("leverage", 0))), "margin_type": p.get("marginType", ""),
                    "position_mode": "hedge" if dual else "one-way", "mark_price": float(p.get("markPrice", 0)),
                    "unrealized": float(p.get("unRealizedProfit", 0)), "position_side": p.get("positionSide", "BOTH")}))
        return out

    def protective_orders(self, symbol: str, side: int, qty: float, stop: float, take: float, *, slippage_pct: float,
                          working_price: str) -> list[OrderRequest] | None:
        """Spot: an OCO (a LIMIT_MAKER take-profit and a STOP_LOSS_LIMIT stop whose limit is
        `slippage_pct` beyond its trigger) for both prices, a STOP_LOSS_LIMIT or a
        TAKE_PROFIT_LIMIT (limit `slippage_pct` beyond the trigger) for one; spot triggers on the
        last trade only. USD-M: a STOP_MARKET and a TAKE_PROFIT_MARKET algo order, reduce-only,
        triggered by `working_price` (mark or contract)."""
        market, _rules, canonical = self._resolve(symbol)
        side = 1 if side > 0 else -1
        has_stop, has_take = stop == stop and stop > 0, take == take and take > 0
        if market == FUTURES:
            out = []
            if has_stop:
                out.append(OrderRequest(canonical, side, qty, order_type="stop-market", trigger_price=stop, reduce_only=True,
                                        working_price=working_price))
            if has_take:
                out.append(OrderRequest(canonical, side, qty, order_type="take-profit-market", trigger_price=take, reduce_only=True,
                                        working_price=working_price))
            return out or None
        band = slippage_pct / 100.0
        worse = (lambda px: px * (1.0 - band)) if side < 0 else (lambda px: px * (1.0 + band))  # noqa: E731 - a sell takes less, a buy pays more
        if has_stop and has_take:
            return [OrderRequest(canonical, side, qty, take, "oco", "gtc", "", stop, stop_limit_price=worse(stop))]
        if has_stop:
            return [OrderRequest(canonical, side, qty, worse(stop), "stop-limit", "gtc", "", stop)]
        if has_take:
            return [OrderRequest(canonical, side, qty, worse(take), "take-profit-limit", "gtc", "", take)]
        return None

    def commission_bps(self, symbol: str) -> tuple[float, float, dict]:
        """(maker, taker) bps the account pays on `symbol` (its commission endpoint, BNB discount
        applied when on) and what the venue said (`sq.venues.binance.costs`)."""
        from sq.venues.binance import costs

        market, rules, _ = self._resolve(symbol)
        return costs.commission_bps(self.rest, market, rules.symbol)

    def funding_state(self, symbol: str) -> tuple[int, float, float] | None:
        """(next funding time ns, rate, mark) of a USD-M perpetual; None for spot."""
        from sq.venues.binance import costs

        market, rules, _ = self._resolve(symbol)
        return costs.funding_state(self.rest, rules.symbol) if market == FUTURES else None

    def funding_income(self, symbol: str, start_ns: int, end_ns: int) -> list[dict]:
        """The funding the account paid on `symbol` between two times, as the venue booked it."""
        from sq.venues.binance import costs

        market, rules, _ = self._resolve(symbol)
        return costs.funding_income(self.rest, rules.symbol, start_ns, end_ns) if market == FUTURES else []

    def set_leverage(self, symbol: str, leverage: int) -> dict:
        market, rules, _ = self._resolve(symbol)
        if market != FUTURES:
            raise UsageError("leverage applies to BINANCE-FUT: symbols only")
        return self.rest.call(FUTURES, "post", "leverage", signed=True, what="set leverage", symbol=rules.symbol, leverage=int(leverage))

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        market, rules, _ = self._resolve(symbol)
        mt = margin_type.upper()
        if market != FUTURES or mt not in ("ISOLATED", "CROSSED"):
            raise UsageError("margin type: ISOLATED or CROSSED, on BINANCE-FUT: symbols")
        try:
            self.rest.call(FUTURES, "post", "marginType", signed=True, what="set margin type", symbol=rules.symbol, marginType=mt)
        except SqError as e:
            if not is_error(e, -4046):  # already that type
                raise

    def fills(self, symbol: str | None = None) -> list[Fill]:
        """Own trades from the venue (authoritative), for one symbol or every symbol with orders this run."""
        symbols = [symbol] if symbol else sorted({o.symbol for o in self.orders.values()})
        out: list[Fill] = []
        for s in symbols:
            market, rules, canonical = self._resolve(s)
            path = "userTrades" if market == FUTURES else "myTrades"
            by_id = {o.venue_order_id: o for o in self.orders.values() if o.symbol == canonical}
            for t in self.rest.call(market, "get", path, signed=True, weight=20 if market == SPOT else 5, what="own trades", symbol=rules.symbol):
                o = by_id.get(str(t["orderId"]))
                buyer = t.get("isBuyer", t.get("buyer", t.get("side") == "BUY"))
                maker = t.get("isMaker", t.get("maker", False))
                out.append(Fill(int(t["time"]) * MS, canonical, o.client_order_id if o else "", str(t["orderId"]), str(t["id"]),
                                1 if buyer else -1, float(t["price"]), float(t["qty"]), float(t.get("commission", 0)),
                                t.get("commissionAsset", ""), "maker" if maker else "taker"))
        return out

    def new_fills(self) -> list[Fill]:
        """Fills reported since the last call (execution reports and FULL order answers)."""
        with self._lock:
            out, self._new = self._new, []
        return out

    # ------------------------------------------------------------------ execution reports

    def _add_fill(self, canonical, st: OrderState, trade_id, price, qty, fee, fee_ccy, liquidity, ts) -> Fill | None:
        key = (canonical, trade_id)
        with self._lock:
            if trade_id >= 0 and key in self._seen_trades:
                return None
            self._seen_trades.add(key)
            f = Fill(ts, canonical, st.client_order_id, st.venue_order_id, str(trade_id), st.side, price, qty, fee, fee_ccy, liquidity)
            self._fills.append(f)
            self._new.append(f)
        return f

    def _on_report(self, r: ExecReport) -> None:
        canonical = ("BINANCE-FUT:" if r.market == FUTURES else "BINANCE:") + r.symbol
        with self._lock:
            st = self.orders.get(r.client_order_id)
            if st is None:
                st = OrderState(r.client_order_id, str(r.order_id), canonical, 1 if r.side == "BUY" else -1, r.price or float("nan"), r.qty)
                self.orders[r.client_order_id] = st
            st.venue_order_id = str(r.order_id)
            st.filled_qty = max(st.filled_qty, r.cum_qty)
            st.status = STATUS.get(r.status, st.status)
            st.reason = r.reason
            st.ts = r.ts
        fill = None
        if r.exec_type == "TRADE" and r.last_qty > 0:
            fill = self._add_fill(canonical, st, r.trade_id, r.last_price, r.last_qty, r.fee, r.fee_asset, "maker" if r.maker else "taker", r.ts)
        if self._listeners:
            with self._lock:
                snap = dataclasses.replace(st)
            for cb in self._listeners:
                cb(r.client_order_id, snap, [fill] if fill is not None else [])
