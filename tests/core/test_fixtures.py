"""The committed recorded dataset works with every reader: polars, sq book, sq backtest."""

from __future__ import annotations

import json

import polars as pl

from tests.support.process import ROOT

DATASET = ROOT / "fixtures" / "sim-demo"


def test_polars_reads_the_hive_dataset():
    df = pl.scan_parquet(str(DATASET / "**" / "*.parquet"), hive_partitioning=True).collect()
    assert df.height >= 40_000
    assert set(df["symbol"].cast(pl.String).unique()) == {"SIM:DEMO", "SIM:ALT"}
    assert set(df["venue"].unique()) == {"sim"}


def test_book_and_backtest_on_the_dataset(sq):
    r = sq(["book", str(DATASET), "--depth", "3", "--format", "jsonl"])
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert {row["symbol"] for row in rows} == {"SIM:DEMO", "SIM:ALT"}
    r = sq(["backtest", "--strategy", "mm", str(DATASET), "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["events"] >= 40_000 and sorted(doc["symbols"]) == ["SIM:ALT", "SIM:DEMO"] and doc["orders"] > 0
