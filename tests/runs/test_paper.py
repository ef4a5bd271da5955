"""`sq paper`: replay parity with the engine/backtest, the journal it writes, halting by `sq kill`,
crash (kill -9) and `--resume`, the --json document, the dashboard, bad input."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sq.core import journal as J
from tests.support.crash import kill9_when
from tests.support.process import SQ_BIN, subprocess_env

SUMMARY_KEYS = {"strategy", "symbols", "events", "orders", "fills", "position", "pnl", "max_drawdown", "sharpe",
                "fill_ratio", "rejections", "elapsed_s", "events_per_s"}


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """A SIM:DEMO market stream (simulated time, seed 7) as one Parquet file: ~6 s of data."""
    from sq.core.environment import Environment
    from sq.core.streams import StreamWriter
    from sq.venues.sim import SimVenue

    path = tmp_path_factory.mktemp("rec") / "demo.parquet"
    venue = SimVenue(["SIM:DEMO"], seed=7, clock="sim")
    source = venue.market_source(duration_ns=6_000_000_000)
    with StreamWriter(Environment(), source.schema, output=str(path)) as w:
        for batch in source.batches():
            w.write(batch)
    return path


def read(path: Path, which: str) -> list[dict]:
    import pyarrow.parquet as pq

    t = pq.read_table(path / f"{which}.parquet")
    t = t.set_column(0, "ts", t.column("ts").cast("int64"))
    return t.to_pylist()


def order_lifecycles(rows: list[dict]) -> dict[str, set]:
    ev: dict[str, set] = collections.defaultdict(set)
    for r in rows:
        ev[r["client_order_id"]].add(r["event"])
    return ev


def assert_all_closed(journal_dir: Path) -> dict[str, set]:
    """Every order the venue accepted ended canceled, filled or expired."""
    ev = order_lifecycles(read(journal_dir, "orders"))
    open_ = [cid for cid, e in ev.items() if "accepted" in e and not e & {"canceled", "filled", "expired"}]
    assert not open_, f"orders left open: {open_[:5]}"
    return ev


def engine_reference(path: Path, strategy: str, params=()):
    """What a backtest of the file produces: every batch through one Engine, then finish()."""
    from sq.core.config import load_config
    from sq.core.engine import Engine
    from sq.core.engine import params as engine_params
    from sq.core.strategy.loader import load
    from sq.core.environment import Environment
    from sq.core.journal import rows_from_batch
    from sq.core.streams import open_input

    cfg = load_config(None)
    src = open_input(Environment(), [str(path)], "market")
    declared = load(strategy)
    eng = Engine(declared, src.instruments, engine_params.resolve(declared, sorted(src.instruments), cfg, list(params)), config=cfg, seed=1)
    orders, fills = [], []
    for out in [eng.process(b) for b in src.batches()] + [eng.finish()]:
        orders += rows_from_batch(out.orders)
        fills += rows_from_batch(out.fills)
    return orders, fills


# ----------------------------------------------------------------------------------------------
# replay: parity, journal, --json


CASES = {"mm": ("mm", []), "lt": ("lt", ["threshold=0.3"]), "mm-risk": ("mm", ["max_position=1"]),  # trips risk
         "lt-stops": ("lt", ["threshold=0.3", "stop=3", "take=3"])}  # resting stops and take-profits


def paper_replay(sq, recording, jdir, case) -> dict:
    strategy, params = CASES[case]
    args = ["paper", "--strategy", strategy, "--from", str(recording), "--journal", str(jdir), "--json", "--seed", "1"]
    for p in params:
        args += ["--param", p]
    r = sq(args)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("case", list(CASES))
def test_replay_matches_the_engine_run(sq, recording, tmp_path, case):
    strategy, params = CASES[case]
    jdir = tmp_path / "j"
    doc = paper_replay(sq, recording, jdir, case)
    assert SUMMARY_KEYS <= set(doc) and set(doc["pnl"]) >= {"realized", "unrealized", "total", "fees"}
    assert doc["strategy"] == strategy and doc["symbols"] == ["SIM:DEMO"] and doc["stopped_by"] == "end"
    ref_orders, ref_fills = engine_reference(recording, strategy, params)
    orders = read(jdir, "orders")
    fills = read(jdir, "fills")
    assert len(ref_orders) > 0
    # the replay is the backtest's run, then the run's own halt closes what still works
    assert orders[: len(ref_orders)] == ref_orders
    assert {o["event"] for o in orders[len(ref_orders):]} <= {"cancel_sent", "canceled"}
    assert fills == ref_fills
    assert doc["fills"] == len(fills)
    assert_all_closed(jdir)
    loaded = J.load(jdir)
    assert loaded.sealed and loaded.start["strategy"] == strategy and loaded.start["inputs"] == [str(recording)]
    rejected = [o for o in orders if o["event"] == "rejected"]
    # every rejected orders row is a `reject` record (the engine journals a repeated rejection once)
    assert len(rejected) == sum(1 for r in loaded.records if r.kind == "reject") <= sum(doc["rejections"].values())
    if case == "mm-risk":
        assert rejected and doc["rejections"].get("position_too_large")


@pytest.mark.parametrize("case", list(CASES))
def test_replay_matches_sq_backtest(sq, recording, tmp_path, case):
    from sq.commands import COMMANDS

    if "backtest" not in COMMANDS:
        pytest.skip("sq backtest is not registered in this build yet (test_replay_matches_the_engine_run covers the engine)")
    strategy, params = CASES[case]
    doc = paper_replay(sq, recording, tmp_path / "paper", case)
    bt = tmp_path / "bt"
    b = sq(["backtest", "--strategy", strategy, str(recording), "--journal", str(bt), "--json"] + sum((["--param", p] for p in params), []))
    assert b.exit_code == 0, b.stderr
    assert read(bt, "fills") == read(tmp_path / "paper", "fills")
    bt_orders = read(bt, "orders")
    orders = read(tmp_path / "paper", "orders")
    assert orders[: len(bt_orders)] == bt_orders
    assert {o["event"] for o in orders[len(bt_orders):]} <= {"cancel_sent", "canceled"}
    assert json.loads(b.stdout)["fills"] == doc["fills"]


def test_event_strategy_stop_and_take_profit_trigger_identically_in_backtest_and_paper(sq, recording, tmp_path):
    """An event strategy's resting stop and take-profit (the liquidity taker's `stop`/`take`) are
    held and triggered by the simulated venue; a backtest and a paper replay of the same data
    trigger the same ones at the same moments and fill them at the same prices."""
    paper_replay(sq, recording, tmp_path / "paper", "lt-stops")
    b = sq(["backtest", "--strategy", "lt", str(recording), "--journal", str(tmp_path / "bt"), "--json",
            "--param", "threshold=0.3", "--param", "stop=3", "--param", "take=3"])
    assert b.exit_code == 0, b.stderr
    bt, paper = read(tmp_path / "bt", "orders"), read(tmp_path / "paper", "orders")
    triggered = {(o["client_order_id"], o["reason"]) for o in bt if o["event"] == "triggered"}
    assert {why for _, why in triggered} == {"stop-market", "take-profit-market"}, triggered
    assert paper[: len(bt)] == bt
    assert read(tmp_path / "paper", "fills") == read(tmp_path / "bt", "fills")
    filled = {o["client_order_id"] for o in bt if o["event"] == "filled"}
    assert {cid for cid, _ in triggered} <= filled


FILL_FLAGS = ["--latency", "7ms", "--latency-dist", "exponential", "--latency-jitter", "3ms", "--feed-latency", "2ms",
              "--queue-model", "prob", "--seed", "5"]


def test_replay_with_fill_flags_matches_sq_backtest_with_the_same_flags(sq, recording, tmp_path):
    """paper takes every fill-model flag backtest has and gives it to the same fill model: the
    same flags on the same file give identical fills — and different ones than the defaults."""
    p = sq(["paper", "--strategy", "mm", "--from", str(recording), "--journal", str(tmp_path / "paper"), "--json", *FILL_FLAGS])
    assert p.exit_code == 0, p.stderr
    b = sq(["backtest", "--strategy", "mm", str(recording), "--journal", str(tmp_path / "bt"), "--json", *FILL_FLAGS])
    assert b.exit_code == 0, b.stderr
    fills = read(tmp_path / "paper", "fills")
    assert fills and fills == read(tmp_path / "bt", "fills")
    d = sq(["backtest", "--strategy", "mm", str(recording), "--journal", str(tmp_path / "default"), "--json"])
    assert d.exit_code == 0, d.stderr
    assert read(tmp_path / "default", "fills") != fills  # the flags changed the fills: they were not ignored


def test_the_journal_keeps_the_fill_flags_and_resume_takes_them_from_it(sq, recording, tmp_path):
    jdir = tmp_path / "j"
    r = sq(["paper", "--strategy", "mm", "--from", str(recording), "--journal", str(jdir), "--json", "--latency", "7ms", "--queue-model", "prob"])
    assert r.exit_code == 0, r.stderr
    start = J.load(str(jdir)).start
    assert start["fill"]["order_latency_ns"] == 7_000_000 and start["fill"]["queue_model"] == "prob"
    r = sq(["paper", "--resume", str(jdir), "--latency", "5ms"])
    assert r.exit_code == 2 and "fill flags" in r.stderr


def test_bad_fill_flag_is_a_usage_error_before_the_run(sq, recording, tmp_path):
    r = sq(["paper", "--strategy", "mm", "--from", str(recording), "--journal", str(tmp_path / "j"), "--queue-model", "fifo"])
    assert r.exit_code == 2 and "queue model" in r.stderr and not (tmp_path / "j").exists()


def test_replay_for_is_data_time_and_text_summary(sq, recording, tmp_path):
    r = sq(["paper", "--strategy", "mm", "--from", str(recording), "--for", "2s", "--journal", str(tmp_path / "j")])
    assert r.exit_code == 0, r.stderr
    assert r.stdout.decode().startswith("PnL total ") and r.stdout.decode().count("\n") == 1
    assert "stopped by for" in r.stderr
    orders = read(tmp_path / "j", "orders")
    ts = [o["ts"] for o in orders]
    assert ts and max(ts) - min(ts) < 2_500_000_000


def test_a_run_that_traded_little_says_why(sq, recording, tmp_path):
    """The text summary names the top rejection reasons with their counts; the --json document
    has the same counts, the parameters each symbol ran with (defaults → --param), ISO-8601
    times and money at the instrument's grid."""
    import re

    from sq.core.environment import Environment
    from sq.core.streams import open_input
    from sq.core.summary import decimals

    args = ["paper", "--strategy", "mm", "--from", str(recording), "--param", "max_position=1", "--seed", "1"]
    r = sq(args + ["--journal", str(tmp_path / "text")])
    assert r.exit_code == 0, r.stderr
    doc = paper_replay(sq, recording, tmp_path / "json", "mm-risk")
    n = doc["rejections"]["position_too_large"]
    assert n > 0 and f"rejected: {n:,} position_too_large" in r.stderr
    assert doc["params"]["SIM:DEMO"]["max_position"] == 1 and doc["params"]["SIM:DEMO"]["clip"] == 1  # --param, then the default
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    assert iso.match(doc["started"]) and iso.match(doc["ended"]) and doc["started"] <= doc["ended"]
    tick = open_input(Environment(), [str(recording)], "market").instruments["SIM:DEMO"].tick_size
    money = max(2, decimals(tick))  # one tick on a lot of 1
    for v in list(doc["pnl"].values()) + [doc["max_drawdown"], doc["turnover"]]:
        assert round(v, money) == v, (v, money)
    clean = paper_replay(sq, recording, tmp_path / "plain", "mm")
    assert clean["rejections"] == {} and "rejected:" not in sq(args[:-4] + ["--journal", str(tmp_path / "t2")]).stderr


def test_dashboard_on_a_terminal(sq, recording, tmp_path):
    r = sq(["paper", "--strategy", "mm", "--from", str(recording), "--journal", str(tmp_path / "j")], stdout_isatty=True, width=140)
    assert r.exit_code == 0, r.stderr
    text = r.stdout.decode()
    assert "sq paper mm" in text and "working orders" in text and "SIM:DEMO" in text and "risk rejections" in text


def test_default_journal_dir_and_no_secrets(sq, recording, isolated_home, monkeypatch):
    monkeypatch.setenv("BINANCE_API_SECRET", "verysecretvalue42")
    r = sq(["paper", "--strategy", "mm", "--from", str(recording), "--for", "1s", "--json"])
    assert r.exit_code == 0, r.stderr
    jdir = Path(json.loads(r.stdout)["journal"])
    assert jdir.parent == isolated_home / "data" / "runs" and jdir.name[:8].isdigit()
    assert "verysecret" not in (jdir / J.LOG_NAME).read_text() and "verysecret" not in r.stdout.decode() + r.stderr


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--strategy", "xx", "SIM:DEMO"], 2, ["mm", "lt"]),
        (["SIM:DEMO"], 2, ["--strategy"]),
        (["--strategy", "mm", "SIM:DEMO", "--param", "clipp=1"], 2, ["clip", "its parameters"]),
        (["--strategy", "mm", "SIM:DEMO", "--param", "clip=-1"], 2, ["clip", "> 0"]),
        (["--strategy", "mm", "SIM:DEMO", "--realtime"], 2, ["--from"]),
        (["--strategy", "mm", "--from", "/nonexistent/x.parquet"], 66, ["not found"]),
    ],
)
def test_bad_usage(sq, args, code, words):
    r = sq(["paper", *args])
    assert r.exit_code == code, r.stderr
    for w in words:
        assert w in r.stderr


def test_not_a_market_stream_is_65(sq, tmp_path):
    d = tmp_path / "prev"
    J.Journal.create(d, {"strategy": "mm"}).seal({"reason": "x"})
    r = sq(["paper", "--strategy", "mm", "--from", str(d / "orders.parquet")])
    assert r.exit_code == 65 and "market" in r.stderr


def test_resume_refuses_a_tampered_journal(sq, recording, tmp_path):
    jdir = tmp_path / "j"
    assert sq(["paper", "--strategy", "mm", "--from", str(recording), "--for", "1s", "--journal", str(jdir)]).exit_code == 0
    log = jdir / J.LOG_NAME
    lines = log.read_bytes().split(b"\n")
    b = bytearray(log.read_bytes())
    pos = len(lines[0]) + 1 + lines[1].index(b'"n":2') - 5  # a byte inside record 2's payload
    b[pos] ^= 0x04
    log.write_bytes(bytes(b))
    r = sq(["paper", "--resume", str(jdir)])
    assert r.exit_code == 65 and "line 2 (record 2)" in r.stderr and str(log) in r.stderr


# ----------------------------------------------------------------------------------------------
# real processes: sq kill, kill -9 and --resume


def start_paper(args: list[str], home_env: dict) -> subprocess.Popen:
    return subprocess.Popen([SQ_BIN, "paper", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=home_env, text=True)


def crash_paper(args, env, jdir, *, fills: int, timeout: float) -> None:
    """Start `sq paper ARGS`, wait for `fills` fills in its journal, then kill -9 it."""
    kill9_when([SQ_BIN, "paper", *args], env, lambda: journal_kinds(jdir)["fill"] >= fills, 90 + timeout, "fills in the journal")


def wait_for(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def registered(p: subprocess.Popen) -> bool:
    from sq.core import runtime

    return (runtime.procs_dir() / f"{p.pid}.json").exists()


def journal_kinds(jdir: Path) -> collections.Counter:
    try:
        text = (jdir / J.LOG_NAME).read_text()
    except FileNotFoundError:
        return collections.Counter()
    return collections.Counter(json.loads(line)["k"] for line in text.splitlines() if line.endswith("}"))


def test_sq_kill_halts_a_live_paper_run(tmp_path):
    jdir = tmp_path / "live"
    env = subprocess_env()
    p = start_paper(["--strategy", "mm", "SIM:DEMO", "--journal", str(jdir), "--json"], env)
    try:
        wait_for(lambda: registered(p), 90, "sq paper to register")
        wait_for(lambda: journal_kinds(jdir)["order"] >= 6, 30, "orders in the journal")
        # a generous halt timeout: on a busy machine the halt can take longer than kill's default
        # second (how fast it halts is measured by make bench, not asserted here)
        k = subprocess.run([SQ_BIN, "kill", "--json", "--timeout", "20"], capture_output=True, text=True, env=env, timeout=60)
        doc = json.loads(k.stdout)
        if k.returncode != 0:  # say what the run was doing: its stderr and the journal's last records
            _, err = p.communicate(timeout=60)
            kinds = journal_kinds(jdir)
            assert k.returncode == 0, f"{k.stderr}\n--- sq paper stderr (tail):\n{err[-3000:]}\n--- journal kinds: {dict(kinds)}"
        assert [x["pid"] for x in doc["processes"]] == [p.pid] and doc["processes"][0]["outcome"] == "halted"
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    summary = json.loads(out)
    assert summary["stopped_by"] == "SIGTERM" and SUMMARY_KEYS <= set(summary)
    loaded = J.load(jdir)
    assert loaded.sealed
    halts = [r.data for r in loaded.of("halt")]
    assert halts[-1]["reason"] == "SIGTERM"
    ev = assert_all_closed(jdir)
    assert sum(1 for e in ev.values() if "accepted" in e) >= 1
    # nothing left registered; a second kill finds nothing and succeeds
    k2 = subprocess.run([SQ_BIN, "kill", "--json"], capture_output=True, text=True, env=env, timeout=30)
    assert k2.returncode == 0 and json.loads(k2.stdout)["processes"] == []


def test_ctrl_c_stops_a_paper_run_cleanly_with_status_130(tmp_path):
    jdir = tmp_path / "live"
    p = start_paper(["--strategy", "mm", "SIM:DEMO", "--journal", str(jdir), "--json"], subprocess_env())
    try:
        wait_for(lambda: registered(p), 90, "sq paper to register")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert json.loads(out)["stopped_by"] == "SIGINT"  # the summary is still printed
    assert J.load(jdir).sealed


def test_crash_then_resume_live_keeps_positions(tmp_path):
    from sq.runs import paper
    from sq.core.engine.layout import SF_POS

    jdir = tmp_path / "crash"
    env = subprocess_env()
    crash_paper(["--strategy", "mm", "SIM:DEMO", "--journal", str(jdir)], env, jdir, fills=3, timeout=40)
    before = J.load(jdir)
    assert not before.sealed
    pos_before = paper.journal_positions(before)
    ckpt = paper.checkpoint_state(before, before.last("checkpoint"))
    assert ckpt["sf"][0][SF_POS] == pos_before["SIM:DEMO"]  # SF_POS of the last checkpoint = the fills' sum
    r = subprocess.run([SQ_BIN, "paper", "--resume", str(jdir), "--for", "2s", "--json"], capture_output=True, text=True, env=env, timeout=90)
    assert r.returncode == 0, r.stderr
    after = J.load(jdir)
    assert after.sealed
    kinds = [rec.kind for rec in after.records]
    n_resume = kinds.index("resume")
    assert n_resume == len(before.records)  # appended, chain continued
    # the resumed engine starts from the crashed run's position: its first checkpoint holds that
    # plus whatever filled while it closed the dead process's in-flight orders
    first_ckpt = next(rec for rec in after.records[n_resume:] if rec.kind == "checkpoint")
    closing_fills = sum(r.data["side"] * r.data["qty"] for r in after.records[n_resume:first_ckpt.n] if r.kind == "fill")
    assert paper.checkpoint_state(after, first_ckpt)["sf"][0][SF_POS] == pos_before["SIM:DEMO"] + closing_fills
    doc = json.loads(r.stdout)
    assert doc["position"]["SIM:DEMO"] == paper.journal_positions(after)["SIM:DEMO"]
    assert_all_closed(jdir)
    coids = [r.data["client_order_id"] for r in after.of("order", "reject") if r.data["event"] == "new"]
    assert len(coids) == len(set(coids))  # the resumed run never reuses a client order id


def test_crash_then_resume_replay_continues_exactly(recording, tmp_path):
    """A paced replay killed mid-run and resumed writes the same orders and fills as one that ran through."""
    env = subprocess_env()
    whole = tmp_path / "whole"
    r = subprocess.run([SQ_BIN, "paper", "--strategy", "mm", "--from", str(recording), "--journal", str(whole), "--json"],
                       capture_output=True, text=True, env=env, timeout=90)
    assert r.returncode == 0, r.stderr
    jdir = tmp_path / "cut"
    crash_paper(["--strategy", "mm", "--from", str(recording), "--realtime", "--journal", str(jdir)], env, jdir, fills=2, timeout=30)
    assert not J.load(jdir).sealed
    r2 = subprocess.run([SQ_BIN, "paper", "--resume", str(jdir), "--json"], capture_output=True, text=True, env=env, timeout=90)
    assert r2.returncode == 0, r2.stderr
    assert read(jdir, "fills") == read(whole, "fills")
    assert read(jdir, "orders") == read(whole, "orders")
    # the resumed run's metrics count the crashed process's fills too (docs/metrics.md)
    m_whole, m_cut = json.loads(r.stdout)["metrics"], json.loads(r2.stdout)["metrics"]
    keys = ("round_trips", "win_rate", "expectancy", "avg_holding_s", "spread_capture_bps", "markout_1s_bps", "markout_10s_bps")
    assert m_whole["round_trips"] > 0 and {k: m_cut[k] for k in keys} == {k: m_whole[k] for k in keys}


def test_the_summary_and_the_seal_carry_the_trader_metrics(sq, recording, tmp_path):
    """docs/metrics.md: `metrics` in the --json document and the journal's seal, the same numbers;
    a replay of seconds has no daily Sharpe and the text summary says why."""
    from sq.core.analytics import KEYS as METRICS

    jdir = tmp_path / "j"
    r = sq(["paper", "--strategy", "mm", "--from", str(recording), "--for", "2s", "--journal", str(jdir), "--json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert tuple(d["metrics"]) == METRICS and d["sharpe"] is None and d["metrics"]["sharpe"] is None
    assert d["metrics"]["basis"] == "annualised from daily returns, 365/yr" and d["metrics"]["capital"] == 1_000_000
    seal = J.load(jdir).last("end").data["summary"]
    assert seal["metrics"] == d["metrics"]
    r = sq(["paper", "--strategy", "mm", "--from", str(recording), "--for", "2s", "--journal", str(tmp_path / "k")])
    assert r.exit_code == 0, r.stderr
    assert "Sharpe: — (the run is shorter than two basis periods" in r.stderr and "markouts 1s / 10s / 60s" in r.stderr


def test_a_live_sim_paper_run_carries_the_trader_metrics(tmp_path):
    from sq.core.analytics import KEYS as METRICS

    jdir = tmp_path / "live"
    r = subprocess.run([SQ_BIN, "paper", "--strategy", "mm", "SIM:DEMO", "--for", "5s", "--journal", str(jdir), "--json"],
                       capture_output=True, text=True, env=subprocess_env(), timeout=240)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    m = d["metrics"]
    assert tuple(m) == METRICS and m["sharpe"] is None and m["periods_per_year"] == 365
    assert m["return_on_capital"] == pytest.approx(d["pnl"]["net"] / 1e6, abs=1e-6)
    assert 0 <= m["exposure"] <= 1 and m["round_trips"] >= 0
    assert J.load(jdir).last("end").data["summary"]["metrics"] == m
