"""Real processes on real pipes: the spine's pipelines, the bad-input matrix as a user meets it
(exit code, one line on stderr, no traceback), and writers killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from sq.core import schemas as S
from tests.support.process import SQ_BIN, subprocess_env


def sh(cmd: str, cwd: Path, timeout: float = 120, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, env=subprocess_env(), capture_output=True,
                          timeout=timeout, input=stdin)


def assert_clean_error(r: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    err = r.stderr.decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert r.returncode == code, (r.returncode, err)
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("sq: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_subscribe_stream_carries_the_documented_market_schema(tmp_path):
    r = sh(f"{SQ_BIN} subscribe SIM:DEMO --limit 50000 > m.arrow", tmp_path)
    assert r.returncode == 0, r.stderr
    reader = ipc.open_stream(pa.OSFile(str(tmp_path / "m.arrow")))
    table = reader.read_all()
    assert table.num_rows >= 50000
    fields = {f.name: f.type for f in table.schema}
    assert fields == {f.name: f.type for f in S.MARKET_FIELDS}
    md = table.schema.metadata
    assert md[b"sq.stream"] == b"market" and md[b"sq.schema_version"] == b"1"
    assert S.schema_instruments(table.schema)["SIM:DEMO"].tick_size == 0.01


def test_subscribe_into_record_into_book(tmp_path):
    r = sh(f"{SQ_BIN} subscribe SIM:DEMO --limit 20000 --seed 3 | {SQ_BIN} record - --out data | {SQ_BIN} book --depth 5 -o book.parquet",
           tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    import polars as pl

    recorded = pl.scan_parquet(str(tmp_path / "data" / "**" / "*.parquet")).select(pl.len()).collect().item()
    assert recorded >= 20000
    book = pl.read_parquet(tmp_path / "book.parquet")
    assert book.height > 100 and (book["ask_px_0"] > book["bid_px_0"]).all()
    assert "recorded" in r.stderr.decode()


def test_head_closes_the_pipe_quietly(tmp_path):
    r = sh(f"{SQ_BIN} subscribe SIM:DEMO --limit 200000 | head -c 100 > /dev/null", tmp_path)
    assert r.returncode == 0 and r.stderr == b""
    r = sh(f"{SQ_BIN} subscribe SIM:DEMO --limit 20000 | {SQ_BIN} book --format jsonl | head -n 2", tmp_path, timeout=300)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert len(r.stdout.splitlines()) == 2


@pytest.fixture(scope="module")
def market_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("mkt")
    r = sh(f"{SQ_BIN} subscribe SIM:DEMO --limit 5000 > m.arrow", d)
    assert r.returncode == 0
    return d / "m.arrow"


def test_bad_input_matrix(tmp_path, market_file):
    data = market_file.read_bytes()
    (tmp_path / "cut.arrow").write_bytes(data[: len(data) // 2])
    (tmp_path / "prices.csv").write_text("ts,symbol,price\n1,SIM:X,100\n")
    (tmp_path / "bad.toml").write_text('trading_mode = "paper"\n[[instruments]]\nsymbol = "SIM:DEMO"\nclipp = 1\n')
    cases = [
        (f"head -c 4096 /dev/urandom | {SQ_BIN} book", 65, "stdin"),
        (f"cat prices.csv | {SQ_BIN} book", 65, "CSV"),
        (f"cat cut.arrow | {SQ_BIN} book", 65, "truncated"),
        (f"{SQ_BIN} book cut.arrow", 65, "cut.arrow"),
        (f"{SQ_BIN} book missing.parquet", 66, "missing.parquet"),
        (f"{SQ_BIN} subscribe BINANSE:BTCUSDT --limit 1", 2, "BINANCE:BTCUSDT"),
        (f"{SQ_BIN} --config bad.toml paper --strategy mm SIM:DEMO --for 1s", 78, "clipp"),
        (f"{SQ_BIN} subscribe SIM:DEMO --for soon", 2, "--for"),
        (f"{SQ_BIN} subscribe SIM:DEMO --limit 10 | {SQ_BIN} book | {SQ_BIN} book", 65, "book stream"),
    ]
    for cmd, code, needle in cases:
        r = sh(cmd, tmp_path, timeout=300)
        # with pipefail the pipeline's status is the last failing command's: the reader's
        assert_clean_error(r, code, needle)


def _wait_for_bytes(path: Path, n: int, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists() and path.stat().st_size >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {n} bytes")


def test_writer_killed_between_batches_is_detected_downstream(tmp_path):
    out = tmp_path / "live.arrow"
    with open(out, "wb") as f:
        p = subprocess.Popen([SQ_BIN, "subscribe", "SIM:DEMO", "--for", "60s"], stdout=f, stderr=subprocess.DEVNULL, env=subprocess_env())
        try:
            _wait_for_bytes(out, 50_000)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
    # real-time batches are flushed whole, so the file ends between batches: readable, but no trailer
    r = sh(f"{SQ_BIN} book live.arrow -o b.parquet", tmp_path)
    assert_clean_error(r, 65, "truncated")
    assert not (tmp_path / "b.parquet").exists()
    r = sh(f"cat live.arrow | {SQ_BIN} book > /dev/null", tmp_path)
    assert_clean_error(r, 65, "truncated")


def test_writer_killed_mid_batch_is_detected_downstream(tmp_path, market_file):
    # a stream cut inside a record batch, as a SIGKILL during a large write leaves it
    data = market_file.read_bytes()
    reader = ipc.open_stream(pa.BufferReader(data))
    first = reader.read_next_batch()
    assert first.num_rows == 0  # the schema flush
    cut = len(data) - 4000
    (tmp_path / "mid.arrow").write_bytes(data[:cut])
    r = sh(f"cat mid.arrow | {SQ_BIN} book > /dev/null", tmp_path)
    assert_clean_error(r, 65)
    proc = subprocess.Popen(["bash", "-c", f"{SQ_BIN} subscribe SIM:DEMO --limit 3000000 | {SQ_BIN} book > out.arrow"],
                            cwd=tmp_path, env=subprocess_env(), stderr=subprocess.PIPE, start_new_session=True)
    _wait_for_bytes(tmp_path / "out.arrow", 1)
    time.sleep(0.5)
    writer_pid = subprocess.run(["pgrep", "-f", "-n", "subscribe SIM:DEMO --limit 3000000"], capture_output=True, text=True).stdout.split()
    assert writer_pid, "writer not found"
    os.kill(int(writer_pid[0]), signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 65, err
    assert err.decode().count("\n") == 1 and "Traceback" not in err.decode()
