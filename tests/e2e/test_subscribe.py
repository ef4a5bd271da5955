"""`sq subscribe`: in process (CliRunner with an injected Environment) and as a real pipeline."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from sq.core import schemas as S
from tests.support.process import SQ_BIN, subprocess_env

READER = (
    "import pyarrow.ipc as ipc, sys\n"
    "r = ipc.open_stream(sys.stdin.buffer)\n"
    "rows = 0; end = None\n"
    "while True:\n"
    "    try:\n"
    "        b, md = r.read_next_batch_with_custom_metadata()\n"
    "    except StopIteration:\n"
    "        break\n"
    "    rows += b.num_rows\n"
    "    if md is not None and md.get(b'sq.end'): end = md[b'sq.end'].decode()\n"
    "print(r.schema.metadata[b'sq.stream'].decode(), ','.join(r.schema.names), rows, end)\n"
)


def read_stream(data: bytes):
    r = ipc.open_stream(io.BytesIO(data))
    batches, trailer = [], None
    while True:
        try:
            b, md = r.read_next_batch_with_custom_metadata()
        except StopIteration:
            break
        if md is not None and md.get(b"sq.end"):
            trailer = md
        batches.append(b)
    return pa.Table.from_batches(batches, schema=r.schema), trailer


def test_pipe_writes_arrow_market_stream_with_trailer(sq):
    r = sq(["subscribe", "SIM:DEMO", "sim:foo", "--limit", "5000", "--seed", "3"])
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    table, trailer = read_stream(r.stdout)
    assert S.stream_kind(table.schema) == "market"
    assert set(S.schema_instruments(table.schema)) == {"SIM:DEMO", "SIM:FOO"}
    assert 5000 <= table.num_rows < 7000
    assert trailer[b"sq.end"] == b"ok" and int(trailer[b"sq.rows"]) == table.num_rows
    # same seed, same bytes
    again = sq(["subscribe", "SIM:DEMO", "SIM:FOO", "--limit", "5000", "--seed", "3"])
    assert again.stdout == r.stdout


def test_venue_and_symbol_errors(sq, monkeypatch):
    monkeypatch.setenv("SQ_BINANCE_REST_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("SQ_BINANCE_WS_URL", "ws://127.0.0.1:9")
    r = sq(["subscribe", "BINANCE:BTCUSDT", "--for", "1s"])
    assert r.exit_code == 69
    assert len(r.stderr_lines) == 1 and "binance" in r.stderr
    r = sq(["subscribe", "NSE:RELIANCE", "SIM:DEMO"])
    assert r.exit_code == 2 and "several venues" in r.stderr
    r = sq(["subscribe", "SIM:DEMO", "--mode", "depth"])
    assert r.exit_code == 2 and "--mode" in r.stderr
    r = sq(["subscribe", "FOO"])
    assert r.exit_code == 2 and "prefix" in r.stderr


def test_output_file_and_jsonl(sq, tmp_path):
    out = tmp_path / "m.parquet"
    r = sq(["subscribe", "SIM:DEMO", "--limit", "3000", "-o", str(out)])
    assert r.exit_code == 0 and r.stdout == b""
    t = pq.read_table(out)
    assert t.num_rows >= 3000 and t.schema.metadata[b"sq.stream"] == b"market"
    r = sq(["subscribe", "SIM:DEMO", "--limit", "50", "--format", "jsonl"])
    lines = r.stdout.decode().splitlines()
    assert len(lines) >= 50 and '"kind":3' in lines[0]


def test_terminal_refuses_arrow_and_shows_live_view(sq):
    r = sq(["subscribe", "SIM:DEMO", "--limit", "10", "--format", "arrow"], stdout_isatty=True)
    assert r.exit_code == 2 and "terminal" in r.stderr
    r = sq(["subscribe", "SIM:DEMO", "SIM:FOO", "--for", "1s"], stdout_isatty=True, width=140)
    assert r.exit_code == 0, r.stderr
    text = r.stdout.decode()
    assert "SIM:DEMO" in text and "SIM:FOO" in text and "events/s" in text and "spread" in text
    assert b"ARROW" not in r.stdout and not r.stdout.startswith(b"\xff\xff\xff\xff")


def test_help_shows_examples(sq):
    r = sq(["subscribe", "--help"])
    assert r.exit_code == 0
    assert b"sq subscribe SIM:DEMO --limit 20000" in r.stdout


def test_real_pipeline_schema_and_rows(tmp_path):
    cmd = f"{SQ_BIN} subscribe SIM:DEMO --limit 20000 | {sys.executable} -c \"{READER}\""
    p = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    kind, names, rows, end = p.stdout.split()
    assert kind == "market"
    assert names.split(",") == [f.name for f in S.MARKET_FIELDS]
    assert 20000 <= int(rows) < 22000 and end == "ok"


def test_head_closes_pipe_quietly():
    p = subprocess.run(
        ["bash", "-c", f"{SQ_BIN} subscribe SIM:DEMO | head -c 100 > /dev/null; echo ${{PIPESTATUS[0]}}"],
        capture_output=True, text=True, env=subprocess_env(), timeout=60,
    )
    assert p.stdout.strip() == "0"
    assert p.stderr == ""


def test_sigterm_and_ctrl_c_end_with_trailer_and_the_signals_status(tmp_path):
    """The stream is finished (trailer) either way; the status says which signal stopped it."""
    for sig, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        out = tmp_path / f"s{int(sig)}.arrow"
        with open(out, "wb") as f:
            proc = subprocess.Popen([SQ_BIN, "subscribe", "SIM:DEMO"], stdout=f, stderr=subprocess.PIPE, env=subprocess_env())
            deadline = time.monotonic() + 30
            while out.stat().st_size == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=20)
        assert proc.returncode == status, err
        table, trailer = read_stream(out.read_bytes())
        assert trailer is not None and trailer[b"sq.end"] == b"ok"
        assert table.num_rows > 100


def test_config_overrides_sim_grid(sq, tmp_path, monkeypatch):
    cfg = tmp_path / "sq.toml"
    cfg.write_text("[sim.DEMO]\ntick_size = 0.05\nprice = 250.0\nlot_size = 10\n")
    monkeypatch.setenv("SQ_CONFIG", str(cfg))
    r = sq(["subscribe", "SIM:DEMO", "--limit", "2000"])
    assert r.exit_code == 0, r.stderr
    table, _ = read_stream(r.stdout)
    inst = S.schema_instruments(table.schema)["SIM:DEMO"]
    assert (inst.tick_size, inst.lot_size) == (0.05, 10.0)
    px = table.column("price").to_numpy()[table.column("kind").to_numpy() == S.LEVEL]
    assert 200 < px.mean() < 300
