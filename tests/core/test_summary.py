"""`sq.core.summary`: a run summary's numbers at the instrument's precision, ISO-8601 times, the
parameters a run used and the one-line reason a run traded little."""

from __future__ import annotations

from sq.core import summary as RS
from sq.core.schemas import Instrument

INR = Instrument("NSE:INFY", "zerodha", 0.05, 1.0)
BTC = Instrument("BINANCE:BTCUSDT", "binance", 0.01, 0.00001)


def test_decimals_of_grids():
    assert [RS.decimals(x) for x in (0.01, 0.05, 0.5, 5.0, 0.00001, 0.25)] == [2, 2, 1, 0, 5, 2]
    assert RS.money_decimals(0.05, 1.0) == 2 and RS.money_decimals(0.01, 0.00001) == 7
    assert RS.money_decimals(5.0, 100.0) == 2 and RS.money_decimals(1e-6, 1e-6) == 8  # kept within 2..8


def test_iso_utc_with_z():
    assert RS.iso_utc(1_796_594_731_000_000_000) == "2026-12-06T22:05:31Z"
    assert RS.iso_utc(1_796_594_731_250_000_000) == "2026-12-06T22:05:31.250Z"
    assert RS.now_iso(1_796_594_731_999_999_999) == "2026-12-06T22:05:31Z" and RS.iso_utc(None) is None


def test_present_rounds_each_symbol_at_its_own_grid():
    raw = {
        "position": {"NSE:INFY": 3.0000000001, "BINANCE:BTCUSDT": 0.0012300000004},
        "pnl": {"realized": 1.234567891, "unrealized": -0.0000000001, "total": 1.23456789, "fees": 0.3000000004},
        "per_symbol": {
            "NSE:INFY": {"position": 3.0000000001, "avg_price": 1500.0833333333, "realized": 1.23456, "fees": 0.30000001, "volume": 9.0},
            "BINANCE:BTCUSDT": {"position": 0.0012300000004, "avg_price": 43000.123456789, "realized": 0.0000004567891, "volume": 0.00246},
        },
        "max_drawdown": 2.000000001, "sharpe": 0.123456789, "fill_ratio": 1 / 3, "events_per_s": 123456.789,
        "elapsed_s": 1.23456789012, "rejections": {"order_rate": 3}, "orders": 7,
        "params": {"NSE:INFY": {"threshold": 0.30000000000000004}},
        "tick_to_order_us": {"p50": 12.3456, "p99": None, "n": 4},
    }
    out = RS.present(raw, {"NSE:INFY": INR, "BINANCE:BTCUSDT": BTC})
    assert out["position"] == {"NSE:INFY": 3.0, "BINANCE:BTCUSDT": 0.00123}
    infy, btc = out["per_symbol"]["NSE:INFY"], out["per_symbol"]["BINANCE:BTCUSDT"]
    assert infy == {"position": 3.0, "avg_price": 1500.0833, "realized": 1.23, "fees": 0.3, "volume": 9.0}
    assert btc["avg_price"] == 43000.1235 and btc["realized"] == 0.0000005 and btc["volume"] == 0.00246
    # the run's own totals: the finest money grid of its symbols (BTC's 7 decimals); -0.0 becomes 0.0
    assert out["pnl"] == {"realized": 1.2345679, "unrealized": 0.0, "total": 1.2345679, "fees": 0.3}
    assert str(out["pnl"]["unrealized"]) == "0.0"
    assert out["sharpe"] == 0.123457 and out["fill_ratio"] == 0.333333 and out["events_per_s"] == 123456.8
    assert out["elapsed_s"] == 1.234568 and out["tick_to_order_us"] == {"p50": 12.3, "p99": None, "n": 4}
    assert out["params"] == raw["params"] and out["rejections"] == {"order_rate": 3}  # the user's numbers, kept
    assert raw["pnl"]["realized"] == 1.234567891  # a new document; the engine's stays exact


def test_present_is_idempotent_and_keeps_non_finite():
    doc = {"pnl": {"total": float("nan")}, "max_drawdown": float("inf"), "runs": [{"pnl": {"total": 1.005}}]}
    once = RS.present(doc, {"NSE:INFY": INR})
    assert once["max_drawdown"] == float("inf") and once["pnl"]["total"] != once["pnl"]["total"]
    assert RS.present(once, {"NSE:INFY": INR})["runs"] == once["runs"]


def test_params_used_falls_back_to_the_generic_entry():
    params = {"NSE:INFY": {"clip": 2.0, "threshold": 0.5}, "*": {"clip": 1.0, "threshold": 0.6}}
    assert RS.params_used(params, ["NSE:INFY", "NSE:TCS"]) == {"NSE:INFY": {"clip": 2, "threshold": 0.5},
                                                                "NSE:TCS": {"clip": 1, "threshold": 0.6}}


def test_rejection_note_names_the_top_three():
    s = {"orders": 50, "fills": 2, "rejections": {"order_rate": 4, "position_too_large": 1200, "price_band": 4, "halted": 1}}
    assert RS.rejection_note(s) == "rejected: 1,200 position_too_large, 4 order_rate, 4 price_band, 1 more reason"
    assert RS.rejection_note({"orders": 5, "fills": 0, "rejections": {}}) == "no fills, none rejected"
    assert RS.rejection_note({"orders": 0, "fills": 0}) == "no orders sent"
    assert RS.rejection_note({"orders": 9, "fills": 4, "rejections": {}}) == ""
    assert RS.rejection_note({"orders_sent": 3, "venue_fills": 0, "fills": 3}, fills_key="venue_fills", orders_key="orders_sent") == \
        "no fills, none rejected"


def test_every_metric_has_its_rounding():
    """docs/metrics.md: money at the money grid, quantities at the lot's, ratios to 6, bps to 3,
    seconds to 6; the text and the counts untouched."""
    from sq.core.analytics import KEYS

    numeric = set(KEYS) - {"basis", "round_trips"}
    known = RS.MONEY_KEYS | RS.QTY_KEYS | RS.RATIO_KEYS | RS.BPS_KEYS | RS.SECONDS_KEYS
    assert numeric <= known, numeric - known
    m = {"basis": "annualised from daily returns, 252/yr", "round_trips": 3, "sharpe": 1.23456789, "avg_win": 1.234567,
         "markout_1s_bps": 0.123456, "inventory_mean_abs": 2.00000001, "max_drawdown_duration_s": 1.23456789, "calmar": None}
    out = RS.present({"metrics": m}, {"NSE:INFY": INR})["metrics"]
    assert out == {"basis": m["basis"], "round_trips": 3, "sharpe": 1.234568, "avg_win": 1.23, "markout_1s_bps": 0.123,
                   "inventory_mean_abs": 2.0, "max_drawdown_duration_s": 1.234568, "calmar": None}


def test_metrics_rows_state_the_basis_or_why_there_is_no_sharpe():
    base = {"basis": "annualised from daily returns, 252/yr", "capital": 1e6, "sharpe": None, "var_95": None}
    rows = dict(RS.metrics_rows(base))
    assert rows["Sharpe"] == "— (the run is shorter than two basis periods; annualised from daily returns, 252/yr)"
    assert dict(RS.metrics_rows({**base, "sharpe": 1.234, "var_95": 0.01}))["Sharpe"] == "1.23 (annualised from daily returns, 252/yr)"
    assert dict(RS.metrics_rows({**base, "var_95": 0.01}))["Sharpe"].startswith("— (returns without variation")
    assert dict(RS.metrics_rows({**base, "capital": None}))["Sharpe"] == "— (no [paper_trading] starting_capital)"
    assert RS.metrics_rows(None) == []
