"""Engine kernels against the reference study's worked examples and hand-built scenarios:
market-maker quotes (§2), the position keeper table (§6, against an independent plain-Python
keeper), queue positions, cancel-rejects, the order manager's state rules, IOC takers."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from sq.core import schemas as S
from sq.core.config import Config
from sq.core.engine import Engine, FillModelConfig
from sq.core.engine import layout as L
from sq.core.engine import orders as O
from sq.core.engine import positions
from tests.support.marketdata import market_rows

SYM = "SIM:T"
INST = {SYM: S.Instrument(SYM, "sim", 1.0, 1.0)}
NOFEE = dict(maker_fee_bps=0.0, taker_fee_bps=0.0)


def book(bid_qty, ask_qty, bid=100.0, ask=101.0, ts=1_000, seq=1):
    return [(ts, SYM, S.CLEAR, 0, 0.0, 0.0, seq), (ts, SYM, S.LEVEL, 1, bid, bid_qty, seq),
            (ts, SYM, S.LEVEL, -1, ask, ask_qty, seq), (ts, SYM, S.SNAPSHOT_END, 0, 0.0, 0.0, seq)]


def engine(strategy="mm", fill=None, **params):
    p = {"clip": 10.0, "threshold": 0.6, "max_order_size": 100.0, "max_position": 1000.0, "max_loss": 1e9}
    p.update(params)
    f = FillModelConfig(**{"order_latency_ns": 0, "feed_latency_ns": 0, **NOFEE, **(fill or {})})
    return Engine(strategy, INST, {SYM: p}, config=Config(), fill=f)


def run(e, rows, complete=True):
    out = e.process(market_rows(rows, [SYM], tick=1.0), complete=complete)
    return pl.from_arrow(out.orders), pl.from_arrow(out.fills)


def reference_quotes(bb, ba, fair, threshold):
    """The reference market maker's quotes , restated here independently of sq/strategies/mm.py."""
    return (bb if fair - bb >= threshold else bb - 1), (ba if ba - fair >= threshold else ba + 1)


@pytest.mark.parametrize("bq,aq,want", [(200, 200, (99, 102)), (300, 100, (100, 102)), (100, 300, (99, 101))])
def test_mm_reference_quotes(bq, aq, want):
    fair = (100 * aq + 101 * bq) / (bq + aq)
    assert reference_quotes(100, 101, fair, 0.6) == want
    orders, _ = run(engine(), book(bq, aq))
    new = orders.filter(pl.col("event") == "new").sort("side", descending=True)
    assert new["price"].to_list() == [float(want[0]), float(want[1])]
    assert new["qty"].to_list() == [10.0, 10.0]


def test_mm_quotes_rounded_to_lot():
    inst = {SYM: S.Instrument(SYM, "sim", 0.5, 5.0)}
    e = Engine("mm", inst, {SYM: {"clip": 12.0, "threshold": 0.6}}, config=Config(), fill=FillModelConfig(order_latency_ns=0))
    out = e.process(market_rows(book(200, 200, 100.0, 100.5), [SYM], tick=0.5), complete=True)
    new = pl.from_arrow(out.orders).filter(pl.col("event") == "new").sort("side", descending=True)
    assert new["price"].to_list() == [99.5, 101.0]  # one tick behind on each side
    assert new["qty"].to_list() == [10.0, 10.0]  # 12 rounded down to lots of 5


class RefKeeper:
    """Independent plain-Python restatement of the reference position keeper ."""

    def __init__(self):
        self.pos = 0
        self.real = 0.0
        self.unreal = 0.0
        self.vol = 0
        self.ov = {1: 0.0, -1: 0.0}

    def fill(self, side, px, q):
        old = self.pos
        self.pos += side * q
        self.vol += q
        if old * side >= 0:
            self.ov[side] += px * q
        else:
            v = self.ov[-side] / abs(old)
            self.ov[-side] = v * abs(self.pos)
            self.real += min(q, abs(old)) * (v - px) * side
            if self.pos * old < 0:
                self.ov[side] = px * abs(self.pos)
                self.ov[-side] = 0.0
        if self.pos == 0:
            self.ov = {1: 0.0, -1: 0.0}
            self.unreal = 0.0
        elif self.pos > 0:
            self.unreal = (px - self.ov[1] / abs(self.pos)) * abs(self.pos)
        else:
            self.unreal = (self.ov[-1] / abs(self.pos) - px) * abs(self.pos)

    def bbo(self, bid, ask):
        if self.pos:
            mid = (bid + ask) / 2
            self.unreal = (mid - self.ov[1] / self.pos) * self.pos if self.pos > 0 else (self.ov[-1] / -self.pos - mid) * -self.pos


def test_position_keeper_worked_example():
    steps = [("fill", 1, 100.0, 10), ("fill", 1, 102.0, 10), ("fill", -1, 105.0, 5), ("fill", -1, 104.0, 25),
             ("bbo", 103.0, 104.0), ("fill", 1, 101.0, 10)]
    table = [(10, 0, 0, 0, 10, 100), (20, 0, 20, 20, 20, 101), (15, 20, 60, 80, 25, 101), (-10, 65, 0, 65, 50, 104),
             (-10, 65, 5, 70, 50, 104), (0, 95, 0, 95, 60, None)]
    sf = np.zeros((1, L.NSF))
    ref = RefKeeper()
    for step, row in zip(steps, table):
        if step[0] == "fill":
            positions.add_fill(sf, 0, step[1], step[2], float(step[3]), 0.0)
            ref.fill(step[1], step[2], step[3])
        else:
            positions.mark(sf, 0, (step[1] + step[2]) / 2)
            ref.bbo(step[1], step[2])
        got = (sf[0, L.SF_POS], sf[0, L.SF_REAL], sf[0, L.SF_UNREAL], positions.total(sf, 0), sf[0, L.SF_VOL])
        assert got == (ref.pos, ref.real, ref.unreal, ref.real + ref.unreal, ref.vol)
        assert got == row[:5]
        avg = positions.avg_price(sf, 0)
        assert (math.isnan(avg) and row[5] is None) or avg == row[5]


def test_fees_reduce_net_pnl_only():
    sf = np.zeros((1, L.NSF))
    positions.add_fill(sf, 0, 1, 100.0, 10.0, 0.2)
    positions.add_fill(sf, 0, -1, 101.0, 10.0, 0.3)
    assert sf[0, L.SF_REAL] == 10.0 and sf[0, L.SF_FEES] == pytest.approx(0.5)
    assert positions.total(sf, 0) == pytest.approx(9.5)


def test_queue_behind_100_fills_10_after_trades_60_and_50():
    e = engine(threshold=0.0, clip=20.0)
    orders, _ = run(e, book(100, 100))
    assert set(orders.filter(pl.col("event") == "new")["price"].to_list()) == {100.0, 101.0}
    # sell aggressors hit the bid at our price: 60 then 50 → 10 past the 100 ahead of us
    orders, fills = run(e, [(2_000, SYM, S.TRADE, -1, 100.0, 60.0, 2), (3_000, SYM, S.TRADE, -1, 100.0, 50.0, 3)])
    assert fills.height == 0  # answers travel back (latency 0 → due at the next event)
    orders, fills = run(e, [(4_000, SYM, S.LEVEL, 1, 100.0, 0.0 + 1, 4)])
    assert fills["qty"].to_list() == [10.0] and fills["price"].to_list() == [100.0]
    assert fills["liquidity"].to_list() == ["maker"] and fills["side"].to_list() == [1]
    assert "partially_filled" in orders["event"].to_list()


@pytest.mark.parametrize("model,share,want", [("risk-averse", 0.0, 0.0), ("risk-averse", 0.5, 5.0), ("risk-averse", 1.0, 5.0), ("prob", 0.5, None)])
def test_queue_cancels(model, share, want):
    """100 ahead; the level drops to 50 with no trade (cancels); then a trade of 55 at our price."""
    e = engine(threshold=0.0, clip=20.0, fill={"queue_model": model, "queue_cancel_share": share})
    run(e, book(100, 100))
    o = int(e.si[0, L.SI_SLOT])
    run(e, [(2_000, SYM, S.LEVEL, 1, 100.0, 50.0, 2)])
    front = e.of[o, L.OF_FRONT]
    if model == "prob":  # hftbacktest power-prob: front ≥ the risk-averse bound and ≤ the visible level
        assert 0.0 <= front <= 50.0
    else:
        assert front == min(100 - share * 50, 50.0)
    run(e, [(3_000, SYM, S.TRADE, -1, 100.0, 55.0, 3)])
    _, fills = run(e, [(4_000, SYM, S.LEVEL, -1, 102.0, 5.0, 4)])
    got = fills["qty"].sum() if fills.height else 0.0
    assert got == pytest.approx(max(0.0, min(20.0, 55.0 - front)))
    if want is not None and share == 0.0:
        assert got == 5.0  # front stays min(100, 50) = 50: 55 − 50


def test_trade_through_fills_completely():
    e = engine(threshold=0.0, clip=20.0)
    run(e, book(100, 100))
    run(e, [(2_000, SYM, S.TRADE, -1, 99.0, 5.0, 2)])
    _, fills = run(e, [(3_000, SYM, S.LEVEL, 1, 99.0, 3.0, 3)])
    assert fills["qty"].to_list() == [20.0] and fills["price"].to_list() == [100.0]


def test_replacement_only_after_cancel_confirmed():
    e = engine(fill={"order_latency_ns": 1_000})
    orders, _ = run(e, book(200, 200))  # quotes 99 / 102, acks due at t=3000
    orders, _ = run(e, [(5_000, SYM, S.LEVEL, 1, 100.0, 600.0, 2)])  # fair moves up: bid should join 100
    assert orders.filter(pl.col("event") == "cancel_sent")["side"].to_list() == [1]
    assert orders.filter(pl.col("event") == "new").height == 0  # PENDING_CANCEL: nothing new yet
    orders, _ = run(e, [(10_000, SYM, S.LEVEL, -1, 103.0, 1.0, 3)])
    ev = orders["event"].to_list()
    assert ev.index("canceled") < ev.index("new")
    assert orders.filter(pl.col("event") == "new")["price"].to_list() == [100.0]


def _resp(e, kind, o, px=0, qty=0.0):
    e.oi[o, L.OI_INFLIGHT] += 1
    return O.on_response(e.si, e.sf, e.oi, e.of, e.g, e.gf, e.ob, e.obf, e.oo_i, e.oo_f, e.fo_i, e.fo_f, e.po_i, e.po_f,
                         kind, o, px, qty, px, 5_000, e.n)


def test_cancel_reject_returns_to_live_with_leaves_else_dead():
    e = engine(fill={"order_latency_ns": 1_000})
    run(e, book(200, 200))
    o = int(e.si[0, L.SI_SLOT])
    assert e.oi[o, L.OI_STATE] == L.PENDING_NEW
    _resp(e, L.K_ACK, o, 7)
    assert e.oi[o, L.OI_STATE] == L.LIVE
    e.oi[o, L.OI_STATE] = L.PENDING_CANCEL
    _resp(e, L.K_ACK, o, 7)  # a stray ACCEPTED never revives a pending cancel
    assert e.oi[o, L.OI_STATE] == L.PENDING_CANCEL
    _resp(e, L.K_CANCEL_REJ, o, L.R_V_UNKNOWN)
    assert e.oi[o, L.OI_STATE] == L.LIVE and e.of[o, L.OF_LEAVES] == 10.0
    e.oi[o, L.OI_STATE] = L.PENDING_CANCEL
    _resp(e, L.K_FILL_MAKER, o, 99, 10.0)  # filled while the cancel was in flight
    assert e.oi[o, L.OI_STATE] == L.DEAD
    inflight = e.oi[o, L.OI_INFLIGHT]
    e.oi[o, L.OI_INFLIGHT] = inflight + 1  # the cancel's answer is still on its way
    _resp(e, L.K_CANCEL_REJ, o, L.R_V_UNKNOWN)
    assert e.oi[o, L.OI_STATE] in (L.DEAD, L.FREE)
    assert e.sf[0, L.SF_POS] == 10.0


def test_cancel_rejected_end_to_end_when_fill_wins_the_race():
    e = engine(fill={"order_latency_ns": 1_000})
    run(e, book(100, 100))  # quotes 99 / 102; acks at t=3000
    # t=6000 the ask side grows: fair 100.1 → the ask should join 101, so the 102 ask is canceled
    # (reaches the venue at 7000); at 6500 a buy trades through 102 and fills it first.
    orders, fills = run(e, [(6_000, SYM, S.LEVEL, -1, 101.0, 900.0, 2), (6_500, SYM, S.TRADE, 1, 103.0, 5.0, 3),
                            (20_000, SYM, S.LEVEL, 1, 98.0, 1.0, 4)])
    sells = [x for x in orders.filter(pl.col("side") == -1)["event"].to_list() if x != "accepted"]
    assert sells[:3] == ["cancel_sent", "filled", "cancel_rejected"], sells
    assert fills["qty"].to_list() == [10.0] and fills["price"].to_list() == [102.0]
    assert e.sf[0, L.SF_POS] == -10.0
    # the slot was DEAD after the fill and the reject left it so: a new ask follows at 101
    assert orders.filter((pl.col("side") == -1) & (pl.col("event") == "new"))["price"].to_list() == [101.0]


def test_lt_ioc_partial_then_expired():
    e = engine("lt", threshold=0.5, clip=30.0, ioc=1.0, fill={"order_latency_ns": 500})
    run(e, book(100, 40))
    # an aggressive buy of 30 vs 40 at the ask: ratio 0.75 ≥ 0.5 → buy 30 IOC at 101; it reaches the
    # venue 500 ns later, when only 10 are left there → 10 filled, 20 expired
    run(e, [(2_000, SYM, S.TRADE, 1, 101.0, 30.0, 2), (2_000, SYM, S.LEVEL, -1, 101.0, 10.0, 2)])
    orders, fills = run(e, [(3_000, SYM, S.LEVEL, 1, 99.0, 5.0, 3)])
    assert fills["qty"].to_list() == [10.0] and fills["liquidity"].to_list() == ["taker"]
    assert "expired" in orders["event"].to_list()
    assert e.counters()["open_orders"] == 0


def test_lt_gtc_rests_when_ioc_off():
    e = engine("lt", threshold=0.5, clip=30.0, ioc=0.0, fill={"order_latency_ns": 500})
    run(e, book(100, 40))
    run(e, [(2_000, SYM, S.TRADE, 1, 101.0, 30.0, 2), (2_000, SYM, S.LEVEL, -1, 101.0, 10.0, 2)])
    orders, fills = run(e, [(3_000, SYM, S.LEVEL, 1, 99.0, 5.0, 3)])
    assert fills["qty"].to_list() == [10.0]
    assert "expired" not in orders["event"].to_list()
    assert e.counters()["open_orders"] == 1


def test_features_per_symbol_and_nan_when_undefined():
    """A one-sided book gives no fair price: mm sends nothing (no stale feature from another symbol)."""
    e = engine()
    orders, _ = run(e, [(1_000, SYM, S.LEVEL, 1, 100.0, 10.0, 1)])
    assert orders.height == 0
