"""`sq book` end to end: files, pipes, formats, bad input and exit codes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from tests.support.bookstreams import make_batches, random_stream, reference_rows
from tests.support.process import SQ_BIN, ipc_bytes, subprocess_env

SEC = 1_000_000_000


def write_market(path, events, symbols=("SIM:A",), ticks=(0.01,)):
    schema, batches = make_batches(events, list(symbols), list(ticks))
    md = dict(schema.metadata)
    md[S.META_END] = b"ok"
    pq.write_table(pa.Table.from_batches(batches, schema=schema).replace_schema_metadata(md), path)
    return str(path)


GOOD = [
    (1 * SEC, 0, S.LEVEL, 1, 100.0, 5.0, 1),
    (1 * SEC, 0, S.LEVEL, -1, 100.02, 4.0, 1),
    (2 * SEC, 0, S.TRADE, 1, 100.02, 1.0, 2),
    (3 * SEC, 0, S.LEVEL, 1, 100.01, 2.0, 3),
]


def test_parquet_to_parquet(sq, tmp_path):
    src = write_market(tmp_path / "m.parquet", GOOD)
    out = tmp_path / "book.parquet"
    r = sq(["book", src, "--depth", "2", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    t = pq.read_table(out)
    assert S.stream_kind(t.schema) == "book"
    assert S.schema_instruments(t.schema)["SIM:A"].tick_size == 0.01
    assert t.schema.names == [f.name for f in S.book_fields(2)]
    assert t.column("seq").to_pylist() == [1, 2, 3]
    assert t.column("bid_px_0").to_pylist() == [100.0, 100.0, 100.01]
    assert t.column("symbol").to_pylist() == ["SIM:A"] * 3
    assert t.column("microprice").to_pylist()[0] == pytest.approx((100.0 * 4 + 100.02 * 5) / 9)


def test_arrow_stream_on_stdin_to_arrow_on_stdout_with_trailer(sq):
    schema, batches = make_batches(GOOD, ["SIM:A"], [0.01], split=[1, 3])
    r = sq(["book", "--every", "1"], stdin=ipc_bytes(batches, schema))
    assert r.exit_code == 0, r.stderr
    reader = ipc.open_stream(pa.BufferReader(r.stdout))
    rows, trailer = 0, False
    while True:
        try:
            b, md = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            break
        rows += b.num_rows
        trailer = trailer or bool(md and md.get(S.META_END) == b"ok")
    assert rows == 3 and trailer


def test_truncated_stdin_stream_is_exit_65(sq):
    schema, batches = make_batches(GOOD, ["SIM:A"], [0.01])
    r = sq(["book"], stdin=ipc_bytes(batches, schema, trailer=False))
    assert r.exit_code == 65 and "truncated" in r.stderr


@pytest.mark.parametrize("price,qty,what", [
    (float("nan"), 1.0, "price nan"),
    (float("inf"), 1.0, "price inf"),
    (100.0, -2.0, "qty -2.0"),
    (-1.0, 1.0, "price -1.0"),
])
def test_bad_values_exit_65_naming_the_row(sq, tmp_path, price, qty, what):
    ev = GOOD[:2] + [(2 * SEC, 0, S.LEVEL, 1, price, qty, 2)] + GOOD[3:]
    r = sq(["book", write_market(tmp_path / "bad.parquet", ev)])
    assert r.exit_code == 65
    assert len(r.stderr_lines) == 1 and "Traceback" not in r.stderr
    assert "row 2 (SIM:A)" in r.stderr and what in r.stderr


def test_skip_bad_counts_and_goes_on(sq, tmp_path):
    ev = GOOD[:2] + [(2 * SEC, 0, S.LEVEL, 1, float("nan"), 1.0, 2), (2 * SEC, 0, S.TRADE, 1, 100.0, -1.0, 2)] + GOOD[3:]
    out = tmp_path / "b.parquet"
    r = sq(["book", write_market(tmp_path / "bad.parquet", ev), "--skip-bad", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    assert "skipped 2 bad row(s)" in r.stderr
    assert pq.read_table(out).column("bid_px_0").to_pylist() == [100.0, 100.01]


def test_unknown_kind_is_exit_65_even_with_skip_bad(sq, tmp_path):
    ev = GOOD[:2] + [(2 * SEC, 0, 9, 1, 100.0, 1.0, 2)]
    r = sq(["book", write_market(tmp_path / "k.parquet", ev), "--skip-bad"])
    assert r.exit_code == 65 and "unknown event kind 9" in r.stderr and "row 2" in r.stderr
    assert len(r.stderr_lines) == 1


def test_backwards_time_and_crossed_books_are_warnings(sq, tmp_path):
    ev = GOOD[:2] + [(SEC // 2, 0, S.LEVEL, 1, 100.03, 1.0, 2)]  # crossed, and earlier than before
    r = sq(["book", write_market(tmp_path / "x.parquet", ev), "--format", "jsonl"])
    assert r.exit_code == 0, r.stderr
    assert "backwards within a symbol 1 time(s) (first at row 2, SIM:A)" in r.stderr
    assert "1 a crossed book" in r.stderr
    assert len(r.stdout.splitlines()) == 2


def test_tick_size_inferred_with_a_warning(sq, tmp_path):
    ev = [(SEC, 0, S.LEVEL, 1, 10.25, 1.0, 1), (SEC, 0, S.LEVEL, -1, 10.5, 1.0, 1)]
    r = sq(["book", write_market(tmp_path / "t.parquet", ev, ticks=(None,)), "--format", "jsonl"])
    assert r.exit_code == 0 and "inferred 0.01" in r.stderr
    assert b'"bid_px_0":10.25' in r.stdout


def test_every_and_interval_exclude_each_other(sq, tmp_path):
    r = sq(["book", write_market(tmp_path / "m.parquet", GOOD), "--every", "2", "--interval", "1s"])
    assert r.exit_code == 2 and "exclude" in r.stderr


def test_wrong_stream_kind_is_exit_65(sq, tmp_path):
    src = write_market(tmp_path / "m.parquet", GOOD)
    out = tmp_path / "b.parquet"
    assert sq(["book", src, "-o", str(out)]).exit_code == 0
    r = sq(["book", str(out)])
    assert r.exit_code == 65 and "book stream" in r.stderr


def test_terminal_shows_a_ladder(sq, tmp_path):
    # nanosecond timestamps that are not whole microseconds: the view must not need pandas for them
    events = [(ts + 123, *rest) for ts, *rest in GOOD]
    r = sq(["book", write_market(tmp_path / "m.parquet", events)], stdout_isatty=True, width=100)
    assert r.exit_code == 0, r.stderr
    text = r.stdout.decode()
    assert "SIM:A" in text and "100.01" in text and "spread" in text


def test_pipeline_through_real_pipes(tmp_path):
    """A market stream written by another process, through `sq book`, read back batch by batch."""
    events, symbols, ticks = random_stream(11, 3, 400, 2)
    schema, batches = make_batches(events, symbols, ticks, split=list(range(0, len(events), 37)))
    book = subprocess.Popen([SQ_BIN, "book", "--every", "1", "--depth", "3"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env())
    out, err = book.communicate(ipc_bytes(batches, schema), timeout=120)
    assert book.returncode == 0, err
    got = pa.ipc.open_stream(pa.BufferReader(out)).read_all()
    want, _ = reference_rows(events, symbols, ticks)
    assert got.num_rows == len(want)
    assert got.column("bid_px_0").to_pylist() == pytest.approx([w["bid_px_0"] for w in want], nan_ok=True)
    assert got.column("symbol").to_pylist() == [w["symbol"] for w in want]


def test_pipeline_from_sq_subscribe_when_available(tmp_path):
    """`sq subscribe SIM:DEMO | sq book | head` once the simulated exchange command exists."""
    help_ = subprocess.run([SQ_BIN, "subscribe", "--help"], capture_output=True, env=subprocess_env())
    if help_.returncode != 0:
        pytest.skip("sq subscribe is not registered yet")
    cmd = f"{SQ_BIN} subscribe SIM:DEMO --limit 5000 | {SQ_BIN} book --depth 5 --format jsonl | head -n 20"
    p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, env=subprocess_env(), timeout=120)
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 20 and all('"symbol":"SIM:DEMO"' in line for line in lines)
    assert p.returncode == 0, p.stderr


def test_sigterm_while_reading_a_pipe_is_exit_143(tmp_path):
    """sq book waiting on an open pipe ends like every long-running command on SIGTERM: one
    line on stderr and 143 (README: Exit codes), not a death by signal."""
    import os
    import signal
    import threading

    schema, batches = make_batches(GOOD, ["SIM:A"], [0.01])
    head = ipc_bytes(batches, schema, trailer=False)
    p = subprocess.Popen([SQ_BIN, "book", "--every", "1", "--format", "arrow"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env())
    timer = threading.Timer(120, p.kill)  # never hang the suite
    timer.start()
    try:
        p.stdin.write(head)
        p.stdin.flush()
        assert os.read(p.stdout.fileno(), 1)  # it is running and has written its first output
        p.send_signal(signal.SIGTERM)  # the pipe stays open: book is waiting for more
        _, err = p.communicate(timeout=60)
    finally:
        timer.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 143, err
    assert err.decode().strip().splitlines()[-1] == "sq: terminated"
