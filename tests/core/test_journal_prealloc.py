"""A preallocated journal (`sq live`'s): zeroed room ahead of the records, written in place; the
same bytes as a plain journal once closed; what a crash leaves (records, then zero bytes) loads,
resumes and takes fixes; a torn step or bytes after the padding are refused; a full disk or a
file system that cannot preallocate still ends in a whole, resumable journal."""

from __future__ import annotations

import errno
import os
import shutil

import pytest

from sq.core import journal as J
from sq.core.exits import DataError, IOFailure

ROOM = 64 * 1024


def order(cid: str, event: str = "new", **kw) -> dict:
    row = dict(ts=1_700_000_000_000_000_000, symbol="SIM:DEMO", client_order_id=cid, venue_order_id=None, event=event, side=1,
               price=100.25, qty=2.0, filled_qty=0.0, leaves_qty=2.0, reason=None)
    row.update(kw)
    return row


def steps(j: J.Journal, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        j.write_step([("order", order(f"c{i}")), ("pnl", {"ts": i, "symbol": "SIM:DEMO", "total": float("nan"), "note": "é"})])


def log_bytes(d) -> bytes:
    return J.log_path(d).read_bytes()


def crash_copy(d, to):
    """The journal as a process killed now leaves it: the file as it is, zero room included."""
    to.mkdir()
    shutil.copyfile(J.log_path(d), J.log_path(to))
    return to


def test_same_bytes_as_a_plain_journal_and_cut_back_on_close(tmp_path):
    plain = J.Journal.create(tmp_path / "plain", {"run_id": "r"})
    pre = J.Journal.create(tmp_path / "pre", {"run_id": "r"}, preallocate=ROOM)
    steps(plain, 20)
    steps(pre, 20)
    size = len(log_bytes(tmp_path / "plain"))
    assert os.path.getsize(J.log_path(tmp_path / "pre")) >= size + ROOM // 2  # room ahead, zeros
    assert pre.room >= ROOM // 2 and plain.room == 0
    assert log_bytes(tmp_path / "pre")[size:].count(0) == os.path.getsize(J.log_path(tmp_path / "pre")) - size
    assert J.load(tmp_path / "pre").records == J.load(tmp_path / "plain").records  # readable while open
    assert J.load(tmp_path / "pre").size == size
    plain.seal({"reason": "done"}, compact_to_parquet=False)
    pre.seal({"reason": "done"}, compact_to_parquet=False)
    assert log_bytes(tmp_path / "pre") == log_bytes(tmp_path / "plain")  # no padding left, same chain


def test_room_is_topped_up_between_steps_and_by_a_step_that_does_not_fit(tmp_path):
    j = J.Journal.create(tmp_path / "r", {"run_id": "r"}, preallocate=4096)
    steps(j, 30)  # ~10 KiB: grown by the steps themselves
    assert J.load(tmp_path / "r").records[-1].n == 61
    j.reserve()
    assert j.room >= 2048
    big = [("audit", {"blob": "x" * 20_000})]  # larger than a chunk
    j.write_step(big)
    assert J.load(tmp_path / "r").last("audit").data["blob"] == "x" * 20_000
    j.close()
    assert len(log_bytes(tmp_path / "r")) == J.load(tmp_path / "r").size


def test_a_crashed_journal_loads_resumes_in_place_and_is_cut_back_at_the_end(tmp_path):
    j = J.Journal.create(tmp_path / "r", {"run_id": "r"}, preallocate=ROOM)
    steps(j, 5)
    d = crash_copy(tmp_path / "r", tmp_path / "crashed")
    j.close()
    raw = log_bytes(d)
    assert raw.endswith(b"\0" * 100)
    loaded = J.load(d)
    assert not loaded.sealed and len(loaded.records) == 11 and loaded.size == raw.index(b"\0")
    j2, again = J.Journal.reopen(d, {"pid": 2}, preallocate=ROOM)
    assert again.records == loaded.records and j2.room > 0
    assert os.path.getsize(J.log_path(d)) == len(raw)  # the crashed run's room is reused, not appended after
    steps(j2, 2, start=5)
    final = j2.seal({"reason": "done"}, compact_to_parquet=False)
    assert [r.kind for r in final.records][10:] == ["pnl", "resume", "order", "pnl", "order", "pnl", "end"]
    assert b"\0" not in log_bytes(d)


def test_a_plain_writer_cuts_the_zero_room_off_before_appending(tmp_path):
    from sq.runs import reconcile

    j = J.Journal.create(tmp_path / "r", {"run_id": "r"}, preallocate=ROOM)
    steps(j, 2)
    d = crash_copy(tmp_path / "r", tmp_path / "crashed")
    j.close()
    assert reconcile.append_fix(d, [("audit", {"by": "test", "changes": []})]) == 1
    loaded = J.load(d)
    assert [r.kind for r in loaded.records][-1] == "audit" and b"\0" not in log_bytes(d)
    j2, _ = J.Journal.reopen(d, {"pid": 3})  # a plain reopen after the fix: the chain goes on
    j2.close()
    assert J.load(d).records[-1].kind == "resume"


def crashed_log(tmp_path, name):
    """A preallocated journal two steps in, copied as a crash left it: (its directory, the log's
    bytes, where the zero padding starts)."""
    j = J.Journal.create(tmp_path / "r", {"run_id": "r"}, preallocate=ROOM)
    steps(j, 2)
    d = crash_copy(tmp_path / "r", tmp_path / name)
    j.close()
    raw = bytearray(log_bytes(d))
    return d, raw, raw.index(0)


def test_a_torn_step_before_the_zeros_is_refused(tmp_path):
    d, raw, end = crashed_log(tmp_path, "torn")
    raw[end:end + 30] = b'{"d":{"client_order_id":"c9",'  # half a record landed, then the crash
    J.log_path(d).write_bytes(bytes(raw))
    with pytest.raises(DataError, match="line 6 .*truncated record"):
        J.load(d)


def test_bytes_after_the_zero_padding_are_refused(tmp_path):
    d, raw, end = crashed_log(tmp_path, "bad")
    raw[end + 1000] = ord("x")
    J.log_path(d).write_bytes(bytes(raw))
    with pytest.raises(DataError, match="line 6 .*bytes after zero padding"):
        J.load(d)
    J.log_path(d).write_bytes(bytes(ROOM))  # nothing but zeros: no start record
    with pytest.raises(DataError, match="empty"):
        J.load(d)


def test_a_failed_step_in_place_cuts_back_to_the_last_whole_step(tmp_path, monkeypatch):
    j = J.Journal.create(tmp_path / "r", {"run_id": "r"}, preallocate=ROOM)
    steps(j, 1)
    whole = J.load(tmp_path / "r").size
    real = os.pwrite

    def half_then_full(fd, data, offset):  # a torn write: part of the step lands, then the disk is full
        if len(data) > 40:
            real(fd, bytes(data[:40]), offset)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", half_then_full)
    with pytest.raises(IOFailure, match="no space left on device writing the journal .* whole through record 3"):
        j.write_step([("audit", {"b": "x" * 100})])
    monkeypatch.setattr(os, "pwrite", real)
    assert os.path.getsize(J.log_path(tmp_path / "r")) == whole
    steps(j, 1, start=1)  # the journal goes on from where it was whole
    j.close()
    assert [r.kind for r in J.load(tmp_path / "r").records] == ["start", "order", "pnl", "order", "pnl"]


def test_no_room_to_preallocate_means_plain_appends(tmp_path, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    j = J.Journal.create(tmp_path / "r", {"run_id": "r"}, preallocate=ROOM)
    steps(j, 3)
    assert j.room == 0 and os.path.getsize(J.log_path(tmp_path / "r")) == J.load(tmp_path / "r").size
    j.seal({"reason": "done"}, compact_to_parquet=False)
    assert len(J.load(tmp_path / "r").records) == 8
