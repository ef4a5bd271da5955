"""A 1,000-point random search over one day of L2 data (`sq backtest --search random:1000`).

The data: the shared synthetic stream (bench/synthetic.py, 2.2 M level updates and trades of one
symbol) with its timestamps stretched over 24 hours, so it is one UTC day of L2 events. The
search: `mm` over clip ∈ [0.5, 3] (continuous), threshold ∈ {0.2, 0.4, 0.6, 0.8} and
max_position = 5:40:5, seeded, on the local process pool of every CPU (each worker loads the
day once), through `sweep.run_sweep` as the CLI runs it.

Reported: the search's wall time, points/s, and events/s per worker, against the baseline of
one point of the same search run alone in one process (events/s, load and warm-up excluded).
`SQ_BENCH_QUICK=1` (or `python -m bench search --quick`) runs 50 points over a tenth of the
events instead.
"""

from __future__ import annotations

import io
import os
import sys
import time

POINTS = 1_000
QUICK_POINTS = 50
SWEEPS = ["clip=0.5:3", "threshold=0.2,0.4,0.6,0.8", "max_position=5:40:5"]
PARAMS = ["max_loss=1e12", "max_order_size=10"]


def _quick() -> bool:
    return os.environ.get("SQ_BENCH_QUICK", "") not in ("", "0") or "--quick" in sys.argv


def day_of_l2(fraction: float = 1.0) -> str:
    """The synthetic stream's events spread over one UTC day, as a Parquet file (cached)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.synthetic import cache_dir, synthetic_market

    path = cache_dir() / f"day-l2-{fraction:g}.parquet"
    if path.exists():
        return str(path)
    table = synthetic_market()
    if fraction < 1.0:
        table = table.slice(0, int(table.num_rows * fraction))
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    day0 = (int(ts[0]) // 86_400_000_000_000) * 86_400_000_000_000
    scale = (86_400_000_000_000 - 1) / max(1, int(ts[-1] - ts[0]))
    new = day0 + ((ts - ts[0]) * scale).astype(np.int64)
    lag = table.column("recv_ts").cast(pa.int64()).to_numpy() - ts
    ts_type = table.schema.field("ts").type
    table = table.set_column(table.schema.get_field_index("ts"), "ts", pa.array(new).cast(ts_type))
    table = table.set_column(table.schema.get_field_index("recv_ts"), "recv_ts", pa.array(new + lag).cast(table.schema.field("recv_ts").type))
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    return str(path)


def _env():
    from sq.core.environment import Environment

    return Environment(stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=io.StringIO(), stdin_isatty=True, stdout_isatty=False)


def _search(data: str, points: int, jobs: int) -> dict:
    from sq.runs.sweep import run_sweep

    return run_sweep(_env(), [data], "mm", params=PARAMS, sweeps=SWEEPS, fill={"order_latency_ns": 1_000_000, "queue_model": "prob"},
                     seed=7, jobs=jobs, search=f"random:{points}")


def run(report) -> None:
    from sq.runs.sweep import default_jobs

    quick = _quick()
    data = day_of_l2(0.1 if quick else 1.0)
    points = QUICK_POINTS if quick else POINTS
    _search(data, 1, 1)  # numba cache and imports loaded: the baseline measures the run alone
    t0 = time.perf_counter()
    one = _search(data, 1, 1)
    events = one["events"]
    base_rate = events / one["runs"][0]["elapsed_s"]
    report(f"baseline: one point alone in one process ({events:,} events, 1 day), events/s", base_rate / 1e6, "M/s")
    report("baseline: one point, whole call (load, warm-up, run), wall", time.perf_counter() - t0, "s")
    jobs = default_jobs()
    t0 = time.perf_counter()
    doc = _search(data, points, jobs)
    wall = time.perf_counter() - t0
    assert doc["points"] == points
    report(f"random search {points:,} points over 1 day, pool of {jobs}: wall time", wall, "s")
    report(f"random search {points:,} points: points/s", points / wall, "/s")
    report(f"random search events/s per worker ({events * points:,} events in all)", events * points / wall / jobs / 1e6, "M/s",
           baseline=base_rate / 1e6)
