"""`sq live` bar strategies' stop-loss and take-profit as protective orders at the venue fakes:
Binance spot an OCO (LIMIT_MAKER take-profit + STOP_LOSS_LIMIT stop priced a slippage band beyond
its trigger), moved by cancel-and-replace when a later bar moves the stop, canceled when the run
ends; Binance USD-M a reduce-only STOP_MARKET algo order (workingType from the config) whose fill
at the venue closes the position — the engine books it from the user stream and does not trade
it back; Zerodha MIS an SL-M (market protection) plus a LIMIT target, the target canceled by sq
when the stop fills."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.support.livetools import live_config, orders_working, registered
from tests.support.process import SQ_BIN, subprocess_env

GUARDED = '''
import polars as pl
from sq.strategy import BarStrategy

strategy = BarStrategy("guarded", "long once, protected at the venue", interval="1s", execution="market", offset=5)
SIZE = strategy.param("size", 0.002, above=0, doc="the long position")
STOP = strategy.param("stop_pct", 1.0, doc="stop-loss this % below the first close (negative: above it)")
TAKE = strategy.param("take_pct", 1.0, doc="take-profit this % above the first close (0: none)")
TRAIL = strategy.param("trail", 0.0, doc="1: every later bar moves the stop (by a step each bar)")
HOLD = strategy.param("hold", 0.0, doc="bars to hold before going flat (0: hold)")


@strategy.signals
def signals(bars, p):
    i = pl.int_range(pl.len())
    first = i == 0
    base = pl.col("close").first()
    stop = base * (1 - p.stop_pct / 100) + (i % 2) * base * 0.0001  # a trailed stop alternates: a new price every bar
    moves = first if p.trail <= 0 else pl.lit(True)
    take = pl.when(first).then(base * (1 + p.take_pct / 100)) if p.take_pct > 0 else pl.lit(None, pl.Float64)
    target = pl.when(first).then(p.size)
    if p.hold > 0:
        target = target.when(i == int(p.hold)).then(0.0)
    return bars.with_columns(target=target, stop_loss=pl.when(moves).then(stop), take_profit=take)
'''


def _strategy(tmp_path) -> str:
    path = tmp_path / "guarded.py"
    path.write_text(GUARDED)
    return str(path)


def _live(tmp_path, journal, symbol: str, *params: str, extra: str = "", duration: str = "300s") -> subprocess.Popen:
    args = [SQ_BIN, "live", "--strategy", _strategy(tmp_path), symbol, "--config", str(live_config(tmp_path, extra=extra)),
            "--confirm-live", "--journal", str(journal), "--json", "--for", duration]
    for p in params:
        args += ["--param", p]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())


def _stop(p, how: str = "SIGTERM") -> dict:
    """Stop a live run with SIGTERM or `sq kill` (which finds it in the registry and halts it)."""
    from tests.support.binancekill import sq_kill

    try:
        if p.poll() is None and how == "kill":
            r = sq_kill("--json", "--timeout", "30")
            assert r.returncode == 0 and [x["outcome"] for x in json.loads(r.stdout)["processes"]] == ["halted"], r.stdout + r.stderr
        elif p.poll() is None:
            p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode in (0, 143), err
    return json.loads(out)


def _prefix(journal) -> str:
    from sq.core import journal as J

    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            return J.load(journal).start["client_prefix"]
        except Exception:  # noqa: BLE001 - not written yet
            time.sleep(0.1)
    raise AssertionError("no journal")


def _reconcile(journal) -> dict:
    r = subprocess.run([SQ_BIN, "reconcile", "--journal", str(journal), "--json"], capture_output=True, text=True,
                       env=subprocess_env(), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def _rows(journal, cid_prefix: str, kind: str = "order") -> list[dict]:
    from sq.core import journal as J

    return [r.data for r in J.load(journal).records if r.kind == kind and str(r.data.get("client_order_id") or "").startswith(cid_prefix)]


@pytest.mark.parametrize("how", ["SIGTERM", "kill"])
def test_binance_spot_oco_placed_moved_and_canceled(binance_fake, tmp_path, how):
    fake = binance_fake()
    journal = tmp_path / "spot"
    # both legs inside the fake's price ladder (±0.55 %); the take-profit well away from the price,
    # where only a rare sweep of the simulated book reaches (at +0.2 % one filled it in ~1 run in 30,
    # the position went flat and the stop had nothing left to trail)
    p = _live(tmp_path, journal, "BINANCE:BTCUSDT", "trail=1", "stop_pct=0.2", "take_pct=0.4")
    try:
        registered(p)
        mine = _prefix(journal) + "p"

        def lists():
            with fake.lock:
                return [lst for lst in fake.exchange.lists.values() if lst["cid"].startswith(mine)]

        orders_working(p, lambda: len(lists()), 3, timeout=150)  # placed, then replaced as the stop moved
        with fake.lock:
            first = lists()[0]
            legs = {o.type: o for o in first["legs"]}
            entry = [o for o in fake.exchange.orders.values() if o.client_id.startswith(mine[:-1]) and not o.client_id.startswith(mine)]
        assert set(legs) == {"LIMIT_MAKER", "STOP_LOSS_LIMIT"} and {o.side for o in legs.values()} == {"SELL"}
        stop = legs["STOP_LOSS_LIMIT"].stop_price
        # [live] protective_slippage_pct = 0.5: the stop leg's limit 0.5 % below its trigger (on the 0.01 tick)
        assert abs(legs["STOP_LOSS_LIMIT"].price - stop * 0.995) <= 0.011 and legs["STOP_LOSS_LIMIT"].price < stop
        assert legs["LIMIT_MAKER"].price > stop and abs(legs["STOP_LOSS_LIMIT"].qty - 0.002) < 1e-12
        assert [o.side for o in entry][:1] == ["BUY"]
    finally:
        summary = _stop(p, how)
    with fake.lock:
        working = [o for lst in fake.exchange.lists.values() for o in lst["legs"] if o.status in ("NEW", "PARTIALLY_FILLED")]
        stops = [o.stop_price for lst in lists() for o in lst["legs"] if o.type == "STOP_LOSS_LIMIT"]
    assert working == []  # the run's end canceled its protection
    assert len(set(stops)) >= 2  # the later bars moved the stop
    prot = summary["protective_orders"]
    assert prot["placed"] >= 1 and prot["modified"] >= 2 and prot["filled"] == 0 and prot["working"] == [], prot
    rows = _rows(journal, mine)
    assert rows[0]["event"] == "new" and "oco" in rows[0]["reason"]
    last = {}
    for r in rows:
        last[r["client_order_id"]] = r["event"]
    assert set(last.values()) == {"canceled"}, last
    assert summary["orders_sent"] == 1  # the engine's one entry: no exit of its own
    assert _reconcile(journal)["differences"] == 0


def test_binance_futures_stop_fill_at_the_venue_closes_the_position(binance_fake, tmp_path):
    fake = binance_fake()
    journal = tmp_path / "fut"
    # a stop above the market for a long: the venue triggers it at once and the reduce-only market sell closes the position
    p = _live(tmp_path, journal, "BINANCE-FUT:BTCUSDT", "stop_pct=-0.2", "take_pct=0",
              extra='[live]\nprotective_trigger = "contract"\n')
    try:
        registered(p)
        mine = _prefix(journal) + "p"

        def finished():
            with fake.lock:
                return sum(1 for a in fake.exchange.algos.values() if a.client_id.startswith(mine) and a.status == "FINISHED")

        orders_working(p, finished, 1, timeout=150)
        end = time.monotonic() + 60
        while time.monotonic() < end and not any(r["event"] == "filled" for r in _rows(journal, mine)):
            time.sleep(0.1)
    finally:
        summary = _stop(p)
    with fake.lock:
        [algo] = [a for a in fake.exchange.algos.values() if a.client_id.startswith(mine)]
        pos = fake.exchange.positions["BTCUSDT"]["amt"]
    assert (algo.type, algo.side, algo.reduce_only, algo.working_type) == ("STOP_MARKET", "SELL", True, "CONTRACT_PRICE")
    assert abs(pos) < 1e-12
    fills = _rows(journal, mine, "fill")
    assert fills and abs(sum(f["qty"] for f in fills) - 0.002) < 1e-12 and {f["side"] for f in fills} == {-1}
    assert summary["protective_orders"]["filled"] == 1 and summary["orders_sent"] == 1, summary  # never traded back
    assert abs(summary["position"]["BINANCE-FUT:BTCUSDT"]) < 1e-12  # the engine booked the venue's fill
    assert _reconcile(journal)["differences"] == 0


def test_kite_mis_stop_fill_cancels_the_target(kite_env, kite_open_hours, tmp_path):
    from tests.support.kitelive import SYMBOL, live_env, store_session

    fake = kite_env
    store_session(fake)
    journal = tmp_path / "kite"
    # MIS (the default product): an SL-M stop above the market for a long — Kite triggers it at once — and a LIMIT target above
    args = [SQ_BIN, "live", "--strategy", _strategy(tmp_path), SYMBOL, "--config", str(live_config(tmp_path)), "--confirm-live",
            "--journal", str(journal), "--json", "--for", "300s", "--param", "size=1", "--param", "stop_pct=-1", "--param", "take_pct=1"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=live_env())
    try:
        registered(p)
        mine = _prefix(journal) + "p"

        def ours():
            return [o for o in fake.placed() if (o.get("tag") or "").startswith(mine)]

        def done():
            with fake.lock:
                now = {o["tag"]: fake.orders[o["order_id"]]["status"] for o in ours()}
            return int(sorted(now.values()) == ["CANCELLED", "COMPLETE"])

        orders_working(p, done, 1, timeout=150)
        end = time.monotonic() + 60
        while time.monotonic() < end and not any(r["event"] == "filled" for r in _rows(journal, mine)):
            time.sleep(0.1)
    finally:
        summary = _stop(p)
    sent = {o["order_type"]: o for o in ours()}
    assert set(sent) == {"SL-M", "LIMIT"} and {o["transaction_type"] for o in sent.values()} == {"SELL"}
    assert "market_protection" in sent["SL-M"] and sent["SL-M"]["product"] == "MIS" and sent["LIMIT"]["price"] > sent["SL-M"]["trigger_price"] * 0.99
    with fake.lock:
        status = {o["order_type"]: fake.orders[o["order_id"]]["status"] for o in ours()}
    assert status == {"SL-M": "COMPLETE", "LIMIT": "CANCELLED"}  # the stop filled; sq canceled the target
    assert summary["protective_orders"]["filled"] == 1 and summary["orders_sent"] == 1, summary
    assert abs(summary["position"][SYMBOL]) < 1e-12


def _kite_live(tmp_path, journal, extra: str, *params: str):
    from tests.support.kitelive import SYMBOL, live_env

    args = [SQ_BIN, "live", "--strategy", _strategy(tmp_path), SYMBOL, "--config", str(live_config(tmp_path, extra=extra)),
            "--confirm-live", "--journal", str(journal), "--json", "--for", "300s"]
    for p in params:
        args += ["--param", p]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=live_env())


NRML = '[zerodha]\nproduct = "NRML"\n[live]\nsweep_interval = 0.5\nprotective_slippage_pct = 2\n'


def test_kite_nrml_gtt_placed_then_modified_in_place_and_deleted_at_the_end(kite_env, kite_open_hours, tmp_path):
    from tests.support.kitelive import store_session

    fake = kite_env
    store_session(fake)
    journal = tmp_path / "gtt"
    p = _kite_live(tmp_path, journal, NRML, "size=1", "stop_pct=1", "take_pct=1", "trail=1")
    try:
        registered(p)
        orders_working(p, lambda: len(fake.gtt_modifies), 2, timeout=150)  # the trailed stop moved the GTT twice
    finally:
        summary = _stop(p)
    with fake.lock:
        gtts = list(fake.gtts.values())
    assert len(gtts) == 1 and gtts[0]["type"] == "two-leg" and gtts[0]["status"] == "deleted"  # one GTT, modified in place
    assert set(fake.gtt_modifies) == {gtts[0]["id"]} and {o["product"] for o in gtts[0]["orders"]} == {"NRML"}
    assert summary["protective_orders"]["modified"] >= 2 and summary["protective_orders"]["placed"] == 1, summary
    rows = _rows(journal, _prefix(journal) + "p")
    assert {r["venue_order_id"] for r in rows if r["venue_order_id"]} == {f"gtt:{gtts[0]['id']}"} and rows[-1]["event"] == "canceled"


def test_kite_nrml_gtt_triggered_order_found_and_booked(kite_env, kite_open_hours, tmp_path):
    """A GTT's triggered LIMIT order carries no tag (no postback names it): the run's check of its
    protective orders finds the GTT triggered, books the triggered order's fills and goes flat."""
    from tests.support.kitelive import SYMBOL, store_session

    fake = kite_env
    store_session(fake)
    journal = tmp_path / "gtt-fill"
    # the stop just above the market (the GTT's lower trigger): it fires at once; its LIMIT 2 % below crosses the bid
    p = _kite_live(tmp_path, journal, NRML, "size=1", "stop_pct=-0.5", "take_pct=1")
    try:
        registered(p)
        mine = _prefix(journal) + "p"
        orders_working(p, lambda: int(any(r["event"] == "filled" for r in _rows(journal, mine))), 1, timeout=150)
    finally:
        summary = _stop(p)
    with fake.lock:
        [g] = list(fake.gtts.values())
        oid = g["orders"][0]["result"]["order_result"]["order_id"]
        placed = fake.orders[oid]
    assert g["status"] == "triggered" and placed["status"] == "COMPLETE" and placed["tag"] is None
    fills = _rows(journal, mine, "fill")
    assert fills and {f["venue_order_id"] for f in fills} == {oid} and abs(sum(f["qty"] for f in fills) - 1) < 1e-9
    assert summary["protective_orders"]["filled"] == 1 and summary["orders_sent"] == 1 and abs(summary["position"][SYMBOL]) < 1e-9


def _killed_with_a_gtt_standing(fake, tmp_path, journal) -> dict:
    """A Kite live run with a stop and a take-profit, SIGKILLed once its journal holds the GTT's
    id (before that, only the venue knows it: a gap sq reconcile reports); the GTT left active."""
    from tests.support.kitelive import store_session

    store_session(fake)
    p = _kite_live(tmp_path, journal, NRML, "size=1", "stop_pct=1", "take_pct=1")
    try:
        registered(p)
        mine = _prefix(journal) + "p"
        orders_working(p, lambda: sum(1 for r in _rows(journal, mine) if r["event"] == "accepted"), 1, timeout=150)
    finally:
        p.kill()
        p.communicate(timeout=60)
    [g] = list(fake.gtts.values())
    assert g["status"] == "active"
    return g


def test_a_resumed_run_deletes_the_gtt_its_dead_process_left(kite_env, kite_open_hours, tmp_path):
    """SIGKILL leaves the GTT standing at Kite (no tag, so no listing of open orders finds it);
    `sq live --resume` cancels it by its journaled venue id `gtt:<id>`."""
    from tests.support.kitelive import live_env

    fake = kite_env
    journal = tmp_path / "gtt-resume"
    g = _killed_with_a_gtt_standing(fake, tmp_path, journal)
    r = subprocess.run([SQ_BIN, "live", "--resume", str(journal), "--config", str(live_config(tmp_path, extra=NRML)), "--confirm-live",
                        "--json", "--for", "2s"], capture_output=True, text=True, env=live_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    assert fake.gtts[g["id"]]["status"] == "deleted"


def test_binance_spot_exit_cancels_the_oco_before_the_exit_goes_out(binance_fake, tmp_path):
    """The strategy goes flat at its third bar: the OCO is canceled at the venue before the exit
    is sent (a spot OCO locks the balance the exit sells), then the exit IOC sells the position;
    nothing is left working."""
    from sq.core import journal as J

    fake = binance_fake()
    journal = tmp_path / "exit"
    p = _live(tmp_path, journal, "BINANCE:BTCUSDT", "stop_pct=0.2", "take_pct=0.2", "hold=3")
    try:
        registered(p)
        prefix = _prefix(journal)

        def sold():
            with fake.lock:
                return sum(1 for o in fake.exchange.orders.values() if o.client_id.startswith(prefix) and o.side == "SELL"
                           and o.type == "LIMIT" and o.status == "FILLED")

        orders_working(p, sold, 1, timeout=150)
    finally:
        summary = _stop(p)
    records = [r for r in J.load(journal).records if r.kind == "order"]
    mine = prefix + "p"
    assert any(r.data["client_order_id"].startswith(mine) and r.data["event"] == "cancel_sent" and "exits" in r.data["reason"]
               for r in records)
    with fake.lock:
        sent = [(m, path) for m, path, _ in fake.requests if (m, path) in (("DELETE", "/api/v3/orderList"), ("POST", "/api/v3/order"))]
    assert sent == [("POST", "/api/v3/order"), ("DELETE", "/api/v3/orderList"), ("POST", "/api/v3/order")], sent  # entry, cancel, exit
    with fake.lock:
        working = [o for o in fake.exchange.orders.values() if o.status in ("NEW", "PARTIALLY_FILLED")]
    assert working == [] and abs(summary["position"]["BINANCE:BTCUSDT"]) < 1e-12 and summary["orders_sent"] == 2
    assert summary["protective_orders"]["canceled"] >= 1 and summary["protective_orders"]["filled"] == 0


def test_a_new_run_deletes_the_gtt_a_crashed_run_left(kite_env, kite_open_hours, tmp_path):
    """Before its first order a new run cancels what earlier runs on its symbols left open: a GTT,
    which no listing of open orders shows, by the venue id the earlier journal holds."""
    from sq.core import paths

    fake = kite_env
    journal = paths.data_dir() / "runs" / "crashed"  # where a new run looks for earlier ones
    g = _killed_with_a_gtt_standing(fake, tmp_path, journal)
    q = _kite_live(tmp_path, tmp_path / "next", NRML, "size=1", "stop_pct=1", "take_pct=1")
    try:
        registered(q)
        orders_working(q, lambda: int(fake.gtts[g["id"]]["status"] == "deleted"), 1, timeout=120)
    finally:
        _stop(q)
