"""`sq import` throughput on an aggTrades-shaped CSV against polars reading the same file.

The file (bench/.cache/aggtrades_5000000.csv, made once, seeded) has Binance's aggTrades columns
(agg_trade_id, price, quantity, first_trade_id, last_trade_id, transact_time in ms,
is_buyer_maker, is_best_match) over two UTC days. `sq import` reads it as a mapped CSV
(`--map ts=transact_time,qty=quantity,buyer_maker=is_buyer_maker`, tick and lot size given so
no venue is asked), writes one zstd Parquet file per day into a fresh directory — the whole
command, in process after a warm-up — against `polars.read_csv` of the same file (reading
only, all columns). Best wall time of 3, the two run alternately so load drift on a shared
machine hits both. Rows/s; target ≥ 0.5× polars.
"""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.synthetic import CACHE

ROWS = 5_000_000
DAY_MS = 86_400_000
START_MS = 1_704_067_200_000  # 2024-01-01


def aggtrades_csv(n: int = ROWS, seed: int = 1) -> Path:
    """The benchmark's CSV, written once under bench/.cache."""
    import polars as pl

    path = CACHE / f"aggtrades_{n}.csv"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64) + 1_000_000
    price = np.round(42_000 + np.cumsum(rng.integers(-3, 4, n)) * 0.01, 2)
    qty = np.round(rng.integers(1, 200_000, n) * 0.00001, 5)
    first = ids * 3
    frame = pl.DataFrame({
        "agg_trade_id": ids, "price": price, "quantity": qty, "first_trade_id": first,
        "last_trade_id": first + rng.integers(0, 3, n), "transact_time": START_MS + np.sort(rng.integers(0, 2 * DAY_MS, n)),
        "is_buyer_maker": rng.random(n) < 0.5, "is_best_match": np.ones(n, dtype=bool),
    })
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame.write_csv(tmp)
    tmp.replace(path)
    return path


def run(report) -> None:
    import polars as pl

    from sq.core.environment import Environment
    from sq.runs.importer import ImportOptions, run_import

    src = aggtrades_csv()
    env = Environment(stdout=io.BytesIO(), stderr=sys.stderr, quiet=True)
    work = Path(tempfile.mkdtemp(prefix="sq-bench-import-"))

    def sq_import() -> float:
        out = work / "data"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        run_import(env, ImportOptions(files=(str(src),), symbol="BINANCE:BTCUSDT", out_dir=str(out),
                                      mapping=("ts=transact_time,qty=quantity,buyer_maker=is_buyer_maker",),
                                      tick_size=0.01, lot_size=0.00001))
        return time.perf_counter() - t0

    def polars_read() -> float:
        t0 = time.perf_counter()
        pl.read_csv(src)
        return time.perf_counter() - t0

    try:
        sq_import()  # warm-up: numba cache, imports
        ours, theirs = [], []
        for _ in range(3):
            theirs.append(polars_read())
            ours.append(sq_import())
        report("polars read_csv, aggTrades CSV (rows/s)", ROWS / min(theirs), "rows/s")
        report("sq import, aggTrades CSV → dataset (rows/s)", ROWS / min(ours), "rows/s", baseline=ROWS / min(theirs), target=0.5)
    finally:
        shutil.rmtree(work, ignore_errors=True)
