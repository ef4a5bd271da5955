"""Run every benchmark module in bench/ and print its figures (`make bench`).

Each module `bench/bench_*.py` exposes `run(report)`; `report(name, value, unit, baseline=None,
target=None)` prints one line, with the ratio value/baseline when a baseline measured in the
same run is given, and whether a target ratio is met. `python -m bench NAME…` runs only those
modules. Nothing here gates `make test`.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path


def report(name: str, value: float, unit: str, baseline: float | None = None, target: float | None = None, lower_is_better: bool = False) -> None:
    line = f"{name:<58} {value:>14,.3f} {unit}"
    if baseline:
        ratio = (baseline / value) if lower_is_better else (value / baseline)
        line += f"   ratio {ratio:6.2f}x vs baseline {baseline:,.3f}"
        if target is not None:
            line += "   OK" if ratio >= target else f"   BELOW TARGET {target}x"
    elif target is not None:
        ok = value <= target if lower_is_better else value >= target
        line += f"   target {'<=' if lower_is_better else '>='} {target:g}: {'OK' if ok else 'MISSED'}"
    print(line, flush=True)


def main(argv: list[str]) -> int:
    # the processes a benchmark spawns start as a user's do, with Python's bytecode cache: an
    # environment that sets PYTHONDONTWRITEBYTECODE recompiles every sq module at each start-up
    # (~0.2 s of `sq backtest`'s), which no installed copy of sq pays
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in argv]
    if wanted:
        names = [n for n in names if n in wanted]
    for name in names:
        mod = importlib.import_module(f"bench.{name}")
        print(f"== {name} ==", flush=True)
        t0 = time.perf_counter()
        mod.run(report)
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
