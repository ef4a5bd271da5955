"""Binance spot where the futures API is out of reach (issue #20): a geo-restriction (HTTP 451), a
firewall that lets only the spot hosts through (403 from a proxy, or the connection refused), or a
key without futures permission (-2015). `sq live BINANCE:…` still trades spot, `sq reconcile` of its
journal reconciles and `sq kill --venue binance` cancels spot — reporting the unreachable futures
market with its reason (exit 1: its orders could not be checked), or skipping it for a key that
has no futures account (exit 0). Against the local Binance fake, through real sockets."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from tests.support.binancekill import open_orders, rest_orders, sq_kill
from tests.support.fakes.binance import Account
from tests.support.livetools import live_config
from tests.support.process import SQ_BIN, subprocess_env

LIVE = ["live", "--strategy", "mm", "BINANCE:BTCUSDT", "--param", "clip=0.05", "--param", "threshold=0.1"]


@pytest.fixture
def closed_port():
    """A 127.0.0.1 port bound but not listening, kept for the test: every connection is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def _spot_only(binance_fake, monkeypatch, closed_port, how):
    """The fake with its futures API out of reach: `how` is "refused" (the futures URLs point at a
    closed port) or the HTTP status every /fapi request gets (451 geo-restriction, 403 firewall)."""
    if how == "refused":
        fake = binance_fake()
        monkeypatch.setenv("SQ_BINANCE_FUTURES_REST_URL", f"http://127.0.0.1:{closed_port}")
        monkeypatch.setenv("SQ_BINANCE_FUTURES_WS_URL", f"ws://127.0.0.1:{closed_port}")
        return fake
    return binance_fake(futures_blocked=how)


def _futures_requests(fake):
    return [r for r in fake.requests if r[1].startswith("/fapi")]


def _live_then_reconcile(fake, tmp_path) -> dict:
    """`sq live` on BINANCE:BTCUSDT for 10 s (start-up alone can take seconds on a busy machine),
    then `sq reconcile` of its journal: both must succeed; the live summary."""
    from sq.core import journal as J

    journal = tmp_path / "run"
    r = subprocess.run([SQ_BIN, *LIVE, "--journal", str(journal), "--config", str(live_config(tmp_path)), "--confirm-live",
                        "--json", "--for", "10s"], capture_output=True, text=True, env=subprocess_env(), timeout=180)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["orders_sent"] > 0 and summary["venue_fills"] > 0, summary
    fills = [rec for rec in J.load(journal).records if rec.kind == "fill"]
    assert fills and {rec.data["trade_id"] for rec in fills} <= {str(t["id"]) for t in fake.exchange.trades}
    r = subprocess.run([SQ_BIN, "reconcile", "--journal", str(journal), "--json"], capture_output=True, text=True,
                       env=subprocess_env(), timeout=120)
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["differences"] == 0 and doc["runs"][0]["error"] == "", r.stdout + r.stderr
    return summary


@pytest.mark.parametrize("how", ["refused", 451])
def test_spot_trades_and_reconciles_without_the_futures_api(binance_fake, monkeypatch, closed_port, tmp_path, how):
    fake = _spot_only(binance_fake, monkeypatch, closed_port, how)
    _live_then_reconcile(fake, tmp_path)
    assert _futures_requests(fake) == []  # neither run even asked the futures API


@pytest.mark.parametrize("how", ["refused", 403])
def test_kill_cancels_spot_and_reports_futures_unreachable(binance_fake, monkeypatch, closed_port, how):
    from sq.core.config import load_config
    from sq.venues import registry

    fake = _spot_only(binance_fake, monkeypatch, closed_port, how)
    gw = registry.open_account("binance", load_config(), None, symbols=["BINANCE:BTCUSDT"])
    try:
        rest_orders(fake, gw, "BINANCE:BTCUSDT", 3)
    finally:
        gw.close()
    r = sq_kill("--venue", "binance", "--json")
    assert r.returncode == 1, r.stderr  # the futures market could not be checked: not clean
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    by_market = {v["market"]: v for v in json.loads(r.stdout)["venues"]}
    assert by_market["spot"]["ok"] and by_market["spot"]["canceled"] == 3 and by_market["spot"]["remaining_orders"] == []
    assert open_orders(fake, "spot") == []
    futures = by_market["futures"]
    why = "unreachable (cannot reach 127.0.0.1" if how == "refused" else "HTTP 403: Forbidden"
    assert not futures["ok"] and futures["error"].startswith(f"binance futures: {why}"), futures
    warnings = [line for line in r.stderr.splitlines() if "binance futures:" in line and "warning" in line]
    assert warnings == [f"sq: warning: {futures['error']}"], r.stderr  # one line, the market named once


def test_a_key_without_futures_permission_trades_spot_and_kill_skips_futures(binance_fake, tmp_path):
    from sq.core.config import load_config
    from sq.venues import registry

    fake = binance_fake(account=Account(permissions=("SPOT",)))
    _live_then_reconcile(fake, tmp_path)
    gw = registry.open_account("binance", load_config(), None, symbols=["BINANCE:BTCUSDT"])
    try:
        rest_orders(fake, gw, "BINANCE:BTCUSDT", 2)
    finally:
        gw.close()
    r = sq_kill("--venue", "binance", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] and [v["market"] for v in doc["venues"]] == ["spot"] and doc["venues"][0]["canceled"] == 2
    assert open_orders(fake) == []
    assert ("GET", "/fapi/v1/openOrders", 401) in fake.requests  # asked, and the key has no futures account


def test_an_ed25519_account_trades_spot_and_kill_reports_futures_unreachable(binance_fake, tmp_path):
    """The same with an Ed25519 key stored by `sq auth binance --ed25519-key` (no HMAC secret; the
    fake verifies every signature): live trades and reconciles spot, kill cancels spot and names
    the unreachable futures market — HMAC and Ed25519 accounts alike."""
    import os

    from sq.core.config import load_config
    from sq.venues import registry
    from sq.venues.binance import credentials
    from tests.support.binancekill import ed25519_key, store_credentials

    pem, public = ed25519_key(tmp_path)
    fake = binance_fake(credentials=False, account=Account(ed25519_public_pem=public), futures_blocked=451)
    assert "BINANCE_API_SECRET" not in os.environ
    store_credentials(credentials.Credentials(fake.account.api_key, None, str(pem), False, "file"))
    _live_then_reconcile(fake, tmp_path)
    assert _futures_requests(fake) == []
    gw = registry.open_account("binance", load_config(), None, symbols=["BINANCE:BTCUSDT"])
    try:
        rest_orders(fake, gw, "BINANCE:BTCUSDT", 2)
    finally:
        gw.close()
    r = sq_kill("--venue", "binance", "--json")
    assert r.returncode == 1, r.stderr
    by_market = {v["market"]: v for v in json.loads(r.stdout)["venues"]}
    assert by_market["spot"]["ok"] and by_market["spot"]["canceled"] == 2 and open_orders(fake, "spot") == []
    assert not by_market["futures"]["ok"] and by_market["futures"]["error"].startswith("binance futures: HTTP 451"), by_market
    assert pem.read_text() not in r.stdout + r.stderr
