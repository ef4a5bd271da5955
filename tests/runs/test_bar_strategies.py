"""Bar strategies through the runs: the shipped ones trade on fixture bars; backtest and paper
agree order for order; sweeps, listings and the starting template work for the kind `bar`."""

from __future__ import annotations

import datetime as dt
import json

from pathlib import Path

import polars as pl
import pytest

from sq.core.strategy import loader
from tests.support.barsdata import session_bars, write_bars
from tests.support.process import SqRunner

SHIPPED = {"ma_cross": "1m", "rsi_macd": "5m", "orb": "1m", "supertrend": "15m", "donchian": "1h"}
DAYS = {"1m": 4, "5m": 10, "15m": 20, "1h": 60}


@pytest.fixture(scope="module")
def bars_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bars")
    return {iv: write_bars(session_bars(days=DAYS[iv], interval=iv), root / f"bars-{iv}.parquet") for iv in set(SHIPPED.values())}


def _backtest(runner, strategy, data, *extra, journal=None):
    args = ["backtest", "--strategy", strategy, data, "--json", *extra]
    if journal:
        args += ["--journal", str(journal)]
    r = runner(args)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_bar_strategy_trades_on_fixture_bars(name, bars_files, tmp_path):
    runner = SqRunner()
    summary = _backtest(runner, name, bars_files[SHIPPED[name]], journal=tmp_path / "j")
    assert summary["fills"] >= 4, summary
    assert summary["interval"] == SHIPPED[name]
    fills = pl.read_parquet(tmp_path / "j" / "fills.parquet")
    for sym, pos in summary["position"].items():
        mine = fills.filter(pl.col("symbol") == sym)
        assert (mine["side"].cast(pl.Float64) * mine["qty"]).sum() == pytest.approx(pos)


def test_orb_trades_once_a_session_and_is_flat_at_the_close(bars_files, tmp_path):
    runner = SqRunner()
    _backtest(runner, "orb", bars_files["1m"], journal=tmp_path / "j")
    orders = pl.read_parquet(tmp_path / "j" / "orders.parquet").filter(pl.col("event") == "new")
    local = orders.with_columns(local=pl.col("ts").dt.convert_time_zone("Asia/Kolkata"))["local"]
    # every order is placed inside the NSE session, after the 15-minute opening range is complete
    assert local.dt.time().min() > dt.time(9, 30)
    assert local.dt.time().max() <= dt.time(15, 30)
    assert local.dt.date().n_unique() == 4
    pnl = pl.read_parquet(tmp_path / "j" / "pnl.parquet").with_columns(day=pl.col("ts").dt.convert_time_zone("Asia/Kolkata").dt.date())
    last = pnl.group_by("symbol", "day").agg(pl.col("position").last())
    assert (last["position"] == 0).all(), last


@pytest.mark.parametrize("name", ["ma_cross", "orb"])
def test_backtest_and_paper_on_the_same_bars_give_identical_orders_and_fills(name, bars_files, tmp_path):
    runner = SqRunner()
    data = bars_files[SHIPPED[name]]
    _backtest(runner, name, data, journal=tmp_path / "bt")
    r = runner(["paper", "--strategy", name, "--from", data, "--journal", str(tmp_path / "paper"), "--json"])
    assert r.exit_code == 0, r.stderr
    from sq.core import journal as J

    loaded = J.load(tmp_path / "paper")
    for kinds, file in (({"fill"}, "fills"), ({"order", "reject"}, "orders")):  # rejected rows are `reject` records
        bt = pl.read_parquet(tmp_path / "bt" / f"{file}.parquet")
        paper = [r.data for r in loaded.records if r.kind in kinds]
        assert len(paper) == bt.height > 0
        assert [(d["client_order_id"], d["price"] if d["price"] == d["price"] else None, d["qty"]) for d in paper] == \
            [(c, p if p == p else None, q) for c, p, q in zip(bt["client_order_id"], bt["price"], bt["qty"])]


def test_sweep_runs_a_bar_strategy_grid(bars_files):
    runner = SqRunner()
    r = runner(["backtest", "--strategy", "ma_cross", bars_files["1m"], "--sweep", "fast=5,10", "--sweep", "slow=20,40", "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    points = doc["runs"]
    assert len(points) == 4
    assert len({json.dumps(p.get("pnl"), sort_keys=True) for p in points}) > 1  # parameters change the result


def test_param_out_of_range_is_a_usage_error(bars_files):
    r = SqRunner()(["backtest", "--strategy", "ma_cross", bars_files["1m"], "--param", "fast=0"])
    assert r.exit_code == 2 and "fast" in r.stderr


def test_wrong_bar_interval_is_a_data_error(bars_files):
    r = SqRunner()(["backtest", "--strategy", "supertrend", bars_files["1m"]])
    assert r.exit_code == 65
    assert "reads 15m bars; the input holds 1m bars" in r.stderr


def test_strategies_lists_the_bar_strategies():
    r = SqRunner()(["strategies", "--json"])
    assert r.exit_code == 0, r.stderr
    kinds = {d["name"]: d for d in json.loads(r.stdout)}
    for name, interval in SHIPPED.items():
        assert kinds[name]["kind"] == "bar" and kinds[name]["interval"] == interval
        assert kinds[name]["doc"] and kinds[name]["events"] == ["indicators", "signals"]


def test_new_bar_strategy_from_the_template_trades(tmp_path, bars_files, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = SqRunner()
    r = runner(["strategies", "new", "trend", "--kind", "bar"])
    assert r.exit_code == 0, r.stderr
    assert loader.load("./trend.py").kind == "bar"
    summary = _backtest(runner, "./trend.py", bars_files["1m"])
    assert summary["fills"] > 0
    r = runner(["strategies", "new", "trend", "--kind", "bar"])
    assert r.exit_code == 2 and "already exists" in r.stderr


def test_bar_strategy_without_signals_is_a_usage_error(tmp_path, bars_files):
    f = tmp_path / "empty.py"
    f.write_text("from sq.strategy import BarStrategy\nstrategy = BarStrategy('empty', 'nothing')\n")
    r = SqRunner()(["backtest", "--strategy", str(f), bars_files["1m"]])
    assert r.exit_code == 2 and "needs @strategy.signals" in r.stderr


def test_paper_on_a_live_feed_shorter_than_a_bar_warns(tmp_path):
    daily = tmp_path / "daily.py"
    daily.write_text(Path(ma_cross_source()).read_text().replace('interval="1m"', 'interval="1d"'))
    r = SqRunner()(["paper", "--strategy", str(daily), "SIM:DEMO", "--for", "2s", "--journal", str(tmp_path / "j"), "--json"])
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["bars"] <= 1 and summary["events"] > 0 and summary["orders"] == 0
    assert "1d bar(s) in the run" in r.stderr and "run longer" in r.stderr


def ma_cross_source() -> str:
    import sq.strategies.ma_cross as m

    return m.__file__


CROSS = '''
import polars as pl
from sq import indicators as ta
from sq.strategy import BarStrategy

strategy = BarStrategy("cross", "fast over slow on one-second bars", interval="1s")
strategy.param("fast", 2, min=1, doc="fast")
strategy.param("slow", 4, min=2, doc="slow")
strategy.param("size", 1, above=0, doc="size")


@strategy.signals
def signals(bars, p):
    f, s = ta.sma(pl.col("close"), p.fast), ta.sma(pl.col("close"), p.slow)
    return bars.with_columns(target=pl.when(f > s).then(p.size).when(f < s).then(-p.size))
'''


def test_market_events_backtest_and_paper_replay_agree(tmp_path):
    """Recorded market events become one-second bars in both runs; the orders and fills agree."""
    from tests.support.process import ROOT

    strategy = tmp_path / "cross.py"
    strategy.write_text(CROSS)
    data = str(ROOT / "fixtures" / "sim-demo")
    runner = SqRunner()
    bt = _backtest(runner, str(strategy), data, journal=tmp_path / "bt")
    r = runner(["paper", "--strategy", str(strategy), "--from", data, "--journal", str(tmp_path / "paper"), "--json"])
    assert r.exit_code == 0, r.stderr
    paper = json.loads(r.stdout)
    assert bt["events"] == paper["events"] == 40_000 and bt["bars"] == paper["bars"] > 10
    assert bt["fills"] > 0 and (bt["fills"], bt["pnl"]) == (paper["fills"], paper["pnl"])


PROTECTED = '''
import polars as pl

from sq.strategy import BarStrategy

strategy = BarStrategy("protected", "enter long on a rising close, with a stop-loss and a take-profit", interval="1m")


@strategy.signals
def signals(bars, p):
    up = pl.col("close") > pl.col("close").shift(1)
    return bars.with_columns(enter_long=up, size=pl.lit(1.0), stop_loss=pl.col("close") * 0.999,
                             take_profit=pl.col("close") * 1.001)
'''


def test_stop_loss_and_take_profit_trigger_identically_in_backtest_and_paper(bars_files, tmp_path):
    """The SDK's protective prices become resting stop and take-profit orders of the simulated
    venue; on the same bars backtest and paper trigger the same ones at the same prices."""
    f = tmp_path / "protected.py"
    f.write_text(PROTECTED)
    runner = SqRunner()
    data = bars_files["1m"]
    _backtest(runner, str(f), data, journal=tmp_path / "bt")
    r = runner(["paper", "--strategy", str(f), "--from", data, "--journal", str(tmp_path / "paper"), "--json"])
    assert r.exit_code == 0, r.stderr
    from sq.core import journal as J

    bt = pl.read_parquet(tmp_path / "bt" / "orders.parquet")
    reasons = set(bt["reason"].drop_nulls().to_list())
    assert {"stop_loss", "take_profit"} <= reasons, reasons
    paper = [r.data for r in J.load(tmp_path / "paper").records if r.kind in ("order", "reject")]
    key = lambda c, e, p, q, why: (c, e, p if p == p else None, q, why)  # noqa: E731
    assert [key(d["client_order_id"], d["event"], d["price"], d["qty"], d.get("reason")) for d in paper] == \
        [key(*t) for t in zip(bt["client_order_id"], bt["event"], bt["price"], bt["qty"], bt["reason"])]
    fills_bt = pl.read_parquet(tmp_path / "bt" / "fills.parquet")
    fills_paper = [r.data for r in J.load(tmp_path / "paper").records if r.kind == "fill"]
    assert [(d["client_order_id"], d["price"], d["qty"]) for d in fills_paper] == \
        list(zip(fills_bt["client_order_id"], fills_bt["price"], fills_bt["qty"]))
