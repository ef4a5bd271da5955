"""Protective orders at the local Binance fake: spot STOP_LOSS_LIMIT / TAKE_PROFIT on /api/v3/order,
futures conditional orders (STOP_MARKET, TAKE_PROFIT, TRAILING_STOP_MARKET) on the Algo Service
(/fapi/v1/algoOrder) with reduceOnly and workingType — placed with the right type and parameters,
refused where Binance refuses them (reduceOnly on spot, a conditional type on /fapi/v1/order),
triggered by the fake's market on the trade or the mark price, and canceled by `sq kill`."""

from __future__ import annotations

import time

import pytest

from sq.core.exits import SqError
from sq.venues.base import OrderRequest
from tests.support.binancekill import binance_gateway, sq_kill

SPOT, FUT = "BINANCE:BTCUSDT", "BINANCE-FUT:BTCUSDT"


def _until(check, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("not within the timeout")


def _long(fake, gw, qty=0.01):
    """Buy `qty` futures at once (an IOC through the ask): a long position to protect."""
    _, ask = fake.market("BTCUSDT", "futures").best()
    st = gw.place(OrderRequest(FUT, 1, qty, round(ask + 50, 2), time_in_force="ioc"))
    assert st.filled_qty == pytest.approx(qty)
    return fake.exchange.positions["BTCUSDT"]["amt"]


def test_spot_stop_limit_and_take_profit_are_placed_with_binance_types(binance_fake):
    fake = binance_fake()
    gw = binance_gateway()
    bid, ask = fake.market("BTCUSDT", "spot").best()
    stop = gw.place(OrderRequest(SPOT, -1, 0.01, round(bid - 500, 2), "stop-limit", trigger_price=round(bid - 400, 2)))
    tp = gw.place(OrderRequest(SPOT, -1, 0.01, order_type="take-profit-market", trigger_price=round(ask + 400, 2)))
    assert stop.status == tp.status == "accepted" and stop.order_type == "stop-limit"
    with fake.lock:
        by_cid = {o.client_id: o for o in fake.exchange.orders.values()}
    s, t = by_cid[stop.client_order_id], by_cid[tp.client_order_id]
    assert (s.type, s.stop_price, s.price, s.tif) == ("STOP_LOSS_LIMIT", round(bid - 400, 2), round(bid - 500, 2), "GTC")
    assert (t.type, t.stop_price) == ("TAKE_PROFIT", round(ask + 400, 2))
    assert not s.triggered and not t.triggered  # the market has not reached them
    assert {o.client_order_id for o in gw.open_orders(SPOT)} == {stop.client_order_id, tp.client_order_id}
    assert gw.cancel(SPOT, stop.client_order_id).status == "canceled"


def test_spot_refuses_reduce_only_like_binance(binance_fake):
    fake = binance_fake()
    gw = binance_gateway()
    st, _ = gw.place_idempotent(OrderRequest(SPOT, -1, 0.01, 50000.0, reduce_only=True, client_order_id="sqtest-1"))
    assert st.status == "rejected" and "futures" in st.reason
    assert not [r for r in fake.requests if r[:2] == ("POST", "/api/v3/order")]  # refused before it left
    with pytest.raises(SqError) as e:  # and the fake refuses it as Binance does
        gw.rest.call("spot", "post", "order", signed=True, symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC",
                     quantity="0.01", price="50000", reduceOnly="true")
    assert "-1104" in str(e.value.message) or "parameters" in e.value.message


def test_futures_conditional_types_go_to_the_algo_service(binance_fake):
    fake = binance_fake()
    gw = binance_gateway()
    with pytest.raises(SqError) as e:  # Binance answers -4120 for these types on /fapi/v1/order
        gw.rest.call("futures", "post", "order", signed=True, symbol="BTCUSDT", side="SELL", type="STOP_MARKET",
                     quantity="0.01", stopPrice="1000")
    assert "Algo Order" in e.value.message
    _long(fake, gw)
    bid, _ = fake.market("BTCUSDT", "futures").best()
    st = gw.place(OrderRequest(FUT, -1, 0.01, order_type="stop-market", trigger_price=round(bid - 2000, 2), reduce_only=True,
                               working_price="mark"))
    assert st.status == "accepted" and st.venue_order_id.startswith("algo:") and st.order_type == "stop-market"
    with fake.lock:
        [a] = fake.exchange.algos.values()
    assert (a.type, a.reduce_only, a.working_type, a.trigger) == ("STOP_MARKET", True, "MARK_PRICE", round(bid - 2000, 2))
    trail = gw.place(OrderRequest(FUT, -1, 0.01, order_type="trailing-stop", trailing_pct=1.5, reduce_only=True))
    with fake.lock:
        t = [x for x in fake.exchange.algos.values() if x.type == "TRAILING_STOP_MARKET"][0]
    assert t.callback_rate == 1.5 and t.reduce_only
    assert {o.client_order_id for o in gw.open_orders(FUT)} >= {st.client_order_id, trail.client_order_id}
    bad, _ = gw.place_idempotent(OrderRequest(FUT, -1, 0.01, order_type="trailing-stop", trailing_pct=25.0, client_order_id="sqtest-2"))
    assert bad.status == "rejected" and "callback rate" in bad.reason
    assert gw.cancel(FUT, st.client_order_id).status == "canceled"


def test_a_futures_stop_triggers_on_the_market_and_closes_the_position(binance_fake):
    fake = binance_fake()
    gw = binance_gateway()
    assert _long(fake, gw) > 0
    bid, _ = fake.market("BTCUSDT", "futures").best()
    # a sell stop above the market: the next trade price crosses it at once
    st = gw.place(OrderRequest(FUT, -1, 0.01, order_type="stop-market", trigger_price=round(bid + 1000, 2), reduce_only=True))
    _until(lambda: fake.exchange.algos and list(fake.exchange.algos.values())[0].status != "NEW")
    with fake.lock:
        [a] = fake.exchange.algos.values()
        cid, kind, px = fake.exchange.triggered[0]
    assert a.status == "FINISHED" and cid == st.client_order_id and kind == "CONTRACT_PRICE" and px <= round(bid + 1000, 2)
    _until(lambda: abs(fake.exchange.positions["BTCUSDT"]["amt"]) < 1e-12)
    # a reduce-only take-profit with nothing left to reduce is refused when it triggers (as Binance expires it)
    gw.place(OrderRequest(FUT, -1, 0.01, order_type="take-profit-market", trigger_price=round(bid - 1000, 2), reduce_only=True))
    _until(lambda: [x for x in fake.exchange.algos.values() if x.type == "TAKE_PROFIT_MARKET"][0].status != "NEW")
    assert [x for x in fake.exchange.algos.values() if x.type == "TAKE_PROFIT_MARKET"][0].status == "EXPIRED"
    assert abs(fake.exchange.positions["BTCUSDT"]["amt"]) < 1e-12


def test_a_spot_stop_limit_triggers_on_the_last_trade(binance_fake):
    fake = binance_fake()
    gw = binance_gateway()
    bid, ask = fake.market("BTCUSDT", "spot").best()
    st = gw.place(OrderRequest(SPOT, 1, 0.01, round(ask + 50, 2), "stop-limit", trigger_price=round(bid - 1000, 2)))  # buy stop below: crossed
    _until(lambda: [o for o in fake.exchange.orders.values() if o.client_id == st.client_order_id][0].triggered)
    _until(lambda: gw.order(SPOT, st.client_order_id).status == "filled")


def test_sq_kill_cancels_conditional_futures_orders(binance_fake):
    fake = binance_fake()
    gw = binance_gateway()
    _long(fake, gw)
    bid, _ = fake.market("BTCUSDT", "futures").best()
    gw.place(OrderRequest(FUT, -1, 0.01, order_type="stop-market", trigger_price=round(bid - 3000, 2), reduce_only=True))
    r = sq_kill("--venue", "binance", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    with fake.lock:
        assert [a.status for a in fake.exchange.algos.values()] == ["CANCELED"]


def test_spot_oco_is_an_order_list_one_leg_cancels_the_other(binance_fake):
    fake = binance_fake()
    gw = binance_gateway()
    bid, ask = fake.market("BTCUSDT", "spot").best()
    st = gw.place(OrderRequest(SPOT, -1, 0.01, round(ask + 40, 2), "oco", trigger_price=round(bid - 40, 2), client_order_id="sqoco-1"))
    assert st.status == "accepted" and st.venue_order_id.startswith("list:") and st.order_type == "oco"
    assert ("POST", "/api/v3/orderList/oco", 200) in fake.requests
    with fake.lock:
        legs = {o.client_id: o for o in fake.exchange.orders.values()}
    assert (legs["sqoco-1-tp"].type, legs["sqoco-1-tp"].price) == ("LIMIT_MAKER", round(ask + 40, 2))
    assert (legs["sqoco-1-sl"].type, legs["sqoco-1-sl"].stop_price) == ("STOP_LOSS", round(bid - 40, 2))
    fresh = binance_gateway()  # another process finds it by its list client id, and cancels both legs
    assert fresh.lookup(SPOT, "sqoco-1").status == "accepted"
    assert fresh.cancel(SPOT, "sqoco-1").status == "canceled"
    assert {o.status for o in legs.values()} == {"CANCELED"}
    # a buy OCO with its stop a tick above the ask; a buy sweeping the ask side prints above it:
    # the stop triggers and the take-profit leg is canceled
    bid, ask = fake.market("BTCUSDT", "spot").best()
    st = gw.place(OrderRequest(SPOT, 1, 0.01, round(bid - 40, 2), "oco", trigger_price=round(ask + 0.01, 2), client_order_id="sqoco-2"))
    assert st.status == "accepted"
    gw.place(OrderRequest(SPOT, 1, 1.0, round(ask + 5, 2), time_in_force="ioc"))
    _until(lambda: [o for o in fake.exchange.orders.values() if o.client_id == "sqoco-2-sl"][0].triggered)
    _until(lambda: [o for o in fake.exchange.orders.values() if o.client_id == "sqoco-2-tp"][0].status == "CANCELED")
    bad, _ = gw.place_idempotent(OrderRequest(SPOT, -1, 0.01, round(bid - 10, 2), "oco", trigger_price=round(bid - 40, 2),
                                              client_order_id="sqoco-3"))  # take-profit below the market: Binance refuses
    assert bad.status == "rejected" and "relationship" in bad.reason
