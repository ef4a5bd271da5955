"""Kernels compiled before the clock: `sq paper` warms up before its market source opens (the
simulated exchange's clock, and so `--for`, starts after it), and a cold compile is announced
on stderr first — a spinner on a terminal, one line otherwise, never on stdout."""

from __future__ import annotations

import io
import time

import pytest

from sq.core.environment import Environment
from sq.runs import paper, warmup


def fake_env(*, stderr_isatty: bool = False, quiet: bool = False) -> Environment:
    return Environment(stdin=io.BufferedReader(io.BytesIO(b"")), stdout=io.BytesIO(), stderr=io.StringIO(),
                       stdin_isatty=False, stdout_isatty=False, stderr_isatty=stderr_isatty, stdout_ispipe=True,
                       quiet=quiet, console_width=100)


def test_paper_warms_up_before_the_market_source_opens_and_its_clock_starts(sq, tmp_path, monkeypatch):
    from sq.core.engine.runner import warm_up as engine_warm_up

    events: list[tuple[str, int]] = []

    def slow_warm_up(config, strategy):  # a first-time compile, made slow on purpose
        events.append(("warm-up starts", time.time_ns()))
        engine_warm_up(config, strategy, calendar=False)
        time.sleep(0.5)
        events.append(("warm-up ends", time.time_ns()))

    opened = []
    open_live_source = paper.open_live_source

    def recording_open(env, plan, config):
        events.append(("source opens", time.time_ns()))
        source = open_live_source(env, plan, config)
        opened.append(source)
        return source

    monkeypatch.setattr(paper, "_ENGINE_WARM_UP", slow_warm_up)
    monkeypatch.setattr(paper, "open_live_source", recording_open)
    monkeypatch.setattr(warmup, "cache_is_cold", lambda kind="event": True)
    r = sq(["paper", "--strategy", "mm", "SIM:DEMO", "--for", "1s", "--seed", "7", "--journal", str(tmp_path / "j")])
    assert r.exit_code == 0, r.stderr
    assert [e for e, _ in events] == ["warm-up starts", "warm-up ends", "source opens"]
    warm_end = events[1][1]
    venue = opened[0].venue
    assert venue.start_ns >= warm_end, "the simulated exchange's clock (and --for) started before the warm-up ended"
    # announced first, on stderr only
    assert "compiling engine kernels, one time" in r.stderr
    assert r.stderr.index("compiling engine kernels") < r.stderr.index("paper mm SIM:DEMO")
    assert b"compiling" not in r.stdout


def test_a_cold_cache_is_announced_at_once_as_one_line_when_stderr_is_not_a_terminal():
    env = fake_env()
    with warmup.announced(env, cold=True) as state:
        said = env.stderr.getvalue()
    assert said == f"sq: {warmup.message()}\n"
    assert state["announced"]
    assert env.stdout.getvalue() == b""


def test_a_warm_cache_says_nothing():
    env = fake_env()
    with warmup.announced(env, cold=False) as state:
        pass
    assert env.stderr.getvalue() == ""
    assert not state["announced"]


def test_a_warm_up_that_still_compiles_is_announced_once_it_takes_a_while(monkeypatch):
    monkeypatch.setattr(warmup, "LATE_S", 0.01)
    env = fake_env()
    with warmup.announced(env, cold=False) as state:
        deadline = time.monotonic() + 30
        while "compiling" not in env.stderr.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert warmup.message() in env.stderr.getvalue()
    assert state["announced"]


def test_on_a_terminal_the_announcement_is_a_spinner_on_stderr():
    env = fake_env(stderr_isatty=True)
    with warmup.announced(env, cold=True):
        time.sleep(0.2)  # the spinner draws a few frames meanwhile
    out = env.stderr.getvalue()
    assert warmup.message() in out
    assert "\x1b[" in out  # drawn and cleared in place (a plain line has no escape codes)
    assert env.stdout.getvalue() == b""


def test_quiet_announces_nothing():
    env = fake_env(quiet=True)
    with warmup.announced(env, cold=True):
        pass
    assert env.stderr.getvalue() == ""


@pytest.mark.parametrize("kind", ["event", "bar"])
def test_the_cold_cache_check_never_compiles(kind):
    """It reads numba's index only: the kernel has no compiled overload afterwards unless it had one."""
    from sq.core.engine import barexec, kernel

    dispatcher = kernel.run if kind == "event" else barexec.run
    before = len(dispatcher.overloads)
    assert warmup.cache_is_cold(kind) in (True, False)
    assert len(dispatcher.overloads) == before


def test_a_cold_cache_compiles_the_engine_here_and_the_rest_in_a_second_process(monkeypatch):
    """On a cold cache the event warm-up splits the compile in two (sq.runs.warmpart): the engine's
    kernels in this process, the strategy's handlers and the venues' code in another; the
    ordinary warm-up then only loads. A warm cache starts no second process."""
    from sq.core.config import Config
    from sq.core.environment import Environment
    from sq.core.strategy import loader
    from sq.runs import warmpart, warmup

    calls = []
    monkeypatch.setattr(warmpart, "parallel_cold_compile", lambda config, strategy, venues: calls.append((strategy.spec, venues)))
    for cold in (True, False):
        monkeypatch.setattr(warmup, "cache_is_cold", lambda kind="event", cold=cold: cold)
        warmup.warm_up(Environment(), Config(), loader.load("mm"), venues=("sim",))
    assert calls == [("mm", ("sim",))]


def test_the_second_process_compiles_by_spec_and_venue():
    """`python -m sq.runs.warmpart SPEC VENUE…` loads the strategy by its spec and warms the venue
    (here from the cache the suite has filled: it must simply succeed)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "sq.runs.warmpart", "mm", "sim"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "sq.runs.warmpart", "./no_such_strategy.py"], capture_output=True, text=True, timeout=600)
    assert r.returncode != 0  # a spec that does not load fails the helper (the run's own warm-up then reports it)
