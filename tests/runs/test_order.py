"""`sq order`, `sq orders`, `sq positions` against the local Binance and Kite fakes (real sockets on
127.0.0.1): place / modify / cancel / list at both venues, journaled in a hash-chained manual
journal; a risk-rejected order never reaches the venue; `sq kill` cancels a manual order left
open; the venue views as JSON, Arrow and an 80-column table."""

from __future__ import annotations

import io
import json
import os

import pytest

from sq.core import journal as J
from tests.support.binancekill import open_orders, sq_kill
from tests.support.kitelive import SYMBOL as KITE_SYMBOL
from tests.support.kitelive import store_session


def _cfg(tmp_path, body: str = "", mode: str = "live"):
    cfg = tmp_path / "live.toml"
    cfg.write_text(f'trading_mode = "{mode}"\n' + body)
    os.chmod(cfg, 0o600)
    return str(cfg)


BINANCE_CFG = '[[instruments]]\nsymbol = "BINANCE:BTCUSDT"\nmax_order_size = 0.05\nmax_position = 5\n'
KITE_CFG = ('[risk]\nenforce_trading_hours = false\n[[instruments]]\nsymbol = "NSE:RELIANCE"\nmax_order_size = 20\nmax_position = 50\n')


def price_below(fake, share=0.99):
    """A buy price 1% below Kite's last price: on the fake's SIM ladder (5% can fall off it, and
    the fake then rejects the order after accepting it), and out of the flow's reach in a test."""
    with fake.lock:
        last = float(fake.market_quote(fake.token_of(KITE_SYMBOL))["last_price"])
    return round(round(last * share / 0.05) * 0.05, 2)


def _plain(r) -> list[str]:
    """The lines of a terminal table without its colour codes."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", r.stdout.decode()).splitlines()


def _doc(r):
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def _place(sq, cfg, *args):
    return sq(["order", "place", *args, "--config", cfg, "--confirm-live", "--json"])


# ---------------------------------------------------------------------------------------------- Binance


def test_place_modify_cancel_list_at_binance(sq, binance_fake, tmp_path):
    fake = binance_fake()
    cfg = _cfg(tmp_path, BINANCE_CFG)
    bid, _ = fake.market("BTCUSDT", "spot").best()
    placed = _doc(_place(sq, cfg, "BINANCE:BTCUSDT", "buy", "0.01", "--price", str(round(bid - 50, 2))))
    cid = placed["client_order_id"]
    assert placed["status"] == "accepted" and cid.startswith("sq") and cid.endswith("-1")
    at_venue = open_orders(fake, "spot")
    assert [o.client_id for o in at_venue] == [cid] and at_venue[0].type == "LIMIT"
    loaded = J.load(placed["journal"])  # hash-chained, sealed, write-ahead: "new" before the venue's answer
    assert loaded.start["mode"] == "manual" and loaded.last("end") is not None
    assert [r.data["event"] for r in loaded.of("order")] == ["new", "accepted"]

    mod = _doc(sq(["order", "modify", cid, "--price", str(round(bid - 60, 2)), "--config", cfg, "--confirm-live", "--json"]))
    assert mod["status"] == "accepted" and abs(mod["price"] - round(bid - 60, 2)) < 1e-9
    [now] = open_orders(fake, "spot")
    assert abs(now.price - round(bid - 60, 2)) < 1e-9

    listed = _doc(sq(["order", "list", "--json"]))
    assert {r["client_order_id"] for r in listed} == {cid, mod["client_order_id"]}
    r = sq(["order", "list"], stdout_isatty=True, width=80)
    assert r.exit_code == 0 and cid in r.stdout.decode() and max(len(x) for x in _plain(r)) <= 80

    done = _doc(sq(["order", "cancel", "--all", "--config", cfg, "--confirm-live", "--json"]))
    assert done["canceled"] == 1 and open_orders(fake, "spot") == []
    listed = {r["client_order_id"]: r for r in _doc(sq(["order", "list", "--json"]))}
    assert listed[mod["client_order_id"]]["event"] == "canceled"


def test_a_risk_rejected_order_never_reaches_the_venue(sq, binance_fake, tmp_path):
    fake = binance_fake()
    cfg = _cfg(tmp_path, BINANCE_CFG + "[risk]\nmax_notional = 100000\n")
    bid, _ = fake.market("BTCUSDT", "spot").best()
    sent_before = [r for r in fake.requests if r[0] == "POST" and r[1] == "/api/v3/order"]
    r = _place(sq, cfg, "BINANCE:BTCUSDT", "buy", "0.06", "--price", str(round(bid - 50, 2)))  # above max_order_size 0.05
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1] == ("sq: error: order rejected by sq's risk check: order_too_large "
                                                  "(max_order_size 0.05); nothing was sent")
    r = _place(sq, cfg, "BINANCE:BTCUSDT", "buy", "0.05", "--type", "market", "--price", "3000000")  # notional 150000
    assert r.exit_code == 1 and "notional_too_large" in r.stderr
    assert [r for r in fake.requests if r[0] == "POST" and r[1] == "/api/v3/order"] == sent_before
    assert open_orders(fake) == []
    rejects = [row for row, start in __import__("sq.runs.order", fromlist=["x"]).manual_rows() if row["event"] == "rejected"]
    assert sorted(r["reason"] for r in rejects) == ["notional_too_large", "order_too_large"]


def test_order_needs_live_mode_and_confirmation(sq, binance_fake, tmp_path):
    fake = binance_fake()
    args = ["order", "place", "BINANCE:BTCUSDT", "buy", "0.01", "--price", "100"]
    assert sq(args + ["--config", _cfg(tmp_path, mode="paper"), "--confirm-live"]).exit_code == 78
    r = sq(args + ["--config", _cfg(tmp_path)])
    assert r.exit_code == 2 and "--confirm-live" in r.stderr
    assert not [x for x in fake.requests if x[0] == "POST"]


def test_sq_kill_cancels_a_manual_order_left_open(sq, binance_fake, tmp_path):
    fake = binance_fake()
    cfg = _cfg(tmp_path, BINANCE_CFG)
    bid, _ = fake.market("BTCUSDT", "spot").best()
    placed = _doc(_place(sq, cfg, "BINANCE:BTCUSDT", "buy", "0.01", "--price", str(round(bid - 50, 2))))
    assert [o.client_id for o in open_orders(fake)] == [placed["client_order_id"]]
    r = sq_kill("--venue", "binance", "--json")
    assert r.returncode == 0, r.stderr
    assert open_orders(fake) == []


def test_orders_and_positions_views(sq, binance_fake, tmp_path):
    import pyarrow.ipc as ipc

    from sq.core import schemas as S

    fake = binance_fake()
    cfg = _cfg(tmp_path, BINANCE_CFG)
    bid, _ = fake.market("BTCUSDT", "spot").best()
    placed = _doc(_place(sq, cfg, "BINANCE:BTCUSDT", "buy", "0.01", "--price", str(round(bid - 50, 2))))
    doc = _doc(sq(["orders", "BINANCE:BTCUSDT", "--config", cfg]))
    assert [o["client_order_id"] for o in doc["orders"]] == [placed["client_order_id"]] and doc["errors"] == {}
    r = sq(["orders", "--venue", "binance", "--config", cfg, "-f", "arrow"])
    table = ipc.open_stream(io.BytesIO(r.stdout)).read_all()
    assert table.schema.equals(S.orders_schema()) and table.column("client_order_id").to_pylist() == [placed["client_order_id"]]
    r = sq(["orders", "BINANCE:BTCUSDT", "--config", cfg], stdout_isatty=True, width=80)
    lines = _plain(r)
    assert r.exit_code == 0 and placed["client_order_id"] in r.stdout.decode() and max(len(x) for x in lines) <= 80
    pos = _doc(sq(["positions", "--venue", "binance", "--config", cfg]))
    assert {p["symbol"]: p["qty"] for p in pos["positions"]}["BINANCE:USDT"] > 0
    r = sq(["positions", "--venue", "binance", "--config", cfg], stdout_isatty=True, width=80)
    assert r.exit_code == 0 and "BINANCE:USDT" in r.stdout.decode()
    assert max(len(x) for x in _plain(r)) <= 80


# ---------------------------------------------------------------------------------------------- Kite


def test_place_modify_cancel_at_kite_and_stop_orders_carry_market_protection(sq, kite_env, kite_open_hours, tmp_path):
    fake = kite_env
    fake.paused = True  # the SIM market holds still: on a busy machine its flow could reach the resting buy
    store_session(fake)
    cfg = _cfg(tmp_path, KITE_CFG)
    px = price_below(fake)
    placed = _doc(_place(sq, cfg, KITE_SYMBOL, "buy", "1", "--price", str(px)))
    cid = placed["client_order_id"]
    assert [o["tag"] for o in fake.open_orders()] == [cid]
    mod = _doc(sq(["order", "modify", cid, "--price", str(round(px - 1, 2)), "--config", cfg, "--confirm-live", "--json"]))
    assert mod["status"] == "accepted", mod
    assert [o["price"] for o in fake.open_orders()] == [round(px - 1, 2)], fake.placed()
    # a stop-loss market order for the same symbol: SL-M with a trigger, and Kite's market protection
    stop = _doc(_place(sq, cfg, KITE_SYMBOL, "sell", "1", "--type", "stop-market", "--trigger", str(px), "--price", str(px)))
    sent = [o for o in fake.placed() if o["tag"] == stop["client_order_id"]][0]
    assert sent["order_type"] == "SL-M" and sent["trigger_price"] == px and stop["type"] == "stop-market"
    done = _doc(sq(["order", "cancel", "--all", "--config", cfg, "--confirm-live", "--json"]))
    assert done["canceled"] == 2 and fake.open_orders() == [], (done, fake.placed())
    r = _place(sq, cfg, KITE_SYMBOL, "buy", "21", "--price", str(px))  # above max_order_size 20
    assert r.exit_code == 1 and "order_too_large" in r.stderr
    assert len(fake.placed()) == 2


def test_kite_refuses_what_it_does_not_offer(sq, kite_env, kite_open_hours, tmp_path):
    fake = kite_env
    store_session(fake)
    cfg = _cfg(tmp_path, KITE_CFG)
    px = price_below(fake)
    r = _place(sq, cfg, KITE_SYMBOL, "sell", "1", "--type", "take-profit-market", "--trigger", str(px), "--price", str(px))
    assert r.exit_code == 1 and "GTT" in r.stderr
    r = _place(sq, cfg, KITE_SYMBOL, "sell", "1", "--type", "trailing-stop", "--trail", "1", "--price", str(px))
    assert r.exit_code == 1 and "not offered by Kite" in r.stderr
    r = _place(sq, cfg, KITE_SYMBOL, "sell", "1", "--price", str(px), "--reduce-only")
    assert r.exit_code == 1 and "reduce-only" in r.stderr
    assert fake.placed() == []


def test_positions_at_kite_json(sq, kite_env, kite_open_hours, tmp_path):
    fake = kite_env
    store_session(fake)
    cfg = _cfg(tmp_path, KITE_CFG)
    doc = _doc(sq(["positions", KITE_SYMBOL, "--config", cfg]))
    assert doc["errors"] == {} and isinstance(doc["positions"], list)
    doc = _doc(sq(["orders", KITE_SYMBOL, "--config", cfg]))
    assert doc["orders"] == []


def test_kite_sl_and_sl_m_rest_until_the_market_crosses_their_trigger(kite_env, kite_open_hours):
    """SL-M and SL orders wait at the fake as TRIGGER PENDING, enter the book when the last price
    crosses the trigger, and fill as a market (SL-M, with market protection) or a limit (SL)."""
    import time

    from sq.venues.base import OrderRequest
    from tests.support.kitelive import kite_gateway

    fake = kite_env
    store_session(fake)
    gw = kite_gateway()
    with fake.lock:
        last = float(fake.market_quote(fake.token_of(KITE_SYMBOL))["last_price"])
    far = gw.place(OrderRequest(KITE_SYMBOL, -1, 1, order_type="stop-market", trigger_price=round(last * 0.8, 1)))
    slm = gw.place(OrderRequest(KITE_SYMBOL, -1, 1, order_type="stop-market", trigger_price=round(last * 1.05, 1)))  # crossed at once
    sl = gw.place(OrderRequest(KITE_SYMBOL, 1, 1, round(last * 1.02, 1), "stop-limit", trigger_price=round(last * 0.95, 1)))
    sent = {o["tag"]: o for o in fake.placed()}
    assert sent[slm.client_order_id]["order_type"] == "SL-M" and sent[sl.client_order_id]["order_type"] == "SL"
    assert sent[sl.client_order_id]["price"] == round(last * 1.02, 1)
    end = time.monotonic() + 30
    while time.monotonic() < end and {o["tag"]: o for o in fake.placed()}[sl.client_order_id]["status"] != "COMPLETE":
        time.sleep(0.05)
    now = {o["tag"]: o for o in fake.placed()}
    assert now[slm.client_order_id]["status"] == now[sl.client_order_id]["status"] == "COMPLETE"
    assert now[far.client_order_id]["status"] == "TRIGGER PENDING"
    assert {oid for oid, _ in fake.matching.triggered} == {slm.venue_order_id, sl.venue_order_id}
    assert gw.cancel(KITE_SYMBOL, far.client_order_id).status == "canceled"


def test_kite_gtt_single_and_two_leg_placed_triggered_and_canceled(sq, kite_env, kite_open_hours, tmp_path):
    """A take-profit at Kite is a GTT: single-leg for take-profit-limit, two-leg for an oco (the
    stop below, the take-profit above); `sq orders` lists the active ones, the fake fires one the
    market crosses (placing its LIMIT order), and `sq order cancel` deletes one by its id."""
    import time

    fake = kite_env
    store_session(fake)
    cfg = _cfg(tmp_path, KITE_CFG)
    with fake.lock:
        last = float(fake.market_quote(fake.token_of(KITE_SYMBOL))["last_price"])
    oco = _doc(_place(sq, cfg, KITE_SYMBOL, "sell", "1", "--type", "oco", "--price", str(round(last * 1.1, 1)),
                      "--trigger", str(round(last * 0.9, 1))))
    assert oco["venue_order_id"].startswith("gtt:") and oco["type"] == "oco"
    with fake.lock:
        g = fake.gtts[int(oco["venue_order_id"][4:])]
    assert g["type"] == "two-leg" and g["condition"]["trigger_values"] == [round(last * 0.9, 1), round(last * 1.1, 1)]
    assert [o["price"] for o in g["orders"]] == [round(last * 0.9, 1), round(last * 1.1, 1)]
    assert {o["transaction_type"] for o in g["orders"]} == {"SELL"} and {o["order_type"] for o in g["orders"]} == {"LIMIT"}
    # a single-leg take-profit at the last price: it fires when the price next crosses it
    with fake.lock:
        now = round(float(fake.market_quote(fake.token_of(KITE_SYMBOL))["last_price"]), 1)
    tp = _doc(_place(sq, cfg, KITE_SYMBOL, "buy", "1", "--type", "take-profit-limit", "--trigger", str(now), "--price", str(now)))
    listed = _doc(sq(["orders", KITE_SYMBOL, "--config", cfg]))["orders"]
    assert oco["venue_order_id"] in {o["venue_order_id"] for o in listed}
    tid = int(tp["venue_order_id"][4:])
    end = time.monotonic() + 30
    while time.monotonic() < end and fake.gtts[tid]["status"] == "active":
        time.sleep(0.05)
    assert fake.gtts[tid]["status"] == "triggered" and fake.gtts[tid]["orders"][0]["result"]["order_result"]["order_id"]
    done = _doc(sq(["order", "cancel", oco["client_order_id"], "--config", cfg, "--confirm-live", "--json"]))
    assert done["canceled"] == 1 and fake.gtts[int(oco["venue_order_id"][4:])]["status"] == "deleted"


def test_sq_kill_cancels_kite_stops_and_deletes_gtts(sq, kite_env, kite_open_hours, tmp_path):
    from tests.support.kitelive import run_kill

    fake = kite_env
    store_session(fake)
    cfg = _cfg(tmp_path, KITE_CFG)
    px = price_below(fake)
    stop = _doc(_place(sq, cfg, KITE_SYMBOL, "sell", "1", "--type", "stop-market", "--trigger", str(px), "--price", str(px)))
    gtt = _doc(_place(sq, cfg, KITE_SYMBOL, "sell", "1", "--type", "oco", "--price", str(round(px * 1.2, 1)), "--trigger", str(px)))
    assert [o["tag"] for o in fake.open_orders()] == [stop["client_order_id"]]
    r = run_kill("--venue", "zerodha", "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert doc["venues"][0]["canceled"] == 2 and fake.open_orders() == [], (doc, fake.gtts)
    assert fake.gtts[int(gtt["venue_order_id"][4:])]["status"] == "deleted"
