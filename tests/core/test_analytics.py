"""sq.core.analytics: every metric of docs/metrics.md on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sq.core import analytics as A
from sq.core.exits import UsageError

NS = A.NS
DAY = A.DAY_NS


# -- returns statistics


def test_sharpe_and_sortino_of_a_known_series():
    r = np.array([0.01, -0.01, 0.02, 0.0])
    # mean 0.005; deviations ±0.005, ±0.015: Σ² = 500e-6, sample variance 500e-6 / 3
    assert A.sharpe(r, 252) == pytest.approx(0.005 / math.sqrt(500e-6 / 3) * math.sqrt(252))
    # downside: only −0.01; √(1e-4 / 4) = 0.005 → mean / 0.005 = 1
    assert A.sortino(r, 252) == pytest.approx(math.sqrt(252))
    assert A.sharpe(np.array([0.01]), 252) is None and A.sharpe(np.zeros(5), 252) is None
    assert A.sortino(np.array([0.01, 0.02]), 365) is None  # no downside


def test_historical_var_and_cvar():
    r = np.array([-0.10, -0.05] + [0.0] * 19)  # 21 returns: the 5 % quantile sits exactly on the 2nd smallest
    var, cvar = A.var_cvar(r)
    assert var == pytest.approx(0.05) and cvar == pytest.approx(0.075)


def test_cornish_fisher_var_and_cvar_of_a_platykurtic_sample():
    a = 0.02
    r = np.array([-a, 0.0, a])  # mean 0, skew 0, excess kurtosis 1.5 − 3 = −1.5, sample σ = a
    z = -1.6448536269514722
    phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    g = z + (z ** 3 - 3 * z) * -1.5 / 24
    m1, m3 = -phi / 0.05, -(z * z + 2) * phi / 0.05
    g_es = m1 + (m3 - 3 * m1) * -1.5 / 24
    var, cvar = A.var_cvar_cornish_fisher(r)
    assert var == pytest.approx(-a * g) and var == pytest.approx(a * 1.67511, rel=1e-4)
    assert cvar == pytest.approx(-a * g_es) and cvar == pytest.approx(a * 1.84284, rel=1e-4)


def test_cornish_fisher_cvar_is_the_tail_mean_of_the_expansion():
    """E[g(Z) | Z ≤ z] by numerical integration, independent of the truncated moments."""
    rng = np.random.default_rng(3)
    r = rng.standard_exponential(400) * 0.01 - 0.008  # skewed, fat-tailed
    var, cvar = A.var_cvar_cornish_fisher(r)
    mu, sd, pop = r.mean(), r.std(ddof=1), r.std()
    x = (r - mu) / pop
    S, K = (x ** 3).mean(), (x ** 4).mean() - 3
    u = np.linspace(-12, A.Z_05, 200_001)
    g = u + (u * u - 1) * S / 6 + (u ** 3 - 3 * u) * K / 24 - (2 * u ** 3 - 5 * u) * S * S / 36
    dens = np.exp(-u * u / 2) / math.sqrt(2 * math.pi)
    tail = np.trapezoid(g * dens, u) / 0.05
    assert cvar == pytest.approx(-(mu + sd * tail), rel=1e-4)
    gz = A.Z_05 + (A.Z_05 ** 2 - 1) * S / 6 + (A.Z_05 ** 3 - 3 * A.Z_05) * K / 24 - (2 * A.Z_05 ** 3 - 5 * A.Z_05) * S * S / 36
    assert var == pytest.approx(-(mu + sd * gz))


# -- drawdown


def test_drawdown_depth_and_duration_to_recovery():
    ts = np.array([0, 1, 2, 3, 4, 5], np.int64) * NS
    eq = np.array([0.0, 10.0, 4.0, 6.0, 12.0, 8.0])
    dd, dur = A.drawdown(ts, eq, 6 * NS)
    assert dd == 6.0 and dur == pytest.approx(3.0)  # peak 10 at 1 s, back above it at 4 s (the later 12 → 8 is shallower)


def test_drawdown_never_recovered_lasts_until_the_end():
    dd, dur = A.drawdown(np.array([0, 1, 2], np.int64) * NS, np.array([0.0, 10.0, 4.0]), 10 * NS)
    assert dd == 6.0 and dur == pytest.approx(9.0)
    assert A.drawdown(np.array([0, 1], np.int64), np.array([0.0, 1.0]), 5)[0] == 0.0


# -- round trips


def _trades(ts, side, px, qty, fee=None):
    ts = np.asarray(ts, np.int64) * NS
    n = len(ts)
    return A._trades(ts, np.zeros(n, np.int64), np.asarray(side, float), np.asarray(px, float), np.asarray(qty, float),
                     np.zeros(n) if fee is None else np.asarray(fee, float))


def test_round_trips_fifo_with_partial_fills_and_a_flip():
    # buy 2 @100, buy 1 @101, sell 1.5 @103 (closes 1.5 of the first lot: +4.5, held 3 s),
    # sell 3 @99 (closes 0.5 of lot 1: −0.5, 5 s; lot 2: −2, 4 s; flips short 1.5 @99),
    # buy 1.5 @98 (closes the short: +1.5, 2 s)
    m = _trades([0, 1, 3, 5, 7], [1, 1, -1, -1, 1], [100, 101, 103, 99, 98], [2, 1, 1.5, 3, 1.5])
    assert m["round_trips"] == 4
    assert m["win_rate"] == 0.5
    assert m["avg_win"] == pytest.approx(3.0) and m["avg_loss"] == pytest.approx(-1.25)
    assert m["profit_factor"] == pytest.approx(6.0 / 2.5)
    assert m["expectancy"] == pytest.approx(3.5 / 4)
    assert m["avg_holding_s"] == pytest.approx((3 + 5 + 4 + 2) / 4)


def test_round_trip_fees_are_shared_pro_rata():
    m = _trades([0, 1], [1, -1], [100, 101], [1, 1], [0.2, 0.4])
    assert m["round_trips"] == 1 and m["expectancy"] == pytest.approx(1 - 0.6)
    m = _trades([0, 1], [1, -1], [100, 101], [2, 1], [0.2, 0.1])  # half the entry's fee goes with the half closed
    assert m["expectancy"] == pytest.approx(1 - 0.1 - 0.1)
    assert m["profit_factor"] is None and m["avg_loss"] is None


def test_round_trips_are_matched_per_symbol():
    ts = np.array([0, 1, 2, 3], np.int64) * NS
    m = A._trades(ts, np.array([0, 1, 0, 1]), np.array([1.0, -1, -1, 1]), np.array([10.0, 20, 11, 21]), np.ones(4), np.zeros(4))
    assert m["round_trips"] == 2 and m["win_rate"] == 0.5 and m["expectancy"] == pytest.approx(0.0)  # +1 long, −1 short


def test_no_closed_trade():
    m = _trades([0, 1], [1, 1], [100, 101], [1, 1])
    assert m == {"round_trips": 0}


# -- markouts and spread capture


def test_markouts_on_a_constructed_mid_series():
    mts = np.array([0, 1, 10], np.int64) * NS
    mid = np.array([100.5, 101.0, 99.0])
    out = A.markouts(np.array([0]), np.array([0]), np.array([1.0]), np.array([100.0]), np.array([1.0]), mts, np.zeros(3, np.int64), mid)
    assert out["1s"]["bps"] == pytest.approx(100.0) and out["1s"]["per_unit"] == pytest.approx(1.0)
    assert out["10s"]["bps"] == pytest.approx(-100.0)
    assert out["60s"] == {"per_unit": None, "bps": None, "fills": 0}  # the run ended before the horizon
    # a sell is good when the mid falls; quantity-weighted over fills
    out = A.markouts(np.array([0, 0]), np.array([0, 0]), np.array([1.0, -1.0]), np.array([100.0, 100.0]), np.array([1.0, 3.0]),
                     mts, np.zeros(3, np.int64), mid)
    assert out["10s"]["bps"] == pytest.approx((1 * -100.0 + 3 * 100.0) / 4) and out["10s"]["fills"] == 2


def test_markouts_take_the_first_mid_at_or_after_the_horizon_of_the_same_symbol():
    mts = np.array([0, 2, 0, 1], np.int64) * NS
    msym = np.array([0, 0, 1, 1])
    mid = np.array([10.0, 12.0, 50.0, 40.0])
    out = A.markouts(np.array([0]), np.array([0]), np.array([1.0]), np.array([10.0]), np.array([1.0]), mts, msym, mid)
    assert out["1s"]["per_unit"] == pytest.approx(2.0)  # symbol 0's mid at 2 s, not symbol 1's at 1 s


def test_spread_capture_against_the_mid_at_the_fill():
    mts = np.array([0, 5], np.int64) * NS
    mid = np.array([100.5, 100.0])
    got = A._spread_capture(np.array([0, 5 * NS]), np.array([0, 0]), np.array([1.0, -1.0]), np.array([100.0, 100.1]),
                            np.array([1.0, 1.0]), mts, np.zeros(2, np.int64), mid)
    assert got == pytest.approx(((100.5 - 100.0) / 100.5 * 1e4 + (100.1 - 100.0) / 100.0 * 1e4) / 2)


# -- the account: equity, inventory, exposure


def test_inventory_exposure_and_gross_notional_are_time_weighted():
    ts = np.array([0, 10], np.int64) * NS
    eq_ts, eq, int_abs, int_gross, t_open, max_abs = A.account_series(
        ts, np.zeros(2, np.int64), np.array([1.0, 0.0]), np.array([100.0, 101.0]), np.array([0.0, 1.0]), 1, 0, 20 * NS)
    assert int_abs == pytest.approx(10.0) and t_open == pytest.approx(10.0) and int_gross == pytest.approx(1000.0) and max_abs == 1.0
    assert eq_ts.tolist() == [0, 10 * NS] and eq.tolist() == [0.0, 1.0]


def test_account_equity_sums_the_symbols_latest_totals():
    ts = np.array([1, 2, 2, 3], np.int64) * NS
    eq_ts, eq, *_ = A.account_series(ts, np.array([0, 1, 0, 1]), np.ones(4), np.full(4, 10.0), np.array([5.0, 1.0, 6.0, -2.0]), 2, 0, 4 * NS)
    assert eq_ts.tolist() == [0, NS, 2 * NS, 3 * NS] and eq.tolist() == [0.0, 5.0, 7.0, 4.0]


# -- basis and the entry point


def test_basis_parsing_and_annualisation():
    b = A.parse_basis("1d", calendar=True)
    assert b.periods_per_year == 252 and b.describe() == "annualised from daily returns, 252/yr"
    assert A.parse_basis("1h", calendar=False).periods_per_year == 365 * 24
    assert A.parse_basis("1s", calendar=False).describe() == "annualised from 1-second returns, 31,536,000/yr"
    assert A.parse_basis("15m", calendar=True).describe() == "annualised from 15m returns, 24,192/yr"
    with pytest.raises(UsageError):
        A.parse_basis("2d", calendar=False)
    with pytest.raises(UsageError):
        A.parse_basis("500ms", calendar=False)


def test_daily_returns_skip_weekends_on_a_calendar_market():
    monday = 1_796_601_600 * NS  # 2026-12-07 00:00 UTC, a Monday
    assert (monday // DAY + 3) % 7 == 0
    eq_ts = np.array([monday, monday + DAY // 2, monday + 5 * DAY + DAY // 2], np.int64)  # +1 on Monday, +2 on Saturday
    eq = np.array([0.0, 1.0, 3.0])
    end = monday + 8 * DAY
    r24 = A.basis_returns(eq_ts, eq, monday, end, A.parse_basis("1d", calendar=False), 100.0)
    assert len(r24) == 8 and r24[0] == pytest.approx(0.01) and r24[5] == pytest.approx(0.02)
    r252 = A.basis_returns(eq_ts, eq, monday, end, A.parse_basis("1d", calendar=True), 100.0)
    assert len(r252) == 6  # Saturday's and Sunday's periods merge into Monday's
    assert r252.sum() == pytest.approx(0.03) and r252[5] == pytest.approx(0.02)


def _metrics(**kw):
    base = dict(start_ns=0, end_ns=3 * DAY, nsym=1, pnl_ts=np.array([DAY // 2, 3 * DAY // 2, 5 * DAY // 2], np.int64),
                pnl_sym=np.zeros(3, np.int64), pnl_pos=np.array([1.0, 1.0, 0.0]), pnl_mark=np.array([100.0, 101.0, 99.0]),
                pnl_total=np.array([0.0, 20.0, -10.0]), fill_ts=np.array([DAY // 2, 5 * DAY // 2], np.int64), fill_sym=np.zeros(2, np.int64),
                fill_side=np.array([1.0, -1.0]), fill_px=np.array([100.0, 99.0]), fill_qty=np.ones(2), fill_fee=np.zeros(2),
                capital=1000.0, basis=A.parse_basis("1d", calendar=False), net=-10.0, fill_ratio=0.5, turnover=199.0)
    base.update(kw)
    return A.trader_metrics(**base)


def test_trader_metrics_has_every_key_and_the_hand_computed_values():
    m = _metrics()
    assert tuple(m) == A.KEYS
    r = np.array([0.0, 20.0, -30.0]) / 1000.0  # equity at the day ends: 0, 20, −10
    assert m["return_on_capital"] == pytest.approx(-0.01)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365))
    assert m["max_drawdown"] == pytest.approx(30.0) and m["max_drawdown_duration_s"] == pytest.approx(1.5 * 86400)
    assert m["calmar"] == pytest.approx(r.mean() * 365 / 0.03)
    assert m["round_trips"] == 1 and m["expectancy"] == pytest.approx(-1.0) and m["avg_holding_s"] == pytest.approx(2 * 86400)
    assert m["exposure"] == pytest.approx(2 / 3) and m["inventory_max_abs"] == 1.0
    assert m["periods_per_year"] == 365 and m["capital"] == 1000.0 and m["fill_ratio"] == 0.5 and m["turnover"] == 199.0


def test_a_run_shorter_than_two_basis_periods_has_no_sharpe():
    m = _metrics(end_ns=20 * NS, pnl_ts=np.array([NS, 5 * NS, 10 * NS], np.int64), fill_ts=np.array([NS, 10 * NS], np.int64))
    assert m["sharpe"] is None and m["sortino"] is None and m["var_95"] is None and m["calmar"] is None
    assert m["return_on_capital"] == pytest.approx(-0.01)
    m = _metrics(end_ns=20 * NS, pnl_ts=np.array([NS, 5 * NS, 10 * NS], np.int64), fill_ts=np.array([NS, 10 * NS], np.int64),
                 basis=A.parse_basis("1s", calendar=False))
    assert m["sharpe"] is not None and m["periods_per_year"] == 365 * 86400


def test_no_capital_no_return_metrics_and_the_engine_drawdown_when_deeper():
    m = _metrics(capital=0.0, max_drawdown=50.0)
    assert m["capital"] is None and m["return_on_capital"] is None and m["sharpe"] is None
    assert m["max_drawdown"] == 50.0


def test_an_empty_run():
    m = A.trader_metrics(start_ns=0, end_ns=0, nsym=0, pnl_ts=[], pnl_sym=[], pnl_pos=[], pnl_mark=[], pnl_total=[], fill_ts=[],
                         fill_sym=[], fill_side=[], fill_px=[], fill_qty=[], fill_fee=[], capital=1e6,
                         basis=A.parse_basis("1d", calendar=False), net=0.0, fill_ratio=0.0, turnover=0.0)
    assert tuple(m) == A.KEYS and m["round_trips"] == 0 and m["sharpe"] is None and m["markout_1s_bps"] is None


def test_warm_up_runs_every_kernel():
    A.warm_up()
    for kernel in (A.account_series, A.sample_at, A.drawdown, A.round_trips, A._markouts):
        assert kernel.signatures, kernel  # compiled (or loaded) for the types a run passes
