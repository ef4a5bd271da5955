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

    def doc(self) -> dict:
        d = {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": -1, "clientOrderId": self.client_id,
            "price": fmt(self.price if self.type != "MARKET" else 0.0), "origQty": fmt(self.qty), "executedQty": fmt(self.executed),
            "cummulativeQuoteQty": fmt(self.quote), "status": self.status, "timeInForce": self.tif, "type": self.type,
            "side": self.side, "time": self.time, "updateTime": self.update, "isWorking": True, "workingTime": self.time,
        }
        if self.market == "futures":
            d.update(avgPrice=fmt(self.quote / self.executed if self.executed else 0.0), cumQuote=fmt(self.quote),
                     reduceOnly=False, positionSide="BOTH", closePosition=False)
        return d


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
        if typ not in ("LIMIT", "LIMIT_MAKER", "MARKET"):
            raise ApiError(400, -1116, "Invalid orderType.")
        try:
            qty = float(p["quantity"])
        except (KeyError, ValueError):
            raise ApiError(400, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        tif = p.get("timeInForce", "GTC" if typ == "LIMIT" else "")
        price = 0.0
        spec = m.spec
        if typ != "MARKET":
            try:
                price = float(p["price"])
            except (KeyError, ValueError):
                raise ApiError(400, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
            if not _dec_ok(price, spec.tick_size):
                raise ApiError(400, -1013, "Filter failure: PRICE_FILTER")
        if qty < spec.min_qty or qty > spec.max_qty or not _dec_ok(qty, spec.step_size):
            raise ApiError(400, -1013, "Filter failure: LOT_SIZE")
        ref = price if typ != "MARKET" else (m.best()[1] if side == "BUY" else m.best()[0])
        if ref * qty < spec.min_notional:
            raise ApiError(400, -1013, "Filter failure: NOTIONAL")
        cid = p.get("newClientOrderId") or f"fake-{next(self._oids)}"
        for o in self.orders.values():
            if o.market == market and o.client_id == cid and o.status in ("NEW", "PARTIALLY_FILLED"):
                raise ApiError(400, -2010, "Duplicate order sent.")
        now = int(time.time() * 1000)
        o = Order(market, symbol, next(self._ids), cid, side, typ, tif or "GTC", price, qty, next(self._oids), time=now, update=now)
        sim = m.sim
        si = 0 if side == "BUY" else 1
        lots = sim.to_lots(qty)
        if typ == "MARKET":
            lvl, code = ((LADDER_WIDTH - 1) if si == 0 else 0), M.TIF_IOC
        else:
            lvl = sim.to_level(price)
            code = {"GTC": M.TIF_GTC, "IOC": M.TIF_IOC, "FOK": M.TIF_FOK}.get(tif, M.TIF_GTC)
            if typ == "LIMIT_MAKER":
                code = M.TIF_POST_ONLY
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
