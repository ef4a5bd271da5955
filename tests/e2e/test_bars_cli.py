"""`sq bars` end to end: a real pipe from `sq subscribe`, files and formats, session bars through the
venue registry, and bad input (one line on stderr, the documented exit code)."""

from __future__ import annotations

import json
import subprocess

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from tests.support.barsref import as_frame, assert_same_bars, polars_time_bars
from tests.support.marketdata import market_rows, random_market, write_market_file
from tests.support.process import SQ_BIN, subprocess_env

SEC = 1_000_000_000


def read_stream(data: bytes) -> tuple[pa.Table, dict]:
    """An Arrow IPC stream's rows and its trailer's metadata."""
    reader = ipc.open_stream(pa.BufferReader(data))
    batches, trailer = [], {}
    while True:
        try:
            b, md = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            break
        if md is not None and md.get(S.META_END):
            trailer = dict(md)
        elif b.num_rows:
            batches.append(b)
    return pa.Table.from_batches(batches, schema=reader.schema), trailer


def clean_error(r, code: int, *needles: str) -> None:
    assert r.exit_code == code, (r.exit_code, r.stderr)
    assert len(r.stderr_lines) == 1 and r.stderr_lines[0].startswith("sq: error: "), r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in r.stderr_lines[0], (n, r.stderr_lines[0])


def test_subscribe_piped_into_bars_1m_equals_polars(tmp_path):
    """(seed 0: a market whose 150,000 events span more than two minutes)"""
    n = 150_000
    pipe = subprocess.run(["bash", "-o", "pipefail", "-c", f"{SQ_BIN} subscribe SIM:DEMO --seed 0 --limit {n} | {SQ_BIN} bars 1m"],
                          cwd=tmp_path, env=subprocess_env(), capture_output=True, timeout=600)
    assert pipe.returncode == 0, pipe.stderr
    bars, trailer = read_stream(pipe.stdout)
    assert S.stream_kind(bars.schema) == "bars" and S.bars_interval(bars.schema) == "1m"
    assert S.schema_instruments(bars.schema)["SIM:DEMO"].tick_size == 0.01
    assert trailer[S.META_END] == b"ok" and int(trailer[S.META_ROWS]) == bars.num_rows >= 2
    saved = subprocess.run([SQ_BIN, "subscribe", "SIM:DEMO", "--seed", "0", "--limit", str(n), "-o", "m.parquet"], cwd=tmp_path,
                           env=subprocess_env(), capture_output=True, timeout=600)
    assert saved.returncode == 0, saved.stderr
    assert_same_bars(as_frame(bars), polars_time_bars(pq.read_table(tmp_path / "m.parquet"), "1m"))


@pytest.fixture(scope="module")
def market_file(tmp_path_factory):
    return write_market_file(random_market(7, 3_000), tmp_path_factory.mktemp("bars") / "m.parquet")


def test_parquet_arrow_and_jsonl_outputs_agree(sq, market_file, tmp_path):
    r = sq(["bars", "5m", market_file, "-o", str(tmp_path / "b.parquet")])
    assert r.exit_code == 0 and r.stderr == "", r.stderr
    on_disk = pq.read_table(tmp_path / "b.parquet")
    assert on_disk.schema.metadata[S.META_END] == b"ok" and S.bars_interval(on_disk.schema) == "5m"
    assert_same_bars(as_frame(on_disk), polars_time_bars(pq.read_table(market_file), "5m"))
    piped, _ = read_stream(sq(["bars", "5m", market_file]).stdout)
    assert piped.equals(on_disk.replace_schema_metadata(piped.schema.metadata))
    lines = sq(["bars", "5m", market_file, "--format", "jsonl"]).stdout.decode().splitlines()
    first = json.loads(lines[0])
    assert len(lines) == on_disk.num_rows and set(first) == {f.name for f in S.BARS_FIELDS} and first["oi"] is None


def test_table_format_shows_dates(sq, market_file):
    r = sq(["bars", "1d", market_file, "--format", "table"])
    assert r.exit_code == 0, r.stderr
    header, first = r.stdout.decode().splitlines()[:2]
    assert header.split() == ["ts", "symbol", "open", "high", "low", "close", "volume", "trades", "vwap"]
    assert first.split()[:2] == ["2024-06-03", "00:00:00"]


def test_session_bars_use_the_venue_session(sq, tmp_path):
    open_utc = 1_717_386_300 * SEC  # 2024-06-03 09:15 IST
    rows = [(open_utc - 60 * SEC, "NSE:INFY", S.TRADE, 1, 1500.0, 5.0, 1),  # pre-open: left out
            (open_utc, "NSE:INFY", S.TRADE, 1, 1501.0, 2.0, 2),
            (open_utc + 3600 * SEC, "NSE:INFY", S.TRADE, -1, 1499.0, 1.0, 3)]
    src = write_market_file(pa.Table.from_batches([market_rows(rows)]), tmp_path / "nse.parquet")
    r = sq(["bars", "session", src, "--format", "jsonl"])
    assert r.exit_code == 0
    assert r.stderr_lines == ["sq: warning: 1 trade(s) outside their symbol's trading session left out"]
    (bar,) = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert bar["ts"].startswith("2024-06-03 03:45:00") and (bar["open"], bar["close"], bar["volume"]) == (1501.0, 1499.0, 3.0)


@pytest.fixture(scope="module")
def other_streams(tmp_path_factory, market_file):
    """A bars file and a fills file."""
    d = tmp_path_factory.mktemp("kinds")
    from sq.core.environment import Environment
    from sq.core.streams import StreamWriter

    env = Environment()
    fills = pa.RecordBatch.from_pylist([dict(ts=1, symbol="SIM:A", client_order_id="c1", venue_order_id="v1", trade_id="t1", side=1,
                                             price=1.0, qty=1.0, fee=0.0, fee_ccy="INR", liquidity="maker")],
                                       schema=S.fills_schema())
    with StreamWriter(env, S.fills_schema(), output=str(d / "fills.parquet")) as w:
        w.write(fills)
    r = subprocess.run([SQ_BIN, "bars", "1m", market_file, "-o", str(d / "bars.parquet")], env=subprocess_env(), capture_output=True)
    assert r.returncode == 0, r.stderr
    return {"fills": str(d / "fills.parquet"), "bars": str(d / "bars.parquet")}


def test_bad_input_is_one_line_and_the_right_exit_code(sq, market_file, other_streams, tmp_path):
    clean_error(sq(["bars", "7x", market_file]), 2, "unknown bar interval '7x'")
    clean_error(sq(["bars", "0m", market_file]), 2, "bar interval '0m' is zero")
    clean_error(sq(["bars", "0v", market_file]), 2, "is zero")
    clean_error(sq(["bars", "1m", market_file, "--start", "2024-06-05", "--end", "2024-06-04"]), 2, "--start 2024-06-05 is after --end 2024-06-04")
    clean_error(sq(["bars", "1m", market_file, "--start", "June 5"]), 2, "--start must be a date YYYY-MM-DD")
    clean_error(sq(["bars", "1m", other_streams["fills"]]), 65, "got a fills stream, but this command reads market streams")
    clean_error(sq(["bars", "1m", str(tmp_path / "missing.parquet")]), 66, "missing.parquet")
    bad = write_market_file(pa.Table.from_batches([market_rows([(1, "SIM:A", S.TRADE, 1, float("nan"), 1.0, 1)])]), tmp_path / "nan.parquet")
    clean_error(sq(["bars", "1m", bad]), 65, "row 0 (SIM:A): trade price nan")
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("command", [["book"], ["backtest", "-s", "mm"], ["paper", "-s", "mm", "--from"], ["bars", "1m"]])
def test_commands_that_read_market_streams_refuse_bars(sq, other_streams, command):
    clean_error(sq([*command, other_streams["bars"]]), 65, "got a bars stream, but this command reads market streams")
