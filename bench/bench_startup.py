"""Cold start of `sq --help` and `sq kill --help`-style paths: median of 7 runs, target < 0.2 s.

Baseline: `python -c pass` with the same interpreter, same run, so the figure shows what sq
itself adds. Also checks that no heavy module (numba, polars, pyarrow) was imported.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

SQ = str(Path(sys.executable).with_name("sq"))


def _median_seconds(cmd: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(report) -> None:
    base = _median_seconds([sys.executable, "-c", "pass"])
    help_s = _median_seconds([SQ, "--help"])
    report("python -c pass (baseline), median of 7", base, "s")
    report("sq --help cold, median of 7 (target < 0.2 s)", help_s, "s", target=0.2, lower_is_better=True)
    report("sq --help overhead over bare python", help_s - base, "s")
    probe = "import sys, sq.cli; print(','.join(m for m in ('numba','polars','pyarrow','kiteconnect','binance') if m in sys.modules))"
    heavy = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    print(f"   heavy modules imported by sq.cli: {heavy or 'none'}")
