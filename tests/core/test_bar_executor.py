"""A bar strategy on the event engine (`LiveBarEngine` + the executor strategy), on hand-built
markets of one-second bars: the wanted position is reached with IOC orders through the touch,
the outbox of a real venue gets the same orders (a passive GTC at our touch for `limit`), a
stop-loss or take-profit closes the position with an IOC, flags count from the position held,
and `make_engine` picks the engine by strategy kind and venue."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from sq.core import schemas as S
from sq.core.config import Config
from sq.core.engine import Engine, FillModelConfig, make_engine
from sq.core.engine.barengine import BarEngine
from sq.core.engine.livebarengine import LiveBarEngine
from sq.core.engine.venue_bridge import ACK, CANCEL, CANCELED, FILL_TAKER, NEW, LiveBridge
from sq.core.strategy import executor as E
from sq.strategy import BarStrategy
from tests.support.marketdata import market_rows

SYM = "SIM:T"
INST = {SYM: S.Instrument(SYM, "sim", 1.0, 1.0)}
T0 = 1_000_000_000_000  # a whole second: bar k is [T0 + k s, T0 + (k+1) s)
STEP = 100_000_000  # one venue message every 100 ms
FILL = FillModelConfig(order_latency_ns=0, feed_latency_ns=0, maker_fee_bps=0.0, taker_fee_bps=0.0)
RISK = {"max_order_size": 100.0, "max_position": 100.0, "max_loss": 1e9}


def messages(prices: list[float], depth: float = 10.0) -> list:
    """One market batch per venue message: a snapshot at `prices[0]`, then every 100 ms a book
    of one level a side (bid = price − 1, ask = price + 1) and a trade at the price."""
    p0 = prices[0]
    out = [[(T0, SYM, S.CLEAR, 0, 0.0, 0.0, 1), (T0, SYM, S.LEVEL, 1, p0 - 1, depth, 1), (T0, SYM, S.LEVEL, -1, p0 + 1, depth, 1),
            (T0, SYM, S.SNAPSHOT_END, 0, 0.0, 0.0, 1)]]
    prev = p0
    for k, p in enumerate(prices[1:], start=1):
        t, seq = T0 + k * STEP, k + 1
        rows = [(t, SYM, S.LEVEL, 1, prev - 1, 0.0, seq), (t, SYM, S.LEVEL, -1, prev + 1, 0.0, seq)] if p != prev else []
        rows += [(t, SYM, S.LEVEL, 1, p - 1, depth, seq), (t, SYM, S.LEVEL, -1, p + 1, depth, seq), (t, SYM, S.TRADE, 1, p, 1.0, seq)]
        out.append(rows)
        prev = p
    return [market_rows(rows, [SYM], tick=1.0) for rows in out]


def run(engine, batches) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every message through the engine (complete, as a live source sends them): all orders and fills rows."""
    orders, fills = [], []
    for b in batches:
        out = engine.process(b, complete=True)
        orders.append(pl.from_arrow(out.orders))
        fills.append(pl.from_arrow(out.fills))
    return pl.concat(orders), pl.concat(fills)


def target_strategy(execution="market", offset=2, start_bar=1, size=2.0) -> BarStrategy:
    """Wants `size` long from bar `start_bar` on (no opinion before)."""
    st = BarStrategy("want_long", "long from a given bar", interval="1s", execution=execution, offset=offset)
    st.param("size", size, above=0, doc="position")

    @st.signals
    def signals(bars, p):
        return bars.with_columns(target=pl.when(pl.int_range(pl.len()) >= start_bar).then(p.size).otherwise(None))

    return st


def protected_strategy(short: bool, stop: float, take: float) -> BarStrategy:
    """Enters once at bar 1 (long, or short) with a stop-loss / take-profit `stop`/`take` away
    from the close (NaN: none); never re-enters."""
    st = BarStrategy("protected", "one entry with protective prices", interval="1s", execution="market", offset=1)
    sign = -1.0 if short else 1.0

    @st.signals
    def signals(bars, p):
        first = pl.int_range(pl.len()) == 1
        close = pl.col("close")
        return bars.with_columns(
            enter_long=first & pl.lit(not short), enter_short=first & pl.lit(short),
            stop_loss=pl.lit(None, pl.Float64) if math.isnan(stop) else close - sign * stop,
            take_profit=pl.lit(None, pl.Float64) if math.isnan(take) else close + sign * take)

    return st


def live_engine(strategy, sim_venue=True, **params) -> LiveBarEngine:
    return LiveBarEngine(strategy, INST, {SYM: {**RISK, **params}}, config=Config(), fill=FILL, sim_venue=sim_venue)


def test_the_executor_has_the_bar_strategys_name_and_parameters():
    bar = target_strategy()
    ex = E.executor(bar)
    assert ex.kind == "event" and ex.name == bar.name and ex.state == E.NSLOTS
    assert [p.name for p in ex.all_params] == [p.name for p in bar.all_params]
    assert set(ex.handlers) == {"on_book", "on_trade", "on_fill"}
    assert E.executor(bar) is ex  # one per bar strategy: its handlers compile once


def test_make_engine_by_kind_and_venue():
    bar = target_strategy()
    params = {SYM: dict(RISK)}
    assert type(make_engine(bar, INST, params, config=Config(), fill=FILL)) is BarEngine
    live = make_engine(bar, INST, params, config=Config(), fill=FILL, sim_venue=False, session_of=None)
    assert type(live) is LiveBarEngine and live.declaration is E.executor(bar)
    assert type(make_engine("mm", INST, params, config=Config(), fill=FILL, sim_venue=False, session_of=None)) is Engine


def test_wanted_position_is_reached_with_iocs_through_the_touch():
    """Bar 1 closes (at T0 + 2 s) wanting 2 long: one IOC buy `offset` ticks through the ask fills
    at the ask; nothing is sent before the bar closes, nor once the position is there."""
    e = live_engine(target_strategy(offset=2))
    orders, fills = run(e, messages([100.0] * 45))
    new = orders.filter(pl.col("event") == "new")
    assert len(new) == 1 and new["side"][0] == 1 and new["qty"][0] == 2.0
    assert new["price"][0] == 101.0 + 2  # the ask + offset ticks
    assert new["ts"].cast(pl.Int64)[0] >= T0 + 2_000_000_000  # after bar 1 closed, never earlier
    assert fills["price"].to_list() == [101.0] and fills["liquidity"].to_list() == ["taker"]
    assert e.positions()[SYM]["position"] == 2.0
    s = e.summary()
    assert s["bars"] >= 3 and s["wanted"] == {SYM: 2.0} and s["interval"] == "1s"


def test_an_ioc_that_misses_is_sent_again_until_the_position_is_reached():
    """The ask holds 1 where 2 are wanted: the first IOC fills 1 and expires, the next book
    update sends another IOC for the rest."""
    e = live_engine(target_strategy(offset=0))
    orders, fills = run(e, messages([100.0] * 45, depth=1.0))
    new = orders.filter(pl.col("event") == "new")
    assert new["qty"].to_list()[:2] == [2.0, 1.0]
    assert orders.filter(pl.col("event") == "expired").height >= 1
    assert e.positions()[SYM]["position"] == 2.0 and fills["qty"].sum() == 2.0


def test_a_real_venue_gets_an_ioc_from_the_outbox():
    """sim_venue=False (what `sq live` runs): the bar's order is an IOC intent in the outbox,
    `offset` ticks through the ask; once the venue filled it nothing more is sent."""
    e = live_engine(target_strategy(execution="market", offset=3), sim_venue=False)
    bridge = LiveBridge(e)
    batches = messages([100.0] * 35)
    sent = []
    for b in batches[:25]:
        e.process(b, complete=True)
        sent += bridge.take_outbox()
    assert [(i.kind, i.side, i.price, i.qty, i.ioc) for i in sent] == [(NEW, 1, 104.0, 2.0, True)]
    bridge.answer(sent[0].coid, ACK, px=7, first=True)
    bridge.answer(sent[0].coid, FILL_TAKER, px=101, qty=2.0)
    assert e.positions()[SYM]["position"] == 2.0
    for b in batches[25:]:
        e.process(b, complete=True)
        assert bridge.take_outbox() == []


def test_limit_execution_rests_a_gtc_at_our_touch_and_follows_it():
    """`limit`: a GTC buy at our own bid; when the touch moves up it is canceled and re-placed there."""
    e = live_engine(target_strategy(execution="limit"), sim_venue=False)
    bridge = LiveBridge(e)
    sent = []
    for b in messages([100.0] * 25 + [103.0] * 5):
        e.process(b, complete=True)
        for it in bridge.take_outbox():
            sent.append(it)
            bridge.answer(it.coid, ACK if it.kind == NEW else CANCELED, px=it.coid, first=True)
    assert [i.kind for i in sent] == [NEW, CANCEL, NEW]
    assert [(i.side, i.price, i.qty, i.ioc) for i in sent if i.kind == NEW] == [(1, 99.0, 2.0, False), (1, 102.0, 2.0, False)]


def first_message(prices: list[float], hit) -> int:
    return next(j for j, p in enumerate(prices) if hit(p))


@pytest.mark.parametrize("short", [False, True])
def test_stop_loss_closes_the_position_with_an_ioc(short):
    """Entered at bar 1 with a stop 3 away from the close; the market then moves against the
    position a tick per message: when the touch reaches the stop one IOC closes the position,
    the protective prices clear and (no new entry signal) it stays flat."""
    e = live_engine(protected_strategy(short, stop=3.0, take=math.nan))
    d = 1.0 if short else -1.0
    prices = [100.0] * 22 + [100.0 + d * k for k in range(1, 12)]
    orders, fills = run(e, messages(prices))
    new = orders.filter(pl.col("event") == "new").sort("ts")
    entry_side = -1 if short else 1
    assert new["side"].to_list() == [entry_side, -entry_side] and new["qty"].to_list() == [1.0, 1.0]
    stop = 100.0 + 3.0 if short else 100.0 - 3.0  # the close of bar 1 ± 3
    exit_at = (new["ts"].cast(pl.Int64)[1] - T0) // STEP  # the message the exit was sent on
    # the first message whose trade or touch (the ask for a short, the bid for a long) reached the stop
    assert exit_at == first_message(prices, (lambda p: p + 1 >= stop) if short else (lambda p: p - 1 <= stop))
    assert e.positions()[SYM]["position"] == 0.0 and len(fills) == 2
    row = e.us[e.registry.id(SYM)]
    assert row[E.W_WANT] == 0.0 and math.isnan(row[E.W_STOP]) and math.isnan(row[E.W_TAKE])


def test_take_profit_closes_a_long_when_the_market_reaches_it():
    e = live_engine(protected_strategy(False, stop=math.nan, take=4.0))
    prices = [100.0] * 22 + [100.0 + k for k in range(1, 10)]
    orders, fills = run(e, messages(prices))
    sides = orders.filter(pl.col("event") == "new").sort("ts")["side"].to_list()
    assert sides == [1, -1] and e.positions()[SYM]["position"] == 0.0
    exit_at = (orders.filter(pl.col("event") == "new").sort("ts")["ts"].cast(pl.Int64)[1] - T0) // STEP
    assert exit_at == first_message(prices, lambda p: p >= 100.0 + 4.0)  # the trade printed at the take-profit


def test_flags_count_from_the_position_held():
    """enter_long on every bar wants one lot long once, not one more per bar; exit_long on a
    later bar flattens."""
    st = BarStrategy("flags", "enter, then exit", interval="1s", execution="market", offset=1)

    @st.signals
    def signals(bars, p):
        i = pl.int_range(pl.len())
        return bars.with_columns(enter_long=(i >= 1) & (i < 4), exit_long=i >= 4)

    e = live_engine(st)
    orders, _ = run(e, messages([100.0] * 70))
    new = orders.filter(pl.col("event") == "new").sort("ts")
    assert new["side"].to_list() == [1, -1] and new["qty"].to_list() == [1.0, 1.0]
    assert e.positions()[SYM]["position"] == 0.0


def test_history_survives_a_snapshot():
    e = live_engine(target_strategy())
    batches = messages([100.0] * 30)
    run(e, batches[:25])
    state = e.snapshot_state()
    f = live_engine(target_strategy())
    f.restore_state(state)
    assert f.bars_in == e.bars_in and np.array_equal(f.history.by_symbol[0]["close"], e.history.by_symbol[0]["close"])
