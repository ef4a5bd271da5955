"""Round trips through every reader and writer, trailers, atomic files and bad streams."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from sq.core.environment import Environment
from sq.core.exits import DataError, NoInputError, UsageError
from sq.core.streams import StreamWriter, open_input, resolve_format
from tests.support.marketdata import simple_book_batch


def _env(stdin: bytes = b"", stdout_isatty: bool = False, stdin_isatty: bool = False):
    out = io.BytesIO()
    err = io.StringIO()
    env = Environment(stdin=io.BufferedReader(io.BytesIO(stdin)), stdout=out, stderr=err,
                      stdin_isatty=stdin_isatty, stdout_isatty=stdout_isatty, stderr_isatty=False)
    return env, out, err


def _write_stream(batch: pa.RecordBatch, pieces: int = 3) -> bytes:
    env, out, _ = _env()
    with StreamWriter(env, batch.schema) as w:
        step = max(1, batch.num_rows // pieces)
        for i in range(0, batch.num_rows, step):
            w.write(batch.slice(i, step))
    return out.getvalue()


def _read_all(env, inputs, want="market") -> pa.Table:
    src = open_input(env, inputs, want)
    return pa.Table.from_batches(list(src.batches()), schema=src.schema)


def _same_rows(a: pa.Table, b: pa.Table) -> None:
    assert a.num_rows == b.num_rows
    for name in S.market_schema({}).names:
        ca, cb = a.column(name), b.column(name)
        if pa.types.is_dictionary(ca.type):
            ca, cb = ca.cast(pa.string()), cb.cast(pa.string())
        assert ca.equals(cb), name


def test_arrow_stream_round_trip_keeps_schema_metadata_and_rows():
    batch = simple_book_batch(40)
    data = _write_stream(batch)
    env, _, err = _env(stdin=data)
    src = open_input(env, [], "market")
    table = pa.Table.from_batches(list(src.batches()), schema=src.schema)
    _same_rows(table, pa.Table.from_batches([batch]))
    assert src.instruments["SIM:TEST"].tick_size == 0.01
    assert src.kind == "market" and src.from_sq
    assert err.getvalue() == ""


def test_stream_writer_flushes_schema_before_any_batch():
    batch = simple_book_batch(5)
    env, out, _ = _env()
    w = StreamWriter(env, batch.schema)
    # a reader can open the stream (schema) before the first data batch is written
    reader = ipc.open_stream(io.BytesIO(out.getvalue()))
    assert reader.schema.metadata[b"sq.stream"] == b"market"
    w.close()


def test_trailer_carries_end_marker_and_row_count():
    batch = simple_book_batch(10)
    data = _write_stream(batch)
    reader = ipc.open_stream(io.BytesIO(data))
    last_md = None
    while True:
        try:
            _, md = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            break
        last_md = md
    assert last_md[b"sq.end"] == b"ok"
    assert int(last_md[b"sq.rows"]) == batch.num_rows


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_file_round_trip(tmp_path, suffix):
    batch = simple_book_batch(30)
    out = tmp_path / f"rec{suffix}"
    env, _, _ = _env()
    with StreamWriter(env, batch.schema, output=str(out)) as w:
        w.write(batch.slice(0, 10))
        w.write(batch.slice(10))
    assert out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    table = _read_all(env, [str(out)])
    _same_rows(table, pa.Table.from_batches([batch]))


def test_jsonl_output_has_one_object_per_row(tmp_path):
    batch = simple_book_batch(3)
    env, out, _ = _env()
    with StreamWriter(env, batch.schema, fmt="jsonl") as w:
        w.write(batch)
    lines = out.getvalue().decode().splitlines()
    assert len(lines) == batch.num_rows
    first = json.loads(lines[0])
    assert first["symbol"] == "SIM:TEST" and first["kind"] == S.CLEAR and first["ts"].startswith("1970-01-01")


def test_directory_glob_and_hive_dataset(tmp_path):
    batch = simple_book_batch(20)
    part = tmp_path / "data" / "venue=sim" / "symbol=SIM%3ATEST" / "date=1970-01-01"
    part.mkdir(parents=True)
    pq.write_table(pa.Table.from_batches([batch.slice(0, 15)]), part / "part-1.parquet")
    pq.write_table(pa.Table.from_batches([batch.slice(15)]), part / "part-2.parquet")
    env, _, _ = _env()
    whole = pa.Table.from_batches([batch])
    _same_rows(_read_all(env, [str(tmp_path / "data")]), whole)
    _same_rows(_read_all(env, [str(tmp_path / "data" / "**" / "*.parquet")]), whole)


def test_foreign_parquet_without_metadata_is_accepted_and_conformed(tmp_path):
    batch = simple_book_batch(5)
    table = pa.Table.from_batches([batch]).replace_schema_metadata(None)
    table = table.set_column(2, "symbol", table.column("symbol").cast(pa.large_string()))
    path = tmp_path / "foreign.parquet"
    pq.write_table(table, path)
    env, _, _ = _env()
    src = open_input(env, [str(path)], "market")
    got = pa.Table.from_batches(list(src.batches()), schema=src.schema)
    assert got.schema.field("symbol").type == S.SYMBOL
    assert not src.from_sq


def test_truncated_sq_stream_is_a_data_error():
    batch = simple_book_batch(30)
    env0, out, _ = _env()
    w = StreamWriter(env0, batch.schema)
    w.write(batch.slice(0, 10))
    w.write(batch.slice(10, 10))  # writer "dies" here: no close, no trailer
    env, _, _ = _env(stdin=out.getvalue())
    src = open_input(env, [], "market")
    with pytest.raises(DataError, match="truncated"):
        list(src.batches())


def test_stream_cut_mid_batch_is_a_data_error():
    data = _write_stream(simple_book_batch(200), pieces=1)
    env, _, _ = _env(stdin=data[: len(data) - 700])
    with pytest.raises(DataError):
        list(open_input(env, [], "market").batches())


def test_foreign_stream_without_trailer_is_accepted_with_warning():
    batch = simple_book_batch(5)
    buf = io.BytesIO()
    schema = batch.schema.remove_metadata()
    with ipc.new_stream(buf, schema) as w:
        w.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
    env, _, err = _env(stdin=buf.getvalue())
    rows = sum(b.num_rows for b in open_input(env, [], "market").batches())
    assert rows == batch.num_rows
    assert "not written by sq" in err.getvalue()


def test_wrong_stream_kind_names_both_kinds():
    pnl = pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in S.pnl_schema()], schema=S.pnl_schema())
    buf = io.BytesIO()
    with ipc.new_stream(buf, pnl.schema) as w:
        w.write_batch(pnl, custom_metadata={"sq.end": "ok"})
    env, _, _ = _env(stdin=buf.getvalue())
    with pytest.raises(DataError, match="got a pnl stream.*market"):
        open_input(env, [], "market")


@pytest.mark.parametrize(
    "payload, needle",
    [
        (b"ts,symbol,price\n1,SIM:X,100\n", "CSV text"),
        (b"\x00\x01\x02garbage\xff\xfe", "bytes"),
        (b"", "empty"),
        (b"hello world\n", "text"),
    ],
)
def test_garbage_on_stdin_is_a_data_error(payload, needle):
    env, _, _ = _env(stdin=payload)
    with pytest.raises(DataError, match=needle):
        open_input(env, [], "market")


def test_missing_file_and_empty_glob_are_no_input(tmp_path):
    env, _, _ = _env()
    with pytest.raises(NoInputError, match="not found"):
        open_input(env, [str(tmp_path / "nope.parquet")], "market")
    with pytest.raises(NoInputError, match="no files match"):
        open_input(env, [str(tmp_path / "*.parquet")], "market")


def test_no_input_on_a_terminal_is_a_usage_error():
    env, _, _ = _env(stdin_isatty=True)
    with pytest.raises(UsageError, match="no input"):
        open_input(env, [], "market")


def test_corrupt_parquet_file_is_a_data_error(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1" + os.urandom(100))
    env, _, _ = _env()
    with pytest.raises(DataError, match="corrupt"):
        list(open_input(env, [str(path)], "market").batches())


def test_failed_writer_leaves_no_file_under_final_name(tmp_path):
    batch = simple_book_batch(10)
    out = tmp_path / "x.parquet"
    out.write_bytes(b"previous good content")
    env, _, _ = _env()
    with pytest.raises(RuntimeError):
        with StreamWriter(env, batch.schema, output=str(out)) as w:
            w.write(batch)
            raise RuntimeError("boom")
    assert out.read_bytes() == b"previous good content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


def test_format_resolution():
    tty, _, _ = _env(stdout_isatty=True)
    pipe, _, _ = _env()
    assert resolve_format(pipe, "auto", None) == "arrow"
    assert resolve_format(tty, "auto", None) == "table"
    assert resolve_format(pipe, "auto", "x.parquet") == "parquet"
    assert resolve_format(pipe, "auto", "x.arrow") == "arrow"
    with pytest.raises(UsageError, match="terminal"):
        resolve_format(tty, "arrow", None)
    with pytest.raises(UsageError, match="format"):
        resolve_format(pipe, "csv", None)
    with pytest.raises(UsageError, match="suffix"):
        resolve_format(pipe, "auto", "x.txt")


def test_market_batch_builds_nulls_for_negative_order_counts():
    b = simple_book_batch(1)
    assert b.schema.field("orders").nullable
    ins = {"SIM:A": S.Instrument("SIM:A", "sim", 0.5)}
    schema = S.market_schema(ins)
    n = 3
    batch = S.market_batch(schema, S.symbol_dictionary(["SIM:A"]), np.arange(n), np.arange(n), np.zeros(n),
                           np.ones(n), np.ones(n), np.full(n, 10.0), np.ones(n), np.arange(n), np.array([2, -1, 5]))
    assert batch.column("orders").to_pylist() == [2, None, 5]
    assert S.schema_instruments(batch.schema)["SIM:A"].tick_size == 0.5


def test_dataset_instruments_are_learned_from_every_file(tmp_path):
    from tests.support.marketdata import market_rows

    a = market_rows([(1, "SIM:A", S.CLEAR, 0, 0.0, 0.0, 1)], ["SIM:A"], tick=0.5)
    b = market_rows([(2, "SIM:B", S.CLEAR, 0, 0.0, 0.0, 1)], ["SIM:B"], tick=0.25)
    pq.write_table(pa.Table.from_batches([a]), tmp_path / "a.parquet")
    pq.write_table(pa.Table.from_batches([b]), tmp_path / "b.parquet")
    env, _, _ = _env()
    src = open_input(env, [str(tmp_path)], "market")
    assert {s: i.tick_size for s, i in src.instruments.items()} == {"SIM:A": 0.5, "SIM:B": 0.25}


def test_multi_symbol_dataset_is_merged_by_time_with_messages_whole(tmp_path, monkeypatch):
    from sq.core import streams as ST
    from tests.support.marketdata import market_rows

    monkeypatch.setattr(ST, "MERGE_CHUNK_ROWS", 7)  # force many chunks and horizons
    rng = np.random.default_rng(4)
    expected = []
    for sym in ("SIM:A", "SIM:B", "SIM:C"):
        rows, ts, seq = [], 0, 0
        for _ in range(60):
            ts += int(rng.integers(0, 3))  # equal timestamps across and within lanes
            seq += 1
            for _ in range(int(rng.integers(1, 4))):  # multi-row messages
                rows.append((ts, sym, S.LEVEL, 1, 100.0, float(rng.integers(1, 9)), seq))
        expected += rows
        d = tmp_path / "data" / "venue=sim" / f"symbol={sym.replace(':', '%3A')}" / "date=1970-01-01"
        d.mkdir(parents=True)
        half = len(rows) // 2
        while rows[half][6] == rows[half - 1][6]:
            half += 1  # files end on message boundaries, as the recorder writes them
        pq.write_table(pa.Table.from_batches([market_rows(rows[:half], [sym])]), d / "part-0.parquet")
        pq.write_table(pa.Table.from_batches([market_rows(rows[half:], [sym])]), d / "part-1.parquet")
    env, _, _ = _env()
    got = pa.Table.from_batches(list(open_input(env, [str(tmp_path / "data")], "market").batches()))
    ts = got.column("ts").cast(pa.int64()).to_pylist()
    syms = got.column("symbol").cast(pa.string()).to_pylist()
    seqs = got.column("seq").to_pylist()
    assert len(ts) == len(expected)
    assert ts == sorted(ts)  # one clock
    # every message's rows are consecutive
    seen, prev = set(), None
    for key in zip(syms, seqs):
        if key != prev:
            assert key not in seen, key
            seen.add(key)
        prev = key
    assert sorted(zip(syms, seqs, ts)) == sorted((r[1], r[6], r[0]) for r in expected)


BOOK_COLS = ("ts", "symbol", "kind", "side", "price", "qty", "seq")


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_open_input_columns_reads_only_those_and_same_values(tmp_path, suffix):
    batch = simple_book_batch(40)
    path = tmp_path / f"m{suffix}"
    env, _, _ = _env()
    with StreamWriter(env, batch.schema, output=str(path)) as w:
        w.write(batch)
    whole = _read_all(env, [str(path)])
    src = open_input(env, [str(path)], "market", columns=BOOK_COLS)
    got = pa.Table.from_batches(list(src.batches()), schema=src.schema)
    assert got.schema.names == [n for n in whole.schema.names if n in BOOK_COLS]
    for name in BOOK_COLS:
        assert got.column(name).equals(whole.column(name)), name


def test_open_input_columns_still_checks_the_columns_it_does_not_read(tmp_path):
    table = pa.Table.from_batches([simple_book_batch(10)])
    path = tmp_path / "no_recv.parquet"
    pq.write_table(table.drop(["recv_ts"]), path)
    env, _, _ = _env()
    with pytest.raises(DataError, match="lacks required column 'recv_ts'"):
        list(open_input(env, [str(path)], "market", columns=BOOK_COLS).batches())
    path2 = tmp_path / "bad_orders.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("orders"), "orders", pa.array([[1]] * table.num_rows)), path2)
    with pytest.raises(DataError, match="column types do not fit"):
        list(open_input(env, [str(path2)], "market", columns=BOOK_COLS).batches())


def test_parquet_output_reads_back_with_v2_pages_and_a_small_first_row_group(tmp_path):
    from sq.core import streams

    batch = simple_book_batch(10)
    big = pa.Table.from_batches([batch] * (90_000 // batch.num_rows + 1)).to_batches(max_chunksize=30_000)
    out = tmp_path / "m.parquet"
    env, _, _ = _env()
    with StreamWriter(env, batch.schema, output=str(out)) as w:
        for b in big:
            w.write(b)
    md = pq.ParquetFile(out).metadata
    assert md.row_group(0).num_rows < streams.PARQUET_ROW_GROUP
    assert md.num_rows == sum(b.num_rows for b in big) >= 90_000
    rg = md.row_group(0)
    encodings = {rg.column(i).path_in_schema: rg.column(i).encodings for i in range(rg.num_columns)}
    assert "DELTA_BINARY_PACKED" in encodings["ts"] and "DELTA_BINARY_PACKED" in encodings["seq"]
    _same_rows(pq.read_table(out), pa.Table.from_batches(big))


def test_parquet_output_keeps_statistics_for_keys_not_floats(tmp_path):
    """Readers prune row groups on ts, symbol and seq; float columns carry no statistics (cheaper)."""
    from sq.core import streams

    batch = simple_book_batch(10)
    out = tmp_path / "b.parquet"
    env, _, _ = _env()
    with StreamWriter(env, batch.schema, output=str(out)) as w:
        w.write(batch)
    md = pq.ParquetFile(out).metadata
    rg = md.row_group(0)
    cols = {rg.column(i).path_in_schema: rg.column(i) for i in range(rg.num_columns)}
    assert cols["ts"].is_stats_set and cols["seq"].is_stats_set and cols["symbol"].is_stats_set
    floats = [f.name for f in batch.schema if pa.types.is_floating(f.type)]
    assert floats and not any(cols[n].is_stats_set for n in floats)
    assert all(c.compression == streams.PARQUET_COMPRESSION.upper() for c in cols.values())


def _whole(batch: pa.RecordBatch) -> pa.RecordBatch:
    md = {**(batch.schema.metadata or {}), S.META_WHOLE_MESSAGES: b"1"}
    return pa.RecordBatch.from_arrays(batch.columns, schema=batch.schema.with_metadata(md))


def test_whole_messages_holds_for_one_piped_stream_only(tmp_path):
    """sq.whole_messages reaches a reader of the pipe as StreamSource.whole_messages (not in the
    conformed schema); files never carry it, and --start/--end (rows cut out) drop it."""
    import datetime as dt

    batch = _whole(simple_book_batch(10))
    data = _write_stream(batch)
    env, _, _ = _env(stdin=data)
    src = open_input(env, None, "market", columns=("ts", "symbol", "kind", "side", "price", "qty", "seq"))
    assert src.whole_messages
    assert S.META_WHOLE_MESSAGES not in (src.schema.metadata or {})
    assert sum(b.num_rows for b in src.batches()) == batch.num_rows
    env, _, _ = _env(stdin=_write_stream(simple_book_batch(10)))
    assert not open_input(env, None, "market").whole_messages  # a writer that does not say so
    env, _, _ = _env(stdin=data)
    day = dt.datetime.fromtimestamp(0, dt.timezone.utc).date()
    assert not open_input(env, None, "market", start=day, end=day).whole_messages
    out = tmp_path / "m.parquet"
    env, _, _ = _env()
    with StreamWriter(env, batch.schema, output=str(out)) as w:
        w.write(batch)
    assert S.META_WHOLE_MESSAGES not in pq.read_schema(out).metadata
    env, _, _ = _env()
    assert not open_input(env, [str(out)], "market").whole_messages


def test_piped_sq_stream_reads_the_columns_asked_for_in_order():
    """An sq stream read whole from stdin gives exactly `columns` (in the schema's order), values intact."""
    batch = simple_book_batch(10)
    env, _, _ = _env(stdin=_write_stream(batch))
    cols = ("seq", "ts", "symbol", "price")
    src = open_input(env, None, "market", columns=cols)
    got = pa.Table.from_batches(list(src.batches()))
    assert got.schema.names == [n for n in batch.schema.names if n in cols] == src.schema.names
    assert got.column("price").to_pylist() == batch.column("price").to_pylist()


def test_symbol_registry_codes_follow_each_batch_s_dictionary():
    """A dictionary whose ids are the registry's is used as it is; another one is remapped; a
    plain string column is encoded."""
    import pyarrow as pa

    from sq.core.streams import SymbolRegistry

    reg = SymbolRegistry()
    first = pa.DictionaryArray.from_arrays(pa.array([0, 1, 1, 0], pa.int32()), pa.array(["SIM:A", "SIM:B"]))
    assert reg.codes(first).tolist() == [0, 1, 1, 0]
    swapped = pa.DictionaryArray.from_arrays(pa.array([0, 0, 1, 2], pa.int32()), pa.array(["SIM:B", "SIM:A", "SIM:C"]))
    assert reg.codes(swapped).tolist() == [1, 1, 0, 2]
    assert reg.codes(first).tolist() == [0, 1, 1, 0]
    assert reg.codes(pa.array(["SIM:C", "SIM:A"])).tolist() == [2, 0]
    assert reg.symbols == ["SIM:A", "SIM:B", "SIM:C"]
