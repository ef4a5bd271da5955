"""`sq backtest` as a user runs it — start-up, loading the input, the run, the summary — against
hftbacktest's market-making loop alone, on the same events, measured in the same run.

The input: the shared synthetic market (bench/synthetic.py) at 11M events (10M level updates,
1M trades; ~100 MB of Parquet, cached under bench/.cache/). sq: a fresh `sq backtest --strategy mm
FILE --json` process per try (cached kernels, as after `make demo`), wall time from spawn to exit,
with the engine settings of bench_engine (1 ms order latency, power-probability queue, the same
mm limits). Peer: hftbacktest 2.x's ROIVector backtest of a market maker requoting every 10
events over the same events (bench_engine's loop), timing only its loop — not its Python start-up,
imports, data loading or JIT, which the sq figure includes. Ratio: peer loop time / sq process
time (target ≥ 1.5×). Best of three each, alternated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.synthetic import cache_path, synthetic_market

N_LEVELS, N_TRADES = 10_000_000, 1_000_000
SQ = str(Path(sys.executable).with_name("sq"))
ARGS = ["--strategy", "mm", "--json", "--latency", "1ms", "--queue-model", "prob", "--param", "clip=1", "--param", "threshold=0.6",
        "--param", "max_order_size=10", "--param", "max_position=20", "--param", "max_loss=1e12"]


def _sq_process(path: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = subprocess.run([SQ, "backtest", *ARGS, str(path)], capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"sq backtest failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    return wall, json.loads(out.stdout)


def run(report) -> None:
    from bench.bench_engine import _hftbacktest_loop_seconds

    table = synthetic_market(N_LEVELS, N_TRADES)
    path = cache_path(N_LEVELS, N_TRADES)
    n = table.num_rows
    _sq_process(path)  # the kernels' disk cache and the file's pages warm, as for a user's second run
    peer = _hftbacktest_loop_seconds(table)
    del table
    if peer is None:
        print("   hftbacktest not installed (pip install -e '.[peers]'): the peer's loop time skipped", flush=True)
    best_sq = best_peer = float("inf")
    summary: dict = {}
    for _ in range(3):
        wall, summary = _sq_process(path)
        best_sq = min(best_sq, wall)
        if peer is not None:
            best_peer = min(best_peer, peer())
    report(f"sq backtest mm, whole process ({n:,} events, {summary.get('orders', 0):,} orders; start-up + load + run), s",
           best_sq, "s")
    report("   of which the engine's run (elapsed_s)", float(summary.get("elapsed_s", float("nan"))), "s")
    if peer is not None:
        report("hftbacktest 2.x mm loop alone (same events), s", best_peer, "s")
        report("sq backtest whole process vs hftbacktest's loop alone (time ratio)", best_sq, "s", baseline=best_peer,
               target=1.5, lower_is_better=True)
