"""`--executor ray[:ADDRESS]`: the same sweep on Ray gives the same result table as the
local executor (in process and on the pool); bad specs and unreachable clusters are one-line errors."""

from __future__ import annotations

import socket
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from sq.core.exits import UsageError
from sq.runs.executors import parse_executor

TIMING = {"elapsed_s", "events_per_s"}  # what differs from run to run; everything else must not


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory):
    from sq.venues.sim.venue import SimVenue

    table = pa.Table.from_batches(list(SimVenue(["SIM:DEMO"], seed=11).market_source(limit=15_000).batches()))
    md = dict(table.schema.metadata or {})
    md[S.META_END] = b"ok"
    path = tmp_path_factory.mktemp("ray") / "demo.parquet"
    pq.write_table(table.replace_schema_metadata(md), path)
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_parse_ray_specs():
    assert parse_executor("ray").kind == "ray" and parse_executor("ray").address is None
    assert parse_executor("RAY:10.0.0.5:6379").address == "10.0.0.5:6379"
    assert parse_executor("ray:ray://head:10001").address == "ray://head:10001"
    assert parse_executor("ray:auto").address == "auto"
    for bad in ("ray:head", "ray:head:port", "ray::6379", "ray:head:0", "dask"):
        with pytest.raises(UsageError, match="--executor"):
            parse_executor(bad)


def test_parsing_and_the_cli_do_not_import_ray():
    import subprocess

    code = ("import sys; from sq.runs.executors import parse_executor; import sq.commands.backtest; "
            "parse_executor('ray:10.0.0.5:6379'); print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def table_without_timing(path):
    t = pq.read_table(path)
    return t.select([c for c in t.column_names if c not in TIMING])


def test_the_same_sweep_gives_the_same_table_in_process_on_the_pool_and_on_ray(sq, sim_file, tmp_path):
    pytest.importorskip("ray")
    args = ["backtest", "-s", "mm", sim_file, "--sweep", "clip=1,2", "--sweep", "threshold=0.3,0.9", "--param", "max_loss=1e12"]
    tables = {}
    for name, extra in (("one", ["--jobs", "1"]), ("pool", ["--jobs", "2"]), ("ray", ["--executor", "ray", "--jobs", "2"])):
        out = tmp_path / f"{name}.parquet"
        r = sq(args + extra + ["-o", str(out)])
        assert r.exit_code == 0, r.stderr
        tables[name] = table_without_timing(out)
    assert tables["one"].num_rows == 4
    assert tables["one"].equals(tables["pool"])
    assert tables["one"].equals(tables["ray"])
    assert len(set(tables["one"].column("pnl_total").to_pylist())) > 1  # the points differ: the comparison can fail
    import ray

    assert not ray.is_initialized()  # the runtime sq started is shut down


def test_an_unreachable_cluster_is_one_line_exit_69(sq, sim_file):
    pytest.importorskip("ray")
    port = free_port()
    r = sq(["backtest", "-s", "mm", sim_file, "--sweep", "clip=1,2", "--executor", f"ray:127.0.0.1:{port}"])
    assert r.exit_code == 69, r.stderr
    assert len(r.stderr_lines) == 1 and f"127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("spec", ["ray:nohost", "spark", "local:3"])
def test_a_bad_executor_is_a_usage_error(sq, sim_file, spec):
    r = sq(["backtest", "-s", "mm", sim_file, "--sweep", "clip=1,2", "--executor", spec])
    assert r.exit_code == 2, r.stderr
    assert len(r.stderr_lines) == 1 and "--executor" in r.stderr and "Traceback" not in r.stderr


def test_without_ray_installed_the_error_names_the_extra(sq, sim_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    r = sq(["backtest", "-s", "mm", sim_file, "--sweep", "clip=1,2", "--executor", "ray"])
    assert r.exit_code == 78, r.stderr
    assert len(r.stderr_lines) == 1 and "sq[ray]" in r.stderr
