"""Continuous futures names in the runs that take Zerodha symbols (record, subscribe, paper, live,
fetch), against the Kite fake: the run names the contract everywhere, says which on stderr, and
its data's instrument metadata keeps the continuous name. Resolution is pinned to a fixed IST
moment through `continuous.now_ist` (the dump's NIFTY contracts expire 2026-12-29, 2027-01-25,
2027-02-23); the fake streams NIFTY26DECFUT and NIFTY27JANFUT."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sq.core import journal as J
from sq.core import schemas as S
from sq.venues.zerodha import continuous
from sq.venues.zerodha.session import IST


def pin(monkeypatch, day: str, hh: int = 10, mm: int = 0) -> None:
    when = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hh, mm), IST)
    monkeypatch.setattr(continuous, "now_ist", lambda: when)


@pytest.fixture
def kite(kite_env, monkeypatch):
    monkeypatch.setenv("ZKITE_ACCESS_TOKEN", kite_env.issue_token())
    return kite_env


def instruments_of(path) -> dict:
    return S.instruments_from_json(pq.read_schema(path).metadata[S.META_INSTRUMENTS])


def test_a_recording_after_the_expiry_close_holds_the_next_contract_and_says_so(sq, kite, tmp_path, monkeypatch):
    pin(monkeypatch, "2026-12-29", 15, 45)  # December's NIFTY contract expired at 15:30 today
    r = sq(["record", "NFO:NIFTY-FUT", "--out", str(tmp_path / "d"), "--limit", "40", "--format", "none"])
    assert r.exit_code == 0, r.stderr
    assert "sq: NFO:NIFTY-FUT → NFO:NIFTY27JANFUT (expiry 2027-01-25)" in r.stderr.splitlines()
    assert re.search(r"recorded \d+ events \(NFO:NIFTY27JANFUT \[NFO:NIFTY-FUT\] \d+\)", r.stderr)  # the summary line
    files = sorted((tmp_path / "d").rglob("*.parquet"))
    assert files and {f.parent.parent.name for f in files} == {"symbol=NFO%3ANIFTY27JANFUT"}
    inst = instruments_of(files[0])["NFO:NIFTY27JANFUT"]
    assert inst.extra["continuous"] == "NFO:NIFTY-FUT" and inst.extra["expiry"] == "2027-01-25"
    assert inst.extra["expiry_rule"] == "near" and inst.extra["instrument_token"] == 15360514 and inst.lot_size == 65
    assert set(pq.read_table(files[0]).column("symbol").to_pylist()) == {"NFO:NIFTY27JANFUT"}


def test_a_recording_of_a_contract_named_directly_has_no_continuous_name(sq, kite, tmp_path, monkeypatch):
    pin(monkeypatch, "2026-12-07")
    r = sq(["record", "NFO:NIFTY26DECFUT", "--out", str(tmp_path / "d"), "--limit", "10", "--format", "none"])
    assert r.exit_code == 0, r.stderr
    assert "→" not in r.stderr
    inst = instruments_of(next((tmp_path / "d").rglob("*.parquet")))["NFO:NIFTY26DECFUT"]
    assert "continuous" not in inst.extra and inst.extra["expiry"] == "2026-12-29"


def test_subscribe_with_expiry_next_streams_the_second_contract(sq, kite, monkeypatch):
    pin(monkeypatch, "2026-12-07")
    r = sq(["subscribe", "NFO:NIFTY-FUT", "--expiry", "next", "--limit", "20", "--format", "arrow"])
    assert r.exit_code == 0, r.stderr
    assert "NFO:NIFTY-FUT → NFO:NIFTY27JANFUT (expiry 2027-01-25, next expiry)" in r.stderr
    table = pa.ipc.open_stream(io.BytesIO(r.stdout)).read_all()
    assert set(table.column("symbol").to_pylist()) == {"NFO:NIFTY27JANFUT"}
    inst = S.instruments_from_json(table.schema.metadata[S.META_INSTRUMENTS])["NFO:NIFTY27JANFUT"]
    assert inst.extra["continuous"] == "NFO:NIFTY-FUT" and inst.extra["expiry_rule"] == "next"


@pytest.mark.parametrize("args, words", [
    (["record", "NFO:NIFTI-FUT"], ["NIFTI", "did you mean NFO:NIFTY-FUT"]),
    (["subscribe", "MCX:CRUDE-FUT"], ["did you mean MCX:CRUDEOIL-FUT"]),
    (["record", "NFO:RELIANCE-FUT", "--expiry", "far"], ["3rd", "RELIANCE27JANFUT"]),
    (["record", "NSE:INFY", "--expiry", "next"], ["--expiry", "NSE:INFY"]),
    (["subscribe", "NFO:NIFTY-FUT", "--expiry", "later"], ["near, next, far"]),
    (["fetch", "NFO:NIFTI-FUT", "--kind", "candles", "--interval", "day", "--start", "2026-11-02", "--end", "2026-11-03"], ["NIFTY-FUT"]),
    (["paper", "--strategy", "mm", "NFO:NIFTI-FUT"], ["NIFTY-FUT"]),
    (["paper", "--strategy", "mm", "--from", "x.parquet", "--expiry", "next"], ["--expiry", "--from"]),
])
def test_bad_continuous_names_are_one_line_usage_errors(sq, kite, tmp_path, monkeypatch, args, words):
    pin(monkeypatch, "2026-12-07")
    monkeypatch.chdir(tmp_path)
    r = sq([*args, *(["--out", str(tmp_path / "d")] if args[0] == "record" else [])])
    assert r.exit_code == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0]
    assert not (tmp_path / "d").exists() and not kite.historical


def test_fetch_of_a_continuous_name_stores_the_contract_and_names_it(sq, kite, tmp_path, monkeypatch):
    pin(monkeypatch, "2026-12-07")
    out = tmp_path / "h"
    r = sq(["fetch", "NFO:NIFTY-FUT", "--kind", "candles", "--interval", "day", "--continuous", "--start", "2026-11-02",
            "--end", "2026-11-03", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.stderr
    assert "NFO:NIFTY-FUT → NFO:NIFTY26DECFUT (expiry 2026-12-29)" in r.stderr
    report = json.loads(r.stdout)
    assert [(s["symbol"], s["continuous"]) for s in report["symbols"]] == [("NFO:NIFTY26DECFUT", "NFO:NIFTY-FUT")]
    assert {e["token"] for e in kite.historical} == {15360258} and {e["continuous"] for e in kite.historical} == {"1"}
    files = sorted(out.rglob("*.parquet"))
    assert len(files) == 2 and instruments_of(files[0])["NFO:NIFTY26DECFUT"].extra["continuous"] == "NFO:NIFTY-FUT"


def test_paper_trades_the_contract_with_the_config_and_params_of_its_continuous_name(kite, tmp_path, monkeypatch):
    """The plan (and so the journal) names the contract; `[[instruments]]` and `--param SYMBOL.k=v`
    written with the continuous name apply to it."""
    from sq.core.config import load_config
    from sq.core.environment import Environment
    from sq.runs import contracts
    from sq.runs.paper import PaperOptions, _start_record, make_plan

    pin(monkeypatch, "2026-12-07")
    (tmp_path / "sq.toml").write_text('[[instruments]]\nsymbol = "NFO:NIFTY50-FUT"\nclip = 3\n')
    monkeypatch.setenv("SQ_CONFIG", str(tmp_path / "sq.toml"))
    err = io.StringIO()
    env = Environment(stderr=err)
    config = load_config(env)
    plan = make_plan(env, PaperOptions(strategy="mm", params=["NFO:NIFTY50-FUT.max_position=5", "clip=2"], journal=str(tmp_path / "j")), config)
    assert plan.symbols == ["NFO:NIFTY26DECFUT"] and plan.params == ["NFO:NIFTY26DECFUT.max_position=5", "clip=2"]
    assert "NFO:NIFTY50-FUT → NFO:NIFTY26DECFUT (expiry 2026-12-29)" in err.getvalue()
    assert contracts.config_for(config, plan.contracts).instrument("NFO:NIFTY26DECFUT").clip == 3
    start = json.loads(json.dumps(_start_record(plan, config)))
    assert contracts.from_json(start["contracts"]) == plan.contracts and start["symbols"] == ["NFO:NIFTY26DECFUT"]


def test_a_paper_run_on_a_continuous_name_journals_the_contract(sq, kite, tmp_path, monkeypatch):
    pin(monkeypatch, "2026-12-07")
    r = sq(["paper", "--strategy", "mm", "NFO:NIFTY-FUT", "--for", "2s", "--json", "--journal", str(tmp_path / "run")])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["symbols"] == ["NFO:NIFTY26DECFUT"]
    record = J.load(tmp_path / "run").start
    assert record["symbols"] == ["NFO:NIFTY26DECFUT"] and record["contracts"]["NFO:NIFTY26DECFUT"]["continuous"] == "NFO:NIFTY-FUT"


def test_live_plans_the_contract_and_keeps_it_for_resume(kite, tmp_path, monkeypatch):
    from sq.core.config import load_config
    from sq.core.environment import Environment
    from sq.runs import contracts
    from sq.runs.live import LiveOptions, _start_record, make_plan

    pin(monkeypatch, "2026-12-29", 16)
    err = io.StringIO()
    config = load_config()
    plan = make_plan(LiveOptions(strategy="mm", symbols=["NFO:BANKNIFTY-FUT"], expiry="next", params=["nfo:banknifty-fut.clip=1"],
                                 journal=str(tmp_path / "j")), config, Environment(stderr=err))
    assert plan.symbols == ["NFO:BANKNIFTY27FEBFUT"] and plan.params == ["NFO:BANKNIFTY27FEBFUT.clip=1"]
    assert "NFO:BANKNIFTY-FUT → NFO:BANKNIFTY27FEBFUT (expiry 2027-02-23, next expiry)" in err.getvalue()
    start = json.loads(json.dumps(_start_record(plan, config)))
    assert contracts.from_json(start["contracts"])["NFO:BANKNIFTY27FEBFUT"].continuous == "NFO:BANKNIFTY-FUT"
