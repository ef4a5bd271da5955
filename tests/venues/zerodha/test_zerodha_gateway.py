"""The Zerodha order gateway against the local Kite server: place/modify/cancel, listings, rules
enforced before sending (tick, lot, freeze slicing, hours, circuits), and error mapping."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from sq.core.config import load_config
from sq.core.environment import Environment
from sq.core.exits import AuthError, TempFailure, VenueUnavailable
from sq.venues.base import OrderRequest
from sq.venues.zerodha import open_gateway
from sq.venues.zerodha.session import IST

MONDAY_10 = dt.datetime(2025, 11, 24, 10, 0, tzinfo=IST)


@pytest.fixture
def gw(kite_env, monkeypatch):
    monkeypatch.setenv("ZKITE_ACCESS_TOKEN", kite_env.issue_token())
    clock = {"now": MONDAY_10}
    g = open_gateway(load_config(), Environment(), clock=lambda: clock["now"])
    g.test_clock = clock
    return g


def posted(fake) -> list[str]:
    return [p for m, p in fake.requests if m == "POST" and p.startswith("/orders/")]


def test_place_modify_cancel_round_trip(gw, kite_env):
    fake = kite_env
    fake.paused = True  # the REST round trip alone: no simulated flow may fill the order meanwhile (a stalled
    # busy machine lets the market advance seconds at once)
    # far below the market (inside the circuit band), so the simulated flow cannot fill it first
    st = gw.place(OrderRequest("NSE:RELIANCE", +1, 10, 1200.07, client_order_id="mm-1"))
    assert st.status == "accepted" and st.venue_order_id and st.price == pytest.approx(1200.05)
    o = fake.orders[st.venue_order_id]
    assert o["tag"] == "mm-1" and o["price"] == pytest.approx(1200.05) and o["quantity"] == 10
    assert o["transaction_type"] == "BUY" and o["product"] == "MIS" and o["variety"] == "regular"
    st = gw.modify("NSE:RELIANCE", "mm-1", price=1201.12, qty=12)
    assert fake.orders[st.venue_order_id]["price"] == pytest.approx(1201.10) and fake.orders[st.venue_order_id]["quantity"] == 12
    opened = gw.open_orders("NSE:RELIANCE")
    o = fake.orders[st.venue_order_id]
    assert [x.client_order_id for x in opened] == ["mm-1"], {k: o.get(k) for k in ("status", "status_message", "filled_quantity", "pending_quantity", "price")}
    st = gw.cancel("NSE:RELIANCE", "mm-1")
    # the fake's simulated flow may trade against the order first: the answer is the venue's truth
    venue_status = fake.orders[st.venue_order_id]["status"]
    assert (st.status, venue_status) in (("canceled", "CANCELLED"), ("filled", "COMPLETE")), (st.status, venue_status)
    again = gw.cancel("NSE:RELIANCE", "mm-1")  # Kite refuses: not open any more
    assert "not open" in again.reason


def test_sell_rounds_up_and_ioc_validity(gw, kite_env):
    st = gw.place(OrderRequest("NSE:RELIANCE", -1, 5, 1420.01, time_in_force="ioc", client_order_id="lt-1"))
    o = kite_env.orders[st.venue_order_id]
    assert o["price"] == pytest.approx(1420.05) and o["validity"] == "IOC" and o["transaction_type"] == "SELL"
    bad = gw.place(OrderRequest("NSE:RELIANCE", -1, 5, 1400.0, time_in_force="post_only", client_order_id="lt-2"))
    assert bad.status == "rejected" and "post_only" in bad.reason


def test_lots_and_freeze_slicing(gw, kite_env):
    fake = kite_env
    n0 = len(posted(fake))
    small = gw.place(OrderRequest("NFO:NIFTY25DECFUT", +1, 50, 24100.0, client_order_id="f-0"))
    assert small.status == "rejected" and "lot" in small.reason and len(posted(fake)) == n0
    st = gw.place(OrderRequest("NFO:NIFTY25DECFUT", +1, 100, 23900.03, client_order_id="f-1"))
    assert fake.orders[st.venue_order_id]["quantity"] == 75 and fake.orders[st.venue_order_id]["price"] == pytest.approx(23900.0)
    parts = gw.place_kite("NFO:NIFTY25DECFUT", -1, 3000, price=24300.0, product="NRML", client_order_id="f-2")
    assert [p.qty for p in parts] == [1800, 1200] and [p.client_order_id for p in parts] == ["f-2", "f-2-2"]
    assert all(p.status == "accepted" for p in parts)
    assert sorted(fake.orders[p.venue_order_id]["quantity"] for p in parts) == [1200, 1800]


def test_product_and_freeze_quantities_come_from_the_config(kite_env, monkeypatch, tmp_path):
    """`[zerodha] product` and `[zerodha.freeze_qty]` reach the orders Kite receives: a NIFTY order
    above the configured freeze quantity is sliced at it (not at the built-in 1800), as NRML."""
    fake = kite_env
    monkeypatch.setenv("ZKITE_ACCESS_TOKEN", fake.issue_token())
    cfg = tmp_path / "z.toml"
    cfg.write_text('[zerodha]\nproduct = "NRML"\n[zerodha.freeze_qty]\nNIFTY = 900\n')
    g = open_gateway(load_config(Environment(config_path=str(cfg))), Environment(), clock=lambda: MONDAY_10)
    parts = g.place_kite("NFO:NIFTY25DECFUT", -1, 2025, price=24300.0, client_order_id="fz-1")
    assert [p.qty for p in parts] == [900, 900, 225] and all(p.status == "accepted" for p in parts)
    assert {fake.orders[p.venue_order_id]["product"] for p in parts} == {"NRML"}
    cfg.write_text('[zerodha]\nproduct = "BO"\n')
    from sq.core.exits import ConfigError

    with pytest.raises(ConfigError) as e:
        load_config(Environment(config_path=str(cfg)))
    assert "zerodha.product" in e.value.message and "NRML" in e.value.message


def test_hours_circuits_and_index_are_checked_before_sending(gw, kite_env):
    fake = kite_env
    fake.circuits["NSE:RELIANCE"] = (1300.0, 1500.0)
    n0 = len(posted(fake))
    out = gw.place(OrderRequest("NSE:RELIANCE", +1, 1, 1600.0, client_order_id="c-1"))
    assert out.status == "rejected" and "circuit" in out.reason
    gw.test_clock["now"] = MONDAY_10.replace(hour=16)
    late = gw.place(OrderRequest("NSE:RELIANCE", +1, 1, 1400.0, client_order_id="c-2"))
    assert late.status == "rejected" and "closed" in late.reason
    idx = gw.place(OrderRequest("NSE:NIFTY 50", +1, 1, 24000.0, client_order_id="c-3"))
    assert idx.status == "rejected" and "index" in idx.reason
    assert len(posted(fake)) == n0
    amo = gw.place_kite("NSE:RELIANCE", +1, 1, price=1400.0, variety="amo", product="CNC", client_order_id="c-4")[0]
    assert amo.status == "accepted" and fake.orders[amo.venue_order_id]["variety"] == "amo"


def test_order_types_and_varieties(gw, kite_env):
    fake = kite_env
    mkt = gw.place(OrderRequest("NSE:INFY", +1, 1, order_type="market", client_order_id="m-1"))
    assert mkt.status == "accepted" and fake.orders[mkt.venue_order_id]["order_type"] == "MARKET"
    no_trig = gw.place_kite("NSE:INFY", -1, 1, order_type="SL", price=1500.0, client_order_id="s-0")[0]
    assert no_trig.status == "rejected" and "trigger" in no_trig.reason
    sl = gw.place_kite("NSE:INFY", -1, 1, order_type="SL", price=1500.0, trigger_price=1501.02, client_order_id="s-1")[0]
    assert sl.status == "accepted" and fake.orders[sl.venue_order_id]["trigger_price"] == pytest.approx(1501.0)
    slm = gw.place_kite("NSE:INFY", -1, 1, order_type="SL-M", trigger_price=1501.0, client_order_id="s-2")[0]
    assert slm.status == "accepted"
    co = gw.place_kite("NSE:INFY", +1, 1, price=1570.0, variety="co", trigger_price=1560.0, client_order_id="co-1")[0]
    assert co.status == "accepted" and fake.orders[co.venue_order_id]["variety"] == "co"
    ice = gw.place_kite("NSE:INFY", +1, 100, price=1570.0, variety="iceberg", iceberg_legs=4, iceberg_quantity=25, client_order_id="i-1")[0]
    assert ice.status == "accepted" and fake.orders[ice.venue_order_id]["variety"] == "iceberg"


def test_kite_rejection_becomes_rejected_state(gw, kite_env):
    kite_env.reject_orders = ("MarginException", "Insufficient funds. Required margin is 1400.00")
    st = gw.place(OrderRequest("NSE:RELIANCE", +1, 1, 1400.0, client_order_id="r-1"))
    assert st.status == "rejected" and "Insufficient funds" in st.reason


def test_listings_shaped_like_the_mocks(gw, kite_env):
    pos = gw.positions()
    assert pos[0].symbol == "MCX:LEADMINI17DECFUT" and pos[0].qty == 1 and pos[0].avg_price == pytest.approx(161.05)
    fills = gw.fills()
    assert fills and fills[0].symbol == "NSE:SBIN" and fills[0].side == 1 and fills[0].price == pytest.approx(420.65)
    assert fills[0].ts > 0 and math.isfinite(fills[0].qty)
    assert isinstance(gw.holdings(), list) and gw.holdings()[0]["tradingsymbol"]
    assert "equity" in gw.margins()
    assert gw.order_history("151220000000000")
    assert gw.trades() and gw.orders()
    q = gw.quote(["NSE:RELIANCE"])["NSE:RELIANCE"]
    assert q["instrument_token"] == 738561 and q["lower_circuit_limit"] < q["upper_circuit_limit"]
    assert gw.circuit("NSE:RELIANCE").lower == q["lower_circuit_limit"]


def test_revoked_token_and_errors_map_to_exit_codes(gw, kite_env):
    fake = kite_env
    gw.backoff_s = 0.01
    fake.forced_error = (429, "NetworkException", "Too many requests")  # one 429: Kite acted on nothing; retried
    assert isinstance(gw.orders(), list)
    fake.forced = [(429, "NetworkException", "Too many requests")] * (gw.retries_429 + 1)  # a storm outlasting the retries
    with pytest.raises(TempFailure):
        gw.orders()
    fake.forced_error = (503, "NetworkException", "OMS down")
    with pytest.raises(VenueUnavailable):
        gw.positions()
    fake.forced_error = (403, "PermissionException", "Orders are allowed only from the whitelisted static IP")
    with pytest.raises(AuthError) as e:
        gw.place(OrderRequest("NSE:RELIANCE", +1, 1, 1400.0, client_order_id="p-1"))
    assert "static IP" in e.value.message
    fake.expire_tokens()
    with pytest.raises(AuthError) as e:
        gw.orders()
    assert e.value.status == 77 and "run sq auth zerodha" in e.value.message


def test_marketable_orders_trade_against_the_sim_book(gw, kite_env):
    fake = kite_env
    st = gw.place(OrderRequest("NSE:RELIANCE", +1, 5, order_type="market", client_order_id="x-1"))
    o = fake.orders[st.venue_order_id]
    assert o["status"] == "COMPLETE" and o["filled_quantity"] == 5 and 1300 < o["average_price"] < 1500
    mine = [f for f in gw.fills("NSE:RELIANCE") if f.venue_order_id == st.venue_order_id]
    assert sum(f.qty for f in mine) == 5 and mine[0].client_order_id == "x-1" and mine[0].side == 1
    rest = gw.place(OrderRequest("NSE:RELIANCE", -1, 3, 1450.0, client_order_id="x-2"))
    assert fake.orders[rest.venue_order_id]["status"] == "OPEN"
    assert gw.cancel("NSE:RELIANCE", "x-2").status == "canceled"


def test_gateway_without_a_session_is_77(kite_env):
    with pytest.raises(AuthError) as e:
        open_gateway(load_config(), Environment())
    assert e.value.status == 77 and "run sq auth zerodha" in e.value.message
