"""A bar strategy over one year of 1-minute bars for 50 symbols (≈ 9M bars), and its baseline.

The data: 50 symbols × 180,000 one-minute bars (125 days around the clock = one year of NSE
minutes), a seeded random walk with hourly drifts, one Parquet file generated once under
bench/.cache/. The strategy: the shipped `ma_cross` (fast 10 / slow 30 SMA, long above, short
below with `short=1`), executed at the next bar's open with fees, risk checks and journal rows.

1. `sq backtest --strategy ma_cross FILE --json` as a real process (start-up, reading, signals,
   execution): wall time, target ≤ 10 s.
2. Its in-process run (`run_backtest`, after a warm-up) against a plain polars computation of
   the same signals from the same file (read, the two rolling means over each symbol, the
   target column): ratio = polars time / sq time, best of 3 each, run alternately. sq does more
   than the baseline (it also executes and books every order), so ≥ 0.5× is the target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.synthetic import cache_dir

N_SYMBOLS = 50
N_BARS = 180_000
NS_PER_MIN = 60_000_000_000
T0 = 1_704_067_200_000_000_000  # 2024-01-01 UTC
PARAMS = ("--param", "fast=10", "--param", "slow=30", "--param", "short=1", "--param", "max_position=1e9",
          "--param", "max_order_size=1e9", "--param", "max_loss=inf")


def _bars_file() -> Path:
    from sq.core import schemas as S

    path = cache_dir() / f"bars-{N_SYMBOLS}x{N_BARS}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(11)
    syms = [f"SIM:B{k:02d}" for k in range(N_SYMBOLS)]
    n = N_SYMBOLS * N_BARS
    drift = np.repeat(rng.normal(0, 0.0004, (N_BARS // 60 + 1, N_SYMBOLS)), 60, axis=0)[:N_BARS]
    rets = drift + rng.normal(0, 0.001, (N_BARS, N_SYMBOLS))
    close = 100.0 * np.exp(np.cumsum(rets, axis=0))
    open_ = np.vstack([close[:1], close[:-1]])
    wiggle = np.abs(rng.normal(0, 0.0008, (N_BARS, N_SYMBOLS)))
    high = np.maximum(open_, close) * (1 + wiggle)
    low = np.minimum(open_, close) * (1 - wiggle)
    q = lambda a: np.round(a.reshape(-1), 2)  # noqa: E731  (rows in (time, symbol) order)
    ts = np.repeat(T0 + np.arange(N_BARS, dtype=np.int64) * NS_PER_MIN, N_SYMBOLS)
    code = np.tile(np.arange(N_SYMBOLS, dtype=np.int32), N_BARS)
    o, c = q(open_), q(close)
    h, lo = np.maximum(q(high), np.maximum(o, c)), np.minimum(q(low), np.minimum(o, c))
    ins = {s: S.Instrument(s, "sim", 0.01) for s in syms}
    schema = S.bars_schema(ins, "1m")
    batch = pa.RecordBatch.from_arrays(
        [pa.array(ts).view(S.TS), S.dict_column(code, S.symbol_dictionary(syms)), pa.array(o), pa.array(h), pa.array(lo),
         pa.array(c), pa.array(rng.integers(1, 1000, n).astype(np.float64)), pa.array(np.ones(n, np.int64)),
         pa.nulls(n, pa.float64()), pa.nulls(n, pa.float64())], schema=schema)
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.Table.from_batches([batch]), tmp, row_group_size=1_000_000)
    os.replace(tmp, path)
    return path


def _polars_signals(path: Path) -> int:
    import polars as pl

    df = pl.read_parquet(path, columns=["ts", "symbol", "close"])
    out = df.with_columns(fast=pl.col("close").rolling_mean(10).over("symbol"),
                          slow=pl.col("close").rolling_mean(30).over("symbol")).with_columns(
        target=pl.when(pl.col("fast") > pl.col("slow")).then(1.0).when(pl.col("fast") < pl.col("slow")).then(-1.0))
    return int(out["target"].is_not_null().sum())


def _sq_run(path: Path) -> dict:
    import io

    from sq.core.environment import Environment
    from sq.runs.backtest import run_backtest

    env = Environment(stdin=io.BufferedReader(io.BytesIO(b"")), stdout=io.BytesIO(), stderr=io.StringIO(), stdin_isatty=True,
                      stdout_isatty=False, stderr_isatty=False)
    params = [PARAMS[i + 1] for i in range(0, len(PARAMS), 2)]
    return run_backtest(env, [str(path)], "ma_cross", params=params)


def run(report) -> None:
    path = _bars_file()
    bars = pq.ParquetFile(path).metadata.num_rows
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sq", "backtest", "--strategy", "ma_cross", str(path), "--json", *PARAMS],
                          capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"sq backtest failed: {proc.stderr.strip()[-500:]}")
    summary = json.loads(proc.stdout)
    report(f"sq backtest ma_cross, {bars / 1e6:.1f}M 1m bars x {N_SYMBOLS} symbols, process", wall, "s wall", target=10.0,
           lower_is_better=True)
    report("  fills in that run (information)", float(summary["fills"]), "fills")
    _sq_run(path)  # warm-up (kernels, imports)
    _polars_signals(path)
    sq_best, pl_best = float("inf"), float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        _sq_run(path)
        sq_best = min(sq_best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        _polars_signals(path)
        pl_best = min(pl_best, time.perf_counter() - t0)
    report("ma_cross backtest in process (read + signals + execution)", bars / sq_best / 1e6, "M bars/s",
           baseline=bars / pl_best / 1e6, target=0.5)
