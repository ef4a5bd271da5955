"""sq.runs.executors: one task model (job number, index, params) for every research executor."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from sq.core.exits import UsageError
from sq.runs import sweep
from sq.runs.executors import Task, parse_executor, run_tasks


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory):
    from sq.venues.sim.venue import SimVenue

    table = pa.Table.from_batches(list(SimVenue(["SIM:DEMO"], seed=3).market_source(limit=12_000).batches()))
    md = dict(table.schema.metadata or {})
    md[S.META_END] = b"ok"
    path = tmp_path_factory.mktemp("exec") / "demo.parquet"
    pq.write_table(table.replace_schema_metadata(md), path)
    return str(path), table.column("ts")


def test_parse_executor():
    assert parse_executor(None).kind == "local"
    assert parse_executor("LOCAL").kind == "local"
    for bad in ("", "threads", "local:4"):
        if bad:
            with pytest.raises(UsageError, match="--executor"):
                parse_executor(bad)


def test_tasks_of_two_jobs_give_the_same_summaries_in_process_and_on_a_pool(sim_file):
    path, _ = sim_file
    fast = sweep.Job((path,), "mm", {}, 1, None, {}, ".")
    slow = sweep.Job((path,), "mm", {"order_latency_ns": 50_000_000}, 1, None, {}, ".")  # another job: slower orders
    tasks = [Task(j, i, ("max_loss=1e12", f"clip={c}")) for j in (0, 1) for i, c in enumerate((1.0, 2.0))]
    here = {(r["job"], r["index"]): r["summary"] for r in run_tasks([fast, slow], tasks, workers=1)}
    pooled = {(r["job"], r["index"]): r["summary"] for r in run_tasks([fast, slow], tasks, workers=2)}
    assert here.keys() == pooled.keys() == {(0, 0), (0, 1), (1, 0), (1, 1)}
    for k in here:
        for field in ("events", "orders", "fills", "pnl", "position"):
            assert here[k][field] == pooled[k][field], (k, field)
    assert here[(1, 0)]["fills"] != here[(0, 0)]["fills"] or here[(1, 0)]["pnl"] != here[(0, 0)]["pnl"]  # each job ran its own fill model
    assert {r["worker"]["pid"] for r in pooled.values()} != {r["worker"]["pid"] for r in here.values()}


def test_parse_executor_ray_forms():
    assert parse_executor("ray") == parse_executor(" Ray ")
    assert parse_executor("ray:127.0.0.1:6379").address == "127.0.0.1:6379"


def test_forked_workers_run_on_the_data_the_parent_holds(sim_file, tmp_path, monkeypatch):
    import multiprocessing as mp

    from sq.runs import executors

    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    # forked whatever ran before in this test process (its workers run the engine, no polars query)
    monkeypatch.setattr(executors, "pool_context", lambda: mp.get_context("fork"))
    path, _ = sim_file
    from sq.runs.sweep import Loaded, _Quiet

    loaded = Loaded.read(_Quiet(None), [path])
    gone = sweep.Job((str(tmp_path / "not-there.parquet"),), "mm", {}, 1, None, {}, ".")  # only the parent's data can serve it
    tasks = [Task(0, i, ("max_loss=1e12", f"clip={c}")) for i, c in enumerate((1.0, 2.0, 3.0))]
    pooled = {r["index"]: r["summary"] for r in run_tasks([gone], tasks, workers=2, data={0: loaded})}
    here = {r["index"]: r["summary"] for r in run_tasks([gone], tasks, workers=1, data={0: loaded})}
    assert pooled.keys() == {0, 1, 2}
    for i in pooled:
        assert pooled[i]["pnl"] == here[i]["pnl"] and pooled[i]["fills"] == here[i]["fills"]


def test_a_spawned_pool_gives_the_same_summaries(sim_file, monkeypatch):
    import multiprocessing as mp

    from sq.runs import executors

    monkeypatch.setattr(executors, "pool_context", lambda: mp.get_context("spawn"))  # a platform without fork
    path, _ = sim_file
    job = sweep.Job((path,), "mm", {}, 1, None, {}, ".")
    tasks = [Task(0, i, ("max_loss=1e12", f"clip={c}")) for i, c in enumerate((1.0, 2.0))]
    spawned = {r["index"]: r["summary"] for r in run_tasks([job], tasks, workers=2)}
    here = {r["index"]: r["summary"] for r in run_tasks([job], tasks, workers=1)}
    for i in here:
        assert spawned[i]["pnl"] == here[i]["pnl"] and spawned[i]["orders"] == here[i]["orders"]
    import os

    assert all(s["worker"]["pid"] != os.getpid() and s["worker"]["load_s"] > 0 for s in spawned.values())  # ran and read the file elsewhere


def test_a_parent_that_ran_polars_spawns_its_workers():
    """polars' worker pool does not survive a fork (the child's first query would wait forever):
    a process that ran a polars query spawns its pool's workers; a fresh one forks them."""
    import subprocess
    import sys

    probe = ("from sq.runs.executors import pool_context\n"
             "before = pool_context().get_start_method()\n"
             "import polars as pl\n"
             "pl.DataFrame({'a': list(range(200_000))}).select(pl.col('a').rolling_mean(5), (pl.col('a') * 2).alias('b')).shape\n"
             "print(before, pool_context().get_start_method())\n")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["fork", "spawn"]
