"""The same flag means the same thing everywhere (issue #14): -o/--output, --seed, --raw FILE,
--json, --strategy, global options after the command; help a person can copy from (metavars,
examples with their line breaks, whole one-line summaries) and completions that complete values."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sq.commands import COMMANDS
from sq.devtools import help_text
from tests.support.process import ROOT


def _group():
    from typer.main import get_command

    from sq.cli import app

    return get_command(app)


def _help80(args: list[str]) -> str:
    from typer.testing import CliRunner

    from sq.cli import app

    r = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"}, prog_name="sq")
    assert r.exit_code == 0, r.output
    return r.output


# ---------------------------------------------------------------------------------------------- flags


def _opts(name: str) -> dict[str, object]:
    return {o: p for p in _group().commands[name].params for o in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize("name", ["subscribe", "record", "fetch", "import", "book", "bars", "backtest", "strategies"])
def test_every_command_that_writes_takes_dash_o_output(name):
    opts = _opts(name)
    assert "-o" in opts and "--output" in opts and opts["-o"] is opts["--output"]


@pytest.mark.parametrize("name", ["record", "fetch"])
def test_out_is_a_hidden_alias_where_it_existed(name):
    opts = _opts(name)
    assert opts["--out"] is opts["--output"]
    assert "--out " not in help_text([name]) and "--out," not in help_text([name])


def test_one_seed_default():
    from sq.commands._options import SEED_DEFAULT

    defaults = {name: _opts(name)["--seed"].default for name in ("subscribe", "record", "paper", "backtest")}
    assert set(defaults.values()) == {SEED_DEFAULT}, defaults


def test_raw_takes_a_file_in_record_and_subscribe():
    for name in ("record", "subscribe"):
        p = _opts(name)["--raw"]
        assert not p.is_flag and p.metavar == "FILE", name


@pytest.mark.parametrize("name", ["record", "subscribe", "fetch", "import", "paper", "backtest", "live", "reconcile", "kill", "strategies", "auth", "config"])
def test_json_on_every_command_that_ends_with_a_summary(name):
    assert "--json" in _opts(name)


def test_paper_accepts_every_fill_flag_backtest_has():
    fill = {"--latency", "--latency-dist", "--latency-jitter", "--feed-latency", "--queue-model", "--seed"}
    assert fill <= set(_opts("backtest")) and fill <= set(_opts("paper"))
    for flag in fill:
        b, p = _opts("backtest")[flag], _opts("paper")[flag]
        assert (b.default, b.help) == (p.default, p.help), flag


def test_strategy_is_required_alike_in_backtest_and_paper(sq, tmp_path):
    assert _opts("backtest")["--strategy"].default is None and _opts("paper")["--strategy"].default is None
    b = sq(["backtest", str(ROOT / "fixtures" / "sim-demo")])
    p = sq(["paper", "--from", str(ROOT / "fixtures" / "sim-demo")])
    assert b.exit_code == p.exit_code == 2
    assert "--strategy is required" in b.stderr and "--strategy is required" in p.stderr


# ---------------------------------------------------------------------------------------------- global options


@pytest.mark.parametrize(
    "args, want",
    [
        (["kill", "-q"], ["-q", "kill"]),
        (["paper", "-s", "mm", "--debug"], ["--debug", "paper", "-s", "mm"]),
        (["backtest", "--config", "f.toml", "-s", "mm", "data"], ["--config", "f.toml", "backtest", "-s", "mm", "data"]),
        (["backtest", "--config=f.toml", "data"], ["--config=f.toml", "backtest", "data"]),
        (["paper", "--param", "-q"], ["paper", "--param", "-q"]),  # the value of the command's own option stays
        (["book", "--", "-q"], ["book", "--", "-q"]),  # after --, nothing moves
        (["live", "--config", "live.toml"], ["live", "--config", "live.toml"]),  # live's own --config
        (["--debug", "kill", "--quiet"], ["--quiet", "--debug", "kill"]),
    ],
)
def test_global_options_after_the_command_move_before_it(args, want):
    import click

    from sq.cli import hoist_global_options

    group = _group()
    with click.Context(group) as ctx:
        assert hoist_global_options(group, ctx, args) == want


def test_debug_after_the_command_shows_a_traceback(tmp_path, sq):
    missing = str(tmp_path / "missing.parquet")
    r = sq(["book", missing, "--debug"])
    assert r.exit_code == 66 and "Traceback" in r.stderr


def test_quiet_and_config_after_the_command(tmp_path, sq):
    bad = tmp_path / "bad.toml"
    bad.write_text("trading_mode = [\n")
    r = sq(["config", "check", "--config", str(bad)])
    assert r.exit_code == 78 and str(bad) in r.stderr  # the global --config was used
    r = sq(["strategies", "new", "quiet1", "-o", str(tmp_path / "q.py"), "-q"])
    assert r.exit_code == 0 and r.stderr == "" and (tmp_path / "q.py").exists()


# ---------------------------------------------------------------------------------------------- help


@pytest.mark.parametrize("name", COMMANDS)
def test_metavars_are_readable(name):
    text = _help80([name])
    for bad in ("<str>", "<int", "<float", "{", "TEXT", "INTEGER"):
        assert bad not in text.split("Examples:")[0], (name, bad)


def test_summaries_are_whole_lines_at_80_columns():
    text = _help80([])
    rows = text.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    group = _group()
    assert [r.split()[0] for r in rows] == COMMANDS  # one line each
    for row in rows:
        name = row.split()[0]
        assert row.split(None, 1)[1] == group.commands[name].short_help, row
        assert "..." not in row and len(row) <= 80


def test_examples_keep_their_line_breaks():
    text = _help80(["backtest"])
    assert "\n    sq subscribe SIM:DEMO --limit 200000 -o demo.parquet\n    sq backtest --strategy lt demo.parquet" in text
    assert "\n    sq auth status --json\n" in _help80(["auth"])


# ---------------------------------------------------------------------------------------------- completion


def _complete(words: str, env: dict | None = None) -> list[str]:
    e = dict(os.environ, _SQ_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)))
    e.update(env or {})
    r = subprocess.run([sys.executable, "-m", "sq"], env=e, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


def test_completes_auth_targets_strategies_formats_and_venues():
    assert _complete("sq auth ") == ["zerodha", "binance", "status"]
    assert {"mm", "lt", "avellaneda", "ma_cross"} <= set(_complete("sq backtest -s "))
    assert _complete("sq paper --strategy ma") == ["ma_cross"]
    assert _complete("sq book --format j") == ["jsonl"]
    assert _complete("sq kill --venue ") == ["sim", "binance", "zerodha"]
    assert _complete("sq help rec") == ["record", "reconcile"]
    assert _complete("sq backtest --queue-model ") == ["risk-averse", "prob"]
    assert _complete("sq book ") == []  # files: the shell completes them


def test_completes_symbols_from_the_cached_instrument_lists(tmp_path):
    home = tmp_path / "home"
    (home / "cache" / "zerodha").mkdir(parents=True)
    (home / "cache" / "zerodha" / "instruments-2026-01-02-abcdef12.csv").write_text(
        "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,instrument_type,segment,exchange\n"
        "1,1,RELIANCE,R,0,,0,0.05,1,EQ,NSE,NSE\n2,2,INFY,I,0,,0,0.05,1,EQ,NSE,NSE\n3,3,NIFTY26JANFUT,N,0,,0,0.05,75,FUT,NFO-FUT,NFO\n")
    (home / "cache" / "binance").mkdir(parents=True)
    (home / "cache" / "binance" / "exchangeInfo-spot-api.binance.com-2026-01-02.json").write_text(json.dumps({"symbols": [{"symbol": "BTCUSDT"}, {"symbol": "ETHUSDT"}]}))
    env = {"SQ_HOME": str(home)}
    assert _complete("sq subscribe NSE:", env) == ["NSE:INFY", "NSE:RELIANCE"]
    assert _complete("sq record NSE:R", env) == ["NSE:RELIANCE"]
    assert _complete("sq kill --symbol BINANCE:B", env) == ["BINANCE:BTCUSDT"]
    assert "SIM:DEMO" in _complete("sq subscribe ", env) and "NFO:" in _complete("sq subscribe ", env)
    # bash splits `NSE:R` at the colon and replaces only the last piece
    assert _complete("sq subscribe NSE : R", env) == ["RELIANCE"]
    assert _complete("sq subscribe NSE :", env) == [":INFY", ":RELIANCE"]


def test_completion_lists_agree_with_what_the_commands_accept():
    from sq.commands import _options as O
    from sq.core.engine.layout import LATENCY_DISTS, QUEUE_MODELS
    from sq.core.streams import FORMATS
    from sq.venues.base import EXPIRY_RULES

    assert tuple(QUEUE_MODELS) == O.FILL_QUEUE_MODELS and tuple(LATENCY_DISTS) == O.FILL_LATENCY_DISTS
    assert tuple(FORMATS) == O.STREAM_FORMATS and tuple(EXPIRY_RULES) == O.EXPIRIES


def test_readme_tells_how_to_install_completions():
    text = (ROOT / "README.md").read_text()
    for shell, line in (("bash", "completions/sq.bash"), ("zsh", "completions/_sq"), ("fish", "completions/sq.fish")):
        assert line in text, shell


# ---------------------------------------------------------------------------------------------- --json summaries


def test_subscribe_json_summarises_what_the_file_received(sq, tmp_path):
    out = tmp_path / "demo.parquet"
    r = sq(["subscribe", "SIM:DEMO", "--limit", "500", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["events"] == 500 and doc["per_symbol"] == {"SIM:DEMO": 500} and doc["output"] == str(out)
    assert doc["bytes"] == out.stat().st_size > 0
    r = sq(["subscribe", "SIM:DEMO", "--limit", "5", "--json"])
    assert r.exit_code == 2 and "-o" in r.stderr and r.stdout == b""


def test_record_json_prints_the_summary_instead_of_the_stream(sq, tmp_path):
    r = sq(["record", "SIM:DEMO", "-o", str(tmp_path / "d"), "--limit", "300", "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["events"] == 300 and doc["files"] and doc["out_dir"] == str(tmp_path / "d")
    r = sq(["record", "SIM:DEMO", "-o", str(tmp_path / "e"), "--limit", "3", "--json", "--pass-through"])
    assert r.exit_code == 2 and "--json" in r.stderr


def test_record_raw_file_keeps_the_capture_where_asked(sq, tmp_path):
    """--raw FILE (as in subscribe); SIM has no raw frames, so it says so (exit 2) as before."""
    r = sq(["record", "SIM:DEMO", "-o", str(tmp_path / "d"), "--raw", str(tmp_path / "cap.jsonl"), "--limit", "3"])
    assert r.exit_code == 2 and "raw" in r.stderr


def test_out_alias_still_works(sq, tmp_path):
    r = sq(["record", "SIM:DEMO", "--out", str(tmp_path / "d"), "--limit", "50"])
    assert r.exit_code == 0, r.stderr
    assert list((tmp_path / "d").rglob("*.parquet"))


def test_record_raw_file_against_the_local_binance(binance_fake, sq, tmp_path):
    """record --raw FILE writes the venue's raw frames to FILE, which subscribe --replay reads."""
    binance_fake()
    cap = tmp_path / "caps" / "btc.jsonl"
    r = sq(["record", "BINANCE:BTCUSDT", "-o", str(tmp_path / "d"), "--raw", str(cap), "--for", "1s"])
    assert r.exit_code == 0, r.stderr
    recs = [json.loads(line) for line in cap.read_text().splitlines()]
    assert recs and {rec["src"] for rec in recs} == {"ws", "rest"}
    assert not (tmp_path / "d" / "raw").exists()  # where it was asked, not under the dataset
