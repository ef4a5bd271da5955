"""Reusable pieces of the `sq live` crash tests, the same for every venue fake: wait until a live
process has registered, kill it with SIGKILL at random moments before a clean resume, and `sq kill`
it in the middle of a burst of orders."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from typing import Callable


def registered(proc: subprocess.Popen, timeout: float = 60) -> None:
    """Return once `proc` (an `sq live`) is in sq's process registry; fail if it exits first."""
    from sq.core import runtime

    end = time.time() + timeout
    while time.time() < end:
        if any(e.pid == proc.pid for e in runtime.list_procs(clean=False)):
            return
        if proc.poll() is not None:
            raise AssertionError(f"sq live exited: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("sq live did not start")


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
