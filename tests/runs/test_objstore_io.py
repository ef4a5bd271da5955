"""Object-store URIs end to end, against an S3-compatible server on 127.0.0.1 (moto) started here:
`sq record -o s3://…` uploads only sealed files, and backtest, book and a sweep (local pool and
Ray) read them back exactly as they read the same recording from a local directory; bad URIs,
missing buckets and unreachable endpoints are one-line errors with their exit codes."""

from __future__ import annotations

import json
import socket

import pyarrow.parquet as pq
import pytest

moto_server = pytest.importorskip("moto.server")

SECRET = "topsecretvalue123"


@pytest.fixture(scope="module")
def s3():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k",
                 aws_secret_access_key="s").create_bucket(Bucket="bkt")
    yield endpoint
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(s3, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def keys(endpoint: str, prefix: str) -> list[str]:
    import boto3

    c = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    return [o["Key"] for o in c.list_objects_v2(Bucket="bkt", Prefix=prefix).get("Contents", [])]


def ok_json(r):
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def recorded(s3, tmp_path_factory):
    """The same simulated market recorded into a local directory and into s3://bkt/rec (two
    days, so --start/--end can prune a partition)."""
    import os
    import subprocess
    import sys

    local = tmp_path_factory.mktemp("rec") / "data"
    env = dict(os.environ, AWS_ENDPOINT_URL=s3, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
               AWS_EC2_METADATA_DISABLED="true", SQ_HOME=str(tmp_path_factory.mktemp("home")))
    for out in (str(local), "s3://bkt/rec"):
        r = subprocess.run([sys.executable, "-m", "sq", "record", "SIM:DEMO", "-o", out, "--limit", "30000", "--rotate", "10m",
                            "--seed", "4", "--json"], env=env, capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr.decode()
    return str(local), "s3://bkt/rec"


def test_record_uploads_only_sealed_files(s3, recorded):
    local, _ = recorded
    names = keys(s3, "rec/")
    assert names and all(n.endswith(".parquet") and "/." not in n and "inprogress" not in n for n in names)
    assert all("date=" in n and "venue=sim" in n for n in names)
    local_files = sorted(str(p.relative_to(local)) for p in __import__("pathlib").Path(local).rglob("*.parquet"))
    assert sorted(n[len("rec/"):] for n in names) == local_files  # the same files under the same names


def test_backtest_and_book_read_the_bucket_as_they_read_the_directory(sq, recorded):
    local, remote = recorded
    a = ok_json(sq(["backtest", "-s", "mm", local, "--json"]))
    b = ok_json(sq(["backtest", "-s", "mm", remote, "--json"]))
    for k in ("events", "orders", "fills", "pnl", "position"):
        assert a[k] == b[k], k
    assert a["events"] == 30000
    bl, br = sq(["book", local, "--format", "jsonl"]), sq(["book", remote, "--format", "jsonl"])
    assert bl.exit_code == br.exit_code == 0, br.stderr
    assert bl.stdout == br.stdout and bl.stdout


def test_start_end_prune_the_bucket_by_date_partition(sq, recorded, s3):
    local, remote = recorded
    days = sorted({n.split("date=")[1][:10] for n in keys(s3, "rec/")})
    assert days
    a = ok_json(sq(["backtest", "-s", "mm", local, "--json", "--start", days[0], "--end", days[0]]))
    b = ok_json(sq(["backtest", "-s", "mm", remote, "--json", "--start", days[0], "--end", days[0]]))
    assert a["events"] == b["events"] > 0
    r = sq(["backtest", "-s", "mm", remote, "--json", "--start", "2001-01-01", "--end", "2001-01-02"])
    assert r.exit_code == 65 and "no market events" in r.stderr


def test_a_sweep_over_the_bucket_is_the_same_on_the_local_pool_and_on_ray(sq, recorded, tmp_path):
    local, remote = recorded
    tables = {}
    runs = [("local-dir", local, ["--jobs", "2"]), ("s3-pool", remote, ["--jobs", "2"])]
    try:
        import ray  # noqa: F401

        runs.append(("s3-ray", remote, ["--executor", "ray", "--jobs", "2"]))
    except ImportError:
        pass
    for name, src, extra in runs:
        out = tmp_path / f"{name}.parquet"
        r = sq(["backtest", "-s", "mm", src, "--sweep", "clip=1,2", "--param", "max_loss=1e12", "-o", str(out)] + extra)
        assert r.exit_code == 0, r.stderr
        t = pq.read_table(out)
        tables[name] = t.select([c for c in t.column_names if c not in ("elapsed_s", "events_per_s")])
    first = tables.pop("local-dir")
    assert first.num_rows == 2
    for name, t in tables.items():
        assert t.equals(first), name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("uri,status,words", [
    ("s3://nobucket/data", 66, "not found"),
    ("s3://bkt/nothing-here", 66, "not found"),
    ("foo://bkt/data", 2, "unknown URI scheme"),
    ("s3://", 2, "no bucket"),
    (f"s3://AKIAEXAMPLE:{SECRET}@nobucket/data", 66, "nobucket"),
])
def test_bad_inputs_are_one_line_errors(sq, uri, status, words):
    r = sq(["backtest", "-s", "mm", uri, "--json"])
    assert r.exit_code == status, r.stderr
    assert len(r.stderr_lines) == 1 and words in r.stderr and "Traceback" not in r.stderr
    assert SECRET not in r.stderr


def test_an_unreachable_endpoint_is_exit_66_to_read_and_74_to_record(sq, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    r = sq(["book", "s3://bkt/rec", "--format", "jsonl"])
    assert r.exit_code == 66 and len(r.stderr_lines) == 1 and "does not answer" in r.stderr, r.stderr
    r = sq(["record", "SIM:DEMO", "-o", "s3://bkt/x", "--limit", "100"])
    assert r.exit_code == 74 and len(r.stderr_lines) == 1 and "does not answer" in r.stderr, r.stderr


def test_recording_into_a_missing_bucket_is_exit_74_before_any_data(sq, s3):
    r = sq(["record", "SIM:DEMO", "-o", "s3://nobucket/x", "--limit", "100"])
    assert r.exit_code == 74 and len(r.stderr_lines) == 1 and "does not exist" in r.stderr, r.stderr


def test_paper_replay_and_bars_read_the_bucket_as_they_read_the_directory(sq, recorded, tmp_path):
    local, remote = recorded
    a = ok_json(sq(["paper", "--strategy", "mm", "--from", local, "--json"]))
    b = ok_json(sq(["paper", "--strategy", "mm", "--from", remote, "--json"]))
    for k in ("events", "orders", "fills", "pnl", "position"):
        assert a[k] == b[k], k
    outs = []
    for name, src in (("local", local), ("remote", remote)):
        out = tmp_path / f"{name}.parquet"
        r = sq(["bars", "1m", src, "-o", str(out)])
        assert r.exit_code == 0, r.stderr
        outs.append(pq.read_table(out))
    assert outs[0].num_rows > 0 and outs[0].equals(outs[1])


def test_a_glob_over_keys_selects_files(sq, recorded, s3):
    local, remote = recorded
    day = sorted({n.split("date=")[1][:10] for n in keys(s3, "rec/")})[0]
    a = ok_json(sq(["backtest", "-s", "mm", f"{local}/*/*/date={day}/*.parquet", "--json"]))
    b = ok_json(sq(["backtest", "-s", "mm", f"{remote}/*/*/date={day}/*.parquet", "--json"]))
    assert a["events"] == b["events"] > 0 and a["pnl"] == b["pnl"]


def test_refused_credentials_are_exit_77(sq, monkeypatch, tmp_path):
    """A store that checks signatures (moto with authentication on, in a process of its own)."""
    import subprocess
    import sys
    import time

    port = free_port()
    env = dict(__import__("os").environ, INITIAL_NO_AUTH_ACTION_COUNT="0")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto did not start"
                time.sleep(0.2)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        r = sq(["book", "s3://bkt/data", "--format", "jsonl"])
        assert r.exit_code == 77 and len(r.stderr_lines) == 1 and "credentials" in r.stderr, r.stderr
        assert SECRET not in r.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_ray_workers_read_the_bucket_themselves(recorded):
    """On a cluster (no driver data), each Ray worker process opens the s3:// input itself."""
    pytest.importorskip("ray")
    from sq.runs import sweep
    from sq.runs.executors import ExecutorSpec, Task, run_tasks

    local, remote = recorded
    tasks = [Task(0, i, ("max_loss=1e12", f"clip={c}")) for i, c in enumerate((1.0, 3.0))]
    here = {r["index"]: r["summary"] for r in run_tasks([sweep.Job((local,), "mm", {}, 0, None, {}, ".")], tasks, workers=1)}
    ray_job = sweep.Job((remote,), "mm", {}, 0, None, {}, ".")
    on_ray = {r["index"]: r["summary"] for r in run_tasks([ray_job], tasks, executor=ExecutorSpec("ray"), workers=2)}
    for i in here:
        assert on_ray[i]["pnl"] == here[i]["pnl"] and on_ray[i]["fills"] == here[i]["fills"]
    assert all(s["worker"]["load_s"] > 0 for s in on_ray.values())  # read there, not handed over
