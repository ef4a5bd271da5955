"""`sq kill` at the venues: cancel-all without any process, filters, --flatten, a burst of orders,
a hung (SIGSTOPped) `sq live` — against the local Binance fake, through real sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.support.binancekill import binance_gateway, open_orders, rest_orders, sq_kill
from tests.support.livetools import kill_mid_burst, live_config, orders_working
from tests.support.process import SQ_BIN, subprocess_env


def test_kill_cancels_everything_at_the_venue_without_any_process(binance_fake):
    fake = binance_fake()
    gw = binance_gateway()
    rest_orders(fake, gw, "BINANCE:BTCUSDT", 3)
    rest_orders(fake, gw, "BINANCE-FUT:BTCUSDT", 2)
    assert len(open_orders(fake)) == 5
    r = sq_kill("--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["processes"] == []
    by_market = {v["market"]: v for v in doc["venues"]}
    assert by_market["spot"]["canceled"] == 3 and by_market["spot"]["remaining_orders"] == []
    assert by_market["futures"]["remaining_orders"] == []
    assert open_orders(fake) == []
    assert ("DELETE", "/api/v3/openOrders", 200) in fake.requests and ("DELETE", "/fapi/v1/allOpenOrders", 200) in fake.requests
    for secret in (fake.account.api_secret, fake.account.api_key):
        assert secret not in r.stdout + r.stderr


def test_kill_symbol_filter_and_nothing_open_is_clean(binance_fake):
    fake = binance_fake()
    gw = binance_gateway()
    rest_orders(fake, gw, "BINANCE:BTCUSDT", 2)
    rest_orders(fake, gw, "BINANCE-FUT:BTCUSDT", 1)
    r = sq_kill("--symbol", "binance-fut:btcusdt", "--json")
    assert r.returncode == 0, r.stderr
    assert len(open_orders(fake, "spot")) == 2 and open_orders(fake, "futures") == []
    r = sq_kill("--venue", "binance", "--json")
    assert r.returncode == 0 and open_orders(fake) == []
    r = sq_kill("--json")  # nothing left: still clean
    assert r.returncode == 0 and json.loads(r.stdout)["ok"]


def test_kill_flatten_closes_futures_position_within_order_size(binance_fake, tmp_path):
    from sq.venues.base import OrderRequest

    fake = binance_fake()
    gw = binance_gateway()
    bid, ask = fake.market("BTCUSDT", "futures").best()
    st = gw.place(OrderRequest("BINANCE-FUT:BTCUSDT", 1, 0.003, round(ask + 1, 2), time_in_force="ioc"))
    assert st.filled_qty > 0
    pos = fake.exchange.positions["BTCUSDT"]["amt"]
    cfg = tmp_path / "sq.toml"
    cfg.write_text('[[instruments]]\nsymbol = "BINANCE-FUT:BTCUSDT"\nmax_order_size = 0.001\n')
    r = sq_kill("--flatten", "--json", env=subprocess_env(SQ_CONFIG=str(cfg)))
    assert r.returncode == 0, r.stderr
    fut = [v for v in json.loads(r.stdout)["venues"] if v["market"] == "futures"][0]
    assert len(fut["flattened"]) == round(pos / 0.001) and all(f["qty"] <= 0.001 + 1e-12 for f in fut["flattened"])
    assert abs(fake.exchange.positions["BTCUSDT"]["amt"]) < 1e-9 and fut["remaining_positions"] == []


def test_kill_imports_no_heavy_modules_and_reports_venue_errors(binance_fake):
    fake = binance_fake()
    code = ("import sys, atexit\n"
            "atexit.register(lambda: print('HEAVY', sorted(m for m in ('numba', 'polars', 'pyarrow', 'binance', 'kiteconnect') if m in sys.modules), file=sys.stderr))\n"
            "sys.argv = ['sq', 'kill', '--json']\n"
            "from sq.cli import main\nmain()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stderr
    fake.stop()  # the venue is gone: kill says so and exits 1
    r = sq_kill("--json")
    assert r.returncode == 1
    assert "cannot reach" in json.loads(r.stdout)["venues"][0]["error"]


def _start_live(tmp_path, journal, *extra, rate=20):
    cfg = live_config(tmp_path, rate)
    args = [SQ_BIN, "live", "--strategy", "mm", "BINANCE:BTCUSDT", "--config", str(cfg), "--confirm-live", "--journal", str(journal),
            "--param", "clip=0.01", "--param", "threshold=0.1", "--json", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())


def _wait_orders(fake, proc, n=1):
    orders_working(proc, lambda: len(open_orders(fake, "spot")), n)


def test_kill_during_a_burst_of_orders_halts_live_and_leaves_nothing_open(binance_fake, tmp_path):
    fake = binance_fake()
    proc = _start_live(tmp_path, tmp_path / "run", "--for", "60s", rate=50)
    kill_mid_burst(proc, lambda: _wait_orders(fake, proc), sq_kill)
    assert open_orders(fake) == []
    cids = [o.client_id for o in fake.exchange.orders.values()]
    assert len(cids) == len(set(cids))
    r = subprocess.run([SQ_BIN, "reconcile", "--journal", str(tmp_path / "run"), "--json"], capture_output=True, text=True, env=subprocess_env())
    assert r.returncode == 0, r.stdout


def _settled_open_orders(fake, timeout: float = 10.0):
    """The spot orders open once the fake has handled every request the stopped process had
    already sent (a requote's cancel can still be on the wire when SIGSTOP lands): the same
    set on two reads 0.3 s apart."""
    import time

    deadline = time.monotonic() + timeout
    seen = open_orders(fake, "spot")
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = open_orders(fake, "spot")
        if {o.client_id for o in now} == {o.client_id for o in seen}:
            return now
        seen = now
    return seen


def test_kill_cancels_at_the_venue_while_live_is_hung(binance_fake, tmp_path):
    fake = binance_fake()
    proc = _start_live(tmp_path, tmp_path / "run", "--for", "60s")
    try:
        _wait_orders(fake, proc, 2)  # both quotes working
        fake.paused = True  # no market flow from here on: nothing but sq kill can end them
        os.kill(proc.pid, signal.SIGSTOP)  # hung: it cannot cancel anything itself
        left = _settled_open_orders(fake)
        assert left
        r = sq_kill("--json", "--timeout", "0.5")
        doc = json.loads(r.stdout)
        assert doc["processes"][0]["outcome"] == "killed"  # it never halted: exit 1 says so
        assert r.returncode == 1
        spot = [v for v in doc["venues"] if v["market"] == "spot"][0]
        assert spot["ok"] and spot["remaining_orders"] == [], doc
        assert all(o.status == "CANCELED" for o in left), (doc, [(o.status, o.client_id) for o in left])
        assert spot["canceled"] == len(left)
        assert open_orders(fake) == []
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(10)
