"""`sq live` with a bar strategy against the local Binance fake: one-second bars built from the
fake's trade stream, a signal per closed bar, real orders at the venue (IOCs through the touch
for `market`, resting GTC quotes for `limit`), every one journaled before it is sent, a clean
reconcile; and `sq kill` or SIGTERM halt it like any event strategy, leaving nothing open."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.support.binancekill import open_orders, sq_kill
from tests.support.livetools import live_config, orders_working, registered
from tests.support.process import SQ_BIN, subprocess_env

# long on even bars, flat on odd ones: a new wanted position at every bar close
FLIPPER = '''
import polars as pl
from sq.strategy import BarStrategy

strategy = BarStrategy("flipper", "long on even bars, flat on odd ones", interval="1s", execution="{execution}", offset=5)
SIZE = strategy.param("size", 0.002, above=0, doc="the long position, BTC")


@strategy.signals
def signals(bars, p):
    even = pl.int_range(pl.len()) % 2 == 0
    return bars.with_columns(target=pl.when(even).then(p.size).otherwise(0.0))
'''


def _strategy(tmp_path, execution: str) -> str:
    path = tmp_path / f"flipper_{execution}.py"
    path.write_text(FLIPPER.format(execution=execution))
    return str(path)


def _live(tmp_path, journal, execution: str, *extra: str) -> subprocess.Popen:
    args = [SQ_BIN, "live", "--strategy", _strategy(tmp_path, execution), "BINANCE:BTCUSDT", "--config", str(live_config(tmp_path)),
            "--confirm-live", "--journal", str(journal), "--json", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())


def _ours(fake, prefix: str) -> list:
    return [o for o in fake.exchange.orders.values() if o.client_id.startswith(prefix)]


def _reconcile(journal) -> dict:
    r = subprocess.run([SQ_BIN, "reconcile", "--journal", str(journal), "--json"], capture_output=True, text=True,
                       env=subprocess_env(), timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_bar_strategy_trades_live_at_each_bar_close(binance_fake, tmp_path):
    """One-second bars: IOCs `offset` ticks through the touch after bars close — a buy to go long,
    a sell to go flat, as the signal flips — each journaled before it went out; stopped once both
    have gone out, the run is sealed and reconciles clean."""
    from sq.core import journal as J
    from sq.runs.reconcile import view_of

    fake = binance_fake()
    journal = tmp_path / "bars"
    p = _live(tmp_path, journal, "market", "--for", "300s")
    try:
        registered(p)
        prefix = J.load(journal).start["client_prefix"]
        orders_working(p, lambda: len({o.side for o in _ours(fake, prefix) if o.status == "FILLED"}), 2, timeout=120)
    finally:
        summary = _stop(p, "SIGTERM")
    assert summary["strategy"] == "flipper" and summary["interval"] == "1s" and summary["bars"] >= 2, summary
    ours = sorted(_ours(fake, prefix), key=lambda o: o.order_id)
    assert summary["orders_sent"] == len(ours) and {o.tif for o in ours} == {"IOC"}, (summary, ours)
    assert ours[0].side == "BUY"  # the first bar (even) wants the long position
    held = 0.0
    for o in ours:  # between flat and long, never beyond: each order goes to the bar's wanted position
        held += float(o.executed) * (1 if o.side == "BUY" else -1)
        assert -1e-9 <= held <= 0.002 + 1e-9, ours
    loaded = J.load(journal)
    view = view_of(loaded)
    assert loaded.sealed and {o.client_id for o in ours} <= set(view.orders)  # every venue order is in the journal
    records = loaded.records
    for o in ours:  # written ahead: its `new` row precedes any fill of it
        first = next(i for i, r in enumerate(records) if r.kind == "order" and r.data.get("client_order_id") == o.client_id)
        assert records[first].data["event"] == "new"
        assert all(i > first for i, r in enumerate(records) if r.kind == "fill" and r.data.get("client_order_id") == o.client_id)
    assert {str(t["id"]) for t in fake.exchange.trades if t["orderId"] in {o.order_id for o in ours}} == {k[1] for k in view.fills}
    assert _reconcile(journal)["differences"] == 0


def _stop(p, how: str) -> dict:
    """Stop a live run with `sq kill` or SIGTERM (killed outright if it does not end); it must
    exit with its summary on stdout: 0 after `sq kill`, 143 after a plain SIGTERM."""
    try:
        if p.poll() is None and how == "kill":
            r = sq_kill("--json", "--timeout", "20")
            doc = json.loads(r.stdout)
            assert r.returncode == 0 and [x["outcome"] for x in doc["processes"]] == ["halted"], r.stdout + r.stderr
        elif p.poll() is None:
            p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == (0 if how == "kill" else 143), err
    return json.loads(out)


@pytest.mark.parametrize("stop", ["kill", "SIGTERM"])
def test_kill_or_a_signal_halts_a_bar_strategy_cleanly(binance_fake, tmp_path, stop):
    """`limit` rests a GTC quote at the fake; once one is working, `sq kill` (or SIGTERM) halts the
    run: exit 0, the quote canceled at the venue, the journal sealed with its halt, reconcile clean."""
    from sq.core import journal as J

    fake = binance_fake()
    journal = tmp_path / f"halt-{stop}"
    p = _live(tmp_path, journal, "limit", "--for", "120s")
    try:
        registered(p)
        orders_working(p, lambda: len(open_orders(fake, "spot")), 1, timeout=90)
    finally:
        summary = _stop(p, stop)
    assert summary["strategy"] == "flipper" and summary["stopped_by"] != "for" and summary["orders_sent"] >= 1
    assert open_orders(fake) == []
    loaded = J.load(journal)
    assert loaded.sealed and any(r.kind == "halt" for r in loaded.records)
    assert {o.tif for o in _ours(fake, loaded.start["client_prefix"])} == {"GTC"}
    assert _reconcile(journal)["differences"] == 0


def test_a_failing_signals_function_stops_the_run_like_a_failing_handler(binance_fake, tmp_path):
    """signals() raising at the fourth bar ends the live run as a failing event handler does:
    exit 70 naming the strategy's file and line, every order canceled at the venue, the journal
    sealed with `strategy_error`."""
    from sq.core import journal as J

    fake = binance_fake()
    path = tmp_path / "fragile.py"
    path.write_text(FLIPPER.format(execution="limit").replace(
        "    even = ", "    if bars.height >= 4:\n        raise RuntimeError('boom')\n    even = "))
    journal = tmp_path / "fragile"
    args = [SQ_BIN, "live", "--strategy", str(path), "BINANCE:BTCUSDT", "--config", str(live_config(tmp_path)), "--confirm-live",
            "--journal", str(journal), "--json", "--for", "300s"]
    r = subprocess.run(args, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert r.returncode == 70, r.stderr
    assert "boom" in r.stderr and "fragile.py:" in r.stderr
    loaded = J.load(journal)
    assert loaded.sealed and loaded.last("end").data["reason"] == "strategy_error"
    assert _ours(fake, loaded.start["client_prefix"])  # it traded before it failed
    assert open_orders(fake) == []
    assert _reconcile(journal)["differences"] == 0
