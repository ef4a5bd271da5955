"""`sq kill` at Binance with the credentials `sq auth binance` stored: an Ed25519 key (signatures
checked by the local fake) and the testnet flag (the cancels go to the testnet, never to the
production URLs) — the same account every other Binance command uses."""

from __future__ import annotations

import json
import os
import socket

import pytest

from sq.core.config import Secret
from sq.venues.binance import credentials
from tests.support.binancekill import binance_gateway, ed25519_key, open_orders, rest_orders, sq_kill, store_credentials
from tests.support.fakes.binance import Account


def test_kill_cancels_with_a_storeded25519_key(binance_fake, tmp_path):
    """`sq auth binance --ed25519-key` stored a key file and no secret: `sq kill` signs with it
    (base64 Ed25519, verified by the fake) and cancels everything on spot and futures."""
    pem, public = ed25519_key(tmp_path)
    fake = binance_fake(credentials=False, account=Account(ed25519_public_pem=public))
    assert "BINANCE_API_SECRET" not in os.environ
    store_credentials(credentials.Credentials(fake.account.api_key, None, str(pem), False, "file"))
    gw = binance_gateway()  # the same stored credentials place the orders
    rest_orders(fake, gw, "BINANCE:BTCUSDT", 3)
    rest_orders(fake, gw, "BINANCE-FUT:BTCUSDT", 2)
    assert len(open_orders(fake)) == 5
    r = sq_kill("--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    by_market = {v["market"]: v for v in doc["venues"] if v["venue"] == "binance"}
    assert set(by_market) == {"spot", "futures"}, doc
    assert by_market["spot"]["canceled"] == 3 and by_market["futures"]["canceled"] > 0, doc
    assert all(v["ok"] and v["remaining_orders"] == [] for v in by_market.values()), doc
    assert doc["ok"] and open_orders(fake) == []
    assert ("DELETE", "/api/v3/openOrders", 200) in fake.requests and ("DELETE", "/fapi/v1/allOpenOrders", 200) in fake.requests
    assert fake.account.api_key not in r.stdout + r.stderr and pem.read_text() not in r.stdout + r.stderr


def test_kill_with_a_stored_ed25519_key_that_is_gone_fails_loudly(binance_fake, tmp_path, sq):
    """A stored key file that no longer exists is an error row (exit 1), not a silent no-op."""
    fake = binance_fake(credentials=False)
    store_credentials(credentials.Credentials(fake.account.api_key, None, str(tmp_path / "gone.pem"), False, "file"))
    r = sq(["kill", "--venue", "binance", "--json"])
    assert r.exit_code == 1, r.stderr
    doc = json.loads(r.stdout)
    assert [v["market"] for v in doc["venues"]] == ["spot", "futures"] and not doc["ok"]
    assert all("gone.pem does not exist" in v["error"] for v in doc["venues"]), doc
    assert fake.requests == []


@pytest.fixture
def testnet_fake(binance_fake, monkeypatch):
    """The fake as Binance's testnet, and a listener as production that must hear nothing.

    The real testnet URLs are constants of `sq.venues.binance.endpoints` (https hosts no test may reach), so they
    are pointed at the fake here; the config's REST URLs point at the listener and count as the
    production defaults, which is what `testnet` swaps for the testnet ones."""
    from sq.venues.binance.endpoints import PROD, TESTNET

    fake = binance_fake(credentials=False)
    listener = socket.create_server(("127.0.0.1", 0))
    production = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name, variable in (("rest_url", "SQ_BINANCE_REST_URL"), ("futures_rest_url", "SQ_BINANCE_FUTURES_REST_URL")):
        monkeypatch.setenv(variable, production)
        monkeypatch.setitem(PROD, name, production)
        monkeypatch.setitem(TESTNET, name, fake.rest_url)
    yield fake, listener
    listener.close()


def _heard_nothing(listener: socket.socket) -> bool:
    listener.setblocking(False)
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return True
    return False


def test_kill_uses_the_testnet_of_stored_testnet_credentials(testnet_fake, sq):
    """`sq auth binance --testnet` stored the flag with the key: `sq kill` cancels at the testnet
    (here the fake), and not one connection goes to the production URLs."""
    fake, listener = testnet_fake
    store_credentials(credentials.Credentials(fake.account.api_key, Secret(fake.account.api_secret), None, True, "file"))
    gw = binance_gateway()  # the same stored credentials place the orders, on the testnet
    assert gw.endpoints.testnet and gw.endpoints.rest("spot") == gw.endpoints.rest("futures") == fake.rest_url
    rest_orders(fake, gw, "BINANCE:BTCUSDT", 2)
    rest_orders(fake, gw, "BINANCE-FUT:BTCUSDT", 1)
    r = sq(["kill", "--json"])
    assert r.exit_code == 0, r.stdout.decode() + r.stderr
    doc = json.loads(r.stdout)
    by_market = {v["market"]: v for v in doc["venues"] if v["venue"] == "binance"}
    assert by_market["spot"]["canceled"] == 2 and by_market["futures"]["canceled"] > 0 and doc["ok"], doc
    assert open_orders(fake) == []
    assert ("DELETE", "/api/v3/openOrders", 200) in fake.requests and ("DELETE", "/fapi/v1/allOpenOrders", 200) in fake.requests
    assert _heard_nothing(listener)
