"""Cold compile of the `sq paper --strategy mm SIM:...` path (issue #14: target ≤ 20 s).

`python -m sq.devtools warm` compiles exactly what that run compiles (the event engine's kernels
with mm's handlers, the simulated exchange's flow) — here into a fresh, empty NUMBA_CACHE_DIR,
in a subprocess, then again with that cache filled. Baselines from the same run: the warm start
of the same command and `python -c "import numba"`. Wall seconds depend on what else the machine
runs, so the child's CPU seconds (user + system) are reported too.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time

TARGET_S = 20.0


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(report) -> None:
    with tempfile.TemporaryDirectory(prefix="sq-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        warm_cmd = [sys.executable, "-m", "sq.devtools", "warm"]
        numba_s, _ = _timed([sys.executable, "-c", "import numba"], env)
        cold_s, cold_cpu = _timed(warm_cmd, env)
        warm_s, _ = _timed(warm_cmd, env)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    report("python -c 'import numba' (baseline)", numba_s, "s")
    report("paper mm path, warm cache (baseline)", warm_s, "s")
    report("paper mm path, cold compile, wall (target <= 20 s)", cold_s, "s", target=TARGET_S, lower_is_better=True)
    report("paper mm path, cold compile, cpu (user+sys)", cold_cpu, "s")
    report("cold compile / warm start", cold_s / warm_s, "x")
    print(f"   load average at the end: {load:.1f} on {os.cpu_count()} cores")
