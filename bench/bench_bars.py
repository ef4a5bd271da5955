"""`sq bars` throughput, and what a `--start/--end` window saves a backtest over a long dataset.

1. `sq bars 1m`'s core (`BarStream` over the batches a Parquet reader hands it, 256K rows each)
   over 10M trades of 4 symbols spread over ~2.3 days, against polars `group_by_dynamic` of the
   same table into the same columns (open, high, low, close, volume, trades, vwap) in the same
   run. Best wall time of 3, run alternately. Target ≥ 0.5×.
2. The same through the command, `sq bars 1m IN.parquet -o OUT.parquet` in process (reading and
   writing Parquet; best of 3 after a warm-up), for information.
3. `sq backtest -s mm` over a 30-day SIM dataset (one day of one symbol per `date=` partition,
   generated once under bench/.cache/), with `--start D --end D` selecting one day against the
   whole 30 days: Parquet files opened and wall time of each (in process, after a warm-up).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench.synthetic import best_pair, cache_dir

N_TRADES = 10_000_000
SYMBOLS = ("SIM:A", "SIM:B", "SIM:C", "SIM:D")
DAYS = 30
EVENTS_PER_DAY = 20_000
BATCH = 262_144


def _trades(n: int = N_TRADES, seed: int = 1) -> pa.Table:
    """n trades in time order (20 ms apart on average) of 4 symbols, each on a random walk."""
    from sq.core import schemas as S

    rng = np.random.default_rng(seed)
    ts = 1_717_372_800_000_000_000 + np.cumsum(rng.exponential(20_000_000, n).astype(np.int64))
    sym = rng.integers(0, len(SYMBOLS), n).astype(np.int32)
    ticks = 100_000 + np.cumsum(rng.integers(-1, 2, n))
    qty = rng.integers(1, 100, n).astype(np.float64)
    side = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    ins = {s: S.Instrument(s, "sim", 0.01) for s in SYMBOLS}
    schema = S.market_schema(ins)
    batch = S.market_batch(schema, S.symbol_dictionary(list(SYMBOLS)), ts, ts, sym, np.full(n, S.TRADE, np.uint8), side, ticks / 100.0,
                           qty, np.arange(1, n + 1, dtype=np.int64))
    return pa.Table.from_batches([batch])


def _sq_bars(batches) -> int:
    from sq.core.bars import parse_interval
    from sq.core.barstream import BarStream

    bs = BarStream({}, parse_interval("1m"))
    rows = 0
    for b in batches:
        out = bs.process(b)
        rows += out.num_rows if out is not None else 0
    return rows + sum(b.num_rows for b in bs.finish())


def _polars_bars(df) -> int:
    import polars as pl

    return df.group_by_dynamic("ts", every="1m", group_by="symbol").agg(
        pl.col("price").first().alias("open"), pl.col("price").max().alias("high"), pl.col("price").min().alias("low"),
        pl.col("price").last().alias("close"), pl.col("qty").sum().alias("volume"), pl.len().alias("trades"),
        ((pl.col("price") * pl.col("qty")).sum() / pl.col("qty").sum()).alias("vwap"),
    ).height


def _sq(args: list[str]) -> bytes:
    """`sq ARGS` in process; its stdout."""
    from sq.cli import app
    from sq.core.environment import Environment

    env = Environment(stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=io.StringIO(), stdin_isatty=False, stdout_isatty=False)
    code = app(args=args, prog_name="sq", obj=env, standalone_mode=False)
    if code:
        raise RuntimeError(f"sq {' '.join(args)} failed ({code}): {env.stderr.getvalue()}")
    return env.stdout.getvalue()


def run(report) -> None:
    import polars as pl
    import pyarrow.parquet as pq

    table = _trades()
    batches = table.to_batches(max_chunksize=BATCH)
    df = pl.from_arrow(table.select(["ts", "symbol", "price", "qty"]))
    n_bars = _sq_bars(batches[:2])  # compile / load the kernels
    t_sq, t_pl = best_pair(lambda: _sq_bars(batches), lambda: _polars_bars(df))
    n_bars, n_pl = _sq_bars(batches), _polars_bars(df)
    assert n_bars == n_pl, (n_bars, n_pl)
    base = N_TRADES / t_pl / 1e6
    report(f"baseline: polars group_by_dynamic 1m, {N_TRADES:,} trades -> {n_pl:,} bars", base, "M trades/s")
    report("sq bars 1m core (BarStream, 256K-row batches)", N_TRADES / t_sq / 1e6, "M trades/s", baseline=base, target=0.5)

    src = cache_dir() / f"trades_{N_TRADES}.parquet"
    if not src.exists():
        pq.write_table(table, src, compression="zstd")
    out = cache_dir() / "bars-1m.parquet"
    best = float("inf")
    for _ in range(4):  # the first run warms the page cache
        t0 = time.perf_counter()
        _sq(["bars", "1m", str(src), "-o", str(out)])
        best = min(best, time.perf_counter() - t0)
    report("sq bars 1m parquet -> parquet, in process", N_TRADES / best / 1e6, "M trades/s")
    _window(report)


def _dataset() -> Path:
    """DAYS days of SIM:DEMO (seed d starts on day d), one file per date= partition, made once."""
    from sq.core import datasets
    from sq.venues.sim.venue import SimVenue

    root = cache_dir() / f"days{DAYS}_{EVENTS_PER_DAY}"
    if (root / ".complete").exists():
        return root
    for seed in range(1, DAYS + 1):
        venue = SimVenue(["SIM:DEMO"], seed=seed)
        source = venue.market_source(limit=EVENTS_PER_DAY)
        day = pa.Table.from_batches(list(source.batches()), schema=source.schema)
        md = dict(day.schema.metadata)
        md[b"sq.end"] = b"ok"
        first = int(day.column("ts").cast(pa.int64())[0].as_py())
        datasets.write_partition_file(datasets.partition_dir(root, "sim", "SIM:DEMO", first), "day.parquet", day.replace_schema_metadata(md))
    (root / ".complete").write_text("")
    return root


class _OpenCounter:
    """Counts the Parquet files pyarrow opens under `root` while active."""

    def __init__(self, root: Path):
        self.root = str(root)
        self.paths: set[str] = set()

    def __enter__(self):
        import pyarrow.parquet as pq

        self._saved = pq.ParquetFile, pq.read_schema
        real_file, real_schema = self._saved

        def parquet_file(source, *a, **kw):
            self._note(source)
            return real_file(source, *a, **kw)

        def read_schema(where, *a, **kw):
            self._note(where)
            return real_schema(where, *a, **kw)

        pq.ParquetFile, pq.read_schema = parquet_file, read_schema
        return self

    def _note(self, path) -> None:
        if str(path).startswith(self.root):
            self.paths.add(str(path))

    def __exit__(self, *exc):
        import pyarrow.parquet as pq

        pq.ParquetFile, pq.read_schema = self._saved


def _window(report) -> None:
    from sq.core import datasets

    root = _dataset()
    days = sorted({datasets.partition_date(p) for p in root.rglob("*.parquet")})
    one = str(days[len(days) // 2])
    _sq(["backtest", "-s", "mm", str(root), "--start", one, "--end", one, "--json"])  # warm-up
    timings = {}
    for label, extra in (("one day", ["--start", one, "--end", one]), (f"all {len(days)} days", [])):
        best, files = float("inf"), 0
        for _ in range(3):
            with _OpenCounter(root) as counter:
                t0 = time.perf_counter()
                _sq(["backtest", "-s", "mm", str(root), *extra, "--json"])
                best = min(best, time.perf_counter() - t0)
            files = len(counter.paths)
        timings[label] = best
        report(f"sq backtest -s mm, {label} of a {len(days)}-day dataset: files opened", files, "files")
        report(f"sq backtest -s mm, {label} of a {len(days)}-day dataset: wall time", best, "s")
    report("one-day window vs the whole dataset, speed-up", timings[f"all {len(days)} days"] / timings["one day"], "x")
