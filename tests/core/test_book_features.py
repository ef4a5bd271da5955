"""Feature formulas against hand-computed values."""

from __future__ import annotations

import math

import pytest

from sq.core import book as B
from sq.core import schemas as S
from tests.support.bookstreams import make_batches, run_stream

SEC = 1_000_000_000


def bbo(ts, seq, bid, bq, ask, aq, sym=0):
    return [(ts, sym, S.CLEAR, 0, 0.0, 0.0, seq), (ts, sym, S.LEVEL, 1, bid, bq, seq),
            (ts, sym, S.LEVEL, -1, ask, aq, seq), (ts, sym, S.SNAPSHOT_END, 0, 0.0, 0.0, seq)]


def rows_of(events, symbols=("SIM:A",), ticks=(1.0,), **opts):
    schema, batches = make_batches(events, list(symbols), list(ticks))
    opts.setdefault("mode", B.MODE_EVERY)
    return run_stream(schema, batches, **opts)[0]


def mm_quotes(row, threshold=0.6, tick=1.0):
    """The reference MarketMaker rule (§2): join the touch only if fair is ≥ threshold inside it."""
    fair, bid, ask = row["microprice"], row["bid_px_0"], row["ask_px_0"]
    return (bid if fair - bid >= threshold else bid - tick, ask if ask - fair >= threshold else ask + tick)


@pytest.mark.parametrize("bq,aq,fair,quotes", [
    (200, 200, 100.5, (99, 102)),
    (300, 100, 100.75, (100, 102)),
    (100, 300, 100.25, (99, 101)),
])
def test_microprice_and_the_reference_quoting_examples(bq, aq, fair, quotes):
    row = rows_of(bbo(SEC, 1, 100.0, bq, 101.0, aq))[0]
    assert row["microprice"] == pytest.approx(fair, abs=1e-12)
    assert mm_quotes(row) == quotes
    assert row["mid"] == 100.5 and row["spread"] == 1.0
    assert row["imbalance"] == pytest.approx((bq - aq) / (bq + aq))


def test_imbalance_over_top_n_and_nan_when_undefined():
    ev = [(SEC, 0, S.LEVEL, 1, 10.0, 3.0, 1), (SEC, 0, S.LEVEL, 1, 9.0, 2.0, 1), (SEC, 0, S.LEVEL, 1, 8.0, 100.0, 1),
          (SEC, 0, S.LEVEL, -1, 11.0, 1.0, 1)]
    row = rows_of(ev, depth=2)[0]
    assert row["imbalance"] == pytest.approx((5.0 - 1.0) / 6.0)  # the third bid level is outside the top 2
    one_sided = rows_of([(SEC, 0, S.LEVEL, 1, 10.0, 3.0, 1)])[0]
    assert math.isnan(one_sided["mid"]) and math.isnan(one_sided["spread"]) and math.isnan(one_sided["microprice"])
    assert one_sided["imbalance"] == 1.0
    empty = rows_of([(SEC, 0, S.LEVEL, 1, 10.0, 3.0, 1), (2 * SEC, 0, S.LEVEL, 1, 10.0, 0.0, 2)])[1]
    assert all(math.isnan(empty[k]) for k in ("mid", "spread", "microprice", "imbalance", "bid_px_0", "bid_qty_0"))


def test_aggressive_trade_ratio_uses_the_book_before_the_trade():
    ev = bbo(SEC, 1, 100.0, 8.0, 101.0, 4.0)
    ev += [(2 * SEC, 0, S.TRADE, 1, 101.0, 3.0, 2), (2 * SEC, 0, S.LEVEL, -1, 101.0, 1.0, 2)]  # buyer lifts 3 of 4
    ev += [(3 * SEC, 0, S.TRADE, -1, 100.0, 2.0, 3)]  # seller hits 2 of 8
    ev += [(4 * SEC, 0, S.TRADE, 0, 100.0, 2.0, 4)]  # unknown aggressor
    rows = rows_of(ev)
    assert rows[1]["agg_trade_ratio"] == 0.75 and rows[1]["ask_qty_0"] == 1.0
    assert rows[2]["agg_trade_ratio"] == 0.25
    assert math.isnan(rows[3]["agg_trade_ratio"])
    assert [r["last_trade_px"] for r in rows[1:]] == [101.0, 100.0, 100.0]
    assert math.isnan(rows[0]["last_trade_px"]) and math.isnan(rows[0]["agg_trade_ratio"])


def test_rolling_vwap_window():
    ev = bbo(0, 1, 100.0, 1.0, 102.0, 1.0)
    ev += [(1 * SEC, 0, S.TRADE, 1, 102.0, 1.0, 2), (2 * SEC, 0, S.TRADE, -1, 100.0, 3.0, 3),
           (4 * SEC, 0, S.LEVEL, 1, 99.0, 1.0, 4), (7 * SEC, 0, S.LEVEL, 1, 98.0, 1.0, 5)]
    rows = rows_of(ev, vwap_window_ns=3 * SEC)
    assert math.isnan(rows[0]["vwap"])
    assert rows[1]["vwap"] == 102.0
    assert rows[2]["vwap"] == pytest.approx((102.0 + 300.0) / 4.0)
    assert rows[3]["vwap"] == 100.0  # at 4s the window (1s, 4s] holds only the 2s trade
    assert math.isnan(rows[4]["vwap"])  # at 7s: empty window


def test_ewma_volatility_of_mid_returns():
    mids = [100.0, 101.0, 100.0, 100.0, 102.0]
    ev = []
    for i, m in enumerate(mids):
        ev += bbo(i * SEC, i + 1, m - 1, 1.0, m + 1, 1.0)
    rows = rows_of(ev, vol_halflife=2.0)
    alpha = 1 - 0.5 ** 0.5
    r = [math.log(101 / 100), math.log(100 / 101), math.log(102 / 100)]  # unchanged mids add no return
    var = r[0] ** 2
    want = [math.nan, math.sqrt(var)]
    var += alpha * (r[1] ** 2 - var)
    want += [math.sqrt(var), math.sqrt(var)]
    var += alpha * (r[2] ** 2 - var)
    want.append(math.sqrt(var))
    got = [row["volatility"] for row in rows]
    assert math.isnan(got[0]) and got[1:] == pytest.approx(want[1:], rel=1e-12)


def test_features_are_per_symbol():
    ev = bbo(SEC, 1, 100.0, 1.0, 101.0, 3.0, sym=0) + bbo(SEC, 1, 50.0, 2.0, 52.0, 2.0, sym=1)
    ev += [(2 * SEC, 0, S.TRADE, 1, 101.0, 1.5, 2)]
    ev += [(3 * SEC, 1, S.LEVEL, 1, 50.0, 4.0, 2)]
    rows = rows_of(ev, symbols=("SIM:A", "SIM:B"), ticks=(1.0, 1.0))
    a2, b2 = rows[2], rows[3]
    assert a2["symbol"] == "SIM:A" and a2["agg_trade_ratio"] == 0.5 and a2["last_trade_px"] == 101.0
    assert b2["symbol"] == "SIM:B" and math.isnan(b2["agg_trade_ratio"]) and math.isnan(b2["last_trade_px"])
    assert math.isnan(b2["vwap"]) and b2["microprice"] == pytest.approx((50 * 2 + 52 * 4) / 6)


def test_tick_rows_set_last_price_only():
    ev = bbo(SEC, 1, 100.0, 1.0, 101.0, 1.0) + [(2 * SEC, 0, S.TICK, 0, 100.5, 7.0, 2)]
    rows = rows_of(ev, ticks=(0.5,))
    assert rows[1]["last_trade_px"] == 100.5 and math.isnan(rows[1]["vwap"]) and math.isnan(rows[1]["agg_trade_ratio"])
