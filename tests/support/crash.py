"""Crash a running `sq` process on purpose: start it, wait for a condition, SIGKILL it."""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Callable


def kill9_when(args: list[str], env: dict, done: Callable[[], bool], timeout: float, what: str) -> None:
    """Run `args` (an `sq` command line), poll `done()` until it holds, then kill the process
    with SIGKILL; fail naming `what` if the process exits first or `timeout` passes."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        end = time.monotonic() + timeout
        while not done():
            if p.poll() is not None:
                raise AssertionError(f"the process exited before {what}: {p.communicate()[1]}")
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
