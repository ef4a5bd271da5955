"""The exchange's rules in backtest and paper (docs/market-rules.md), on a hand-made NSE recording
that spans the broker's MIS cut-off and an exchange holiday:

* Friday 23 Jan 2026, 15:10–15:24 IST (the cut-off is 15:20), Monday 26 Jan (Republic Day, a
  holiday) 10:00–10:02, Tuesday 27 Jan 10:00–10:02; a two-sided book every minute, a trade each.
* The strategy buys one lot at the ask on every book update while under its position limit.

Orders after the cut-off are rejected `trading_hours`, on the holiday `holiday`; at the cut-off
the position is flattened by an order whose journal row says `square_off`; a paper replay writes
the same orders and fills; the switches turn each rule off; circuit limits from the instruments'
metadata reject prices outside them; a bar strategy gets the same calendar.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from tests.support.marketdata import BUYER_STRATEGY, ist_ns, market_table, pylist, quoted_minutes, write_market_file

SYM = "NSE:ABC"
FRIDAY, HOLIDAY, TUESDAY = "2026-01-23", "2026-01-26", "2026-01-27"
CUT = ist_ns(FRIDAY, "15:20")
BUYER = BUYER_STRATEGY
HOLDER = '''
import polars as pl

from sq.strategy import BarStrategy

strategy = BarStrategy("holder", "Wants one lot long at every bar.", interval="1m", execution="next_open")


@strategy.signals
def signals(bars, p):
    return bars.with_columns(target=pl.lit(1.0))
'''


def recording(path, extra=None) -> str:
    inst = {SYM: S.Instrument(SYM, "zerodha", 0.05, 1.0, dict(extra or {}))}
    rows = (quoted_minutes(SYM, FRIDAY, "15:10", 15, bid=100.0, ask=100.1, seq0=1)
            + quoted_minutes(SYM, HOLIDAY, "10:00", 3, bid=100.0, ask=100.1, seq0=100)
            + quoted_minutes(SYM, TUESDAY, "10:00", 3, bid=100.0, ask=100.1, seq0=200))
    return write_market_file(market_table(rows, inst), path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("rules")
    (d / "buyer.py").write_text(BUYER)
    (d / "holder.py").write_text(HOLDER)
    return {"data": recording(d / "abc.parquet"), "buyer": str(d / "buyer.py"), "holder": str(d / "holder.py"), "dir": d}


def read(jdir, name) -> list[dict]:
    return pylist(pq.read_table(jdir / f"{name}.parquet"))


def run(sq, args, config=None) -> dict:
    r = sq((["--config", str(config)] if config else []) + args + ["--json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def config(tmp_path, text: str):
    p = tmp_path / "sq.toml"
    p.write_text(text)
    return p


def backtest(sq, files, jdir, *, strategy="buyer", config=None, data=None, limit=3) -> dict:
    return run(sq, ["backtest", "-s", files[strategy], data or files["data"], "--param", f"max_position={limit}", "--journal", str(jdir)],
               config)


def position_at(fills, ts) -> float:
    return sum(f["side"] * f["qty"] for f in fills if f["ts"] <= ts)


def day_of(row) -> str:
    for day in (FRIDAY, HOLIDAY, TUESDAY):
        if ist_ns(day, "00:00") <= row["ts"] < ist_ns(day, "23:59:59"):
            return day
    raise AssertionError(row)


# ---------------------------------------------------------------------------------------------- backtest and paper


def test_backtest_rejects_after_the_cut_off_and_on_the_holiday_and_squares_off(sq, files, tmp_path):
    doc = backtest(sq, files, tmp_path / "bt")
    orders, fills = read(tmp_path / "bt", "orders"), read(tmp_path / "bt", "fills")
    # the square-off: one order at the cut-off selling the whole position, journaled as such
    squares = [o for o in orders if o["reason"] == "square_off"]
    assert [(o["event"], o["ts"], o["side"], o["qty"]) for o in squares] == [("new", CUT, -1, 3.0)]
    mine = [f for f in fills if f["client_order_id"] == squares[0]["client_order_id"]]
    assert sum(f["qty"] for f in mine) == 3.0 and all(f["side"] == -1 and f["price"] == 100.0 for f in mine)
    assert position_at(fills, CUT - 1) == 3.0 and position_at(fills, ist_ns(FRIDAY, "23:59")) == 0.0
    # no new order of the strategy from the cut-off to the end of the holiday: each is rejected
    news = [o for o in orders if o["event"] == "new" and o["reason"] is None]
    assert not [o for o in news if CUT <= o["ts"] < ist_ns(TUESDAY, "00:00")]
    rejected = [o for o in orders if o["event"] == "rejected"]
    assert {(day_of(o), o["reason"]) for o in rejected} == {(FRIDAY, "trading_hours"), (HOLIDAY, "holiday")}
    assert all(o["ts"] >= CUT for o in rejected if day_of(o) == FRIDAY)
    assert doc["rejections"] == {"trading_hours": 4, "holiday": 3}  # no circuit limits in this recording: none enforced
    # the next trading day trades again
    assert len([o for o in news if day_of(o) == TUESDAY]) == 3 and doc["position"] == {SYM: 3.0}
    # a market with a calendar: its metrics annualise over 252 trading days (docs/metrics.md)
    assert doc["metrics"]["basis"] == "annualised from daily returns, 252/yr" and doc["metrics"]["periods_per_year"] == 252


def test_paper_replay_writes_the_backtests_orders_and_fills(sq, files, tmp_path):
    backtest(sq, files, tmp_path / "bt")
    doc = run(sq, ["paper", "-s", files["buyer"], "--from", files["data"], "--param", "max_position=3", "--journal", str(tmp_path / "p")])
    bt, paper = read(tmp_path / "bt", "orders"), read(tmp_path / "p", "orders")
    assert paper[: len(bt)] == bt and {o["event"] for o in paper[len(bt):]} <= {"cancel_sent", "canceled"}
    assert read(tmp_path / "p", "fills") == read(tmp_path / "bt", "fills")
    assert doc["rejections"]["holiday"] == 3 and any(o["reason"] == "square_off" for o in paper)


@pytest.mark.parametrize("text,holiday,square_off,friday_rejections", [
    ("[risk]\nenforce_trading_hours = false\n[zerodha]\nsquare_off = false\n", False, False, False),
    ("[zerodha]\nsquare_off = false\n", True, False, False),
    ('[zerodha]\nproduct = "CNC"\n', True, False, False),
    ("[risk]\nenforce_trading_hours = false\n", False, True, True),
])
def test_switches_turn_each_rule_off(sq, files, tmp_path, text, holiday, square_off, friday_rejections):
    """The buyer, with no position limit in the way, tries to buy at every book update."""
    doc = backtest(sq, files, tmp_path / "bt", config=config(tmp_path, text), limit=100)
    orders = read(tmp_path / "bt", "orders")
    assert ("holiday" in doc["rejections"]) == holiday
    assert any(o["reason"] == "square_off" for o in orders) == square_off
    assert any(o["event"] == "rejected" and day_of(o) == FRIDAY for o in orders) == friday_rejections
    assert set(doc["rejections"]) <= {"holiday", "trading_hours"}
    # without the square-off the Friday position is carried into the next week
    assert (position_at(read(tmp_path / "bt", "fills"), ist_ns(FRIDAY, "23:59")) == 0.0) == square_off


def test_a_holidays_file_replaces_the_shipped_years(sq, files, tmp_path):
    hol = tmp_path / "holidays.csv"
    hol.write_text("# our own 2026\ndate,exchanges,description\n2026-01-27,NSE BSE,a made-up closure\n")
    doc = backtest(sq, files, tmp_path / "bt", config=config(tmp_path, f'[zerodha]\nholidays_file = "{hol}"\n'), limit=100)
    orders = read(tmp_path / "bt", "orders")
    assert {day_of(o) for o in orders if o["reason"] == "holiday"} == {TUESDAY}  # Republic Day is not in the file's 2026
    assert doc["rejections"]["holiday"] == 3


@pytest.mark.parametrize("text,words", [
    ("date,exchanges,description\n2026-13-01,NSE,bad\n", "line 2: '2026-13-01' is not a date"),
    ("day,exchanges,description\n", "line 1: the header must be date,exchanges,description"),
    ("date,exchanges,description\n2026-01-27,NSX,typo\n", "line 2: exchanges must name segments"),
    (None, "holidays file not found"),
])
def test_a_bad_holidays_file_is_a_config_error(sq, files, tmp_path, text, words):
    hol = tmp_path / "holidays.csv"
    if text is not None:
        hol.write_text(text)
    r = sq(["--config", str(config(tmp_path, f'[zerodha]\nholidays_file = "{hol}"\n')), "backtest", "-s", files["buyer"], files["data"]])
    assert r.exit_code == 78 and words in r.stderr and str(hol) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------- circuit limits


@pytest.mark.parametrize("enforce", [True, False])
def test_circuit_limits_from_the_instruments_reject_prices_outside(sq, files, tmp_path, enforce):
    data = recording(tmp_path / "circuit.parquet", {"lower_circuit_limit": 95.0, "upper_circuit_limit": 100.05})
    text = "" if enforce else "[risk]\nenforce_circuit_limits = false\n"
    doc = backtest(sq, files, tmp_path / "bt", data=data, config=config(tmp_path, text))
    if enforce:  # the ask (100.10) is above the upper limit: nothing is bought
        assert doc["fills"] == 0 and doc["rejections"]["circuit_limit"] > 0
    else:
        assert doc["fills"] > 0 and "circuit_limit" not in doc["rejections"]


# ---------------------------------------------------------------------------------------------- bar strategies


def test_a_bar_strategy_gets_the_calendar(sq, files, tmp_path):
    doc = backtest(sq, files, tmp_path / "bt", strategy="holder")
    orders, fills = read(tmp_path / "bt", "orders"), read(tmp_path / "bt", "fills")
    squares = [o for o in orders if o["reason"] == "square_off"]
    assert [(o["event"], o["ts"], o["side"]) for o in squares] == [("new", CUT, -1), ("filled", CUT, -1)]
    assert position_at(fills, CUT) == 0.0 and position_at(fills, CUT - 1) == 1.0
    rejected = [o for o in orders if o["event"] == "rejected"]
    assert {(day_of(o), o["reason"]) for o in rejected} == {(FRIDAY, "trading_hours"), (HOLIDAY, "holiday")}
    assert all(o["ts"] >= CUT for o in rejected if day_of(o) == FRIDAY)
    assert [o for o in orders if o["event"] == "new" and day_of(o) == TUESDAY] and doc["rejections"]["holiday"] >= 2
