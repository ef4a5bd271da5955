"""What each venue's gateway builds to protect a position (`OrderGateway.protective_orders`), and
that the fakes take it: Binance spot an OCO / stop-limit / take-profit-limit priced a slippage band
beyond the trigger, USD-M reduce-only STOP_MARKET / TAKE_PROFIT_MARKET with the asked trigger
price; Kite an SL-M (+ a LIMIT target) for MIS, a two-leg GTT for NRML/CNC with the stop leg's
LIMIT a band beyond its trigger."""

from __future__ import annotations

import math

import pytest

from tests.support.binancekill import binance_gateway
from tests.support.kitelive import SYMBOL as KITE
from tests.support.kitelive import kite_gateway, store_session

NAN = math.nan


def _kinds(reqs):
    return [(r.order_type, r.side, r.reduce_only) for r in reqs]


def test_binance_spot_and_futures_protection(binance_fake):
    binance_fake()
    gw = binance_gateway()
    both = gw.protective_orders("BINANCE:BTCUSDT", -1, 0.01, 59000.0, 61000.0, slippage_pct=0.5, working_price="mark")
    assert _kinds(both) == [("oco", -1, False)]
    assert (both[0].price, both[0].trigger_price) == (61000.0, 59000.0) and both[0].stop_limit_price == pytest.approx(59000 * 0.995)
    [stop] = gw.protective_orders("BINANCE:BTCUSDT", 1, 0.01, 61000.0, NAN, slippage_pct=1.0, working_price="mark")  # a short's stop
    assert (stop.order_type, stop.trigger_price) == ("stop-limit", 61000.0) and stop.price == pytest.approx(61000 * 1.01)
    [tp] = gw.protective_orders("BINANCE:BTCUSDT", -1, 0.01, NAN, 61000.0, slippage_pct=0.5, working_price="mark")
    assert tp.order_type == "take-profit-limit" and tp.price == pytest.approx(61000 * 0.995)
    fut = gw.protective_orders("BINANCE-FUT:BTCUSDT", -1, 0.01, 59000.0, 61000.0, slippage_pct=0.5, working_price="mark")
    assert _kinds(fut) == [("stop-market", -1, True), ("take-profit-market", -1, True)] and {r.working_price for r in fut} == {"mark"}
    assert gw.protective_orders("BINANCE:BTCUSDT", -1, 0.01, NAN, NAN, slippage_pct=0.5, working_price="mark") is None


def test_kite_mis_and_nrml_protection(kite_env, kite_open_hours):
    fake = kite_env
    store_session(fake)
    mis = kite_gateway()
    with fake.lock:
        last = float(fake.market_quote(fake.token_of(KITE))["last_price"])
    stop, take = round(last * 0.99, 1), round(last * 1.01, 1)
    reqs = mis.protective_orders(KITE, -1, 1, stop, take, slippage_pct=0.5, working_price="mark")
    assert [(r.order_type, r.time_in_force) for r in reqs] == [("stop-market", "gtc"), ("limit", "gtc")]  # MIS: no GTT
    assert [r.order_type for r in mis.protective_orders(KITE, -1, 1, NAN, take, slippage_pct=0.5, working_price="mark")] == ["limit"]
    nrml = kite_gateway(product="NRML")
    [oco] = nrml.protective_orders(KITE, -1, 1, stop, take, slippage_pct=0.5, working_price="mark")
    assert oco.order_type == "oco" and oco.stop_limit_price == pytest.approx(stop * 0.995)
    st = nrml.place(oco)
    assert st.status == "accepted" and st.venue_order_id.startswith("gtt:")
    with fake.lock:
        g = fake.gtts[int(st.venue_order_id[4:])]
    assert g["type"] == "two-leg" and g["condition"]["trigger_values"] == [stop, take]
    assert [o["price"] for o in g["orders"]] == [pytest.approx(round(stop * 0.995 / 0.05) * 0.05, abs=0.051), take]
    assert {o["product"] for o in g["orders"]} == {"NRML"}
    [single] = nrml.protective_orders(KITE, -1, 1, NAN, take, slippage_pct=0.5, working_price="mark")
    assert (single.order_type, single.trigger_price, single.price) == ("take-profit-limit", take, take)
