"""The write-behind syncer of `-o` files (sq.core.streams.WriteBehind): a poke starts a sync of
what is written so far while writing goes on, a failed sync is raised at stop (never lost), and
a file written through StreamWriter still ends complete and renamed into place."""

from __future__ import annotations

import io
import os
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from sq.core import streams
from sq.core.environment import Environment


def _wait_for(cond, timeout=30.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def test_a_poke_syncs_the_file_on_the_thread_while_writing_goes_on(monkeypatch, tmp_path):
    synced: list[tuple[int, str]] = []
    monkeypatch.setattr(streams, "_datasync", lambda fd: synced.append((fd, threading.current_thread().name)))
    with open(tmp_path / "f", "wb") as f:
        wb = streams.WriteBehind(f.fileno())
        f.write(b"x" * 1000)
        f.flush()
        wb.poke()
        _wait_for(lambda: len(synced) == 1)
        wb.stop()
        assert synced == [(f.fileno(), "sq-write-behind")]
        wb.poke()  # after stop: nothing runs, nothing hangs
    assert len(synced) == 1


def test_a_failed_sync_is_raised_at_stop_not_lost(tmp_path):
    r, w = os.pipe()  # fdatasync on a pipe fails (EINVAL)
    try:
        wb = streams.WriteBehind(w)
        wb.poke()
        with pytest.raises(OSError):
            _wait_for(lambda: not wb._thread.is_alive())
            wb.stop()
        quiet = streams.WriteBehind(w)
        quiet.poke()
        _wait_for(lambda: not quiet._thread.is_alive())
        quiet.stop(check=False)  # an abort path: no raise
    finally:
        os.close(r)
        os.close(w)


def test_a_parquet_file_written_with_syncs_behind_is_complete(monkeypatch, tmp_path):
    calls = []
    real = streams._datasync
    monkeypatch.setattr(streams, "_datasync", lambda fd: (calls.append(fd), real(fd)))
    monkeypatch.setattr(streams, "PARQUET_FIRST_ROW_GROUP", 10)
    monkeypatch.setattr(streams, "PARQUET_ROW_GROUP", 10)
    inst = {"SIM:A": S.Instrument("SIM:A", "sim", 0.01, 1.0)}
    schema = S.book_schema(1, inst)
    n = 95
    env = Environment(stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=io.StringIO(), stdin_isatty=False, stdout_isatty=False)
    out = tmp_path / "book.parquet"
    with streams.StreamWriter(env, schema, output=str(out), fmt="parquet") as wr:
        for k in range(0, n, 5):
            cols = [pa.array([k + j for j in range(5)], pa.int64()).cast(S.TS),
                    pa.DictionaryArray.from_arrays(pa.array([0] * 5, pa.int32()), pa.array(["SIM:A"])),
                    pa.array([k + j for j in range(5)], pa.int64())]
            cols += [pa.array([float(k + j) for j in range(5)]) for _ in schema.names[3:]]
            wr.write(pa.RecordBatch.from_arrays(cols, schema=schema))
    assert calls, "no sync ran behind the writer"
    t = pq.read_table(out)
    assert t.num_rows == n and t.column("seq").to_pylist() == list(range(n))
    assert not any(p.name.startswith(".book.parquet") for p in tmp_path.iterdir())  # the temporary file was renamed
