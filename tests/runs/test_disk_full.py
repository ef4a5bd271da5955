"""A full disk is an operational event: record, paper and live on a small tmpfs that fills up
mid-run stop cleanly with exit 74 and one line naming the path and what was kept; nothing
already written is lost or corrupted; a paper or live journal cut by the full disk continues
with --resume once there is room (and a live run's working orders are canceled before it exits).

The file systems are real tmpfs mounts (root in a container can mount them); where mounting is
not permitted the tests are skipped with that reason, and the journal's cut-back on a failed
write is still pinned by the unit test at the end."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sq.core import journal as J
from tests.support.process import SQ_BIN, subprocess_env


@pytest.fixture
def small_fs(tmp_path):
    """`small_fs(kib)`: a tmpfs of that size, mounted for the test; `.grow(kib)` makes room."""
    mounted: list[Path] = []

    class FS:
        def __init__(self, kib: int):
            self.path = tmp_path / f"fs{len(mounted)}"
            self.path.mkdir()
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0700", "tmpfs", str(self.path)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}): needs root/CAP_SYS_ADMIN")
            mounted.append(self.path)

        def grow(self, kib: int) -> None:
            subprocess.run(["mount", "-o", f"remount,size={kib}k", str(self.path)], check=True)

    yield FS
    for p in mounted:
        subprocess.run(["umount", "-l", str(p)], capture_output=True)


def one_line_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("sq: error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def test_record_stops_with_74_keeping_every_sealed_file(small_fs):
    from tests.support.alertsink import AlertSink

    fs = small_fs(768)
    out = fs.path / "rec"
    with AlertSink() as sink:
        r = subprocess.run([SQ_BIN, "record", "SIM:DEMO", "-o", str(out), "--rotate", "2s", "--limit", "50000000", "--alert", sink.url()],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=subprocess_env(), timeout=600)
        assert sink.wait_for(lambda a: any("disk is full" in x.get("message", "") for x in a), 30), sink.alerts  # an alert fired
    assert r.returncode == 74, r.stderr
    line = one_line_error(r.stderr)
    assert "no space left on device" in line and str(out) in line and "sealed file" in line
    files = sorted(out.rglob("*.parquet"))
    kept = int(line.split("kept ")[1].split(" ")[0])
    assert kept >= 1 and len(files) == kept  # every sealed file is there ...
    assert sum(pq.read_metadata(f).num_rows for f in files) > 0  # ... and whole (its footer reads)
    assert not [p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".parquet")]  # no temp file left behind


@pytest.fixture(scope="module")
def market_file(tmp_path_factory) -> Path:
    """A SIM market in small row groups: a replay takes one engine step (one journal write) per group."""
    whole = tmp_path_factory.mktemp("mkt") / "whole.parquet"
    r = subprocess.run([SQ_BIN, "subscribe", "SIM:DEMO", "-n", "60000", "--seed", "3", "-o", str(whole)],
                       capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    table = pq.read_table(whole)
    path = whole.with_name("market.parquet")
    pq.write_table(table.replace_schema_metadata(table.schema.metadata), path, row_group_size=500)
    return path


def test_paper_journal_cut_by_a_full_disk_resumes_to_the_same_result(small_fs, market_file, tmp_path):
    env = subprocess_env()
    fs = small_fs(192)
    jdir = fs.path / "run"
    args = ["--strategy", "mm", "--from", str(market_file), "--json"]
    r = subprocess.run([SQ_BIN, "paper", *args, "--journal", str(jdir)], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 74, r.stderr
    line = one_line_error(r.stderr)
    assert "no space left on device" in line and str(jdir) in line and f"--resume {jdir}" in line
    cut = J.load(jdir)  # verifies the hash chain: the failed step was cut back, nothing torn
    assert not cut.sealed and cut.last("checkpoint") is not None
    fs.grow(64 * 1024)
    r = subprocess.run([SQ_BIN, "paper", "--resume", str(jdir), "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    whole = subprocess.run([SQ_BIN, "paper", *args, "--journal", str(tmp_path / "whole")], capture_output=True, text=True, env=env, timeout=600)
    assert whole.returncode == 0, whole.stderr
    key = ("ts", "symbol", "side", "price", "qty")
    resumed = [tuple(row[k] for k in key) for row in pq.read_table(jdir / "fills.parquet").to_pylist()]
    uncut = [tuple(row[k] for k in key) for row in pq.read_table(tmp_path / "whole" / "fills.parquet").to_pylist()]
    assert resumed and resumed == uncut


def test_live_cancels_its_orders_then_exits_74_and_resumes(small_fs, binance_fake, tmp_path):
    from tests.support.livetools import registered

    fake = binance_fake()
    fs = small_fs(160)
    jdir = fs.path / "live"
    cfg = tmp_path / "live.toml"
    cfg.write_text('trading_mode = "live"\n[risk]\nmax_order_rate = 20\n')
    os.chmod(cfg, 0o600)
    live = ["live", "--strategy", "mm", "BINANCE:BTCUSDT", "--param", "clip=0.01", "--param", "threshold=0.1",
            "--config", str(cfg), "--confirm-live", "--json"]
    p = subprocess.Popen([SQ_BIN, *live, "--journal", str(jdir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=subprocess_env())
    try:
        registered(p, timeout=120)
        out, err = p.communicate(timeout=300)  # it runs until the journal fills the file system
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 74, err
    line = one_line_error(err)
    assert "no space left on device" in line and f"--resume {jdir}" in line and "canceled at the venue" in line
    assert not [o for o in fake.exchange.orders.values() if o.status in ("NEW", "PARTIALLY_FILLED")]  # nothing left working
    J.load(jdir)  # whole and verified
    fs.grow(64 * 1024)
    r = subprocess.run([SQ_BIN, "live", "--resume", str(jdir), "--config", str(cfg), "--confirm-live", "--json", "--for", "2s"],
                       capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    assert J.load(jdir).sealed and json.loads(r.stdout)["mode"] == "live"


def test_a_failed_journal_write_cuts_back_to_the_last_whole_step(tmp_path, monkeypatch):
    from sq.core.exits import IOFailure

    j = J.Journal.create(tmp_path / "j", {"run_id": "r"})
    j.write_step([("audit", {"a": 1})])
    size = (tmp_path / "j" / J.LOG_NAME).stat().st_size
    real = os.write

    def half_then_full(fd, data):  # a torn write: part of the step lands, then the disk is full
        if len(data) > 40:
            real(fd, bytes(data[:40]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(IOFailure, match="no space left on device writing the journal .* whole through record 2"):
        j.write_step([("audit", {"b": "x" * 100})])
    monkeypatch.setattr(os, "write", real)
    assert (tmp_path / "j" / J.LOG_NAME).stat().st_size == size
    j.write_step([("audit", {"c": 3})])  # the journal goes on from where it was whole
    j.close()
    assert [r.kind for r in J.load(tmp_path / "j").records] == ["start", "audit", "audit"]
