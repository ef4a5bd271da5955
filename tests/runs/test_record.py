"""`sq record`: hive-partitioned Parquet layout, files readable by polars and by sq itself,
rotation by data time, sealing on SIGTERM, and a pass-through that gives up (loudly) when
downstream closes or falls behind while recording to disk goes on."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from sq.core.environment import Environment
from sq.core.datasets import partition_dir
from sq.runs.record import PipeSink, Recorder
from sq.core.streams import open_input
from tests.support.process import ROOT, subprocess_env

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
MINUTE = 60_000_000_000


class SyntheticSource:
    """A MarketSource for tests: `n` rows in messages of two rows (one seq), symbols round-robin.

    With `real_time` the timestamps are the wall clock and batches come every `pace_s`; `close()`
    ends iteration (like a venue source stopped by a signal).
    """

    def __init__(self, symbols=("SIM:DEMO", "SIM:ALT"), n=10_000, step_ns=10_000_000, t0=T0, per_batch=50,
                 real_time=False, pace_s=0.002, duration_ns=None, limit=None):
        self.instruments = {s: S.Instrument(s, "sim", 0.01, 1.0) for s in symbols}
        self.schema = S.market_schema(self.instruments)
        self.dictionary = S.symbol_dictionary(list(symbols))
        self.n = limit or n
        self.step_ns, self.t0, self.per_batch = step_ns, t0, per_batch
        self.real_time, self.pace_s, self.duration_ns = real_time, pace_s, duration_ns
        self.closed = threading.Event()

    def batches(self):
        i = 0
        start = time.time_ns()
        nsym = len(self.instruments)
        while not self.closed.is_set() and (self.real_time and self.n is None or i < self.n):
            k = self.per_batch if self.n is None else min(self.per_batch, self.n - i)
            idx = np.arange(i, i + k)
            msg = idx // 2
            if self.real_time:
                time.sleep(self.pace_s)
                now = time.time_ns()
                if self.duration_ns and now - start >= self.duration_ns:
                    return
                ts = np.full(k, now)
            else:
                ts = self.t0 + msg * self.step_ns
            yield S.market_batch(self.schema, self.dictionary, ts, ts, msg % nsym, np.ones(k), np.where(idx % 2, 1, -1),
                                 100 + (idx % 7) * 0.01, np.ones(k), msg)
            i += k

    def close(self):
        self.closed.set()


def install_fake_sim(**kw):
    """Make `sq record SIM:…` use SyntheticSource (for runs before/without the real SIM venue)."""
    from sq.venues import registry

    def open_market_source(symbols, options):
        real = options.clock == "real"
        return SyntheticSource(tuple(s.canonical for s in symbols), n=options.limit or (None if real else 10_000),
                               real_time=real, duration_ns=options.duration_ns, **kw)

    fake = types.SimpleNamespace(open_market_source=open_market_source)
    registry.venue_module = lambda venue, sub=None: fake
    return fake


def real_sim_available() -> bool:
    try:
        import sq.venues.sim as sim
    except Exception:
        return False
    return hasattr(sim, "open_market_source") or hasattr(sim, "SimVenue")


def parts(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file())


def rows_of(out: Path) -> int:
    return sum(b.num_rows for b in open_input(Environment(), [str(out)], "market").batches())


# ----------------------------------------------------------------------------------------------
# the recorder core, with a synthetic source


def test_partition_layout_and_readers(tmp_path):
    out = tmp_path / "data"
    summary = Recorder(SyntheticSource(n=10_000), out).run()
    files = parts(out)
    assert summary.events == 10_000 and summary.per_symbol == {"SIM:DEMO": 5000, "SIM:ALT": 5000}
    assert [str(f) for f in files] == sorted(summary.files) and summary.bytes == sum(f.stat().st_size for f in files)
    rel = sorted(str(f.relative_to(out).parent) for f in files)
    assert rel == ["venue=sim/symbol=SIM%3AALT/date=2023-11-14", "venue=sim/symbol=SIM%3ADEMO/date=2023-11-14"]
    assert all(re.fullmatch(r"part-\d{19}-\d+\.parquet", f.name) for f in files)

    import polars as pl

    df = pl.scan_parquet(str(out) + "/**/*.parquet").collect()
    assert df.height == 10_000 and df["symbol"].n_unique() == 2
    hive = pl.read_parquet(str(out))  # directory read adds the partition columns
    assert set(hive["venue"]) == {"sim"} and set(hive["symbol"]) == {"SIM:DEMO", "SIM:ALT"}

    src = open_input(Environment(), [str(out)], "market")
    assert sum(b.num_rows for b in src.batches()) == 10_000
    assert src.instruments["SIM:DEMO"].tick_size == 0.01 and src.instruments["SIM:ALT"].venue == "sim"

    md = pq.ParquetFile(files[0]).schema_arrow.metadata
    assert md[S.META_END] == b"ok" and md[S.META_STREAM] == b"market"
    assert list(S.instruments_from_json(md[S.META_INSTRUMENTS])) == ["SIM:ALT"]

    import pyarrow.dataset as ds

    assert ds.dataset(str(out), partitioning="hive").count_rows() == 10_000


def test_rotation_by_data_time_never_splits_messages(tmp_path):
    out = tmp_path / "data"
    # 10 minutes of data, one symbol, 1-minute files; batches cross window boundaries
    src = SyntheticSource(symbols=("SIM:DEMO",), n=12_000, step_ns=100_000_000, per_batch=333, t0=T0 // MINUTE * MINUTE)
    summary = Recorder(src, out, rotate_ns=MINUTE).run()
    files = parts(out)
    assert len(files) == len(summary.files) == 10
    total = 0
    for f in files:
        t = pq.read_table(f)
        ts = t.column("ts").cast(pa.int64()).to_numpy()
        assert len(set(ts // MINUTE)) == 1, f"{f.name} spans two rotation windows"
        assert f.name.startswith(f"part-{ts[0]}-")
        total += t.num_rows
    assert total == 12_000
    seqs_per_file = [set(pq.read_table(f).column("seq").to_pylist()) for f in files]
    for a in range(len(seqs_per_file)):
        for b in range(a + 1, len(seqs_per_file)):
            assert not seqs_per_file[a] & seqs_per_file[b], "a message was split across files"


def test_quiet_symbol_sealed_when_data_clock_moves_on(tmp_path):
    out = tmp_path / "data"
    sealed_seen = []

    def sealed():
        return [f for f in parts(out) if not f.name.startswith(".")] if out.exists() else []

    class Scripted(SyntheticSource):
        def batches(self):
            def one(ts, code, seq):
                arr = lambda v, t=None: np.array([v], dtype=t)  # noqa: E731
                return S.market_batch(self.schema, self.dictionary, arr(ts), arr(ts), arr(code), arr(1), arr(1), arr(100.0), arr(1.0), arr(seq))

            yield one(T0, 1, 0)  # SIM:ALT speaks once, in minute 0
            yield one(T0, 0, 0)
            sealed_seen.append(len(sealed()))  # both still open
            yield one(T0 + 5 * MINUTE, 0, 1)  # only SIM:DEMO moves on
            sealed_seen.append(len(sealed()))

    Recorder(Scripted(), out, rotate_ns=MINUTE).run()
    assert sealed_seen == [0, 2]  # the quiet SIM:ALT file was sealed when the clock left minute 0
    assert len(sealed()) == 3 and rows_of(out) == 3


def test_date_partition_follows_utc_event_time(tmp_path):
    midnight = 1_700_006_400_000_000_000  # 2023-11-15T00:00:00Z
    out = tmp_path / "data"
    Recorder(SyntheticSource(symbols=("SIM:DEMO",), n=200, step_ns=1_000_000_000, t0=midnight - 50_000_000_000), out).run()
    dates = sorted({f.parent.name for f in parts(out)})
    assert dates == ["date=2023-11-14", "date=2023-11-15"]
    assert partition_dir(out, "sim", "SIM:DEMO", midnight).name == "date=2023-11-15"


def test_passthrough_is_the_market_stream_with_trailer(tmp_path):
    import io

    sink = io.BytesIO()
    summary = Recorder(SyntheticSource(n=3000), tmp_path / "d", passthrough=sink).run()
    assert summary.passthrough == "ok"
    env = Environment(stdin=io.BufferedReader(io.BytesIO(sink.getvalue())), stdin_isatty=False)
    src = open_input(env, ["-"], "market")
    got = pa.Table.from_batches(list(src.batches()))
    disk = pa.Table.from_batches(list(open_input(Environment(), [str(tmp_path / "d")], "market").batches()))
    assert got.num_rows == disk.num_rows == 3000
    assert sorted(got.column("seq").to_pylist()) == sorted(disk.column("seq").to_pylist())


def test_passthrough_overflow_closes_loudly_and_recording_continues(tmp_path):
    r, w = os.pipe()  # nobody ever reads r: downstream has fallen behind
    warnings = []
    try:
        sink = PipeSink(w)
        summary = Recorder(SyntheticSource(n=20_000, per_batch=100), tmp_path / "d", passthrough=sink, queue_size=4,
                           warn=warnings.append).run()
    finally:
        os.close(r)
        os.close(w)
    assert summary.events == 20_000 and rows_of(tmp_path / "d") == 20_000
    assert summary.passthrough.startswith("closed: downstream fell behind")
    assert len(warnings) == 1 and "recording to disk continues" in warnings[0]


def test_passthrough_epipe_closes_and_recording_continues(tmp_path):
    r, w = os.pipe()
    os.close(r)  # downstream already gone
    warnings = []
    try:
        summary = Recorder(SyntheticSource(n=5000), tmp_path / "d", passthrough=PipeSink(w), warn=warnings.append).run()
    finally:
        os.close(w)
    assert summary.passthrough == "closed: downstream closed the pipe"
    assert rows_of(tmp_path / "d") == 5000 and any("downstream closed" in m for m in warnings)


def test_source_error_still_seals_files(tmp_path):
    class Failing(SyntheticSource):
        def batches(self):
            for i, b in enumerate(super().batches()):
                if i == 10:
                    raise RuntimeError("venue went away")
                yield b

    with pytest.raises(RuntimeError):
        Recorder(Failing(n=10_000), tmp_path / "d").run()
    files = parts(tmp_path / "d")
    assert files and not any(f.name.startswith(".") for f in files)
    assert rows_of(tmp_path / "d") == 500


# ----------------------------------------------------------------------------------------------
# the command, in process


@pytest.fixture
def fake_sim(monkeypatch):
    from sq.venues import registry

    monkeypatch.setattr(registry, "venue_module", registry.venue_module)  # restored after the test
    return install_fake_sim()


def test_cli_record_to_pipe_passes_stream_and_prints_summary(tmp_path, sq, fake_sim):
    out = tmp_path / "data"
    r = sq(["record", "sim:demo", "--out", str(out), "--limit", "4000"])
    assert r.exit_code == 0, r.stderr
    assert re.search(r"recorded 4000 events \(SIM:DEMO 4000\) into 1 file, [\d.]+ KB under ", r.stderr)
    assert rows_of(out) == 4000
    assert pa.ipc.open_stream(r.stdout).read_all().num_rows == 4000


def test_cli_record_terminal_no_passthrough_quiet_no_summary(tmp_path, sq, fake_sim):
    out = tmp_path / "data"
    r = sq(["--quiet", "record", "SIM:DEMO", "--out", str(out), "--limit", "1000"], stdout_isatty=True)
    assert r.exit_code == 0 and r.stdout == b"" and r.stderr == ""
    assert rows_of(out) == 1000


def test_cli_record_default_out_is_data_dir(sq, fake_sim, isolated_home):
    r = sq(["record", "SIM:DEMO", "--limit", "100", "--format", "none"])
    assert r.exit_code == 0 and r.stdout == b""
    assert rows_of(isolated_home / "data" / "recordings") == 100


def test_cli_record_jsonl_passthrough(tmp_path, sq, fake_sim):
    r = sq(["record", "SIM:DEMO", "--out", str(tmp_path / "d"), "--limit", "10", "--format", "jsonl"])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 10 and b'"symbol":"SIM:DEMO"' in r.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--rotate", "soon"], "--rotate"),
        (["--format", "parquet"], "--format"),
        (["--for", "x"], "--for"),
    ],
)
def test_cli_record_usage_errors(tmp_path, sq, fake_sim, args, needle):
    r = sq(["record", "SIM:DEMO", "--out", str(tmp_path / "d"), *args])
    assert r.exit_code == 2 and needle in r.stderr


def test_cli_record_venue_errors(tmp_path, sq, monkeypatch):
    r = sq(["record", "SIM:DEMO", "NSE:RELIANCE", "--out", str(tmp_path / "d"), "--limit", "10"])
    assert r.exit_code == 2 and "several venues" in r.stderr
    r = sq(["record", "SIM:DEMO", "--raw", str(tmp_path / "raw.jsonl"), "-o", str(tmp_path / "d"), "--limit", "10"])
    assert r.exit_code == 2 and "raw" in r.stderr
    # a venue that cannot be reached (nothing listens on this local port) is exit 69, one line
    monkeypatch.setenv("SQ_BINANCE_REST_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SQ_BINANCE_WS_URL", "ws://127.0.0.1:9")
    r = sq(["record", "BINANCE:BTCUSDT", "--out", str(tmp_path / "d"), "--for", "1s"])
    assert r.exit_code == 69 and len(r.stderr_lines) == 1, r.stderr


def test_cli_record_help_has_examples(sq):
    r = sq(["record", "--help"])
    text = r.stdout.decode()
    assert r.exit_code == 0 and "Examples:" in text and "sq record SIM:DEMO -o data" in text


# ----------------------------------------------------------------------------------------------
# real processes: signals and pipes

LAUNCHER = (
    "import sys\n"
    "sys.path.insert(0, {root!r})\n"
    "import {module} as t\n"
    "if not {real}:\n"
    "    t.install_fake_sim()\n"
    "from sq.cli import main\n"
    "main(sys.argv[1:])\n"
)


def sq_cmd(*args: str, real_sim: bool = False) -> list[str]:
    return [sys.executable, "-c", LAUNCHER.format(root=str(ROOT), module=__name__, real=real_sim), *args]


def wait_for(pred, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("real_sim", [False, True], ids=["synthetic", "sim"])
def test_sigterm_seals_every_file(tmp_path, real_sim):
    out = tmp_path / "data"
    p = subprocess.Popen(sq_cmd("record", "SIM:DEMO", "SIM:ALT", "--out", str(out), "--rotate", "1s", real_sim=real_sim),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=subprocess_env(), cwd=tmp_path)
    try:
        # at least one rotation happened (a sealed file exists) and recording is in progress
        assert wait_for(lambda: any(not f.name.startswith(".") for f in parts(out)) if out.exists() else False)
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    err = err.decode()
    assert p.returncode == 143, err  # SIGTERM's status, after every file was sealed
    files = parts(out)
    assert files and not [f for f in files if f.name.startswith(".")], "temp files left behind"
    for f in files:
        assert f.suffix == ".parquet" and pq.ParquetFile(f).schema_arrow.metadata[S.META_END] == b"ok"
    total = rows_of(out)
    m = re.search(r"recorded (\d+) events .* into (\d+) files?", err)
    assert m and int(m.group(1)) == total and int(m.group(2)) == len(files)


@pytest.mark.parametrize("real_sim", [False, True], ids=["synthetic", "sim"])
def test_downstream_closing_early_keeps_recording(tmp_path, real_sim):
    out = tmp_path / "data"
    cmd = shlex.join(sq_cmd("record", "SIM:DEMO", "--out", str(out), "--for", "2s", real_sim=real_sim))
    t0 = time.monotonic()
    r = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd} | head -c 100 > /dev/null"], capture_output=True, text=True,
                       env=subprocess_env(), cwd=tmp_path, timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "pass-through closed: downstream closed the pipe; recording to disk continues" in r.stderr
    assert elapsed >= 1.8  # it kept going for its --for, long after head left
    t = pa.Table.from_batches(list(open_input(Environment(), [str(out)], "market").batches()))
    ts = t.column("ts").cast(pa.int64()).to_numpy()
    assert t.num_rows > 0 and ts.max() - ts.min() >= 1_000_000_000
    assert re.search(r"recorded \d+ events", r.stderr)


def test_pipe_into_reader_gets_complete_stream(tmp_path):
    out = tmp_path / "data"
    reader = (
        "import sys, pyarrow as pa\n"
        "r = pa.ipc.open_stream(sys.stdin.buffer)\n"
        "n = 0\nend = False\n"
        "while True:\n"
        "    try:\n        b, md = r.read_next_batch_with_custom_metadata()\n"
        "    except StopIteration:\n        break\n"
        "    n += b.num_rows\n    end = end or (md is not None and md.get(b'sq.end') == b'ok')\n"
        "print(n, end)\n"
    )
    cmd = shlex.join(sq_cmd("record", "SIM:DEMO", "--out", str(out), "--limit", "5000"))
    r = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd} | '{sys.executable}' -c \"$READER\""], capture_output=True,
                       text=True, env=subprocess_env(READER=reader), cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(rows_of(out)), "True"]


def test_pass_through_goes_to_a_pipe_not_to_a_file(tmp_path):
    """`sq record … > log` from cron used to fill the log with the Arrow stream; now only a pipe
    (a reader downstream) gets it by default; --pass-through and an explicit --format ask for it."""
    import subprocess

    from tests.support.process import SQ_BIN, subprocess_env

    def run(redirect: str, *extra: str) -> bytes:
        out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
        cmd = f"{SQ_BIN} record SIM:DEMO --out {tmp_path / 'data'} --limit 2000 {' '.join(extra)} {redirect.format(out=out)}"
        r = subprocess.run(["bash", "-c", cmd], env=subprocess_env(), capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert b"events" in r.stderr  # the summary line still goes to stderr
        return out.read_bytes()

    assert run("> {out}") == b""  # a regular file: nothing
    piped = run("| cat > {out}")  # a pipe: the Arrow stream (IPC messages start with 0xFFFFFFFF)
    assert len(piped) > 10_000 and piped[:4] == b"\xff\xff\xff\xff"
    assert len(run("> {out}", "--pass-through")) > 10_000
    assert run("> {out}", "--format", "jsonl").startswith(b"{")
    assert run("| cat > {out}", "--no-pass-through") == b""


def test_progress_counts_bytes_of_open_files_and_files_sealed(tmp_path, monkeypatch):
    """The progress a terminal shows grows with the data: bytes written to the files still open
    (row groups flushed) before any is sealed, then the sealed files as rotation seals them."""
    import sq.runs.record as R

    ticks = iter(range(1, 1_000_000))
    monkeypatch.setattr(R.time, "monotonic", lambda: float(next(ticks)))  # every batch is a progress tick
    seen = []
    src = SyntheticSource(symbols=("SIM:DEMO",), n=6 * R.ROW_GROUP_ROWS, step_ns=1_000_000, per_batch=R.ROW_GROUP_ROWS // 2)
    summary = Recorder(src, tmp_path / "d", rotate_ns=10 * MINUTE, progress=lambda s: seen.append((s.bytes_written, len(s.files)))).run()
    written = [b for b, _ in seen]
    assert written == sorted(written) and written[-1] > 0
    assert any(b > 0 and n == 0 for b, n in seen)  # an open file's bytes count before it is sealed
    assert [n for _, n in seen] == sorted(n for _, n in seen) and seen[-1][1] >= 1 and len(summary.files) > seen[-1][1]


def test_cli_record_progress_line_on_a_terminal_stderr_only(tmp_path, sq, fake_sim):
    r = sq(["record", "SIM:DEMO", "--out", str(tmp_path / "a"), "--limit", "4000"], stderr_isatty=True)
    assert r.exit_code == 0, r.stderr
    assert re.search(r"sq record: [\d,]+ events \([\d,]+/s\), \d+ files? sealed, [\d.]+ [KM]?B written", r.stderr)
    r = sq(["record", "SIM:DEMO", "--out", str(tmp_path / "b"), "--limit", "4000"])
    assert r.exit_code == 0 and "sealed," not in r.stderr and "\x1b" not in r.stderr
