"""The sq commands against the local venue fakes, as a user runs them (issues 5 and 6):
subscribe | book, record, paper with mm and lt — real processes, real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from tests.support.process import SQ_BIN


def run(cmd: str, cwd, timeout: float = 180) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=cwd, env=dict(os.environ), capture_output=True, timeout=timeout)


def test_binance_subscribe_book_record_and_paper(binance_fake, tmp_path):
    binance_fake()
    # counted in events, not seconds: on a busy machine start-up alone can take seconds
    r = run(f"{SQ_BIN} subscribe BINANCE:BTCUSDT --limit 12000 | {SQ_BIN} book --depth 5 > book.arrow", tmp_path)
    assert r.returncode == 0, r.stderr
    book = ipc.open_stream(pa.OSFile(str(tmp_path / "book.arrow"))).read_all()
    assert book.num_rows > 10
    both = [(a, b) for a, b in zip(book.column("ask_px_0").to_pylist(), book.column("bid_px_0").to_pylist()) if a == a and b == b]
    assert len(both) > 10 and all(a > b for a, b in both)  # rows before the first snapshot have an empty book

    r = run(f"{SQ_BIN} record BINANCE:BTCUSDT BINANCE-FUT:BTCUSDT --out data --limit 3000 --format none", tmp_path)
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "data").glob("venue=binance/symbol=*/date=*/*.parquet"))

    for strategy, symbol in (("mm", "BINANCE:BTCUSDT"), ("lt", "BINANCE-FUT:BTCUSDT")):
        r = run(f"{SQ_BIN} paper --strategy {strategy} {symbol} --for 8s --json --param clip=0.01 --param max_position=1 --journal run-{strategy}", tmp_path)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["strategy"] == strategy and doc["symbols"] == [symbol] and doc["events"] > 0
        assert (tmp_path / f"run-{strategy}" / "orders.parquet").exists()


def test_zerodha_subscribe_book_and_paper(kite_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ZKITE_ACCESS_TOKEN", kite_env.issue_token())
    r = run(f"{SQ_BIN} subscribe NSE:RELIANCE --mode full --limit 1000 | {SQ_BIN} book --depth 5 --stale > book.arrow", tmp_path)
    assert r.returncode == 0, r.stderr
    book = ipc.open_stream(pa.OSFile(str(tmp_path / "book.arrow"))).read_all()
    assert book.num_rows > 3 and "bid_stale_count" in book.schema.names
    r = run(f"{SQ_BIN} paper --strategy mm NSE:RELIANCE --for 8s --json --journal run", tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["symbols"] == ["NSE:RELIANCE"] and doc["events"] > 0


@pytest.mark.parametrize("symbol", ["BINANCE:BTCUSDX"])
def test_unknown_venue_symbol_suggests(binance_fake, tmp_path, symbol):
    binance_fake()
    r = run(f"{SQ_BIN} subscribe {symbol} --for 1s", tmp_path)
    assert r.returncode == 2 and b"BTCUSDT" in r.stderr, r.stderr
