"""`sq kill` and `sq reconcile` against the local Kite (Zerodha) fake, through real sockets and real
`sq` subprocesses: kill during a burst of orders from `sq live`, kill while `sq live` is hung
(SIGSTOP: the cancels go to Kite directly with the stored session), `--flatten` closing a Kite
position with marketable orders within the risk limits, exit 1 while Kite refuses the cancels; and
reconcile finding every kind of disagreement with Kite, `--fix` adopting Kite's truth."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from sq.core import journal as J
from tests.support.kitelive import (SYMBOL, kite_gateway, price_below, run_kill, run_reconcile, start_live, store_session,
                                    venue_agrees, wait_open)
from tests.support.livetools import kill_mid_burst


def test_kill_during_a_burst_of_orders_halts_live_and_leaves_nothing_open(kite_env, tmp_path):
    """`sq kill` while `sq live` requotes at a high order rate: the process halts cleanly (exit 0),
    nothing of the run stays open at Kite, no order doubled, and the journal reconciles clean."""
    fake = kite_env
    store_session(fake)
    proc = start_live(tmp_path, tmp_path / "run", "--for", "60s", rate=50)
    kill_mid_burst(proc, lambda: wait_open(fake, proc), run_kill)
    assert fake.open_orders() == []
    venue_agrees(fake, tmp_path / "run")
    r, doc = run_reconcile(tmp_path / "run")
    assert r.returncode == 0 and doc["differences"] == 0, r.stdout


def test_kill_cancels_at_kite_while_live_is_hung_then_resume_is_clean(kite_env, tmp_path):
    """A SIGSTOPped `sq live` cannot cancel anything: `sq kill` cancels its orders at Kite itself
    with the stored session (exit 1: the process had to be killed), nothing stays open; the dead
    run then resumes and reconciles clean."""
    fake = kite_env
    store_session(fake)
    journal = tmp_path / "run"
    proc = start_live(tmp_path, journal, "--for", "60s")
    try:
        wait_open(fake, proc, 2)  # both quotes working
        os.kill(proc.pid, signal.SIGSTOP)
        fake.paused = True  # a quiet market while it hangs: the quotes cannot be filled before the kill
        left = [o["order_id"] for o in fake.open_orders()]
        assert left
        r = run_kill("--json", "--timeout", "0.5")
        doc = json.loads(r.stdout)
        assert doc["processes"][0]["outcome"] == "killed" and r.returncode == 1, r.stdout
        kite = [v for v in doc["venues"] if v["venue"] == "zerodha"][0]
        assert kite["ok"] and kite["remaining_orders"] == [], doc
        status = {oid: fake.orders[oid]["status"] for oid in left}
        assert set(status.values()) <= {"CANCELLED", "COMPLETE"}, status  # the market may fill one first
        assert kite["canceled"] == sum(s == "CANCELLED" for s in status.values()) >= 1, (kite, status)
        assert fake.open_orders() == []
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(10)
        fake.paused = False
    p = start_live(tmp_path, journal, "--for", "1s", resume=True)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    venue_agrees(fake, journal)
    r, doc = run_reconcile(journal)
    assert r.returncode == 0 and doc["differences"] == 0, r.stdout


def test_kill_flatten_closes_a_kite_position_with_marketable_orders_within_the_limits(kite_env, kite_open_hours, tmp_path):
    """`sq kill --flatten` closes a net Kite position with MARKET orders (with the market
    protection Kite requires), none larger than `risk.max_notional` allows, and exits 0 flat."""
    from sq.venues.base import OrderRequest

    fake = kite_env
    fake.mock_positions = False  # the account holds only what this test trades
    store_session(fake)
    gw = kite_gateway()
    with fake.lock:
        last = float(fake.market_quote(fake.token_of(SYMBOL))["last_price"])
    st = gw.place(OrderRequest(SYMBOL, +1, 3, round(round(last * 1.02 / 0.05) * 0.05, 2), time_in_force="ioc", client_order_id="buy-3"))
    assert st.status in ("accepted", "filled")
    pos = {(p["exchange"], p["tradingsymbol"]): p["quantity"] for p in fake.net_positions()}
    held = pos[("NSE", "RELIANCE")]
    assert held > 0
    cfg = tmp_path / "kill.toml"
    cfg.write_text(f"[risk]\nmax_notional = {last * 2.5:.2f}\n")  # at most 2 shares per order
    os.environ["SQ_CONFIG"] = str(cfg)
    try:
        r = run_kill("--venue", "zerodha", "--flatten", "--json")
    finally:
        del os.environ["SQ_CONFIG"]
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["ok"], r.stdout
    flat = doc["venues"][0]["flattened"]
    assert doc["venues"][0]["remaining_positions"] == []  # verified at Kite after the sells, not assumed
    assert sum(f["qty"] for f in flat) == held and all(f["qty"] <= 2 and f["side"] == "SELL" for f in flat), flat
    sells = fake.placed("sqflatten")
    assert len(sells) == len(flat) and all(o["order_type"] == "MARKET" and o["transaction_type"] == "SELL" for o in sells)
    assert {(p["exchange"], p["tradingsymbol"]): p["quantity"] for p in fake.net_positions()}[("NSE", "RELIANCE")] == 0


def test_kill_exits_1_while_kite_refuses_the_cancels(kite_env, kite_open_hours):
    """Kite refuses every cancel: `sq kill` reports the orders still open and exits 1; once Kite
    accepts cancels again, a second `sq kill` leaves nothing open and exits 0."""
    from sq.venues.base import OrderRequest

    fake = kite_env
    store_session(fake)
    gw = kite_gateway()
    for i in (1, 2):
        assert gw.place(OrderRequest(SYMBOL, +1, 1, price_below(fake), client_order_id=f"rest-{i}")).status == "accepted"
    fake.cancel_error = (400, "OrderException", "Order cannot be cancelled as it is being processed. Try later.")
    r = run_kill("--venue", "zerodha", "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and not doc["ok"]
    assert sorted(o["client_order_id"] for o in doc["venues"][0]["remaining_orders"]) == ["rest-1", "rest-2"], doc
    fake.cancel_error = None
    r = run_kill("--venue", "zerodha", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["venues"][0]["canceled"] == 2, r.stdout
    assert fake.open_orders() == []


# ---------------------------------------------------------------------------------------------- reconcile


def _order(cid, event, *, side=1, price=0.0, qty=1.0, filled=0.0, void=None):
    return ("order", {"ts": 1, "symbol": SYMBOL, "client_order_id": cid, "venue_order_id": void, "event": event, "side": side,
                      "price": price, "qty": qty, "filled_qty": filled, "leaves_qty": max(qty - filled, 0.0), "reason": None})


def _fill(f, **over):
    from sq.runs.reconcile import fill_row

    return ("fill", {**fill_row(f), **over})


def test_reconcile_finds_each_disagreement_with_kite_and_fix_adopts_kite(sq, kite_env, kite_open_hours, tmp_path):
    """A journal that disagrees with Kite — an order Kite never got, a state, a missing fill, an
    order's side/quantity/price, a fill's quantity/price — exits 1 listing each difference (JSON and
    table); `--fix` adopts Kite's truth with an audit record; the next reconcile is clean."""
    from sq.venues.base import OrderRequest

    fake = kite_env
    store_session(fake)
    gw = kite_gateway()
    pre = "sqabcdef12-"
    below = price_below(fake)
    with fake.lock:
        last = float(fake.market_quote(fake.token_of(SYMBOL))["last_price"])
    above = round(round(last * 1.02 / 0.05) * 0.05, 2)
    fake.paused = True  # no background fills while the test builds its disagreements
    b = gw.place(OrderRequest(SYMBOL, +1, 1, above, time_in_force="ioc", client_order_id=pre + "2"))  # fills; journal: no fill
    f = gw.place(OrderRequest(SYMBOL, +1, 1, above, time_in_force="ioc", client_order_id=pre + "6"))  # fills; journal fill wrong
    a = gw.place(OrderRequest(SYMBOL, +1, 1, below, client_order_id=pre + "1"))  # rests; journal: canceled
    d = gw.place(OrderRequest(SYMBOL, +1, 2, below, client_order_id=pre + "4"))  # rests; journal: qty 1 at another price
    e = gw.place(OrderRequest(SYMBOL, +1, 1, below, client_order_id=pre + "5"))  # rests; journal: a sell
    fills = {x.venue_order_id: x for x in gw.fills(SYMBOL)}
    assert b.venue_order_id in fills and f.venue_order_id in fills, "the marketable orders did not trade"
    fb, ff = fills[b.venue_order_id], fills[f.venue_order_id]
    run = tmp_path / "live"
    j = J.Journal.create(run, {"run_id": "live", "mode": "live", "venue": "zerodha", "strategy": "mm", "symbols": [SYMBOL],
                               "client_prefix": pre})
    j.write_step([_order(pre + "1", "new", price=below), _order(pre + "1", "canceled", price=below, void=a.venue_order_id),
                  _order(pre + "2", "new", price=above), _order(pre + "2", "accepted", price=above, void=b.venue_order_id),
                  _order(pre + "3", "new", price=below),  # journaled, never sent
                  _order(pre + "4", "new", price=below + 0.05, qty=1.0), _order(pre + "4", "accepted", price=below + 0.05, void=d.venue_order_id),
                  _order(pre + "5", "new", side=-1, price=below), _order(pre + "5", "accepted", side=-1, price=below, void=e.venue_order_id),
                  _order(pre + "6", "new", price=above), _order(pre + "6", "filled", price=above, filled=ff.qty, void=f.venue_order_id),
                  _fill(ff, client_order_id=pre + "6", qty=ff.qty + 1, price=ff.price + 0.05)])
    j.close()
    r = sq(["reconcile", "--journal", str(run), "--json"])
    assert r.exit_code == 1, r.stderr
    diffs = json.loads(r.stdout)["runs"][0]["differences"]
    kinds = {(x["kind"], x["client_order_id"]) for x in diffs}
    for want in [("status", pre + "1"), ("missing_fill", pre + "2"), ("missing_at_venue", pre + "3"), ("order_qty", pre + "4"),
                 ("order_price", pre + "4"), ("order_side", pre + "5"), ("fill_qty", pre + "6"), ("fill_price", pre + "6")]:
        assert want in kinds, (want, kinds)
    table = sq(["reconcile", "--journal", str(run)], stdout_isatty=True, width=200)
    assert table.exit_code == 1 and "missing_at_venue" in table.stdout.decode() and "order_side" in table.stdout.decode()
    r = sq(["reconcile", "--journal", str(run), "--fix", "--json"])
    assert json.loads(r.stdout)["runs"][0]["fixed"] >= 8, r.stdout
    audit = J.load(run).records[-1]
    assert audit.kind == "audit" and {c["kind"] for c in audit.data["changes"]} >= {"order_side", "missing_fill", "fill_qty"}
    r = sq(["reconcile", "--journal", str(run), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["differences"] == 0, r.stdout
    gw.cancel_all(SYMBOL)
