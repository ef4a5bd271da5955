"""`sq kill`, the runtime registry and the cron lock (real subprocesses; the sq paper halt test is
in tests/runs/test_paper.py with the other paper runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from sq.core import runtime
from sq.core.exits import TempFailure
from tests.support.process import SQ_BIN, subprocess_env

FAKE = textwrap.dedent(
    """
    import signal, sys, time
    from sq.core import runtime
    mode, venue, symbol = sys.argv[1], sys.argv[2], sys.argv[3]
    reg = runtime.register("mm", venue, [symbol], mode="paper", journal="/tmp/j-" + mode)
    def clean(*a):
        reg.remove()
        sys.exit(0)
    if mode == "clean":
        signal.signal(signal.SIGTERM, clean)
    elif mode == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif mode == "crash":
        signal.signal(signal.SIGTERM, lambda *a: __import__("os")._exit(3))
    print("ready", flush=True)
    while True:
        time.sleep(0.02)
    """
)


def spawn(mode: str, venue: str = "sim", symbol: str = "SIM:DEMO") -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", FAKE, mode, venue, symbol], stdout=subprocess.PIPE, env=subprocess_env(), text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def sq_kill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SQ_BIN, "kill", *args], capture_output=True, text=True, env=subprocess_env(), timeout=30)


def test_register_list_and_stale_cleanup(tmp_path):
    with runtime.register("mm", "sim", ["SIM:DEMO"], mode="paper", journal=str(tmp_path)) as reg:
        assert reg.path.exists() and oct(reg.path.stat().st_mode)[-3:] in ("600", "644", "664")
        entries = runtime.list_procs()
        assert [e.pid for e in entries] == [os.getpid()]
        assert entries[0].symbols == ["SIM:DEMO"] and entries[0].journal == str(tmp_path)
    assert runtime.list_procs() == []
    # a dead process's entry is ignored and removed; a recycled pid (other start time) too
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    d = runtime.procs_dir()
    (d / f"{dead}.json").write_text(json.dumps({"pid": int(dead), "strategy": "mm", "venue": "sim", "symbols": [], "mode": "paper", "journal": ""}))
    (d / f"{os.getpid()}.json").write_text(json.dumps({"pid": os.getpid(), "strategy": "mm", "venue": "sim", "symbols": [], "mode": "paper", "journal": "", "start_ticks": 1}))
    assert runtime.list_procs() == []
    assert list(d.glob("*.json")) == []


def test_try_lock_held_is_temp_failure():
    with runtime.try_lock("cron-live"):
        with pytest.raises(TempFailure) as e:
            with runtime.try_lock("cron-live"):
                pass
        assert e.value.status == 75
        # another process sees the lock too
        code = "from sq.core import runtime\nwith runtime.try_lock('cron-live'): pass"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env())
        assert r.returncode != 0 and "TempFailure" in r.stderr
    with runtime.try_lock("cron-live"):
        pass


def test_kill_nothing_running():
    r = sq_kill("--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["processes"] == [] and doc["halted"] == 0
    assert "no running sq" in r.stderr


def test_kill_halts_clean_and_escalates_on_stuck():
    good, stuck, crash = spawn("clean"), spawn("ignore"), spawn("crash")
    try:
        t0 = time.monotonic()
        r = sq_kill("--json", "--timeout", "0.5")
        took = time.monotonic() - t0
        doc = json.loads(r.stdout)
        assert r.returncode == 1, r.stderr
        by_pid = {p["pid"]: p for p in doc["processes"]}
        assert by_pid[good.pid]["outcome"] == "halted"
        assert by_pid[stuck.pid]["outcome"] == "killed" and "--resume" in by_pid[stuck.pid]["detail"]
        assert by_pid[crash.pid]["outcome"] == "exited-unsealed"
        assert doc["halted"] == 1 and doc["not_halted"] == 2
        assert good.wait(5) == 0 and stuck.wait(5) == -9 and crash.wait(5) == 3
        assert took < 5
        assert runtime.list_procs() == [] and list(runtime.procs_dir().glob("*.json")) == []
    finally:
        for p in (good, stuck, crash):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_kill_filters_by_venue_and_symbol():
    a, b = spawn("clean", "sim", "SIM:DEMO"), spawn("clean", "binance", "BINANCE:BTCUSDT")
    try:
        r = sq_kill("--json", "--symbol", "sim:demo")
        assert r.returncode == 0 and [p["pid"] for p in json.loads(r.stdout)["processes"]] == [a.pid]
        assert a.wait(5) == 0 and b.poll() is None
        r = sq_kill("--json", "--venue", "sim")
        assert json.loads(r.stdout)["processes"] == []
        r = sq_kill("--venue", "binance")  # not a terminal: the JSON document anyway
        assert r.returncode == 0 and json.loads(r.stdout)["halted"] == 1
        assert b.wait(5) == 0
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_kill_table_on_terminal(sq):
    p = spawn("clean")
    try:
        r = sq(["kill"], stdout_isatty=True, width=160)
        assert r.exit_code == 0, r.stderr
        text = r.stdout.decode()
        assert str(p.pid) in text and "halted" in text and "SIM:DEMO" in text
        assert p.wait(5) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_kill_imports_no_heavy_module():
    code = textwrap.dedent(
        """
        import sys
        sys.argv = ["sq", "kill", "--json"]
        import sq.cli
        try:
            sq.cli.main()
        except SystemExit:
            pass
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("numba", "polars", "pyarrow", "numpy", "kiteconnect", "binance", "websockets", "llvmlite", "prometheus_client", "apprise", "ray"))
        print("HEAVY", heavy, file=sys.stderr)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=30)
    assert "HEAVY []" in r.stderr, r.stderr


@pytest.mark.parametrize("command", ["kill", "reconcile"])
def test_an_unknown_venue_is_a_usage_error_not_a_quiet_success(sq, command):
    """`sq kill --venue foo` used to report 'no running processes' and exit 0 (a typo in a cron
    line would never cancel anything): exit 2 naming the venues, with a suggestion."""
    r = sq([command, "--venue", "binanse"])
    assert r.exit_code == 2
    assert "unknown venue 'binanse' (did you mean binance?); venues: sim, binance, zerodha" in r.stderr
    ok = sq([command, "--venue", "SIM", "--json"])
    assert ok.exit_code == 0, ok.stderr  # names are case-insensitive
