"""Every pre-trade risk check tripped deliberately, the first-failure-wins order, and the halt on
a loss-limit breach (docs/architecture.md)."""

from __future__ import annotations

import polars as pl

from sq.core import schemas as S
from sq.core.config import Config, RiskConfig
from sq.core.engine import Engine, FillModelConfig
from sq.core.engine import layout as L
from sq.core.engine import risk
from tests.support.marketdata import market_rows

SYM = "SIM:R"
INST = {SYM: S.Instrument(SYM, "sim", 1.0, 1.0)}
BASE = {"clip": 10.0, "threshold": 0.6, "max_order_size": 100.0, "max_position": 100.0, "max_loss": 1e9}


def engine(risk=None, strategy="mm", params=None, **fill):
    cfg = Config(risk=RiskConfig(**(risk or {})))
    f = FillModelConfig(order_latency_ns=0, feed_latency_ns=0, maker_fee_bps=0.0, taker_fee_bps=0.0, **fill)
    e = Engine(strategy, INST, {SYM: {**BASE, **(params or {})}} if params is not False else {}, config=cfg, fill=f)
    e.process(market_rows([(1, SYM, S.LEVEL, 1, 100.0, 200.0, 1), (1, SYM, S.LEVEL, -1, 101.0, 200.0, 1)], [SYM], tick=1.0))
    e.cancel_all(1, "setup")
    e.resume_trading()
    return e


def check(e, side=1, px=100, qty=10.0, fair=100.5, now=10_000_000_000):
    return risk.check(e.si, e.sf, e.oi, e.of, e.g, e.gf, 0, side, px, qty, fair, now, e.n)


def name(code):
    return L.REASONS[code]


def test_allowed():
    assert check(engine()) == L.R_OK


def test_halted():
    e = engine()
    e.g[L.G_HALTED] = L.HALT_MANUAL
    assert name(check(e)) == "halted"


def test_unconfigured_symbol_rejected_end_to_end():
    e = Engine("mm", INST, {}, config=Config(), fill=FillModelConfig(order_latency_ns=0))
    out = e.process(market_rows([(1, SYM, S.LEVEL, 1, 100.0, 200.0, 1), (1, SYM, S.LEVEL, -1, 101.0, 200.0, 1)], [SYM], tick=1.0),
                    complete=True)
    assert e.rejections() == {"unconfigured_symbol": 2}
    rows = pl.from_arrow(out.orders)
    assert rows["event"].to_list() == ["rejected", "rejected"] and set(rows["reason"]) == {"unconfigured_symbol"}
    assert any("no strategy parameters" in w for w in e.warnings)


def test_qty_not_positive():
    assert name(check(engine(), qty=0.0)) == "qty_not_positive"
    assert name(check(engine(), qty=-1.0)) == "qty_not_positive"


def test_order_too_large():
    assert name(check(engine(params={"max_order_size": 5.0}))) == "order_too_large"


def test_position_includes_working_orders():
    """Reference bug: position 0, max 10, two buys of 6 both pass. Here the second is refused."""
    e = engine(params={"max_position": 10.0})
    assert check(e, qty=6.0) == L.R_OK
    o = 0
    e.oi[o, L.OI_STATE] = L.LIVE
    e.oi[o, L.OI_SIDE] = 1
    e.of[o, L.OF_LEAVES] = 6.0
    e.si[0, L.SI_SLOT] = o
    assert name(check(e, qty=6.0)) == "position_too_large"
    assert check(e, side=-1, qty=6.0) == L.R_OK  # a sell reduces
    e.sf[0, L.SF_POS] = -8.0
    assert name(check(e, side=-1, qty=6.0)) == "position_too_large"


def test_loss_too_large():
    e = engine(risk={"halt_on_max_loss": False}, params={"max_loss": 50.0})
    e.sf[0, L.SF_REAL] = -49.0
    assert check(e) == L.R_OK
    e.sf[0, L.SF_UNREAL] = -2.0  # realized + unrealized
    assert name(check(e)) == "loss_too_large"


def test_daily_loss():
    e = engine(risk={"max_daily_loss": 100.0})
    day = 5 * L.NS_PER_DAY
    assert check(e, now=day) == L.R_OK  # the day starts with total 0
    e.sf[0, L.SF_REAL] = -101.0
    assert name(check(e, now=day + 1)) == "daily_loss"
    assert check(e, now=day + L.NS_PER_DAY) == L.R_OK  # a new day, a new window


def test_notional():
    e = engine(risk={"max_notional": 999.0})
    assert name(check(e, px=100, qty=10.0)) == "notional_too_large"


def test_position_value_counts_the_position_and_working_orders_at_the_order_price():
    """`risk.max_position_value` (the plan's key): the position the order could leave, priced."""
    e = engine(risk={"max_position_value": 1500.0})
    assert check(e, px=100, qty=10.0) == L.R_OK  # 10 × 100 = 1000
    assert name(check(e, px=100, qty=16.0)) == "position_value_too_large"  # 1600 > 1500 though the order is small enough
    e.sf[0, L.SF_POS] = 8.0
    assert name(check(e, px=100, qty=8.0)) == "position_value_too_large"  # 16 after the order
    assert check(e, side=-1, px=101, qty=8.0) == L.R_OK  # a sell reduces the position
    o = 0
    e.oi[o, L.OI_STATE] = L.LIVE
    e.oi[o, L.OI_SIDE] = 1
    e.of[o, L.OF_LEAVES] = 6.0
    e.si[0, L.SI_SLOT] = o
    assert check(e, px=100, qty=1.0) == L.R_OK  # 8 + 6 working + 1 = 15 × 100: at the cap, not over it
    assert name(check(e, px=100, qty=2.0)) == "position_value_too_large"  # the working buy counts: 16 × 100
    assert name(check(e, px=101, qty=1.0)) == "position_value_too_large"  # priced at the order's price: 15 × 101


def test_position_value_off_by_default_and_after_notional():
    assert check(engine(), px=100, qty=90.0) == L.R_OK
    e = engine(risk={"max_notional": 500.0, "max_position_value": 500.0})
    assert name(check(e, px=100, qty=10.0)) == "notional_too_large"  # the order's own value is checked first


def test_open_orders():
    e = engine(risk={"max_open_orders": 0})
    assert name(check(e)) == "too_many_open_orders"


def test_price_band():
    e = engine(risk={"price_band_pct": 1.0})
    assert check(e, px=100, fair=100.5) == L.R_OK
    assert name(check(e, px=90, fair=100.5)) == "price_band"
    assert name(check(e, px=100, fair=float("nan"))) == "price_band"  # no fair price: no band to trust


def test_trading_hours_hook():
    e = engine()
    e.set_trading_hours(SYM, 9 * 3600 * 10**9, 15 * 3600 * 10**9)
    assert check(e, now=10 * 3600 * 10**9) == L.R_OK
    assert name(check(e, now=16 * 3600 * 10**9)) == "trading_hours"


def test_circuit_limits_hook():
    e = engine()
    e.set_circuit_limits(SYM, 95.0, 105.0)
    assert check(e, px=100) == L.R_OK
    assert name(check(e, px=106)) == "circuit_limit"


def test_order_rate_token_bucket():
    e = engine(risk={"max_order_rate": 2.0})
    t = 100 * 10**9
    assert [check(e, now=t) for _ in range(3)][:2] == [L.R_OK, L.R_OK]
    assert name(check(e, now=t)) == "order_rate"
    assert check(e, now=t + 600_000_000) == L.R_OK  # 0.6 s refills one token


def test_first_failure_wins():
    e = engine(risk={"max_notional": 1.0}, params={"max_order_size": 5.0})
    assert name(check(e, qty=0.0)) == "qty_not_positive"
    assert name(check(e, qty=10.0)) == "order_too_large"
    assert name(check(e, qty=5.0)) == "notional_too_large"


def test_rejections_counted_and_deduplicated_in_the_journal():
    e = Engine("mm", INST, {SYM: {**BASE, "max_order_size": 5.0}}, config=Config(), fill=FillModelConfig(order_latency_ns=0))
    rows = [(t, SYM, S.LEVEL, 1 if t % 2 else -1, 100.0 if t % 2 else 101.0, 100.0 + t, t) for t in range(1, 21)]
    out = e.process(market_rows(rows, [SYM], tick=1.0), complete=True)
    assert e.rejections()["order_too_large"] > 2
    journaled = pl.from_arrow(out.orders).filter(pl.col("event") == "rejected")
    assert journaled.height == 2  # one per side until the reason changes


def test_max_loss_breach_halts_and_cancels():
    e = Engine("mm", INST, {SYM: {**BASE, "threshold": 0.0, "max_loss": 5.0}}, config=Config(),
               fill=FillModelConfig(order_latency_ns=0, feed_latency_ns=0, maker_fee_bps=0.0, taker_fee_bps=0.0))
    mk = lambda rows: market_rows(rows, [SYM], tick=1.0)  # noqa: E731
    e.process(mk([(1, SYM, S.LEVEL, 1, 100.0, 50.0, 1), (1, SYM, S.LEVEL, -1, 101.0, 50.0, 1)]), complete=True)
    e.process(mk([(2, SYM, S.LEVEL, 1, 100.0, 50.0, 2)]), complete=True)  # acks
    # sellers sweep our bid at 100 and the market drops to 90×91: long 10 marked at 90.5 → −95
    out = [e.process(mk([(3, SYM, S.TRADE, -1, 99.0, 100.0, 3)]), complete=True),
           e.process(mk([(4, SYM, S.LEVEL, 1, 90.0, 50.0, 4), (4, SYM, S.LEVEL, 1, 100.0, 0.0, 4),
                         (4, SYM, S.LEVEL, -1, 91.0, 50.0, 4), (4, SYM, S.LEVEL, -1, 101.0, 0.0, 4)]), complete=True),
           e.process(mk([(5, SYM, S.LEVEL, 1, 89.0, 5.0, 5)]), complete=True), e.finish()]
    assert e.halted == "max_loss"
    orders = pl.concat([pl.from_arrow(o.orders) for o in out])
    assert "cancel_sent" in orders["event"].to_list() and "canceled" in orders["event"].to_list()
    assert e.counters()["open_orders"] == 0
    before = e.counters()["orders"]
    e.process(mk([(6, SYM, S.LEVEL, 1, 90.0, 500.0, 6)]), complete=True)
    assert e.counters()["orders"] == before  # halted: no new orders


def test_cancel_all_closes_everything():
    e = Engine("mm", INST, {SYM: BASE}, config=Config(), fill=FillModelConfig(order_latency_ns=1_000))
    e.process(market_rows([(1, SYM, S.LEVEL, 1, 100.0, 50.0, 1), (1, SYM, S.LEVEL, -1, 101.0, 50.0, 1)], [SYM], tick=1.0), complete=True)
    assert e.counters()["open_orders"] == 2  # both still PENDING_NEW
    out = e.cancel_all(5, "sigterm")
    assert e.counters()["open_orders"] == 0 and e.halted == "sigterm"
    ev = pl.from_arrow(out.orders)["event"].to_list()
    assert ev.count("accepted") == 2 and ev.count("canceled") == 2


def test_checkpoint_from_before_the_position_value_limit_resumes_with_the_configs_limit():
    """A checkpoint written before `GF_POS_VALUE` and its reason existed holds shorter `gf`/`rej`:
    restoring it takes the new slots from this run's config instead of reading past the array."""
    state = engine().snapshot_state()
    state["gf"], state["rej"] = state["gf"][:L.GF_POS_VALUE], state["rej"][:L.R_POS_VALUE]
    e = engine(risk={"max_position_value": 1500.0})
    e.restore_state(state)
    assert e.gf.shape == (L.NGF,) and e.rej.shape == (L.NR,) and e.gf[L.GF_POS_VALUE] == 1500.0
    assert name(check(e, px=100, qty=16.0)) == "position_value_too_large"
