"""The Binance account's commission rates and funding as the gateway reads them from the fake
(`sq.venues.binance.costs`): spot's commission endpoint with its BNB discount, USD-M's
commissionRate and feeBurn, premiumIndex and the FUNDING_FEE income."""

from __future__ import annotations

import time

import pytest

from tests.support.binancekill import binance_gateway


def test_spot_commission_with_bnb_discount(binance_fake):
    fake = binance_fake()
    fake.exchange.commission[("spot", "BTCUSDT")] = (0.0008, 0.001)
    gw = binance_gateway()
    try:
        maker, taker, _ = gw.commission_bps("BINANCE:BTCUSDT")
        assert (maker, taker) == pytest.approx((8.0, 10.0))
        fake.exchange.bnb["spot"] = True  # fees paid in BNB: the endpoint's discount factor (0.75) applies
        maker, taker, said = gw.commission_bps("BINANCE:BTCUSDT")
        assert (maker, taker) == pytest.approx((6.0, 7.5)) and said["bnb_discount"] == pytest.approx(0.75)
    finally:
        gw.close()


def test_futures_commission_and_fee_burn(binance_fake):
    fake = binance_fake()
    fake.exchange.commission[("futures", "BTCUSDT")] = (0.0002, 0.0005)
    gw = binance_gateway()
    try:
        assert gw.commission_bps("BINANCE-FUT:BTCUSDT")[:2] == pytest.approx((2.0, 5.0))
        fake.exchange.bnb["futures"] = True
        assert gw.commission_bps("BINANCE-FUT:BTCUSDT")[:2] == pytest.approx((1.8, 4.5))
    finally:
        gw.close()


def test_funding_state_and_income(binance_fake):
    fake = binance_fake(funding_every_s=1.0, funding_rates=(0.0001, -0.0002))
    fake.exchange.positions["BTCUSDT"] = {"amt": 0.5, "entry": 60_000.0}
    gw = binance_gateway()
    try:
        start = time.time_ns()
        when, rate, mark = gw.funding_state("BINANCE-FUT:BTCUSDT")
        assert when > start - 1_000_000_000 and rate in (0.0001, -0.0002) and mark > 0
        assert gw.funding_state("BINANCE:BTCUSDT") is None
        deadline = time.monotonic() + 30
        while len(fake.exchange.income) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        rows = gw.funding_income("BINANCE-FUT:BTCUSDT", start - 2_000_000_000, time.time_ns())
        assert len(rows) >= 2
        want = [(int(r["time"]) * 1_000_000, -float(r["income"]), str(r["tranId"])) for r in fake.exchange.income[: len(rows)]]
        assert [(r["ts"], r["paid"], r["tran_id"]) for r in rows] == want
        assert rows[0]["paid"] == pytest.approx(0.5 * float(fake.exchange.funding_history[0]["markPrice"]) * float(fake.exchange.funding_history[0]["fundingRate"]))
    finally:
        gw.close()
