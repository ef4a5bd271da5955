"""`sq order modify` of the protective orders a venue keeps as one thing: a Zerodha GTT (modified in
place, PUT /gtt/triggers/{id}: same id, new triggers and prices) and a Binance spot OCO (no modify
at Binance: the order list is canceled and a new one placed, both journaled; when the venue refuses
the new list the original is placed again and the one-line error says what is working there)."""

from __future__ import annotations

import json
import os

from sq.core import journal as J
from tests.support.kitelive import SYMBOL as KITE_SYMBOL
from tests.support.kitelive import store_session

BINANCE_CFG = '[[instruments]]\nsymbol = "BINANCE:BTCUSDT"\nmax_order_size = 0.05\nmax_position = 5\n'
KITE_CFG = '[risk]\nenforce_trading_hours = false\n[[instruments]]\nsymbol = "NSE:RELIANCE"\nmax_order_size = 20\nmax_position = 50\n'


def _cfg(tmp_path, body: str) -> str:
    cfg = tmp_path / "live.toml"
    cfg.write_text('trading_mode = "live"\n' + body)
    os.chmod(cfg, 0o600)
    return str(cfg)


def _doc(r):
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def _live(sq, cfg, *args):
    return sq([*args, "--config", cfg, "--confirm-live", "--json"])


def _lists(fake):
    with fake.lock:
        return {lst["cid"]: (lst, [(o.type, o.price, o.stop_price, o.status) for o in lst["legs"]]) for lst in fake.exchange.lists.values()}


def test_binance_oco_modify_cancels_the_list_and_places_a_new_one(sq, binance_fake, tmp_path):
    fake = binance_fake()
    cfg = _cfg(tmp_path, BINANCE_CFG)
    bid, ask = fake.market("BTCUSDT", "spot").best()
    tp, sl = round(ask + 40, 2), round(bid - 40, 2)
    placed = _doc(_live(sq, cfg, "order", "place", "BINANCE:BTCUSDT", "sell", "0.01", "--type", "oco", "--price", str(tp), "--trigger", str(sl)))
    cid = placed["client_order_id"]
    mod = _doc(_live(sq, cfg, "order", "modify", cid, "--price", str(tp + 10), "--trigger", str(sl - 10)))
    new = mod["client_order_id"]
    assert new != cid and mod["status"] == "accepted" and mod["venue_order_id"].startswith("list:") and mod["type"] == "oco"
    lists = _lists(fake)
    assert {s for *_, s in lists[cid][1]} == {"CANCELED"}
    assert sorted(lists[new][1]) == [("LIMIT_MAKER", tp + 10, 0.0, "NEW"), ("STOP_LOSS", 0.0, sl - 10, "NEW")]
    rows = [r.data for r in J.load(mod["journal"]).of("order")]
    assert [(r["client_order_id"], r["event"]) for r in rows] == [(cid, "modified"), (cid, "canceled"), (new, "accepted")]
    # the replacement is found again by its id: modified once more, then canceled
    again = _doc(_live(sq, cfg, "order", "modify", new, "--trigger", str(sl - 20)))
    assert sorted(_lists(fake)[again["client_order_id"]][1])[1] == ("STOP_LOSS", 0.0, sl - 20, "NEW")
    done = _doc(_live(sq, cfg, "order", "cancel", again["client_order_id"]))
    assert done["canceled"] == 1 and {s for *_, s in _lists(fake)[again["client_order_id"]][1]} == {"CANCELED"}


def test_binance_oco_modify_refused_puts_the_original_back_and_says_so(sq, binance_fake, tmp_path):
    fake = binance_fake()
    cfg = _cfg(tmp_path, BINANCE_CFG)
    bid, ask = fake.market("BTCUSDT", "spot").best()
    tp, sl = round(ask + 40, 2), round(bid - 40, 2)
    cid = _doc(_live(sq, cfg, "order", "place", "BINANCE:BTCUSDT", "sell", "0.01", "--type", "oco", "--price", str(tp),
                     "--trigger", str(sl)))["client_order_id"]
    r = _live(sq, cfg, "order", "modify", cid, "--price", str(round(bid - 20, 2)))  # a take-profit below the market: refused
    assert r.exit_code == 1
    line = r.stderr.strip().splitlines()[-1]
    assert "relationship" in line and f"{cid} was canceled and placed again unchanged as" in line and "working at the venue" in line
    working = [(lst["cid"], legs) for lst, legs in _lists(fake).values() if any(s == "NEW" for *_, s in legs)]
    assert len(working) == 1 and sorted(working[0][1]) == [("LIMIT_MAKER", tp, 0.0, "NEW"), ("STOP_LOSS", 0.0, sl, "NEW")]
    restored = working[0][0]
    listed = {row["client_order_id"]: row for row in _doc(sq(["order", "list", "--json"]))}
    assert listed[cid]["event"] == "canceled" and listed[restored]["event"] == "accepted"


def test_kite_gtt_modify_in_place_same_id(sq, kite_env, kite_open_hours, tmp_path):
    fake = kite_env
    store_session(fake)
    cfg = _cfg(tmp_path, KITE_CFG)
    with fake.lock:
        last = float(fake.market_quote(fake.token_of(KITE_SYMBOL))["last_price"])
    up, down = round(last * 1.1, 1), round(last * 0.9, 1)
    oco = _doc(_live(sq, cfg, "order", "place", KITE_SYMBOL, "sell", "1", "--type", "oco", "--price", str(up), "--trigger", str(down)))
    tid = int(oco["venue_order_id"][4:])
    mod = _doc(_live(sq, cfg, "order", "modify", oco["client_order_id"], "--price", str(round(last * 1.2, 1)),
                     "--trigger", str(round(last * 0.8, 1)), "--qty", "2"))
    assert mod["venue_order_id"] == f"gtt:{tid}" and fake.gtt_modifies == [tid]
    with fake.lock:
        g = fake.gtts[tid]
    assert g["status"] == "active" and g["condition"]["trigger_values"] == [round(last * 0.8, 1), round(last * 1.2, 1)]
    assert [(o["price"], o["quantity"]) for o in g["orders"]] == [(round(last * 0.8, 1), 2), (round(last * 1.2, 1), 2)]
    # a single GTT: its trigger moves, its limit price stays
    tp = _doc(_live(sq, cfg, "order", "place", KITE_SYMBOL, "sell", "1", "--type", "take-profit-limit", "--trigger", str(up),
                    "--price", str(up)))
    stid = int(tp["venue_order_id"][4:])
    _doc(_live(sq, cfg, "order", "modify", tp["client_order_id"], "--trigger", str(round(last * 1.15, 1))))
    with fake.lock:
        g = fake.gtts[stid]
    assert g["condition"]["trigger_values"] == [round(last * 1.15, 1)] and g["orders"][0]["price"] == up
    # a deleted GTT cannot be modified: one line, nothing changed
    _doc(_live(sq, cfg, "order", "cancel", tp["client_order_id"]))
    r = _live(sq, cfg, "order", "modify", tp["client_order_id"], "--trigger", str(up))
    assert r.exit_code in (1, 2) and len(r.stderr.strip().splitlines()) == 1 and fake.gtt_modifies == [tid, stid]


def test_kite_sl_m_trigger_modified_in_place(kite_env, kite_open_hours):
    from sq.venues.base import OrderRequest
    from tests.support.kitelive import kite_gateway

    fake = kite_env
    store_session(fake)
    gw = kite_gateway()
    with fake.lock:
        last = float(fake.market_quote(fake.token_of(KITE_SYMBOL))["last_price"])
    st = gw.place(OrderRequest(KITE_SYMBOL, -1, 1, order_type="stop-market", trigger_price=round(last * 0.8, 1)))
    new = gw.modify(KITE_SYMBOL, st.client_order_id, trigger=round(last * 0.85, 1))
    assert new.client_order_id == st.client_order_id and not new.reason
    with fake.lock:
        o = fake.orders[st.venue_order_id]
    assert o["status"] == "TRIGGER PENDING" and o["trigger_price"] == round(last * 0.85, 1) and o["order_type"] == "SL-M"
