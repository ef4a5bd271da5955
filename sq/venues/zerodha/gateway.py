"""Orders on a Kite account over REST (kiteconnect pointed at the configured root URL).

`ZerodhaGateway` is the sq `OrderGateway` (place, modify, cancel, cancel_all, open_orders,
positions, fills) plus Kite's breadth: `place_kite` for every variety (regular, amo, co,
iceberg), product (CNC, MIS, NRML, MTF) and order type (LIMIT, MARKET, SL, SL-M); order history,
trades, holdings, margins, quotes and circuit limits.

Before anything leaves: the instrument is resolved from the instruments dump; quantities are
rounded down to lot multiples (less than one lot is a rejection); limit/trigger prices are rounded
to the tick (buys down, sells up); market hours (IST) and circuit limits (from a quote, cached for
the day) are checked; orders above the F&O freeze quantity are sliced (client ids `cid`, `cid-2`,
…). Token buckets keep requests under 10/s, quotes under 1/s and orders under 10/s and 400/min.
`contract_notes` asks Kite what filled orders were charged (the virtual contract note).
Kite order refusals come back as `rejected` order states with Kite's reason; token, permission,
rate-limit and availability errors raise the mapped SqError (errors.py). Ticker order postbacks
update the same order states (`attach(source)`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import threading
import time
from typing import Any, Callable

from sq.core.exits import SqError, TempFailure, UsageError, VenueUnavailable
from sq.venues.base import Fill, GatewayBase, OrderRequest, OrderState, Position, PushCallback
from sq.venues.zerodha import market_rules
from sq.venues.zerodha.endpoints import Endpoints
from sq.venues.zerodha.errors import OrderRejected, map_exception
from sq.venues.zerodha.instruments import KiteInstrument, load_dump, parse_csv, resolve
from sq.venues.zerodha.ratelimit import KiteLimits
from sq.venues.zerodha.session import IST, access_token

VARIETIES = ("regular", "amo", "co", "iceberg")
PRODUCTS = ("CNC", "MIS", "NRML", "MTF")
ORDER_TYPES = ("LIMIT", "MARKET", "SL", "SL-M")
MAX_MODIFICATIONS = 25
TAG_MAX = 20
OPEN_STATUSES = {"OPEN", "TRIGGER PENDING", "OPEN PENDING", "VALIDATION PENDING", "PUT ORDER REQ RECEIVED",
                 "MODIFY PENDING", "MODIFY VALIDATION PENDING", "AMO REQ RECEIVED", "CANCEL PENDING", "MODIFIED"}


def kite_status(order: dict) -> str:
    """sq order status of a Kite order dict."""
    st = str(order.get("status") or "").upper()
    filled = float(order.get("filled_quantity") or 0)
    if st == "COMPLETE":
        return "filled"
    if st == "CANCELLED":
        return "canceled"
    if st == "REJECTED":
        return "rejected"
    if st == "EXPIRED" or st == "LAPSED":
        return "expired"
    return "partially_filled" if filled > 0 else "accepted"


def kite_ts(value: Any) -> int:
    """Kite timestamps ("YYYY-MM-DD HH:MM:SS" IST, or datetime from kiteconnect) → ns UTC; 0 if none."""
    if value is None or value == "":
        return 0
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return 0
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=IST)
        return int(value.timestamp() * 1e9)
    return 0


KITE_ORDER_TYPES = {"limit": "LIMIT", "market": "MARKET", "stop-limit": "SL", "stop-market": "SL-M"}  # sq's order type → Kite's
SQ_ORDER_TYPES = {v: k for k, v in KITE_ORDER_TYPES.items()}


def contract_note_charges(c: dict) -> dict[str, float]:
    """Kite's `charges` object (virtual contract note) as sq's cost components (`sq.core.costs`)."""
    gst = c.get("gst")
    out = {"brokerage": float(c.get("brokerage") or 0), "tax": float(c.get("transaction_tax") or 0),
           "txn": float(c.get("exchange_turnover_charge") or 0), "regulatory": float(c.get("sebi_turnover_charge") or 0),
           "stamp": float(c.get("stamp_duty") or 0), "gst": float((gst.get("total") if isinstance(gst, dict) else gst) or 0)}
    out["total"] = float(c["total"]) if c.get("total") is not None else sum(out.values())
    return out


class ZerodhaGateway(GatewayBase):
    """The OrderGateway of one Kite account (see module doc). `kw`:

    product (default the config's `zerodha.product`, MIS), variety (default regular), freeze_qty
    (underlying → freeze quantity, over the config's `zerodha.freeze_qty` and the built-in
    table), enforce_hours / enforce_circuit (default: the config's `risk.enforce_trading_hours` and
    `risk.enforce_circuit_limits`, both true by default), market_protection (MARKET and SL-M
    orders; default -1 = Kite's automatic protection), clock (→ aware datetime), kite (a client).
    """

    def __init__(self, config, env, *, product: str | None = None, variety: str = "regular", freeze_qty: dict | None = None,
                 enforce_hours: bool | None = None, enforce_circuit: bool | None = None, market_protection: float = -1,
                 clock: Callable[[], dt.datetime] | None = None, kite: Any = None, limits: KiteLimits | None = None,
                 timeout: float = 15.0, retries_429: int = 4, backoff_s: float = 0.25):
        z = config.zerodha
        self.env = env
        self.api_key, token = access_token(z)
        self.endpoints = Endpoints.from_config(z)
        if kite is None:
            from kiteconnect import KiteConnect

            kite = KiteConnect(self.api_key, access_token=token, root=self.endpoints.root, timeout=timeout)
        self.kite = kite
        self.product = (product or z.product).upper()
        self.variety = variety.lower()
        self.freeze_qty = {**z.freeze_qty, **(freeze_qty or {})}
        risk = getattr(config, "risk", None)
        self.enforce_hours = getattr(risk, "enforce_trading_hours", True) if enforce_hours is None else enforce_hours
        self.enforce_circuit = getattr(risk, "enforce_circuit_limits", True) if enforce_circuit is None else enforce_circuit
        self.market_protection = market_protection
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.limits = limits or KiteLimits()
        self.retries_429 = retries_429
        self.backoff_s = backoff_s
        self.table = parse_csv(load_dump(self.endpoints, self.api_key, token, cache_dir=z.instruments_cache_dir))
        self._lock = threading.RLock()
        self._orders: dict[str, OrderState] = {}  # client order id → state
        self._meta: dict[str, dict] = {}  # client order id → {"order_id", "variety", "modifications"}
        self._gtt: dict[str, str] = {}  # client order id → GTT trigger id (GTTs carry no tag)
        self._gtt_requests: dict[str, OrderRequest] = {}  # client order id → the GTT's request
        self._by_oid: dict[str, str] = {}  # venue order id → client order id
        self._circuits: dict[str, tuple[dt.date, market_rules.Circuit | None]] = {}
        self._ids = itertools.count(1)
        self._followed_source: Any = None  # the market source whose ticker carries our postbacks

    # ------------------------------------------------------------------ plumbing

    def _call(self, fn: Callable, *args, kind: str = "request", **kwargs):
        """One Kite call through the token buckets. HTTP 429 means Kite refused the request before
        acting on it (nothing placed, modified or cancelled), so it is retried with a growing pause
        (`retries_429` times) before the rate-limit error (75) is raised."""
        for attempt in range(self.retries_429 + 1):
            {"request": self.limits.request, "quote": self.limits.quote, "order": self.limits.order}[kind]()
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # kiteconnect and requests errors → sq errors
                if getattr(e, "code", None) == 429 and attempt < self.retries_429:
                    time.sleep(self.backoff_s * (2 ** attempt))
                    continue
                raise map_exception(e) from None

    def instrument(self, symbol: str) -> KiteInstrument:
        return resolve([symbol], self.table)[0]

    def _new_cid(self) -> str:
        return f"sq{int(time.time()) % 100000:05d}{next(self._ids):06d}"

    def _rejected(self, cid: str, symbol: str, side: int, price: float, qty: float, reason: str) -> OrderState:
        st = OrderState(cid, "", symbol, side, price, qty, status="rejected", reason=reason, ts=time.time_ns())
        with self._lock:
            self._orders[cid] = st
        return st

    # ------------------------------------------------------------------ market rules

    def circuit(self, symbol: str) -> market_rules.Circuit | None:
        """Today's circuit limits of `symbol` from a full quote (cached per IST day)."""
        today = self.clock().astimezone(IST).date()
        hit = self._circuits.get(symbol)
        if hit and hit[0] == today:
            return hit[1]
        q = self.quote([symbol]).get(symbol)
        c = market_rules.circuit_from_quote(q) if q else None
        self._circuits[symbol] = (today, c)
        return c

    def _check(self, ki: KiteInstrument, variety: str, side: int, price: float) -> str | None:
        if self.enforce_hours:
            why = market_rules.hours_violation(self.clock(), ki.exchange, variety)
            if why:
                return why
        if self.enforce_circuit and math.isfinite(price) and price > 0:
            c = self.circuit(ki.symbol)
            if c is not None:
                return c.violation(price)
        return None

    # ------------------------------------------------------------------ orders

    def place(self, request: OrderRequest) -> OrderState:
        """Place an sq order (first slice's state when sliced; see `place_sliced`)."""
        return self.place_sliced(request)[0]

    def place_sliced(self, request: OrderRequest) -> list[OrderState]:
        otype = KITE_ORDER_TYPES.get(request.order_type.lower())
        tif = request.time_in_force.lower()
        cid = request.client_order_id or self._new_cid()
        why = ""
        if request.order_type.lower() in ("take-profit-limit", "oco") and not request.reduce_only and tif == "gtc":
            return [self.place_gtt(request, cid)]
        if otype is None:
            why = (f"order type {request.order_type!r} is not offered by Kite (a take-profit at Kite is a GTT: --type take-profit-limit or oco, docs/orders.md)"
                   if request.order_type.lower().startswith("take-profit") else f"order type {request.order_type!r} is not offered by Kite")
        elif tif in ("fok", "post_only"):
            why = f"time in force {tif} is not offered by Kite"
        elif request.reduce_only:
            why = "Kite has no reduce-only orders"
        elif request.working_price != "contract":
            why = "Kite triggers on the last traded price only (no mark-price trigger)"
        if why:
            return [self._rejected(cid, request.symbol, request.side, request.price, request.qty, why)]
        trigger = request.trigger_price if request.trigger_price == request.trigger_price else None
        return self.place_kite(request.symbol, request.side, request.qty, order_type=otype, price=request.price, trigger_price=trigger,
                               validity="IOC" if tif == "ioc" else "DAY", client_order_id=cid)

    def place_kite(self, symbol: str, side: int, qty: float, *, order_type: str = "LIMIT", price: float = float("nan"),
                   trigger_price: float | None = None, variety: str | None = None, product: str | None = None,
                   validity: str = "DAY", validity_ttl: int | None = None, disclosed_quantity: float | None = None,
                   iceberg_legs: int | None = None, iceberg_quantity: float | None = None, client_order_id: str = "") -> list[OrderState]:
        """Any Kite order; returns one state per slice (one unless above the freeze quantity)."""
        variety = (variety or self.variety).lower()
        product = (product or self.product).upper()
        order_type = order_type.upper()
        cid = client_order_id or self._new_cid()
        if variety not in VARIETIES:
            raise UsageError(f"variety must be one of {', '.join(VARIETIES)}; got {variety!r}")
        if product not in PRODUCTS:
            raise UsageError(f"product must be one of {', '.join(PRODUCTS)}; got {product!r}")
        if order_type not in ORDER_TYPES:
            raise UsageError(f"order type must be one of {', '.join(ORDER_TYPES)}; got {order_type!r}")
        if len(cid) > TAG_MAX:
            raise UsageError(f"client order id {cid!r} is longer than Kite's {TAG_MAX}-character tag")
        ki = self.instrument(symbol)
        sym = ki.symbol
        if not ki.to_instrument().extra.get("tradable", True):
            return [self._rejected(cid, sym, side, price, qty, f"{sym} is an index and cannot be traded")]
        lots = market_rules.round_lots(qty, ki.lot_size)
        if lots <= 0:
            return [self._rejected(cid, sym, side, price, qty, f"quantity {qty:g} is less than one lot ({ki.lot_size:g})")]
        needs_price = order_type in ("LIMIT", "SL")
        px = market_rules.round_price(price, ki.tick_size, side) if needs_price else float("nan")
        if needs_price and not (math.isfinite(px) and px > 0):
            return [self._rejected(cid, sym, side, price, qty, f"{order_type} order needs a positive price")]
        trig = None
        if order_type in ("SL", "SL-M") or variety == "co":
            if trigger_price is None:
                return [self._rejected(cid, sym, side, price, qty, f"{order_type if variety != 'co' else 'cover'} order needs a trigger price")]
            trig = market_rules.round_price(trigger_price, ki.tick_size, -side)
        why = self._check(ki, variety, side, px)
        if why:
            return [self._rejected(cid, sym, side, px, lots, why)]
        freeze = market_rules.freeze_quantity(ki.name, ki.tradingsymbol, self.freeze_qty) if ki.exchange in ("NFO", "BFO") else None
        slices = [lots] if variety == "iceberg" else market_rules.slice_quantity(lots, freeze, ki.lot_size)
        out = []
        for i, q in enumerate(slices):
            scid = cid if i == 0 else f"{cid[:TAG_MAX - 3]}-{i + 1}"
            params = dict(variety=variety, exchange=ki.exchange, tradingsymbol=ki.tradingsymbol,
                          transaction_type="BUY" if side > 0 else "SELL", quantity=int(q), product=product,
                          order_type=order_type, validity=validity, tag=scid)
            if needs_price:
                params["price"] = px
            if trig is not None:
                params["trigger_price"] = trig
            if order_type in ("MARKET", "SL-M"):
                params["market_protection"] = self.market_protection
            if validity == "TTL" and validity_ttl:
                params["validity_ttl"] = validity_ttl
            if disclosed_quantity:
                params["disclosed_quantity"] = int(disclosed_quantity)
            if variety == "iceberg":
                params["iceberg_legs"] = iceberg_legs
                params["iceberg_quantity"] = int(iceberg_quantity) if iceberg_quantity else None
            try:
                oid = str(self._call(self.kite.place_order, kind="order", **params))
            except OrderRejected as e:
                out.append(self._rejected(scid, sym, side, px, q, e.message))
                continue
            except UsageError as e:  # InputException: Kite refused the parameters
                out.append(self._rejected(scid, sym, side, px, q, e.message))
                continue
            st = OrderState(scid, oid, sym, side, px, q, status="accepted", ts=time.time_ns(), order_type=SQ_ORDER_TYPES.get(order_type, ""),
                            trigger_price=float(trig) if trig is not None else float("nan"))
            with self._lock:
                self._orders[scid] = st
                self._meta[scid] = {"order_id": oid, "variety": variety, "modifications": 0, "order_type": order_type, "product": product}
                self._by_oid[oid] = scid
            out.append(st)
        return out

    # ------------------------------------------------------------------ GTT (good till triggered)

    def place_gtt(self, request: OrderRequest, cid: str) -> OrderState:
        """A Kite GTT (POST /gtt/triggers) for a take-profit-limit (single: one trigger, a LIMIT at
        `price`) or an oco (two-leg: the stop at `trigger_price` and the take-profit at `price`, each
        a LIMIT at its trigger — the stop's at `stop_limit_price` when given). Kite keeps no tag on a GTT: its state's venue id is `gtt:<id>`,
        which `cancel`/`lookup` take in place of the client id."""
        side = 1 if request.side > 0 else -1
        ki = self.instrument(request.symbol)
        sym = ki.symbol
        lots = market_rules.round_lots(request.qty, ki.lot_size)
        trig = request.trigger_price
        price = market_rules.round_price(request.price, ki.tick_size, side) if request.price == request.price else float("nan")
        if lots <= 0 or not (trig == trig and trig > 0) or not (price == price and price > 0):
            return self._rejected(cid, sym, side, request.price, request.qty, "a GTT needs a quantity of at least one lot, a trigger and a price")
        trig = market_rules.round_price(trig, ki.tick_size, -side)
        key = f"{ki.exchange}:{ki.tradingsymbol}"
        kind, values, orders = self._gtt_legs(request, ki, side, lots, trig, price)
        if kind is None:
            return self._rejected(cid, sym, side, price, lots, "an oco's stop trigger and take-profit price must differ")
        try:
            last = float(self._call(self.kite.quote, [key], kind="quote")[key]["last_price"])
            doc = self._call(self.kite.place_gtt, kind, ki.tradingsymbol, ki.exchange, values, last, orders, kind="order")
        except (OrderRejected, UsageError) as e:
            return self._rejected(cid, sym, side, price, lots, e.message)
        tid = str(doc.get("trigger_id") if isinstance(doc, dict) else doc)
        st = OrderState(cid, f"gtt:{tid}", sym, side, price, lots, status="accepted", ts=time.time_ns(),
                        order_type=request.order_type, trigger_price=trig)
        with self._lock:
            self._orders[cid] = st
            self._gtt[cid] = tid
            self._gtt_requests[cid] = request
        return st

    def _gtt_legs(self, request: OrderRequest, ki: KiteInstrument, side: int, lots: float, trig: float, price: float):
        """(type, trigger values, orders) of a GTT: single — one trigger, a LIMIT at `price`; two-leg
        (an oco) — the stop at `trig` (a LIMIT at `stop_limit_price` when given, else at the
        trigger) and the take-profit at `price`, sorted by trigger as Kite wants. (None, …) when
        an oco's two prices are the same."""
        leg = lambda px: {"transaction_type": "BUY" if side > 0 else "SELL", "quantity": int(lots), "order_type": "LIMIT",  # noqa: E731
                          "product": self.product, "price": px}
        if request.order_type != "oco":
            return "single", [trig], [leg(price)]
        if trig == price:
            return None, [], []
        slp = request.stop_limit_price
        stop_px = market_rules.round_price(slp, ki.tick_size, side) if slp == slp and slp > 0 else trig
        legs = sorted([(trig, leg(stop_px)), (price, leg(price))], key=lambda t: t[0])
        return "two-leg", [v for v, _ in legs], [o for _, o in legs]

    def modify_gtt(self, client_order_id: str, *, price: float | None, qty: float | None, trigger: float | None) -> OrderState:
        """Modify a GTT in place (PUT /gtt/triggers/{id}: its type, condition and orders sent
        again with the new values); Kite keeps the trigger id. A single GTT's `trigger` is its
        trigger and `price` its LIMIT price; an oco's `trigger` its stop and `price` its take-profit."""
        tid = self._gtt_id(client_order_id)
        g = self._call(self.kite.get_gtt, tid)
        st = self._gtt_state(g)
        if st.status != "accepted":
            st.reason = f"the GTT is {g.get('status')}, not active: it cannot be modified"
            return st
        cond, legs = g.get("condition") or {}, g.get("orders") or [{}]
        side = st.side
        with self._lock:
            req = self._gtt_requests.get(st.client_order_id)
        values = [float(v) for v in cond.get("trigger_values") or []]
        if g.get("type") == "two-leg":
            stop_i = 0 if side < 0 else 1  # a sell stops below the market, a buy above
            take_i = 1 - stop_i
            stop0, take0 = values[stop_i], values[take_i]
            stop_limit0 = float(legs[stop_i].get("price") or stop0)
            band = stop_limit0 - stop0  # the stop leg's limit keeps its distance from the trigger
            new_stop = stop0 if trigger is None else float(trigger)
            slp = stop_limit0 if trigger is None else new_stop + band
            req = OrderRequest(st.symbol, side, st.qty, take0 if price is None else float(price), "oco", "gtc", st.client_order_id,
                               new_stop, stop_limit_price=slp)
        else:
            req = OrderRequest(st.symbol, side, st.qty, float(legs[0].get("price") or 0) if price is None else float(price),
                               "take-profit-limit", "gtc", st.client_order_id, values[0] if trigger is None else float(trigger))
        ki = self.instrument(st.symbol)
        lots = market_rules.round_lots(st.qty if qty is None else float(qty), ki.lot_size)
        if lots <= 0:
            st.reason = f"quantity {qty:g} is less than one lot ({ki.lot_size:g})"
            return st
        px = market_rules.round_price(req.price, ki.tick_size, side)
        trig = market_rules.round_price(req.trigger_price, ki.tick_size, -side)
        kind, values, orders = self._gtt_legs(req, ki, side, lots, trig, px)
        if kind is None:
            st.reason = "an oco's stop trigger and take-profit price must differ"
            return st
        key = f"{ki.exchange}:{ki.tradingsymbol}"
        try:
            last = float(self._call(self.kite.quote, [key], kind="quote")[key]["last_price"])
            self._call(self.kite.modify_gtt, int(tid), kind, ki.tradingsymbol, ki.exchange, values, last, orders, kind="order")
        except (OrderRejected, UsageError) as e:
            st.reason = e.message
            return st
        new = self._gtt_state(self._call(self.kite.get_gtt, tid))
        with self._lock:
            self._gtt_requests[new.client_order_id] = req
        return new

    def _gtt_state(self, g: dict) -> OrderState:
        cond, orders = g.get("condition") or {}, g.get("orders") or [{}]
        status = {"active": "accepted", "triggered": "filled", "disabled": "canceled", "expired": "expired", "cancelled": "canceled",
                  "deleted": "canceled", "rejected": "rejected"}.get(str(g.get("status")), "accepted")
        vid = f"gtt:{g.get('id')}"
        with self._lock:
            cid = next((c for c, t in self._gtt.items() if f"gtt:{t}" == vid), vid)
        trig = [float(v) for v in cond.get("trigger_values") or []]
        placed = tuple(str(((o.get("result") or {}).get("order_result") or {}).get("order_id") or "") for o in orders)
        return OrderState(cid, vid, f"{cond.get('exchange')}:{cond.get('tradingsymbol')}".upper(),
                          1 if str(orders[0].get("transaction_type")).upper() == "BUY" else -1, float(orders[-1].get("price") or 0),
                          float(orders[0].get("quantity") or 0), status=status, order_type="oco" if g.get("type") == "two-leg" else "take-profit-limit",
                          trigger_price=trig[0] if trig else float("nan"), triggered_ids=tuple(p for p in placed if p))

    def protective_orders(self, symbol: str, side: int, qty: float, stop: float, take: float, *, slippage_pct: float,
                          working_price: str) -> list[OrderRequest] | None:
        """Kite has no take-profit order type and no reduce-only, and GTTs are for CNC and NRML
        only: the stop is an SL-M (with `market_protection`); with a take-profit too, a MIS
        (intraday) position gets an SL-M plus a LIMIT at the take-profit (DAY orders; sq cancels
        the other when one fills), a CNC/NRML position one two-leg GTT (an oco: the stop leg a
        LIMIT `slippage_pct` beyond its trigger, the target a LIMIT at its price). A take-profit
        alone: a LIMIT (MIS) or a single GTT (CNC/NRML). Kite triggers on the last price only."""
        side = 1 if side > 0 else -1
        sym = self.instrument(symbol).symbol
        has_stop, has_take = stop == stop and stop > 0, take == take and take > 0
        band = slippage_pct / 100.0
        intraday = self.product == "MIS"
        stop_req = OrderRequest(sym, side, qty, order_type="stop-market", trigger_price=stop) if has_stop else None
        if has_stop and has_take and not intraday:
            limit = stop * (1.0 - band) if side < 0 else stop * (1.0 + band)
            return [OrderRequest(sym, side, qty, take, "oco", "gtc", "", stop, stop_limit_price=limit)]
        out = [stop_req] if stop_req is not None else []
        if has_take:
            out.append(OrderRequest(sym, side, qty, take, "limit", "gtc") if intraday else
                       OrderRequest(sym, side, qty, take, "take-profit-limit", "gtc", "", take))
        return out or None

    def standing_orders(self, symbol: str | None = None) -> list[OrderState]:
        """The active GTTs (GET /gtt/triggers) as order states (venue id `gtt:<id>`)."""
        want = symbol.upper() if symbol else None
        out = [self._gtt_state(g) for g in self._call(self.kite.get_gtts) if g.get("status") == "active"]
        return [st for st in out if want is None or st.symbol == want]

    def _gtt_id(self, client_order_id: str) -> str | None:
        if client_order_id.startswith("gtt:"):
            return client_order_id[4:]
        with self._lock:
            return self._gtt.get(client_order_id)

    def _known(self, client_order_id: str) -> tuple[OrderState, dict]:
        with self._lock:
            st, meta = self._orders.get(client_order_id), self._meta.get(client_order_id)
        if st is None or meta is None:
            for o in self._call(self.kite.orders):
                if o.get("tag") == client_order_id or str(o.get("order_id")) == client_order_id:
                    st = self._adopt(o)
                    with self._lock:
                        meta = self._meta[st.client_order_id]
                    break
        if st is None or meta is None:
            raise UsageError(f"no Zerodha order with client order id {client_order_id!r}")
        return st, meta

    def _adopt(self, o: dict) -> OrderState:
        """Track a Kite order dict (from a listing or a postback) and return its state."""
        oid = str(o.get("order_id"))
        with self._lock:
            cid = self._by_oid.get(oid) or o.get("tag") or oid
            side = 1 if str(o.get("transaction_type")).upper() == "BUY" else -1
            sym = f"{o.get('exchange')}:{o.get('tradingsymbol')}".upper()
            st = self._orders.get(cid) or OrderState(cid, oid, sym, side, float(o.get("price") or 0), float(o.get("quantity") or 0))
            st.venue_order_id = oid
            st.price = float(o.get("price") or st.price)
            st.qty = float(o.get("quantity") or st.qty)
            st.filled_qty = float(o.get("filled_quantity") or 0)
            st.order_type = SQ_ORDER_TYPES.get(str(o.get("order_type") or ""), st.order_type)
            if float(o.get("trigger_price") or 0) > 0:
                st.trigger_price = float(o["trigger_price"])
            st.status = kite_status(o)
            st.reason = str(o.get("status_message") or "") if st.status == "rejected" else st.reason
            st.ts = kite_ts(o.get("exchange_update_timestamp") or o.get("order_timestamp")) or st.ts
            self._orders[cid] = st
            self._by_oid[oid] = cid
            self._meta.setdefault(cid, {"order_id": oid, "variety": o.get("variety") or "regular", "modifications": 0,
                                        "order_type": o.get("order_type") or "LIMIT", "product": o.get("product") or self.product})
        return st

    def modify(self, symbol: str, client_order_id: str, *, price: float | None = None, qty: float | None = None,
               trigger: float | None = None, new_client_order_id: str = "") -> OrderState:
        """Kite modifies in place (PUT /orders/{variety}/{id}: price, quantity, trigger_price; a GTT
        by PUT /gtt/triggers/{id}); the client id stays (`new_client_order_id` is not used)."""
        if self._gtt_id(client_order_id) is not None:
            return self.modify_gtt(client_order_id, price=price, qty=qty, trigger=trigger)
        st, meta = self._known(client_order_id)
        if meta["modifications"] >= MAX_MODIFICATIONS:
            st.reason = f"Kite allows {MAX_MODIFICATIONS} modifications per order; cancel and re-place"
            return st
        ki = self.instrument(st.symbol)
        params: dict[str, Any] = {}
        if price is not None:
            params["price"] = market_rules.round_price(price, ki.tick_size, st.side)
            why = self._check(ki, meta["variety"], st.side, params["price"])
            if why:
                st.reason = why
                return st
        if qty is not None:
            q = market_rules.round_lots(qty, ki.lot_size)
            if q <= 0:
                st.reason = f"quantity {qty:g} is less than one lot ({ki.lot_size:g})"
                return st
            params["quantity"] = int(q)
        if trigger is not None:
            params["trigger_price"] = market_rules.round_price(trigger, ki.tick_size, -st.side)
        try:
            self._call(self.kite.modify_order, meta["variety"], meta["order_id"], kind="order", **params)
        except (OrderRejected, UsageError) as e:
            st.reason = e.message
            return st
        with self._lock:
            meta["modifications"] += 1
            st.price = params.get("price", st.price)
            st.qty = float(params.get("quantity", st.qty))
            st.trigger_price = float(params.get("trigger_price", st.trigger_price))
            st.reason = ""
        return st

    def cancel(self, symbol: str, client_order_id: str) -> OrderState:
        tid = self._gtt_id(client_order_id)
        if tid is not None:  # a GTT: delete the trigger
            try:
                self._call(self.kite.delete_gtt, tid, kind="order")
            except (OrderRejected, UsageError) as e:
                st = self._gtt_state(self._call(self.kite.get_gtt, tid))
                st.reason = e.message
                return st
            st = self._gtt_state(self._call(self.kite.get_gtt, tid))
            if st.status == "accepted":
                st.status = "canceled"
            return st
        st, meta = self._known(client_order_id)
        try:
            self._call(self.kite.cancel_order, meta["variety"], meta["order_id"], kind="order")
        except (OrderRejected, UsageError) as e:  # cancel rejected: already filled or cancelled
            try:  # report the venue's truth, not our last-known state
                history = self.order_history(meta["order_id"])
                if history:
                    st = self._adopt(history[-1])
            except SqError:
                pass
            st.reason = e.message
            return st
        with self._lock:
            if st.status in ("accepted", "partially_filled"):
                st.status = "canceled"
            st.ts = time.time_ns()
        return st

    def cancel_all(self, symbol: str | None = None) -> list[OrderState]:
        return [self.cancel(o.symbol, o.client_order_id) for o in self.open_orders(symbol)]

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        want = symbol.upper() if symbol else None
        out = []
        for o in self._call(self.kite.orders):
            if str(o.get("status") or "").upper() in OPEN_STATUSES:
                st = self._adopt(o)
                if want is None or st.symbol == want:
                    out.append(st)
        return out

    def on_postback(self, order: dict) -> None:
        """A ticker order postback: update the order it names."""
        if order.get("order_id"):
            self._adopt(order)

    def attach(self, source) -> None:
        """Follow order updates from a ZerodhaSource's ticker postbacks."""
        source.on_order(self.on_postback)

    def order(self, symbol: str, client_order_id: str) -> OrderState | None:
        """The venue's state of the order tagged `client_order_id` (GET /orders, matched on the tag
        that carries sq's client id), or None when Kite never saw it. Raises VenueUnavailable when
        the venue cannot tell (unreachable, or still rate limiting after the retries) — an
        uncertain send is then never re-sent blindly."""
        try:
            listing = self._call(self.kite.orders)
        except TempFailure as e:
            raise VenueUnavailable(f"{e.message} (looking up order {client_order_id})") from None
        want = symbol.upper() if symbol else None
        hits = [o for o in listing if o.get("tag") == client_order_id
                and (want is None or f"{o.get('exchange')}:{o.get('tradingsymbol')}".upper() == want)]
        if not hits:
            return None
        return self._adopt(hits[-1])

    def order_state(self, client_order_id: str) -> OrderState | None:
        with self._lock:
            return self._orders.get(client_order_id)

    # ------------------------------------------------------------------ the live-run protocol

    def find_order(self, symbol: str, client_order_id: str) -> OrderState | None:
        """The order tagged with this client id, open or closed (None: Kite never saw it); a GTT
        by its `gtt:<id>` (or the client id it was placed with here)."""
        tid = self._gtt_id(client_order_id)
        if tid is not None:
            return self._gtt_state(self._call(self.kite.get_gtt, tid))
        return self.order(symbol, client_order_id)

    def follow(self, source: object, push: PushCallback) -> bool:
        """Kite's order postbacks ride on the ticker socket of the market source: each one
        updates this gateway's state, and the order it names is pushed on."""
        on_order = getattr(source, "on_order", None)
        if on_order is None:
            return False

        def on_postback(order: dict) -> None:
            self.on_postback(order)
            cid = str(order.get("tag") or "")
            st = self.order_state(cid) if cid else None
            if st is not None:
                push(cid, dataclasses.replace(st), [])

        on_order(on_postback)
        self._followed_source = source
        return True

    def pushing(self) -> bool:
        """Postbacks arrive while the ticker connection is up."""
        source = self._followed_source
        return source is not None and bool(getattr(source, "connected", True))

    # ------------------------------------------------------------------ account

    def positions(self) -> list[Position]:
        out = []
        for p in self._call(self.kite.positions).get("net", []):
            sym = f"{p.get('exchange')}:{p.get('tradingsymbol')}".upper()
            out.append(Position(sym, float(p.get("quantity") or 0), float(p.get("average_price") or 0), float(p.get("realised") or 0),
                                {k: p.get(k) for k in ("product", "pnl", "m2m", "unrealised", "last_price", "multiplier") if k in p}))
        return out

    def fills(self, symbol: str | None = None) -> list[Fill]:
        want = symbol.upper() if symbol else None
        out = []
        for t in self._call(self.kite.trades):
            sym = f"{t.get('exchange')}:{t.get('tradingsymbol')}".upper()
            if want and sym != want:
                continue
            oid = str(t.get("order_id"))
            cid = self._by_oid.get(oid, "")
            out.append(Fill(kite_ts(t.get("fill_timestamp") or t.get("exchange_timestamp")), sym, cid, oid, str(t.get("trade_id")),
                            1 if str(t.get("transaction_type")).upper() == "BUY" else -1, float(t.get("average_price") or 0),
                            float(t.get("quantity") or t.get("filled") or 0), 0.0, "INR", "taker"))
        return out

    def contract_notes(self, orders: list[dict]) -> list[dict | None]:
        """Kite's charges of filled orders (the virtual contract note, `POST /charges/orders`, one
        request for the lot): `orders` [{client_order_id, venue_order_id, symbol, side, qty,
        avg_price}] → per order {brokerage, tax, txn, regulatory, stamp, gst, total} (the
        components of `sq.core.costs`), or None where Kite's answer lacks that order."""
        if not orders:
            return []
        params = []
        for o in orders:
            with self._lock:
                meta = dict(self._meta.get(o["client_order_id"]) or {})
            exchange, _, name = str(o["symbol"]).partition(":")
            params.append({"order_id": meta.get("order_id") or o.get("venue_order_id"), "exchange": exchange, "tradingsymbol": name,
                           "transaction_type": "BUY" if o["side"] > 0 else "SELL", "variety": meta.get("variety") or self.variety,
                           "product": meta.get("product") or self.product, "order_type": meta.get("order_type") or "LIMIT",
                           "quantity": int(round(float(o["qty"]))), "average_price": float(o["avg_price"])})
        answer = self._call(self.kite.get_virtual_contract_note, params) or []
        out: list[dict | None] = []
        for i, p in enumerate(params):  # Kite answers in the order asked; an order id, when echoed, must agree
            a = answer[i] if i < len(answer) and isinstance(answer[i], dict) else None
            if a is not None and a.get("order_id") not in (None, p["order_id"]):
                a = next((x for x in answer if isinstance(x, dict) and x.get("order_id") == p["order_id"]), None)
            out.append(None if a is None or not isinstance(a.get("charges"), dict) else contract_note_charges(a["charges"]))
        return out

    def orders(self) -> list[dict]:
        return self._call(self.kite.orders)

    def order_history(self, order_id: str) -> list[dict]:
        return self._call(self.kite.order_history, order_id)

    def trades(self) -> list[dict]:
        return self._call(self.kite.trades)

    def holdings(self) -> list[dict]:
        return self._call(self.kite.holdings)

    def margins(self, segment: str | None = None) -> dict:
        return self._call(self.kite.margins, segment) if segment else self._call(self.kite.margins)

    def quote(self, symbols: list[str]) -> dict:
        return self._call(self.kite.quote, [s.upper() for s in symbols], kind="quote")
