"""Binance orders, auth and rate limits against the local fake (real HMAC checks, SIM matching)."""

from __future__ import annotations

import io
import json
import os
import stat
import time
from decimal import Decimal

import pytest

from sq.core.config import load_config
from sq.core.exits import AuthError, TempFailure
from sq.venues.base import OrderRequest
from sq.venues.binance.instruments import FilterViolation

SYM = "BINANCE:BTCUSDT"
FUT = "BINANCE-FUT:BTCUSDT"


def gateway(**kw):
    from sq.venues.binance import open_gateway

    return open_gateway(load_config(None), None, **kw)


def wait_for(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_place_cancel_cancel_all_open_orders_and_execution_reports(binance_fake):
    fake = binance_fake()
    gw = gateway()
    try:
        bid, ask = fake.market().best()
        a = gw.place(OrderRequest(SYM, 1, 0.01, bid - 5.0))
        b = gw.place(OrderRequest(SYM, -1, 0.01, ask + 5.0, time_in_force="post_only"))
        assert a.status == b.status == "accepted" and a.client_order_id.startswith("sq-") and a.client_order_id != b.client_order_id
        assert {o.client_order_id for o in gw.open_orders(SYM)} == {a.client_order_id, b.client_order_id}
        c = gw.cancel(SYM, a.client_order_id)
        assert c.status == "canceled"
        again = gw.cancel(SYM, a.client_order_id)  # already gone: a cancel reject, not a crash
        assert "cancel rejected" in again.reason
        assert [o.client_order_id for o in gw.cancel_all(SYM)] == [b.client_order_id]
        assert gw.open_orders(SYM) == [] and gw.cancel_all(SYM) == []
        # a marketable IOC trades against the SIM book: FULL answer + executionReport over the WS API
        t = gw.place(OrderRequest(SYM, 1, 0.002, ask + 10.0, time_in_force="ioc"))
        assert t.status == "filled" and t.filled_qty == pytest.approx(0.002)
        assert wait_for(lambda: gw.orders[t.client_order_id].status == "filled" and gw.user_stream.events >= 6)
        fills = gw.new_fills()
        assert fills and sum(f.qty for f in fills) == pytest.approx(0.002) and len({f.trade_id for f in fills}) == len(fills)
        assert all(f.liquidity == "taker" and f.side == 1 for f in fills)
        venue_fills = gw.fills(SYM)
        assert {f.trade_id for f in venue_fills} == {f.trade_id for f in fills}
        # LIMIT_MAKER that would take is rejected by the venue, reported as a rejected state
        r = gw.place(OrderRequest(SYM, 1, 0.01, ask + 1.0, time_in_force="post_only"))
        assert r.status == "rejected" and "-2010" in r.reason
        # a market order
        m = gw.place(OrderRequest(SYM, -1, 0.001, order_type="market"))
        assert m.status == "filled"
        assert any(p.symbol == "BINANCE:USDT" for p in gw.positions())
    finally:
        gw.close()


def test_client_order_ids_are_idempotent(binance_fake):
    fake = binance_fake()
    gw = gateway(user_stream=False)
    bid, _ = fake.market().best()
    req = OrderRequest(SYM, 1, 0.01, bid - 3.0, client_order_id="mine-1")
    first = gw.place(req)
    # the same id again (a retry after a lost answer) is resolved to the same order, not a second one
    market, rules, canonical, p = gw.prepare(req)
    doc = gw._send_order(market, p)
    assert str(doc["orderId"]) == first.venue_order_id
    assert len(gw.open_orders(SYM)) == 1
    with pytest.raises(Exception):
        gw.place(OrderRequest(SYM, 1, 0.01, bid - 3.0, client_order_id="bad id with spaces"))


def test_filters_refuse_bad_orders_before_the_venue(binance_fake):
    fake = binance_fake()
    gw = gateway(user_stream=False)
    bid, _ = fake.market().best()
    n0 = len(fake.requests)
    cases = [
        (OrderRequest(SYM, 1, 0.0001, bid - 1), "LOT_SIZE"),  # below minQty
        (OrderRequest(SYM, 1, 10_000, bid - 1), "LOT_SIZE"),  # above maxQty
        (OrderRequest(SYM, 1, 0.001, 1.0), "NOTIONAL"),  # 0.001 × 1.0 < 5
        (OrderRequest(SYM, 1, 0.01, 2_000_000.0), "PRICE_FILTER"),  # above maxPrice
    ]
    for req, name in cases:
        with pytest.raises(FilterViolation) as e:
            gw.place(req)
        assert e.value.filter == name and name in e.value.message and e.value.status == 2
    assert len(fake.requests) == n0  # nothing reached the venue
    # off-grid values are rounded (buy price down to the tick, quantity down to the step), not refused
    _, rules, _, p = gw.prepare(OrderRequest(SYM, 1, 0.0129, bid - 1.004))
    assert Decimal(p["quantity"]) == Decimal("0.012") and Decimal(p["price"]) == Decimal(f"{bid - 1.01:.2f}")
    _, _, _, p = gw.prepare(OrderRequest(SYM, -1, 0.0129, bid + 1.004))
    assert Decimal(p["price"]) == Decimal(f"{bid + 1.01:.2f}")  # sells round up


def test_429_backs_off_honouring_retry_after_then_418_is_exit_75(binance_fake):
    fake = binance_fake()
    slept = []

    def sleep(s):  # really wait: the fake bans (418) a client that comes back before Retry-After
        slept.append(s)
        time.sleep(s)

    gw = gateway(user_stream=False, sleep=sleep)
    gw.rest.sync_time()
    fake.forced = [(429, 1)]
    gw.open_orders(SYM)  # one 429, then success after the back-off
    assert slept == [1.0] and gw.rest.retries_429 == 1
    fake.forced = [(429, 1), (418, 120)]
    with pytest.raises(TempFailure) as e:
        gw.open_orders(SYM)
    assert e.value.status == 75 and "418" in e.value.message and "120" in e.value.message
    assert slept == [1.0, 1.0]
    fake.forced = [(429, 0)] * 5
    fake.backoff_until = 0
    with pytest.raises(TempFailure) as e:  # retries exhausted
        gw.open_orders(SYM)
    assert e.value.status == 75 and "429" in e.value.message
    # a client that ignores Retry-After is banned by the fake: the 418 path for real
    slept.clear()
    fake.forced = [(429, 30)]
    gw2 = gateway(user_stream=False, sleep=slept.append, max_retries=1)
    gw2.rest.synced = True
    with pytest.raises(TempFailure) as e:
        gw2.open_orders(SYM)
    assert "418" in e.value.message and slept == [30.0]


def test_weight_headers_drive_preemptive_throttling(binance_fake):
    fake = binance_fake(weight_limit=100)
    slept = []
    gw = gateway(user_stream=False, sleep=slept.append)
    gw.rest.limits.weight_1m = 100
    for _ in range(20):
        gw.open_orders(SYM)
        if slept:
            break
    assert slept, "the gateway never throttled"
    assert gw.rest.limits.used_weight <= 100  # it waited before the venue's limit, no 429
    assert all(s != 429 for _, _, s in fake.requests)


def test_futures_orders_positions_leverage_margin(binance_fake):
    fake = binance_fake()
    gw = gateway(symbols=[SYM, FUT])
    try:
        bid, ask = fake.market("BTCUSDT", "futures").best()
        gw.set_leverage(FUT, 5)
        gw.set_margin_type(FUT, "ISOLATED")
        gw.set_margin_type(FUT, "ISOLATED")  # "no need to change" is not an error
        o = gw.place(OrderRequest(FUT, 1, 0.01, bid - 2.0))
        assert o.status == "accepted" and gw.open_orders(FUT)[0].symbol == FUT
        t = gw.place(OrderRequest(FUT, 1, 0.003, ask + 10.0, time_in_force="ioc"))
        assert t.status == "filled"
        assert wait_for(lambda: any(f.symbol == FUT for f in gw._fills))  # ORDER_TRADE_UPDATE via the listenKey stream
        pos = {p.symbol: p for p in gw.positions()}[FUT]
        assert pos.qty == pytest.approx(0.003) and pos.extra["leverage"] == 5 and pos.extra["margin_type"] == "isolated"
        assert pos.extra["position_mode"] == "one-way"
        assert len(gw.cancel_all(FUT)) == 1 and gw.open_orders(FUT) == []
    finally:
        gw.close()


def test_auth_verifies_stores_0600_and_masks(binance_fake, capsys):
    from sq.runs.auth import AuthOptions
    from sq.venues.binance import auth

    fake = binance_fake()
    summary = auth.login(None, load_config(None), AuthOptions())
    assert summary["state"] == "verified" and summary["spot_trading"] == "yes" and summary["futures_trading"] == "yes"
    assert isinstance(summary["clock_offset_ms"], int) and summary["weight_used_1m"] > 0
    path = summary["stored"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = json.dumps(summary) + capsys.readouterr().out
    assert fake.account.api_secret not in text and fake.account.api_key not in text
    st = auth.status(None, load_config(None))
    assert st["key"] == summary["key"] and fake.account.api_key not in json.dumps(st)


def test_wrong_secret_is_auth_error_77_with_a_hint(binance_fake, monkeypatch):
    from sq.runs.auth import AuthOptions
    from sq.venues.binance import auth

    fake = binance_fake()
    monkeypatch.setenv("BINANCE_API_SECRET", "definitely-not-the-secret")
    with pytest.raises(AuthError) as e:
        auth.login(None, load_config(None), AuthOptions())
    assert e.value.status == 77
    assert "secret does not match" in e.value.message and "sq auth binance" in e.value.message
    assert "definitely-not-the-secret" not in e.value.message and fake.account.api_key not in e.value.message
    assert any(s == 400 for m, p, s in fake.requests if p.endswith("/account"))  # the venue really rejected the signature


def test_sq_auth_binance_command_exit_codes(binance_fake, monkeypatch):
    from sq.cli import app
    from sq.core.environment import Environment

    fake = binance_fake()

    def sq(*args):
        out, err = io.BytesIO(), io.StringIO()
        env = Environment(stdin=io.BytesIO(), stdout=out, stderr=err, stdin_isatty=False, stdout_isatty=False)
        try:
            code = app(args=list(args), prog_name="sq", obj=env, standalone_mode=False)
        except SystemExit as e:
            code = e.code
        except Exception as e:  # the CLI's own mapping lives in sq.cli.main
            code = getattr(e, "status", 1)
        return int(code or 0), out.getvalue().decode(), err.getvalue()

    code, out, _ = sq("auth", "binance", "--json")
    assert code == 0 and json.loads(out)["binance"]["state"] == "verified"
    assert fake.account.api_secret not in out
    monkeypatch.setenv("BINANCE_API_SECRET", "wrong-secret-0000000000")
    code, out, err = sq("auth", "binance", "--json")
    assert code == 77


def test_ed25519_keys_sign_rest_and_the_user_data_subscription(binance_fake, tmp_path, monkeypatch):
    from Crypto.PublicKey import ECC

    from sq.runs.auth import AuthOptions
    from sq.venues.binance import auth
    from tests.support.fakes.binance import Account

    key = ECC.generate(curve="ed25519")
    pem = tmp_path / "ed25519.pem"
    pem.write_text(key.export_key(format="PEM"))
    fake = binance_fake(account=Account(ed25519_public_pem=key.public_key().export_key(format="PEM")))
    monkeypatch.delenv("BINANCE_API_SECRET")
    summary = auth.login(None, load_config(None), AuthOptions(ed25519_key=str(pem)))
    assert summary["state"] == "verified" and summary["signing"] == "ed25519"
    gw = gateway(ed25519_key=str(pem))  # REST orders + WS API subscription, both Ed25519-signed
    try:
        bid, _ = fake.market().best()
        assert gw.place(OrderRequest(SYM, 1, 0.01, bid - 4.0)).status == "accepted"
        assert wait_for(lambda: gw.user_stream.events >= 1)
    finally:
        gw.close()
    other = tmp_path / "other.pem"
    other.write_text(ECC.generate(curve="ed25519").export_key(format="PEM"))
    with pytest.raises(AuthError) as e:
        auth.login(None, load_config(None), AuthOptions(ed25519_key=str(other)))
    assert e.value.status == 77


def test_clock_drift_is_resynced_and_fok_expires(binance_fake):
    fake = binance_fake()
    gw = gateway(user_stream=False)
    gw.open_orders(SYM)  # synced at the first signed call
    fake.clock_offset_ms = 30_000  # the venue's clock jumps: the next request is outside recvWindow (-1021)
    assert gw.open_orders(SYM) == []  # resynced with /time and retried, no error
    assert abs(gw.rest.clock_offset_ms - 30_000) < 2_000
    _, ask = fake.market().best()
    f = gw.place(OrderRequest(SYM, 1, 100.0, ask, time_in_force="fok"))  # far more than the book holds
    assert f.status == "expired" and f.filled_qty == 0
    assert any(s == 400 for _, p, s in fake.requests if p.endswith("/openOrders"))  # the -1021 really happened
