"""The bar executor's fills, protective orders and risk checks, on hand-made bars with scripted signals."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from sq.core.config import Config
from sq.core.engine import make_engine
from sq.core.engine.runner import FillModelConfig
from sq.core.exits import DataError, StrategyError
from sq.core.strategy.declaration import BarStrategy, DeclarationError
from tests.support.barsdata import NS_PER_MIN, bars_batch

T0 = 1_704_700_800_000_000_000  # 2024-01-08 08:00 UTC
SYM = "SIM:X"
NO_FEES = FillModelConfig(maker_fee_bps=0.0, taker_fee_bps=0.0)


def scripted(plan: dict[int, dict], execution: str = "next_open", offset: int = 2) -> BarStrategy:
    """A bar strategy whose signal columns at bar i are plan[i] (target, enter_long, stop_loss …)."""
    st = BarStrategy("scripted", "signals from a script", interval="1m", execution=execution, offset=offset)
    st.param("size", 1.0, above=0.0)
    columns = sorted({k for row in plan.values() for k in row})

    @st.signals
    def signals(bars, p):
        i = ((bars["ts"].dt.epoch("ns") - T0) // NS_PER_MIN).to_list()
        out = {}
        for col in columns:
            values = [plan.get(k, {}).get(col) for k in i]
            out[col] = pl.Series(col, values, dtype=pl.Boolean if col.startswith(("enter", "exit")) else pl.Float64)
        return bars.with_columns(**out)

    return st


def run(plan, ohlc, *, execution="next_open", offset=2, params=None, fill=NO_FEES, lot=1.0, split=None):
    """Run `ohlc` [(o, h, l, c)] bars of SIM:X through a scripted strategy; the engine and its rows."""
    rows = [(T0 + i * NS_PER_MIN, SYM, *b) for i, b in enumerate(ohlc)]
    batch = bars_batch(rows, tick=0.5, lot=lot)
    engine = make_engine(scripted(plan, execution, offset), {}, {SYM: {**(params or {})}}, config=Config(), fill=fill)
    outs = [engine.process(batch.slice(a, b - a)) for a, b in (split or [(0, batch.num_rows)])]
    outs.append(engine.finish())
    orders = pl.concat([pl.from_arrow(o.orders) for o in outs])
    fills = pl.concat([pl.from_arrow(o.fills) for o in outs])
    return engine, orders, fills


FLAT = [(100.0, 101.0, 99.0, 100.0)] * 6


def test_next_open_fills_at_the_next_bars_open():
    ohlc = [(100, 101, 99, 100), (102, 103, 101, 102.5), (103, 104, 102, 103), (103, 104, 102, 103)]
    engine, orders, fills = run({0: {"target": 2.0}, 2: {"target": 0.0}}, ohlc)
    assert fills["price"].to_list() == [102.0, 103.0]  # bar 1's open, then bar 3's
    assert fills["side"].to_list() == [1, -1]
    assert fills["qty"].to_list() == [2.0, 2.0]
    assert engine.summary()["pnl"]["total"] == pytest.approx(2.0)
    assert orders["event"].to_list() == ["new", "accepted", "filled", "new", "accepted", "filled"]
    assert orders["ts"].dt.epoch("ns").to_list()[:2] == [T0 + NS_PER_MIN] * 2  # placed at bar 0's close


def test_marketable_limit_fills_at_open_inside_at_limit_or_expires():
    # buy at close 100 + 2 ticks of 0.5 = 101
    inside = run({0: {"target": 1.0}}, [(100, 100, 100, 100), (100.5, 102, 100, 101)], execution="market")[2]
    assert inside["price"].to_list() == [100.5]  # the open is within the limit
    reached = run({0: {"target": 1.0}}, [(100, 100, 100, 100), (102, 103, 100.5, 101)], execution="market")[2]
    assert reached["price"].to_list() == [101.0]  # opened above, traded down to the limit
    engine, orders, fills = run({0: {"target": 1.0}}, [(100, 100, 100, 100), (102, 103, 101.5, 102)], execution="market")
    assert fills.height == 0 and orders["event"].to_list()[-1] == "expired"
    assert engine.summary()["position"][SYM] == 0.0


def test_passive_limit_needs_a_trade_through_and_pays_maker_fees():
    fill = FillModelConfig(maker_fee_bps=1.0, taker_fee_bps=10.0)
    # buy limit at the close, 100; bar 1 only touches 100 (no fill), bar 2 trades through it
    ohlc = [(100, 100, 100, 100), (100.5, 101, 100, 100.5), (100.5, 101, 99.5, 100)]
    engine, orders, fills = run({0: {"target": 1.0}}, ohlc, execution="limit", fill=fill)
    assert fills["price"].to_list() == [100.0]
    assert fills["liquidity"].to_list() == ["maker"]
    assert fills["fee"][0] == pytest.approx(100.0 * 1e-4)
    # a signal that says it again re-places the order at the new close (100.5), which bar 2 fills
    engine, orders, fills = run({0: {"target": 1.0}, 1: {"target": 1.0}}, ohlc, execution="limit", fill=fill)
    assert fills["price"].to_list() == [100.5]
    assert orders["event"].to_list() == ["new", "accepted", "canceled", "new", "accepted", "filled"]


def test_stop_loss_fills_at_the_stop_or_the_gap_open():
    ohlc = [(100, 100, 100, 100), (100, 101, 99.5, 100), (99, 100, 96, 97)]
    stop = run({0: {"enter_long": True, "stop_loss": 98.0}}, ohlc)[2]
    assert stop["price"].to_list() == [100.0, 98.0]
    gap = [(100, 100, 100, 100), (100, 101, 99.5, 100), (95, 96, 94, 95)]
    engine, orders, fills = run({0: {"enter_long": True, "stop_loss": 98.0}}, gap)
    assert fills["price"].to_list() == [100.0, 95.0]  # opened below the stop
    assert "stop_loss" in orders["reason"].to_list()
    assert engine.summary()["position"][SYM] == 0.0


def test_a_later_signal_moves_the_positions_stop_and_take_profit():
    """A bar that keeps the position and gives new protective prices moves them (as a live run
    modifies the venue's orders); a bar that gives none keeps them."""
    # enter at bar 1's open (100); bar 2 raises the stop to 99.5; bar 4 dips to 99 → stopped at 99.5
    ohlc = [(100, 100.5, 99.5, 100), (100, 101, 99.5, 100.5), (100.5, 101, 100, 100.5), (100.5, 101, 100, 100.5), (100.5, 101, 99, 100)]
    plan = {0: {"enter_long": True, "stop_loss": 95.0}, 2: {"stop_loss": 99.5}}
    engine, orders, fills = run(plan, ohlc)
    assert fills["price"].to_list() == [100.0, 99.5]
    assert orders.filter(pl.col("reason") == "stop_loss").height > 0
    # the same with bar 2 giving no price: the entry's stop (95) is never reached
    assert run({0: {"enter_long": True, "stop_loss": 95.0}}, ohlc)[2]["price"].to_list() == [100.0]
    # a later take-profit: lowered to 100.5, reached by bar 3's high
    moved = run({0: {"target": 1.0, "take_profit": 110.0}, 1: {"target": 1.0, "take_profit": 100.5}}, ohlc)[2]
    assert moved["price"].to_list() == [100.0, 100.5]


def test_take_profit_and_stop_in_one_bar_takes_the_stop():
    ohlc = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 106, 97, 101)]
    fills = run({0: {"enter_long": True, "stop_loss": 98.0, "take_profit": 105.0}}, ohlc)[2]
    assert fills["price"].to_list() == [100.0, 98.0]
    tp = [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 106, 99, 101)]
    fills = run({0: {"enter_long": True, "stop_loss": 98.0, "take_profit": 105.0}}, tp)[2]
    assert fills["price"].to_list() == [100.0, 105.0]
    assert fills["liquidity"].to_list() == ["taker", "maker"]


def test_short_entries_exits_and_flips():
    plan = {0: {"enter_short": True}, 1: {"exit_short": True, "enter_long": True}, 2: {"exit_long": True}}
    engine, orders, fills = run(plan, FLAT)
    assert fills["side"].to_list() == [-1, 1, -1]
    assert fills["qty"].to_list() == [1.0, 2.0, 1.0]  # the flip buys back the short and goes long
    assert engine.summary()["position"][SYM] == 0.0


def test_exit_without_a_position_does_nothing():
    engine, orders, fills = run({0: {"exit_long": True}, 1: {"exit_short": True}}, FLAT)
    assert orders.height == 0 and fills.height == 0


def test_risk_checks_reject_with_the_engines_reasons():
    engine, orders, _ = run({0: {"target": 50.0}}, FLAT, params={"max_position": 100, "max_order_size": 10})
    assert engine.summary()["rejections"] == {"order_too_large": 1}
    assert orders["reason"].to_list() == ["order_too_large"]
    engine, _, _ = run({0: {"target": 5.0}}, FLAT, params={"max_position": 3, "max_order_size": 10})
    assert engine.summary()["rejections"] == {"position_too_large": 1}


def test_loss_limit_halts_and_cancels():
    ohlc = [(100, 100, 100, 100), (100, 100, 100, 100), (90, 90, 80, 80), (80, 80, 80, 80), (80, 80, 80, 80)]
    engine, orders, fills = run({0: {"target": 1.0}, 2: {"target": -1.0}, 3: {"target": 1.0}}, ohlc, params={"max_loss": 5})
    assert engine.summary()["halted"] == "max_loss"
    assert fills.height == 1  # nothing after the halt
    assert engine.summary()["rejections"].get("halted", 0) >= 1


def test_lot_rounding():
    _, _, fills = run({0: {"target": 7.0}}, FLAT, lot=3.0)
    assert fills["qty"].to_list() == [6.0]


def test_batches_cut_anywhere_give_the_same_orders_and_fills():
    rng = np.random.default_rng(3)
    closes = 100 + np.cumsum(rng.normal(0, 1, 60)).round()
    ohlc = [(float(c), float(c) + 2, float(c) - 2, float(c)) for c in closes]
    plan = {i: {"target": float(rng.integers(-2, 3))} for i in range(0, 60, 3)}
    whole = run(plan, ohlc)
    cut = run(plan, ohlc, split=[(0, 1), (1, 17), (17, 18), (18, 60)])
    assert whole[2].equals(cut[2]) and whole[1].equals(cut[1])
    assert whole[0].summary()["pnl"] == cut[0].summary()["pnl"]


def test_snapshot_restore_continues_identically():
    rng = np.random.default_rng(5)
    closes = 100 + np.cumsum(rng.normal(0, 1, 40)).round()
    ohlc = [(float(c), float(c) + 1, float(c) - 1, float(c)) for c in closes]
    plan = {i: {"target": float(rng.integers(-1, 2))} for i in range(40)}
    rows = [(T0 + i * NS_PER_MIN, SYM, *b) for i, b in enumerate(ohlc)]
    batch = bars_batch(rows, tick=0.5)
    a = make_engine(scripted(plan), {}, {SYM: {}}, config=Config(), fill=NO_FEES)
    a.process(batch.slice(0, 20))
    state = a.snapshot_state()
    b = make_engine(scripted(plan), {}, {SYM: {}}, config=Config(), fill=NO_FEES)
    b.restore_state(state)
    fa = pl.from_arrow(a.process(batch.slice(20)).fills)
    fb = pl.from_arrow(b.process(batch.slice(20)).fills)
    assert fa.equals(fb) and fa.height > 0


def test_signals_that_drop_rows_are_a_strategy_error():
    st = BarStrategy("dropper", "", interval="1m")

    @st.signals
    def signals(bars, p):
        return bars.filter(pl.col("close") > 100).with_columns(target=pl.lit(1.0))

    engine = make_engine(st, {}, {SYM: {}}, config=Config())
    rows = [(T0 + i * NS_PER_MIN, SYM, 100.0, 102.0, 99.0, 100.0 + i) for i in range(3)]
    with pytest.raises(StrategyError, match="returned 2 rows for 3 bars"):
        engine.process(bars_batch(rows))


def test_signals_without_signal_columns_or_raising_are_strategy_errors():
    st = BarStrategy("nothing", "", interval="1m")

    @st.signals
    def signals(bars, p):
        return bars.with_columns(x=pl.lit(1))

    rows = [(T0, SYM, 100.0, 102.0, 99.0, 100.0)]
    with pytest.raises(StrategyError, match="must add a `target` column"):
        make_engine(st, {}, {SYM: {}}, config=Config()).process(bars_batch(rows))
    st2 = BarStrategy("raiser", "", interval="1m")

    @st2.signals
    def signals2(bars, p):
        return bars.with_columns(target=pl.col("nope"))

    with pytest.raises(StrategyError, match="signals\\(\\) raised ColumnNotFoundError"):
        make_engine(st2, {}, {SYM: {}}, config=Config()).process(bars_batch(rows))


def test_bars_of_another_interval_are_a_data_error():
    st = scripted({})
    rows = [(T0, SYM, 100.0, 102.0, 99.0, 100.0)]
    with pytest.raises(DataError, match="reads 1m bars; the input holds 5m bars"):
        make_engine(st, {}, {SYM: {}}, config=Config()).process(bars_batch(rows, interval="5m"))


def test_bad_bars_are_a_data_error():
    rows = [(T0, SYM, 100.0, 98.0, 99.0, 100.0)]  # high below low
    with pytest.raises(DataError, match="low ≤ high"):
        make_engine(scripted({}), {}, {SYM: {}}, config=Config()).process(bars_batch(rows))


@pytest.mark.parametrize("kwargs, message", [
    ({"interval": "7x"}, "interval"),
    ({"execution": "vwap"}, "execution must be one of next_open, market, limit"),
    ({"offset": -1}, "offset"),
])
def test_declaration_errors(kwargs, message):
    with pytest.raises(DeclarationError, match=message):
        BarStrategy("bad", "", **kwargs)


def test_a_bar_strategy_has_no_event_handlers():
    st = BarStrategy("bars_only", "")
    with pytest.raises(DeclarationError, match="has no on_book handler"):
        st.on_book(lambda ctx, s: None)


def test_market_events_become_the_strategys_bars():
    """A market stream is turned into the strategy's bars as they close (sq bars' code)."""
    from tests.support.marketdata import market_rows

    trades = [(T0 + i * NS_PER_MIN // 4, SYM, 2, 1, 100.0 + (i % 5), 1.0, i + 1) for i in range(40)]
    engine = make_engine(scripted({0: {"target": 1.0}}), {}, {SYM: {}}, config=Config(), fill=NO_FEES)
    out = engine.process(market_rows(trades, tick=0.5))
    engine.finish()
    assert engine.summary()["bars"] == 10  # 40 trades, 4 a minute
    assert pl.from_arrow(out.fills)["price"].to_list() == [104.0]  # bar 1 opens with trade i = 4 at 100 + 4
    assert math.isclose(engine.summary()["position"][SYM], 1.0)


def test_max_drawdown_follows_the_account_bar_by_bar():
    """Two symbols, one lot each from bar 1's open, no fees: the account after each bar is the sum
    of both marks; the run's max drawdown is that curve's largest fall from a peak."""
    closes = {"SIM:X": [100, 100, 104, 101, 99, 103, 98, 100], "SIM:Y": [50, 50, 49, 53, 52, 48, 50, 51]}
    rows = []
    for i in range(8):
        for sym, cs in closes.items():
            rows.append((T0 + i * NS_PER_MIN, sym, float(cs[i - 1] if i else cs[0]), 200.0, 1.0, float(cs[i])))
    st = scripted({0: {"target": 1.0}})
    engine = make_engine(st, {}, {"SIM:X": {}, "SIM:Y": {}}, config=Config(), fill=NO_FEES)
    engine.process(bars_batch(rows, tick=0.5))
    entry = {sym: cs[0] for sym, cs in closes.items()}  # bar 1 opens at bar 0's close
    account, peak, worst = 0.0, 0.0, 0.0
    for i in range(1, 8):
        for sym in ("SIM:X", "SIM:Y"):  # each bar marks its own symbol, in input order
            account = sum(closes[q][i] - entry[q] if (q < sym or q == sym) else closes[q][i - 1] - entry[q] for q in closes)
            peak = max(peak, account)
            worst = max(worst, peak - account)
    assert engine.summary()["max_drawdown"] == pytest.approx(worst)
    assert worst > 0
