"""Reusable pieces of the `sq live` crash tests, the same for every venue fake: a live-mode config
file, wait until a live process has registered or has orders working at the venue, kill it with
SIGKILL at random moments before a clean resume, and `sq kill` it in the middle of a burst of
orders."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable


def live_config(tmp_path: Path, rate: int = 20, extra: str = "") -> Path:
    """A 0600 live-mode config file with this order-rate limit (plus `extra` TOML)."""
    cfg = tmp_path / "live.toml"
    cfg.write_text(f'trading_mode = "live"\n[risk]\nmax_order_rate = {rate}\n{extra}')
    os.chmod(cfg, 0o600)
    return cfg


def _until(proc: subprocess.Popen, done: Callable[[], bool], timeout: float, failure: str) -> None:
    """Return once `done()`; fail if `proc` (an `sq live`) exits first or `timeout` passes."""
    end = time.time() + timeout
    while time.time() < end:
        if done():
            return
        if proc.poll() is not None:
            raise AssertionError(f"sq live exited early: {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError(failure)


def registered(proc: subprocess.Popen, timeout: float = 60) -> None:
    """Return once `proc` (an `sq live`) is in sq's process registry; fail if it exits first."""
    from sq.core import runtime

    _until(proc, lambda: any(e.pid == proc.pid for e in runtime.list_procs(clean=False)), timeout, "sq live did not start")


def orders_working(proc: subprocess.Popen, count: Callable[[], int], n: int = 1, timeout: float = 60) -> None:
    """Return once `count()` (the orders open at the venue) reaches `n`; fail if `proc` (an
    `sq live`) exits first or places nothing in time."""
    _until(proc, lambda: count() >= n, timeout, "sq live placed no order in time")


def kill9_then_resume(start: Callable[..., subprocess.Popen], n: int, seed: int) -> tuple[list[str], str]:
    """`start(for_, resume)` launches `sq live` on one journal. Run it n times, each killed with
    SIGKILL at a random moment (mid-send, mid-journal, mid-check) once registered, the first
    fresh and the rest `--resume`d; then resume it once more to a clean end (exit 0). Returns
    every run's output and the last run's stdout."""
    rng = random.Random(seed)
    outputs = []
    for i in range(n):
        p = start("30s", resume=i > 0)
        registered(p)
        time.sleep(rng.uniform(0.0, 1.5))
        p.send_signal(signal.SIGKILL)
        out, err = p.communicate(timeout=30)
        outputs.append(out + err)
    p = start("1s", resume=True)
    out, err = p.communicate(timeout=120)
    outputs.append(out + err)
    assert p.returncode == 0, err
    return outputs, out


def kill_mid_burst(proc: subprocess.Popen, wait_open: Callable[[], None], kill: Callable[..., subprocess.CompletedProcess]) -> dict:
    """Once `proc` (an `sq live` requoting at a high order rate) has orders open at the venue,
    let it requote for half a second, then run `sq kill --json`: the process must halt cleanly
    (kill exits 0 reporting it halted, live exits 0). Returns kill's JSON report."""
    try:
        wait_open()
        time.sleep(0.5)  # mid-burst: the market maker requotes on every book change
        r = kill("--json", "--timeout", "20")
        doc = json.loads(r.stdout)
        assert [p["outcome"] for p in doc["processes"]] == ["halted"], r.stderr
        assert r.returncode == 0 and doc["ok"], r.stdout
        proc.wait(30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    return doc
