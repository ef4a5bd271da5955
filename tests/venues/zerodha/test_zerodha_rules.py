"""Indian market rules, instruments resolution, rate limits, error mapping and the session cache."""

from __future__ import annotations

import datetime as dt

import pytest

from sq.core.exits import AuthError, ExitStatus, TempFailure, UsageError
from sq.venues.zerodha import market_rules
from sq.venues.zerodha.errors import OrderRejected, from_kite_error, map_exception
from sq.venues.zerodha.instruments import parse_csv, resolve, subset_csv
from sq.venues.zerodha.ratelimit import TokenBucket
from sq.venues.zerodha.session import IST, next_expiry
from tests.support.fakes.kite import EXTRA_ROWS, KITE_VECTORS


def at(h: int, m: int, day: int = 24) -> dt.datetime:  # 2025-11-24 is a Monday
    return dt.datetime(2025, 11, day, h, m, tzinfo=IST)


def table():
    return parse_csv((KITE_VECTORS / "instruments_all.csv").read_text().rstrip("\n") + "\n" + "\n".join(EXTRA_ROWS) + "\n")


def test_rounding_to_tick_never_more_aggressive():
    assert market_rules.round_price(100.07, 0.05, +1) == pytest.approx(100.05)
    assert market_rules.round_price(100.07, 0.05, -1) == pytest.approx(100.10)
    assert market_rules.round_price(100.05, 0.05, -1) == pytest.approx(100.05)  # on the grid stays put
    assert market_rules.round_price(84.12345, 0.0025, +1) == pytest.approx(84.1225)


def test_lot_multiples_and_freeze_slicing():
    assert market_rules.round_lots(160, 75) == 150 and market_rules.round_lots(74, 75) == 0 and market_rules.round_lots(7.9, 1) == 7
    assert market_rules.slice_quantity(3000, 1800, 75) == [1800, 1200]
    assert market_rules.slice_quantity(150, 1800, 75) == [150]
    assert market_rules.slice_quantity(1200, 600, 30) == [600, 600]
    assert market_rules.slice_quantity(1290, 600, 30) == [600, 600, 90]
    assert sum(market_rules.slice_quantity(9975, 1800, 75)) == 9975 and max(market_rules.slice_quantity(9975, 1800, 75)) == 1800
    assert market_rules.slice_quantity(100, None, 1) == [100]
    assert market_rules.freeze_quantity("NIFTY", "NIFTY25DECFUT") == 1800
    assert market_rules.freeze_quantity("BANKNIFTY", "X") == 600 and market_rules.freeze_quantity("INFY", "INFY") is None
    assert market_rules.freeze_quantity("INFY", "X", {"infy": 500}) == 500


def test_market_hours_in_ist():
    assert market_rules.phase(at(8, 59), "NSE") == "closed"
    assert market_rules.phase(at(9, 0), "NSE") == "pre_open" and market_rules.phase(at(9, 7), "NFO") == "pre_open"
    assert market_rules.phase(at(9, 10), "NSE") == "pre_open_matching"
    assert market_rules.phase(at(9, 15), "NSE") == "normal" and market_rules.phase(at(15, 29), "NSE") == "normal"
    assert market_rules.phase(at(15, 30), "NSE") == "closed"
    assert market_rules.phase(at(16, 30), "CDS") == "normal" and market_rules.phase(at(22, 0), "MCX") == "normal"
    assert market_rules.phase(at(12, 0, day=22), "NSE") == "closed"  # Saturday
    assert market_rules.phase(dt.datetime(2025, 11, 24, 4, 0, tzinfo=dt.timezone.utc), "NSE") == "normal"  # 09:30 IST
    assert market_rules.hours_violation(at(10, 0), "NSE") is None
    assert "closed" in market_rules.hours_violation(at(16, 0), "NSE")
    assert "09:08" in market_rules.hours_violation(at(9, 12), "NSE")
    assert market_rules.hours_violation(at(16, 0), "NSE", "amo") is None and market_rules.hours_violation(at(10, 0), "NSE", "amo")


def test_circuit_limits_from_quote():
    c = market_rules.circuit_from_quote({"lower_circuit_limit": 1250.7, "upper_circuit_limit": 1528.6})
    assert c.violation(1400) is None and "circuit" in c.violation(1600) and c.violation(1250) is not None
    assert market_rules.circuit_from_quote({}) is None


def test_resolution_tokens_indices_and_suggestions():
    t = table()
    rel, nifty, fut, usd = resolve(["NSE:RELIANCE", "NSE:NIFTY 50", "nfo:nifty25decfut", "CDS:USDINR25DECFUT"], t)
    assert rel.token == 738561 and rel.tick_size == 0.05 and rel.lot_size == 1
    assert nifty.is_index and nifty.to_instrument().tick_size > 0 and nifty.to_instrument().extra["tradable"] is False
    assert fut.lot_size == 75 and fut.expiry == "2025-12-30" and fut.segment == "NFO-FUT"
    assert usd.token & 0xFF == 3
    assert fut.to_instrument().extra["depth_view"] == 5 and fut.to_instrument().symbol == "NFO:NIFTY25DECFUT"
    with pytest.raises(UsageError) as e:
        resolve(["NSE:RELIANC"], t)
    assert e.value.status == ExitStatus.USAGE and "NSE:RELIANCE" in e.value.message and "NSE:RELIANC" in e.value.message
    sub = subset_csv((KITE_VECTORS / "instruments_all.csv").read_text() + "\n".join(EXTRA_ROWS) + "\n", [738561])
    assert sub.splitlines()[0].startswith("instrument_token,") and len(sub.splitlines()) == 2


def test_token_bucket_waits_then_refuses():
    now = [0.0]
    slept = []
    b = TokenBucket(10, 10, name="order rate", clock=lambda: now[0], sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)))
    for _ in range(10):
        b.acquire()
    assert not slept
    b.acquire()  # the 11th waits ~0.1 s
    assert slept and slept[0] == pytest.approx(0.1)
    m = TokenBucket(400 / 60, 400, name="orders per minute", clock=lambda: now[0], sleep=lambda s: None, max_wait=1.0)
    for _ in range(400):
        m.acquire()
    with pytest.raises(TempFailure) as e:
        m.acquire(10)
    assert e.value.status == ExitStatus.TEMP_FAIL and "400/min" in e.value.message


def test_every_kite_exception_maps_to_a_status():
    from kiteconnect import exceptions as kex

    cases = {
        kex.TokenException("Token expired"): (AuthError, 77, "run sq auth zerodha"),
        kex.PermissionException("Order placement is allowed only from whitelisted static IP"): (AuthError, 77, "static IP"),
        kex.InputException("Missing quantity"): (UsageError, 2, "Missing quantity"),
        kex.OrderException("RMS rejected"): (OrderRejected, 65, "RMS"),
        kex.NetworkException("Gateway down"): (Exception, 69, "unavailable"),
        kex.DataException("bad OMS"): (Exception, 69, "unavailable"),
        kex.GeneralException("Insufficient margin"): (OrderRejected, 65, "margin"),
        kex.GeneralException("something", code=429): (TempFailure, 75, "rate limited"),
    }
    for exc, (cls, status, text) in cases.items():
        err = map_exception(exc)
        assert isinstance(err, cls) and int(err.status) == status and text in err.message, (exc, err.message)
    import requests

    assert int(map_exception(requests.exceptions.ConnectionError("x")).status) == 69
    assert int(from_kite_error("MarginException", "Insufficient funds").status) == 65


def test_token_expiry_is_next_six_am_ist():
    assert next_expiry(at(10, 0)) == dt.datetime(2025, 11, 25, 6, 0, tzinfo=IST)
    assert next_expiry(at(5, 59)) == dt.datetime(2025, 11, 24, 6, 0, tzinfo=IST)
    assert next_expiry(at(6, 0)) == dt.datetime(2025, 11, 25, 6, 0, tzinfo=IST)
