"""Stops and take-profits of event strategies in the simulated venue: held untriggered, triggered
by the last trade or the mark (mid), then a market or a limit order; reduce-only cut to the
position and cancelled once it is flat; cancelled like any order, by the strategy, a halt or kill;
counted by the risk checks."""

from __future__ import annotations

import polars as pl
import pytest

from sq.core import schemas as S
from sq.core.config import Config, RiskConfig
from sq.core.engine import Engine, FillModelConfig
from sq.core.engine import layout as L
from sq.core.exits import SqError
from tests.support.marketdata import market_rows
from tests.support.protector import STOP, strategy as protector

SYM = "SIM:T"
INST = {SYM: S.Instrument(SYM, "sim", 1.0, 1.0)}
LIMITS = {"max_order_size": 100.0, "max_position": 1000.0, "max_loss": 1e9}


def book(bid, ask, ts, seq, bq=5.0, aq=5.0):
    return [(ts, SYM, S.CLEAR, 0, 0.0, 0.0, seq), (ts, SYM, S.LEVEL, 1, bid, bq, seq),
            (ts, SYM, S.LEVEL, -1, ask, aq, seq), (ts, SYM, S.SNAPSHOT_END, 0, 0.0, 0.0, seq)]


def trade(price, ts, seq, side=-1, qty=1.0):
    return [(ts, SYM, S.TRADE, side, price, qty, seq)]


def start():
    """An entry at the ask (101) on the first book; the protective orders from the second on."""
    return book(100, 101, 1000, 1) + book(100, 101, 2000, 2) + book(99, 100, 3000, 3)


def run(rows, config=None, **params):
    e = Engine(protector, INST, {SYM: {**LIMITS, **params}}, config=config or Config(),
               fill=FillModelConfig(order_latency_ns=10, feed_latency_ns=0, maker_fee_bps=0.0, taker_fee_bps=0.0))
    out = e.process(market_rows(rows, [SYM], tick=1.0), complete=True)
    return e, pl.from_arrow(out.orders), pl.from_arrow(out.fills)


def rows_of(orders, coid):
    return orders.filter(pl.col("client_order_id") == str(coid))


def test_stop_market_triggers_on_a_trade_and_takes_the_book_the_message_leaves():
    rows = start() + trade(94, 4000, 4) + book(93, 94, 4000, 4) + book(93, 94, 5000, 5)
    e, orders, fills = run(rows, stop=95, tp=110)
    stop = rows_of(orders, 2)
    assert stop["event"].to_list() == ["new", "accepted", "triggered", "filled"]
    assert stop["reason"].to_list()[:3] == ["stop-market", None, "stop-market"]
    assert stop["price"][0] == 95.0  # a market stop's price is its trigger
    exit_fill = fills.filter(pl.col("client_order_id") == "2")
    assert exit_fill["price"].to_list() == [93.0] and exit_fill["liquidity"].to_list() == ["taker"]  # not 99: the stale bid
    tp = rows_of(orders, 3)
    assert tp["event"].to_list() == ["new", "accepted", "cancel_sent", "canceled"]
    assert tp["reason"].to_list() == ["take-profit-market", None, "reduce_only", None]  # flat: the venue drops it
    assert e.summary()["position"][SYM] == 0.0
    assert e.summary()["pnl"]["realized"] == pytest.approx(93.0 - 101.0)


def test_an_untriggered_stop_is_not_in_the_book_and_a_trade_above_leaves_it():
    rows = start() + trade(96, 4000, 4) + book(95, 96, 4000, 4) + book(95, 96, 5000, 5)
    e, orders, fills = run(rows, stop=95)
    assert rows_of(orders, 2)["event"].to_list() == ["new", "accepted"]
    assert len(fills) == 1  # the entry only
    assert e.us[0, 2] == 95.0 and e.us[0, 3] == 1.0  # ctx.working_stop: (trigger, leaves)


def test_stop_limit_rests_after_the_trigger_with_the_queue_ahead():
    rows = start() + trade(94, 4000, 4) + book(93, 94, 4000, 4) + book(93, 94, 5000, 5)
    rows += trade(94, 6000, 6, side=1, qty=6.0) + book(93, 94, 7000, 7)  # 5 were ahead of us at 94
    e, orders, fills = run(rows, stop=95, stop_limit=94)
    stop = rows_of(orders, 2)
    assert stop["event"].to_list() == ["new", "accepted", "triggered", "filled"]
    assert stop["reason"][0] == "stop-limit" and stop["price"][0] == 94.0
    f = fills.filter(pl.col("client_order_id") == "2")
    assert f["price"].to_list() == [94.0] and f["liquidity"].to_list() == ["maker"]


def test_take_profit_on_the_mark_triggers_when_the_mid_reaches_it():
    rows = start() + book(104, 105, 4000, 4) + trade(106, 4500, 5, side=1) + book(104, 105, 4500, 5)
    rows += book(105, 106, 5000, 6) + book(105, 106, 6000, 7)
    e, orders, fills = run(rows, tp=105, tp_src=L.TRIGGER_MARK)
    tp = rows_of(orders, 2)
    assert tp["event"].to_list() == ["new", "accepted", "triggered", "filled"]
    # mid 104.5 < 105 (a trade at 106 does not count), then mid 105.5 at ts 5000
    assert tp.filter(pl.col("event") == "triggered")["ts"].dt.epoch("ns").to_list()[0] > 5000
    assert fills.filter(pl.col("client_order_id") == "2")["price"].to_list() == [105.0]
    assert e.summary()["pnl"]["realized"] == pytest.approx(105.0 - 101.0)


def test_take_profit_on_the_last_trade_ignores_the_mid():
    rows = start() + book(105, 106, 4000, 4) + book(105, 106, 5000, 5)
    _, orders, _ = run(rows, tp=105)
    assert "triggered" not in rows_of(orders, 2)["event"].to_list()


def test_reduce_only_is_cut_to_the_position_and_a_plain_stop_is_not():
    rows = start() + trade(94, 4000, 4) + book(93, 94, 4000, 4, bq=10) + book(93, 94, 5000, 5, bq=10)
    e, orders, _ = run(rows, stop=95, stop_qty=3)
    trig = rows_of(orders, 2).filter(pl.col("event") == "triggered")
    assert trig["leaves_qty"].to_list() == [1.0]
    assert e.summary()["position"][SYM] == 0.0
    e, orders, _ = run(rows, stop=95, stop_qty=3, ro=0)
    assert rows_of(orders, 2).filter(pl.col("event") == "triggered")["leaves_qty"].to_list() == [3.0]
    assert e.summary()["position"][SYM] == -2.0


def test_reduce_only_with_no_position_expires_at_the_trigger():
    rows = start() + trade(94, 4000, 4) + book(93, 94, 4000, 4) + book(93, 94, 5000, 5)
    e, orders, fills = run(rows, entry=0, stop=95, stop_qty=1)
    stop = rows_of(orders, 1)
    assert stop["event"].to_list() == ["new", "accepted", "expired"]
    assert stop["reason"].to_list() == ["stop-market", None, "reduce_only"]
    assert len(fills) == 0


def test_the_strategy_cancels_an_armed_stop_and_it_never_triggers():
    rows = start() + book(99, 100, 3500, 4) + trade(94, 4000, 5) + book(93, 94, 4000, 5) + book(93, 94, 5000, 6)
    e, orders, fills = run(rows, stop=95, cancel_at=4)
    assert rows_of(orders, 2)["event"].to_list() == ["new", "accepted", "cancel_sent", "canceled"]
    assert len(fills) == 1 and e.summary()["position"][SYM] == 1.0


def test_kill_cancels_armed_stops():
    rows = start() + book(99, 100, 4000, 4)
    e, orders, _ = run(rows, stop=95, tp=110)
    out = e.cancel_all(10_000, "manual")
    done = pl.from_arrow(out.orders)
    assert set(done.filter(pl.col("event") == "canceled")["client_order_id"]) == {"2", "3"}
    assert e.summary()["position"][SYM] == 1.0


def test_working_stops_count_as_open_orders_and_a_plain_stop_in_the_position_limit():
    rows = start() + book(99, 100, 4000, 4)
    cfg = Config(risk=RiskConfig(max_open_orders=1))
    e, orders, _ = run(rows, config=cfg, entry=0, stop=95, stop_qty=1, tp=90, tp_qty=1)
    assert set(e.summary()["rejections"]) == {"too_many_open_orders"}
    assert rows_of(orders, 1)["reason"][0] == "stop-market"
    # a buy stop that is not reduce-only counts against max_position like a working buy order
    e, _, _ = run(rows, entry=0, pside=1, stop=105, stop_qty=4, ro=0, tp=90, tp_qty=4, max_position=6)
    assert set(e.summary()["rejections"]) == {"position_too_large"}


def test_a_bad_trigger_source_stops_the_run():
    with pytest.raises(SqError, match="trigger source"):
        run(start(), stop=95, stop_src=2)


def test_a_checkpoint_of_an_older_sq_resumes_without_protective_orders():
    """A checkpoint written before stops existed (fewer per-symbol, order and outbox columns)
    resumes with empty stop slots, and the strategy can place them afterwards."""
    e, _, _ = run(start())  # an entry, no stop
    assert e.summary()["position"][SYM] == 1.0
    state = e.snapshot_state()
    old = dict(state, si=state["si"][:, :L.SI_PSLOT].copy(), oi=state["oi"][:, :L.OI_OTYPE].copy(),
               ob=state["ob"][:, :L.OB_OTYPE].copy(), pf=state["pf"].copy())
    old["pf"][:, STOP] = 95.0  # the resumed run places a stop
    other = Engine(protector, INST, {SYM: LIMITS}, config=Config(),
                   fill=FillModelConfig(order_latency_ns=10, feed_latency_ns=0, maker_fee_bps=0.0, taker_fee_bps=0.0))
    other.restore_state(old)
    assert other.si.shape[1] == L.NSI and other.oi.shape[1] == L.NOI and other.ob.shape[1] == L.NOB
    assert (other.si[:, L.SI_PSLOT:L.SI_PSLOT + 2] == -1).all()
    rows = book(99, 100, 3500, 4) + book(99, 100, 3600, 5) + trade(94, 4000, 6) + book(93, 94, 4000, 6) + book(93, 94, 5000, 7)
    out = other.process(market_rows(rows, [SYM], tick=1.0), complete=True)
    orders = pl.from_arrow(out.orders)
    assert orders.filter(pl.col("event") == "triggered")["reason"].to_list() == ["stop-market"]
