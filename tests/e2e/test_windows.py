"""`--start/--end` on `sq book`, `sq bars`, `sq backtest` and `sq paper --from`: over a dataset of
several days the window selects exactly the rows of those UTC days, files of other days are never
opened, and bad windows get one line and the documented exit code."""

from __future__ import annotations

import builtins
import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sq.core import datasets
from tests.support.barsref import as_frame, assert_same_bars, polars_time_bars
from tests.support.marketdata import random_market, spread_over_days, write_daily_dataset, write_market_file

DAYS = 5


def rows_between(table: pa.Table, start: dt.date | None, end: dt.date | None) -> pa.Table:
    lo, hi = datasets.window_ns(start, end)
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    keep = (ts >= (lo if lo is not None else ts.min())) & (ts < (hi if hi is not None else ts.max() + 1))
    return table.filter(pa.array(keep))


@pytest.fixture(scope="module")
def sim_days(tmp_path_factory):
    """Two SIM symbols' market over five UTC days, as a dataset, and the table it holds."""
    from sq.venues.sim.venue import SimVenue

    venue = SimVenue(["SIM:DEMO", "SIM:ALT"], seed=11)
    table = spread_over_days(pa.Table.from_batches(list(venue.market_source(limit=40_000).batches())), DAYS)
    root = tmp_path_factory.mktemp("days") / "data"
    files = write_daily_dataset(root, table)
    first = dt.date.fromisoformat(str(table.column("ts")[0].as_py().date()))
    return root, table, files, [first + dt.timedelta(days=k) for k in range(DAYS)]


@pytest.fixture
def opened(monkeypatch):
    """Every path sq opens (Python's open, and pyarrow's Parquet file and schema readers)."""
    seen: list[str] = []
    real_open, real_file, real_schema = builtins.open, pq.ParquetFile, pq.read_schema

    def track(path):
        if isinstance(path, (str, bytes)) or hasattr(path, "__fspath__"):
            seen.append(str(path))

    def open_(file, *a, **kw):
        track(file)
        return real_open(file, *a, **kw)

    def parquet_file(source, *a, **kw):
        track(source)
        return real_file(source, *a, **kw)

    def read_schema(where, *a, **kw):
        track(where)
        return real_schema(where, *a, **kw)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(pq, "ParquetFile", parquet_file)
    monkeypatch.setattr(pq, "read_schema", read_schema)
    return seen


def dataset_files_opened(seen: list[str], root) -> set[str]:
    return {p for p in seen if p.startswith(str(root))}


def in_days(files, days) -> set[str]:
    return {str(f) for f in files if datasets.partition_date(f) in days}


def test_book_window_reads_only_its_days_and_equals_the_book_of_their_rows(sq, sim_days, opened, tmp_path):
    root, table, files, days = sim_days
    r = sq(["book", str(root), "--start", str(days[1]), "--end", str(days[2]), "-o", str(tmp_path / "w.parquet")])
    assert r.exit_code == 0, r.stderr
    assert dataset_files_opened(opened, root) == in_days(files, days[1:3])
    ref = write_market_file(rows_between(table, days[1], days[2]), tmp_path / "ref.parquet")
    assert sq(["book", ref, "-o", str(tmp_path / "ref-book.parquet")]).exit_code == 0
    import polars as pl

    got, want = (pl.read_parquet(tmp_path / name).with_columns(pl.col("symbol").cast(pl.String)) for name in ("w.parquet", "ref-book.parquet"))
    assert got.height > 100 and got.equals(want)
    lo, hi = datasets.window_ns(days[1], days[2])
    ts = got["ts"].cast(pl.Int64)
    assert ts.min() >= lo and ts.max() < hi


def test_backtest_window_equals_the_backtest_of_its_rows(sq, sim_days, opened, tmp_path):
    root, table, files, days = sim_days
    r = sq(["backtest", "-s", "mm", str(root), "--start", str(days[3]), "--end", str(days[3]), "--json"])
    assert r.exit_code == 0, r.stderr
    assert dataset_files_opened(opened, root) == in_days(files, days[3:4])
    window = json.loads(r.stdout)
    ref = write_market_file(rows_between(table, days[3], days[3]), tmp_path / "ref.parquet")
    whole = json.loads(sq(["backtest", "-s", "mm", ref, "--json"]).stdout)
    assert window["events"] == whole["events"] == rows_between(table, days[3], days[3]).num_rows
    for key in ("orders", "fills", "position", "pnl", "rejections"):
        assert window[key] == whole[key], key
    assert window["inputs"] == sorted(in_days(files, days[3:4]))


def test_backtest_sweep_window(sq, sim_days):
    root, table, _, days = sim_days
    r = sq(["backtest", "-s", "mm", str(root), "--start", str(days[0]), "--end", str(days[1]), "--sweep", "clip=1,2", "--jobs", "2",
            "--json"])
    assert r.exit_code == 0, r.stderr
    runs = json.loads(r.stdout)["runs"]
    assert [run["events"] for run in runs] == [rows_between(table, days[0], days[1]).num_rows] * 2


def test_paper_replay_window(sq, sim_days, tmp_path):
    root, table, _, days = sim_days
    journal = tmp_path / "j"
    r = sq(["paper", "-s", "mm", "--from", str(root), "--start", str(days[4]), "--journal", str(journal), "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["events"] == rows_between(table, days[4], None).num_rows
    from sq.core import journal as J

    start = J.load(journal).start
    assert (start["start"], start["end"]) == (str(days[4]), None)


def test_bars_window_selects_exactly_those_days(sq, tmp_path, opened):
    table = random_market(3, 6_000, mean_gap_ns=60_000_000_000)  # several days with holes
    root = tmp_path / "data"
    files = write_daily_dataset(root, table)
    days = sorted({datasets.partition_date(f) for f in files})
    assert len(days) >= 4
    opened.clear()
    r = sq(["bars", "1h", str(root), "--start", str(days[1]), "--end", str(days[2]), "-o", str(tmp_path / "b.parquet")])
    assert r.exit_code == 0, r.stderr
    assert dataset_files_opened(opened, root) == in_days(files, days[1:3])
    assert_same_bars(as_frame(pq.read_table(tmp_path / "b.parquet")), polars_time_bars(rows_between(table, days[1], days[2]), "1h"))
    # a file outside any date= partition is filtered by its rows
    single = write_market_file(table, tmp_path / "all.parquet")
    r = sq(["bars", "1h", single, "--end", str(days[0]), "-o", str(tmp_path / "first.parquet")])
    assert r.exit_code == 0, r.stderr
    assert_same_bars(as_frame(pq.read_table(tmp_path / "first.parquet")), polars_time_bars(rows_between(table, None, days[0]), "1h"))


@pytest.mark.parametrize("command", [["book"], ["bars", "1m"], ["backtest", "-s", "mm"], ["paper", "-s", "mm", "--from"]])
def test_bad_and_empty_windows(sq, sim_days, command, tmp_path):
    root, table, _, days = sim_days
    extra = ["--journal", str(tmp_path / "j")] if command[0] == "paper" else []
    r = sq([*command, str(root), "--start", str(days[2]), "--end", str(days[1]), *extra])
    assert r.exit_code == 2 and r.stderr_lines == [f"sq: error: --start {days[2]} is after --end {days[1]}"], r.stderr
    r = sq([*command, str(root), "--start", "2030-01-01", "--end", "2030-01-02", *extra])
    assert r.exit_code == 65, r.stderr
    assert r.stderr_lines == ["sq: error: no market events between 2030-01-01 and 2030-01-02 (--start/--end, UTC days)"]
    # a window inside a single file's time range that holds no rows: the rows decide
    ref = write_market_file(rows_between(table, days[0], days[0]), tmp_path / "day0.parquet")
    r = sq([*command, ref, "--start", str(days[1]), *extra])
    assert r.exit_code == 65 and r.stderr_lines == [f"sq: error: no market events between {days[1]} and the end (--start/--end, UTC days)"]
    assert not (tmp_path / "j").exists()  # a paper replay that cannot start leaves no journal
