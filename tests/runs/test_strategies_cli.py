"""Strategies from the command line: `sq strategies`, a user file through backtest, sweep and
paper, and what a broken strategy gets (exit 2 before any data is read; exit 70 with its
orders cancelled and its journal sealed)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

from sq.core import journal as J
from tests.support.process import ROOT, SQ_BIN, subprocess_env

FIXTURE = str(ROOT / "fixtures" / "sim-demo")


def test_strategies_lists_every_built_in_with_its_parameters(sq):
    r = sq(["strategies"])
    assert r.exit_code == 0, r.stderr
    docs = json.loads(r.stdout)
    by_name = {d["name"]: d for d in docs}
    assert {"mm", "lt", "avellaneda", "ma_cross", "rsi_macd", "orb", "supertrend", "donchian"} <= set(by_name)
    for d in docs:
        assert {"name", "kind", "source", "params", "doc", "events"} <= set(d)
        assert d["kind"] == ("bar" if d["name"] in ("ma_cross", "rsi_macd", "orb", "supertrend", "donchian") else "event")
        for p in d["params"]:
            assert {"name", "default", "range", "doc"} <= set(p) and p["doc"]
    clip = next(p for p in by_name["mm"]["params"] if p["name"] == "clip")
    assert clip["default"] == 1.0 and clip["range"] == "> 0"
    table = sq(["strategies"], stdout_isatty=True, width=160)
    assert table.exit_code == 0 and b"avellaneda" in table.stdout and b"threshold" in table.stdout
    assert b"donchian" in table.stdout and b"next_open" in table.stdout


def test_new_writes_a_strategy_that_trades_and_never_overwrites(sq, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = sq(["strategies", "new", "mine"])
    assert r.exit_code == 0, r.stderr
    path = tmp_path / "mine.py"
    text = path.read_text()
    assert 'Strategy("mine"' in text
    described = json.loads(sq(["strategies", "./mine.py", "--json"]).stdout)
    assert described[0]["name"] == "mine" and described[0]["source"] == str(path.resolve())
    bt = sq(["backtest", "--strategy", "./mine.py", FIXTURE, "--json"])
    assert bt.exit_code == 0, bt.stderr
    doc = json.loads(bt.stdout)
    assert doc["strategy"] == "mine" and doc["fills"] > 0
    again = sq(["strategies", "new", "mine"])
    assert again.exit_code == 2 and "already exists" in again.stderr and path.read_text() == text
    bad = sq(["strategies", "new", "Not-A-Name"])
    assert bad.exit_code == 2 and "lower-case" in bad.stderr


def test_a_user_file_sweeps_on_the_process_pool(sq, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sq(["strategies", "new", "swept"]).exit_code == 0
    r = sq(["backtest", "--strategy", "./swept.py", FIXTURE, "--sweep", "edge=0,1,2", "--jobs", "2", "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["strategy"] == "swept" and doc["points"] == 3 and [run["params"]["edge"] for run in doc["runs"]] == [0.0, 1.0, 2.0]
    assert len({run["fills"] for run in doc["runs"]}) > 1  # the parameter reached the strategy in every worker
    wrong = sq(["backtest", "--strategy", "./swept.py", FIXTURE, "--sweep", "egde=1,2"])
    assert wrong.exit_code == 2 and "did you mean 'edge'" in wrong.stderr


def test_a_strategy_that_cannot_compile_fails_before_any_data_is_read(sq, tmp_path):
    path = tmp_path / "broken.py"
    path.write_text(textwrap.dedent('''
        from sq.strategy import Strategy

        strategy = Strategy("broken", "does not compile")

        @strategy.on_trade
        def on_trade(ctx, s, side, ticks, qty):
            ctx.quote(s, side, ticks)
    '''))
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    r = sq(["backtest", "--strategy", str(path), str(garbage)])
    assert r.exit_code == 2, r.stderr  # not 65: the input was never read
    assert "broken.py:8" in r.stderr and "on_trade" in r.stderr and len(r.stderr_lines) == 1


def test_paper_stops_a_failing_strategy_cancels_and_seals(tmp_path):
    path = tmp_path / "fails.py"
    path.write_text(textwrap.dedent('''
        from sq.strategy import BUY, SELL, Strategy

        strategy = Strategy("fails", "quotes, then raises once it has traded", state=1)

        @strategy.on_book
        def on_book(ctx, s):
            if ctx.position(s) != 0.0:
                raise RuntimeError("position reached")
            if ctx.has_bid(s) and ctx.has_ask(s):
                ctx.quote(s, BUY, ctx.bid(s), 1.0)
                ctx.quote(s, SELL, ctx.ask(s) + 5, 1.0)
    '''))
    journal = tmp_path / "run"
    r = subprocess.run([SQ_BIN, "paper", "--strategy", str(path), "--from", FIXTURE, "--journal", str(journal)],
                       capture_output=True, text=True, env=subprocess_env(), timeout=600, cwd=tmp_path)
    assert r.returncode == 70, r.stderr
    assert f"{path}:9" in r.stderr and "RuntimeError: position reached" in r.stderr and "Traceback" not in r.stderr
    loaded = J.load(journal)
    assert loaded.sealed and any(rec.kind == "halt" for rec in loaded.records)
    import polars as pl

    orders = pl.read_parquet(journal / "orders.parquet")
    last = orders.sort("ts").group_by("client_order_id").agg(pl.col("event").last())
    assert last.filter(pl.col("event").is_in(["new", "accepted", "cancel_sent"])).height == 0  # nothing left working


def test_a_failing_strategy_in_backtest_is_exit_70_naming_it(sq, tmp_path):
    path = tmp_path / "nan.py"
    path.write_text(textwrap.dedent('''
        import math
        from sq.strategy import BUY, Strategy

        strategy = Strategy("nanny", "sends a NaN size on the first trade")

        @strategy.on_trade
        def on_trade(ctx, s, side, ticks, qty):
            ctx.take(s, BUY, ticks, math.nan)
    '''))
    r = sq(["backtest", "--strategy", str(path), FIXTURE])
    assert r.exit_code == 70 and "nanny" in r.stderr and "on_trade" in r.stderr and "size" in r.stderr
    assert f"{path}:9" in r.stderr and "Traceback" not in r.stderr  # the ctx.take line


def test_cwd_relative_and_absolute_specs_resume_the_same_strategy(tmp_path):
    """A paper journal records the strategy's resolvable spec (the file's absolute path)."""
    strat = tmp_path / "mine.py"
    subprocess.run([SQ_BIN, "strategies", "new", "mine"], cwd=tmp_path, env=subprocess_env(), check=True, timeout=300)
    journal = tmp_path / "j"
    r = subprocess.run([SQ_BIN, "paper", "--strategy", "./mine.py", "--from", FIXTURE, "--journal", str(journal)],
                       capture_output=True, text=True, env=subprocess_env(), timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert J.load(journal).start["strategy"] == str(strat.resolve())
    assert os.path.isabs(J.load(journal).start["strategy"])
