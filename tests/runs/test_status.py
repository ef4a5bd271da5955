"""`sq status`: every running sq process from the registry and its heartbeat, healthy or not.

The health rules on hand-made heartbeats, then real processes: a healthy paper run (exit 0), a
paper run whose feed stalls (its stdin pipe goes quiet: exit 1, "no market data"), a run halted by
its loss limit (exit 1, "halted"), a recorder (shown, never halted by `sq kill`)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pyarrow as pa

from sq.core import runtime
from sq.runs.status import assess
from tests.support.process import SQ_BIN, subprocess_env

S = 1_000_000_000


def entry(mode: str = "paper", started_s_ago: float = 100.0, now: int = 10_000 * S, venue: str = "sim") -> runtime.ProcEntry:
    return runtime.ProcEntry(pid=1, strategy="mm", venue=venue, symbols=["SIM:DEMO"], mode=mode, journal="",
                             started_ns=now - int(started_s_ago * S))


def beat(now: int = 10_000 * S, age: float = 0.5, event_age: float = 0.5, **kw) -> dict:
    return {"ts": now - int(age * S), "last_event_ns": now - int(event_age * S), "halted": None, **kw}


def test_health_rules():
    now = 10_000 * S
    assert assess(entry(), beat(), now, 30) == ("ok", True)
    assert assess(entry(started_s_ago=5), None, now, 30) == ("starting", True)
    assert assess(entry(started_s_ago=100), None, now, 30)[1] is False
    assert assess(entry("live"), beat(age=45), now, 30) == ("not reporting for 45s", False)
    assert assess(entry(), beat(age=45, event_age=45), now, 30) == ("no market data for 45s", False)
    assert assess(entry(), beat(event_age=40), now, 30) == ("no market data for 40s", False)
    assert assess(entry(), beat(halted="max_loss"), now, 30) == ("halted: max_loss", False)
    assert assess(entry("live"), beat(breaker={"state": "open", "trips": 1}), now, 30) == ("circuit breaker open", False)
    assert assess(entry("live"), beat(feed="paused"), now, 30) == ("market data down", False)
    assert assess(entry("live", venue="zerodha"), beat(), now, 30, frozenset({"zerodha"})) == ("zerodha token expired", False)
    assert assess(entry("paper", venue="zerodha"), beat(), now, 30, frozenset({"zerodha"})) == ("ok", True)


def status(env: dict, *args: str) -> tuple[int, dict, str]:
    r = subprocess.run([SQ_BIN, "status", "--json", *args], capture_output=True, text=True, env=env, timeout=60)
    return r.returncode, json.loads(r.stdout), r.stderr


def wait_until(cond, timeout: float, what: str, proc: subprocess.Popen | None = None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited early: {proc.stderr.read()}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def run_of(env: dict, pid: int, *args: str):
    def find():
        rc, doc, err = status(env, *args)
        return next(((rc, r, doc, err) for r in doc["runs"] if r["pid"] == pid), None)
    return find


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_a_healthy_paper_run_then_a_halted_one(tmp_path):
    env = subprocess_env()
    p = subprocess.Popen([SQ_BIN, "paper", "--strategy", "mm", "SIM:DEMO", "--journal", str(tmp_path / "j")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        rc, run, doc, err = wait_until(lambda: (lambda x: x if x and x[1]["events"] else None)(run_of(env, p.pid)()),
                                       180, "a heartbeat with market events", p)
        assert rc == 0 and doc["healthy"] and run["health"] == "ok", (run, err)
        assert run["mode"] == "paper" and run["strategy"] == "mm" and run["symbols"] == ["SIM:DEMO"]
        assert run["run_id"] and run["started"].endswith("Z") and run["last_event_age_s"] is not None
        assert set(run["pnl"]) >= {"gross", "costs", "net"} and "SIM:DEMO" in run["position"]
        assert set(doc["venues"]) == {"zerodha", "binance"}
    finally:
        stop(p)
    # the registry entry and its heartbeat go with the process
    wait_until(lambda: not runtime.beat_path(p.pid).exists(), 30, "the heartbeat removed")

    # a loss limit so small the first fill's fee breaches it: the strategy halts, the run goes on
    p = subprocess.Popen([SQ_BIN, "paper", "--strategy", "mm", "SIM:DEMO", "--param", "max_loss=0.000001",
                          "--journal", str(tmp_path / "h")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        rc, run, doc, err = wait_until(lambda: (lambda x: x if x and x[1]["halted"] else None)(run_of(env, p.pid)()),
                                       180, "the halted run's heartbeat", p)
        assert rc == 1 and not doc["healthy"] and run["health"].startswith("halted"), run
        assert f"pid {p.pid}" in err and "halted" in err
    finally:
        stop(p)


def test_a_stalled_feed_is_unhealthy(tmp_path):
    """A paper run reading a market stream from a pipe that goes quiet: its last event ages."""
    env = subprocess_env()
    market = subprocess.run([SQ_BIN, "subscribe", "SIM:DEMO", "-n", "2000", "-f", "arrow"], capture_output=True, env=env, timeout=120).stdout
    eos = b"\xff\xff\xff\xff\x00\x00\x00\x00"
    assert market.endswith(eos)
    p = subprocess.Popen([SQ_BIN, "paper", "--strategy", "mm", "--from", "-", "--journal", str(tmp_path / "j")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        p.stdin.write(market[:-len(eos)])  # the stream's batches, then silence: the pipe stays open
        p.stdin.flush()
        rc, run, doc, err = wait_until(lambda: (lambda x: x if x and x[1]["events"] else None)(run_of(env, p.pid, "--stale-after", "60s")()),
                                       180, "events", p)
        assert rc == 0 and run["health"] == "ok", run
        rc, run, doc, err = wait_until(lambda: (lambda x: x if x and x[0] == 1 else None)(run_of(env, p.pid, "--stale-after", "1s")()),
                                       60, "the stalled feed reported", p)
        assert run["health"].startswith("no market data") and not doc["healthy"], run
    finally:
        p.stdin.close()
        stop(p)


def test_a_recorder_is_shown_and_never_halted_by_kill(tmp_path):
    env = subprocess_env()
    p = subprocess.Popen([SQ_BIN, "record", "SIM:DEMO", "--out", str(tmp_path / "rec")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    try:
        rc, run, doc, err = wait_until(lambda: (lambda x: x if x and x[1]["events"] else None)(run_of(env, p.pid)()),
                                       120, "the recorder's heartbeat", p)
        assert rc == 0 and run["mode"] == "record" and run["health"] == "ok" and run["extra"]["bytes"] >= 0
        k = subprocess.run([SQ_BIN, "kill", "--json"], capture_output=True, text=True, env=env, timeout=60)
        assert k.returncode == 0 and json.loads(k.stdout)["processes"] == []
        assert p.poll() is None  # still recording
    finally:
        stop(p)
    assert p.returncode == 143


def test_no_runs_is_healthy_and_bad_input_is_usage(sq):
    r = sq(["status", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["runs"] == []
    r = sq(["status", "--stale-after", "10"])
    assert r.exit_code == 2 and "--stale-after" in r.stderr and len(r.stderr_lines) == 1
