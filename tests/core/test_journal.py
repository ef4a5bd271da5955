"""The run journal: round trip, Parquet compaction, tamper and truncation detection, locking."""

from __future__ import annotations

import json
import math

import pytest

from sq.core import journal as J
from sq.core.exits import DataError, ExitStatus, NoInputError, TempFailure, UsageError


def order(cid: str, event: str, ts: int = 1_700_000_000_000_000_000, **kw) -> dict:
    row = dict(ts=ts, symbol="SIM:DEMO", client_order_id=cid, venue_order_id=None, event=event, side=1,
               price=100.25, qty=2.0, filled_qty=0.0, leaves_qty=2.0, reason=None)
    row.update(kw)
    return row


def fill(cid: str, ts: int = 1_700_000_000_000_000_001) -> dict:
    return dict(ts=ts, symbol="SIM:DEMO", client_order_id=cid, venue_order_id="v1", trade_id="t1", side=1,
                price=100.25, qty=1.0, fee=0.02, fee_ccy="USD", liquidity="maker")


def make(tmp_path, steps=3):
    d = tmp_path / "run"
    j = J.Journal.create(d, {"strategy": "mm", "symbols": ["SIM:DEMO"]})
    for i in range(steps):
        j.write_step([("order", order(f"c{i}", "new")), ("order", order(f"c{i}", "accepted")), ("fill", fill(f"c{i}"))])
    return d, j


def test_round_trip_and_compaction(tmp_path):
    import pyarrow.parquet as pq

    d, j = make(tmp_path)
    j.write_step([("pnl", dict(ts=5, symbol="SIM:DEMO", position=3.0, avg_price=100.25, realized=0.0, unrealized=1.5, total=1.5, volume=3.0)),
                  ("reject", order("c9", "rejected", ts=6, reason="position_too_large", leaves_qty=0.0))])
    assert j.fsyncs == 5  # one per step
    loaded = j.seal({"reason": "for", "events": 10})
    assert loaded.sealed and [r.kind for r in loaded.records][:4] == ["start", "order", "order", "fill"]
    assert loaded.records[-1].kind == "end" and loaded.records[-1].data["events"] == 10
    again = J.load(d)
    assert again.records == loaded.records and again.last_hash == loaded.last_hash
    orders = pq.read_table(d / "orders.parquet")
    assert orders.num_rows == 7 and orders.schema.metadata[b"sq.stream"] == b"orders"
    assert orders.column("client_order_id").to_pylist() == ["c0", "c0", "c1", "c1", "c2", "c2", "c9"]
    assert orders.column("reason").to_pylist()[-1] == "position_too_large"
    assert str(orders.schema.field("ts").type) == "timestamp[ns, tz=UTC]"
    fills = pq.read_table(d / "fills.parquet")
    assert fills.num_rows == 3 and fills.column("fee").to_pylist() == [0.02] * 3
    pnl = pq.read_table(d / "pnl.parquet")
    assert pnl.column("total").to_pylist() == [1.5]
    assert not list(d.glob(".*tmp"))


def test_nan_and_unicode_survive(tmp_path):
    d = tmp_path / "r"
    j = J.Journal.create(d, {"strategy": "lt", "note": "ünïcode"})
    j.write_step([("order", order("m", "new", price=math.nan))])
    j.close()
    loaded = J.load(d)
    assert math.isnan(loaded.records[1].data["price"]) and loaded.start["note"] == "ünïcode"
    assert not loaded.sealed


def flip(path, offset):
    b = bytearray(path.read_bytes())
    b[offset] ^= 0x01
    path.write_bytes(bytes(b))


@pytest.mark.parametrize("where", ["digit", "key", "hash", "space"])
def test_flipped_byte_detected_and_named(tmp_path, where):
    d, j = make(tmp_path)
    j.close()
    log = d / J.LOG_NAME
    lines = log.read_bytes().split(b"\n")
    third = lines[2]  # record 3
    offset = len(lines[0]) + len(lines[1]) + 2
    if where == "digit":
        offset += third.index(b"100.25") + 4
    elif where == "key":
        offset += third.index(b"client_order_id") + 2
    elif where == "hash":
        offset += third.index(b'"h":"') + 10
    else:
        offset += third.index(b":") + 1
        b = bytearray(log.read_bytes())
        b[offset:offset] = b" "  # an inserted space keeps the JSON valid
        log.write_bytes(bytes(b))
    if where != "space":
        flip(log, offset)
    with pytest.raises(DataError) as e:
        J.load(d)
    assert e.value.status == ExitStatus.DATA_ERR
    assert f"{log}" in e.value.message and "line 3 (record 3)" in e.value.message


def test_truncated_last_record_detected(tmp_path):
    d, j = make(tmp_path)
    j.close()
    log = d / J.LOG_NAME
    data = log.read_bytes()
    log.write_bytes(data[:-20])
    with pytest.raises(DataError, match=r"line 10 \(record 10\): truncated record"):
        J.load(d)


def test_removed_or_reordered_records_detected(tmp_path):
    d, j = make(tmp_path)
    j.close()
    log = d / J.LOG_NAME
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:3] + lines[4:]))
    with pytest.raises(DataError, match=r"line 4 \(record 4\): record number 5 where 4 was expected"):
        J.load(d)
    log.write_bytes(b"".join(lines[:2] + [lines[3], lines[2]] + lines[4:]))
    with pytest.raises(DataError, match=r"line 3 \(record 3\)"):
        J.load(d)


def test_rehashed_record_breaks_the_chain_after_it(tmp_path):
    """Rewriting a record with a fresh valid hash still breaks the next record's link."""
    d, j = make(tmp_path)
    j.close()
    log = d / J.LOG_NAME
    lines = log.read_text().splitlines(keepends=True)
    prev = json.loads(lines[1])["h"]
    rec = json.loads(lines[2])
    rec["d"]["qty"] = 999.0
    lines[2], _ = J.encode_record(3, rec["k"], rec["d"], prev)
    log.write_text("".join(lines))
    with pytest.raises(DataError, match=r"line 4 \(record 4\): hash mismatch"):
        J.load(d)


def test_garbage_and_missing(tmp_path):
    with pytest.raises(NoInputError):
        J.load(tmp_path / "nope")
    d = tmp_path / "g"
    d.mkdir()
    (d / J.LOG_NAME).write_text("hello\n")
    with pytest.raises(DataError, match="line 1 .*not valid JSON"):
        J.load(d)
    (d / J.LOG_NAME).write_text("")
    with pytest.raises(DataError, match="empty"):
        J.load(d)


def test_reopen_continues_chain_and_locks(tmp_path):
    d, j = make(tmp_path, steps=1)
    with pytest.raises(TempFailure):  # the writer holds the lock
        J.Journal.reopen(d, {"pid": 2})
    j.close()
    j2, loaded = J.Journal.reopen(d, {"pid": 2})
    assert len(loaded.records) == 4 and j2.n == 5
    j2.write_step([("order", order("c9", "new"))])
    final = j2.seal({"reason": "done"})
    assert [r.kind for r in final.records][-3:] == ["resume", "order", "end"]
    with pytest.raises(UsageError, match="already exists"):
        J.Journal.create(d, {"strategy": "mm"})


def test_config_summary_has_no_secrets(monkeypatch):
    from sq.core.config import load_config

    monkeypatch.setenv("BINANCE_API_SECRET", "supersecretvalue123")
    monkeypatch.setenv("ZKITE_PWD", "hunter2hunter2")
    cfg = load_config(None)
    text = json.dumps(J.config_summary(cfg))
    assert "supersecret" not in text and "hunter2" not in text and "binance" not in text


def test_config_summary_keeps_the_instruments_and_their_params(tmp_path, monkeypatch):
    """`[[instruments]]` (their `params` tables are read-only mappings) are journaled as plain JSON."""
    from sq.core.config import load_config

    (tmp_path / "sq.toml").write_text('[[instruments]]\nsymbol = "SIM:DEMO"\nclip = 3\n[instruments.params]\nspread = 2.5\n')
    monkeypatch.setenv("SQ_CONFIG", str(tmp_path / "sq.toml"))
    summary = json.loads(json.dumps(J.config_summary(load_config(None))))
    [inst] = summary["instruments"]
    assert inst["symbol"] == "SIM:DEMO" and inst["clip"] == 3 and {k.lower(): v for k, v in inst["params"].items()} == {"spread": 2.5}


def test_run_id_sortable_and_unique():
    a, b = J.new_run_id(), J.new_run_id()
    assert a != b and len(a) == len("20260125T093000Z-3f9a00") and a[8] == "T"


@pytest.mark.parametrize("value", [None, True, 0, -5, 2**70, 1.5, 1e-300, math.nan, math.inf, -math.inf, "é\u2028\x00\"\\",
                                   [1, {"b": 2, "a": [None]}], {"z": {"y": 1.0}, "a": "x"}, {}, []])
def test_records_are_the_standard_librarys_canonical_json(value):
    """The journal's encoder (one C encoder kept, kinds and numbers spliced in) writes exactly what
    `json` writes with sorted keys and no spaces: a journal stays verifiable by any JSON tool."""
    ref = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode
    assert J.canonical(value) == ref(value)
    line, h = J.encode_record(7, "fill", {"v": value}, J.GENESIS)
    assert h == J.chain_hash(J.GENESIS, ref({"d": {"v": value}, "k": "fill", "n": 7}))
    assert line == ref({"d": {"v": value}, "h": h, "k": "fill", "n": 7}) + "\n"


def test_a_payload_that_is_not_json_is_refused_like_json_refuses_it():
    with pytest.raises(TypeError, match="not JSON serializable"):
        J.encode_record(1, "order", {"x": object()}, J.GENESIS)
