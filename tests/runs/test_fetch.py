"""`sq fetch` against a local Binance data archive and the Binance fake's REST history: rows
exactly as in the archive's CSV, checksums verified (a bad day retried once, then reported and
not written), REST for days not yet archived, re-runs that fetch nothing twice, interruptions
that leave nothing partial, `sq book` over fetched top-of-book data, and bad usage refused
before anything is asked or written."""

from __future__ import annotations

import datetime as dt
import io
import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from sq.core.datasets import partition_dir
from sq.core.environment import Environment
from sq.runs.fetch import FetchOptions, run_fetch
from tests.support.fakes.binance_archive import (
    csv_rows,
    day_path,
    expected_bars,
    expected_trades,
    make_csv,
    rest_agg_trades,
    rest_klines,
)
from tests.support.marketdata import pylist
from tests.support.process import ROOT, SQ_BIN, subprocess_env

TODAY = dt.datetime.now(dt.timezone.utc).date()


@pytest.fixture
def venue(binance_fake, binance_archive):
    """The Binance fake (exchangeInfo, REST history) and the archive fake, sq pointed at both."""
    return binance_fake(credentials=False), binance_archive()


def _file(out: Path, symbol: str, day: dt.date, name: str) -> Path:
    return partition_dir(out, "binance", symbol, day) / name


def _rows(path: Path) -> list[dict]:
    rows = pylist(pq.ParquetFile(path).read())
    assert all(r.pop("symbol") for r in rows)
    return rows


def _hidden(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if p.is_file()] if out.exists() else []


def _fetch(sq, out: Path, *args: str):
    return sq(["fetch", *args, "-o", str(out)])


@pytest.mark.parametrize("kind,market,symbol", [
    ("aggTrades", "spot", "BINANCE:BTCUSDT"),
    ("trades", "spot", "BINANCE:BTCUSDT"),
    ("aggTrades", "futures", "BINANCE-FUT:BTCUSDT"),
    ("trades", "futures", "BINANCE-FUT:BTCUSDT"),
])
def test_archive_days_land_exactly_and_a_rerun_fetches_nothing(sq, venue, tmp_path, kind, market, symbol):
    fake, archive = venue
    days = {dt.date(2024, 12, 31): None, dt.date(2025, 1, 1): None}  # the spot files switch to microseconds
    for i, day in enumerate(days):
        days[day] = make_csv(kind, market, day, n=400, seed=i + 1)
        archive.put_day(day_path(market, kind, "BTCUSDT", day), days[day])
    out = tmp_path / "data"
    r = _fetch(sq, out, symbol, "--kind", kind, "--start", "2024-12-31", "--end", "2025-01-01")
    assert r.exit_code == 0, r.stderr
    for day, text in days.items():
        path = _file(out, symbol, day, f"{kind}.parquet")
        unit = "us" if market == "spot" and day.year >= 2025 else "ms"
        assert _rows(path) == expected_trades(kind, text, unit)
        schema = pq.read_schema(path)
        assert S.stream_kind(schema) == "market"
        inst = S.schema_instruments(schema)[symbol]
        assert (inst.venue, inst.tick_size, inst.lot_size) == ("binance", 0.01, 0.001)  # exchangeInfo's grid
    report = json.loads(r.stdout)
    assert report["complete"] and report["days"] == {"fetched": 2, "present": 0, "missing": 0}
    assert report["rows"] == 800 and report["bytes"] > 0
    assert report["symbols"][0]["sources"] == {"2024-12-31": "archive", "2025-01-01": "archive"}
    assert "fetched 2 days" in r.stderr_lines[-1]
    assert _hidden(out) == []

    before = archive.zip_requests()
    again = _fetch(sq, out, symbol, "--kind", kind, "--start", "2024-12-31", "--end", "2025-01-01")
    assert again.exit_code == 0, again.stderr
    assert archive.zip_requests() == before  # nothing downloaded twice
    assert json.loads(again.stdout)["days"] == {"fetched": 0, "present": 2, "missing": 0}


def test_klines_become_bars_with_their_interval(sq, venue, tmp_path):
    fake, archive = venue
    day = dt.date(2025, 3, 4)
    text = make_csv("klines", "spot", day, n=288, seed=4, interval="5m")
    archive.put_day(day_path("spot", "klines", "BTCUSDT", day, "5m"), text)
    out = tmp_path / "data"
    r = _fetch(sq, out, "BINANCE:BTCUSDT", "--kind", "klines", "--interval", "5m", "--start", "2025-03-04", "--end", "2025-03-04")
    assert r.exit_code == 0, r.stderr
    path = _file(out, "BINANCE:BTCUSDT", day, "klines-5m.parquet")
    assert _rows(path) == expected_bars(text, "us")
    schema = pq.read_schema(path)
    assert S.stream_kind(schema) == "bars" and S.bars_interval(schema) == "5m"
    assert "BINANCE:BTCUSDT" in S.schema_instruments(schema)


def test_book_ticker_fetched_then_rebuilt_by_sq_book(sq, venue, tmp_path):
    fake, archive = venue
    day = dt.date(2024, 3, 1)
    text = make_csv("bookTicker", "futures", day, n=300, seed=6)
    archive.put_day(day_path("futures", "bookTicker", "BTCUSDT", day), text)
    out = tmp_path / "data"
    r = _fetch(sq, out, "BINANCE-FUT:BTCUSDT", "--kind", "bookTicker", "--start", "2024-03-01", "--end", "2024-03-01")
    assert r.exit_code == 0, r.stderr
    book = sq(["book", f"{out}/**/bookTicker.parquet", "--depth", "1", "--format", "jsonl"])
    assert book.exit_code == 0, book.stderr
    rows = [json.loads(line) for line in book.stdout.decode().splitlines()]
    want = [(float(c[1]), float(c[2]), float(c[3]), float(c[4])) for c in csv_rows(text)]
    assert [(b["bid_px_0"], b["bid_qty_0"], b["ask_px_0"], b["ask_qty_0"]) for b in rows] == want
    assert all(b["symbol"] == "BINANCE-FUT:BTCUSDT" for b in rows)


def test_a_bad_checksum_or_a_broken_zip_is_retried_once_then_reported(sq, venue, tmp_path):
    fake, archive = venue
    good, tampered, cut = dt.date(2024, 5, 1), dt.date(2024, 5, 2), dt.date(2024, 5, 3)
    paths = {d: day_path("spot", "aggTrades", "BTCUSDT", d) for d in (good, tampered, cut)}
    archive.put_day(paths[good], make_csv("aggTrades", "spot", good, n=100))
    archive.put_day(paths[tampered], make_csv("aggTrades", "spot", tampered, n=100), bad_checksum=True)
    archive.put_day(paths[cut], make_csv("aggTrades", "spot", cut, n=3000), truncate=True)
    out = tmp_path / "data"
    args = ("BINANCE:BTCUSDT", "--kind", "aggTrades", "--start", "2024-05-01", "--end", "2024-05-03")
    r = _fetch(sq, out, *args)
    assert r.exit_code == 1
    assert [archive.count(paths[d]) for d in (good, tampered, cut)] == [1, 2, 2]
    assert _file(out, "BINANCE:BTCUSDT", good, "aggTrades.parquet").exists()
    assert not _file(out, "BINANCE:BTCUSDT", tampered, "aggTrades.parquet").exists()
    assert not _file(out, "BINANCE:BTCUSDT", cut, "aggTrades.parquet").exists()
    assert _hidden(out) == []
    missing = json.loads(r.stdout)["symbols"][0]["missing"]
    assert "checksum mismatch" in missing["2024-05-02"] and "broken zip" in missing["2024-05-03"]
    assert any("2024-05-02" in line and "checksum mismatch" in line for line in r.stderr_lines)
    assert any("2024-05-03" in line and "broken zip" in line for line in r.stderr_lines)

    archive.put_day(paths[tampered], make_csv("aggTrades", "spot", tampered, n=100))  # the archive repaired
    again = _fetch(sq, out, *args)
    assert again.exit_code == 1  # the cut day is still broken
    assert [archive.count(paths[d]) for d in (good, tampered, cut)] == [1, 3, 4]
    assert json.loads(again.stdout)["days"] == {"fetched": 1, "present": 1, "missing": 1}


def test_days_not_yet_archived_come_from_rest(sq, venue, tmp_path):
    fake, archive = venue
    archived, nowhere, recent = TODAY - dt.timedelta(days=3), TODAY - dt.timedelta(days=2), TODAY - dt.timedelta(days=1)
    archive.put_day(day_path("spot", "aggTrades", "BTCUSDT", archived), make_csv("aggTrades", "spot", archived, n=50, seed=1))
    # the REST API knows trades before and after `recent` too (ids rise with time), none on `nowhere`
    before = make_csv("aggTrades", "spot", TODAY - dt.timedelta(days=4), n=30, seed=2, unit="ms")
    text = make_csv("aggTrades", "spot", recent, n=2600, seed=3, unit="ms", start_hour=3)
    after = make_csv("aggTrades", "spot", TODAY, n=30, seed=4, unit="ms")
    fake.agg_trades[("spot", "BTCUSDT")] = rest_agg_trades(before) + rest_agg_trades(text) + rest_agg_trades(after)
    out = tmp_path / "data"
    r = _fetch(sq, out, "BINANCE:BTCUSDT", "--kind", "aggTrades", "--start", archived.isoformat(), "--end", recent.isoformat())
    assert r.exit_code == 1  # `nowhere` is missing
    assert _rows(_file(out, "BINANCE:BTCUSDT", recent, "aggTrades.parquet")) == expected_trades("aggTrades", text, "ms")
    symbol = json.loads(r.stdout)["symbols"][0]
    assert symbol["sources"] == {archived.isoformat(): "archive", recent.isoformat(): "rest"}
    assert "no data" in symbol["missing"][nowhere.isoformat()]
    assert not _file(out, "BINANCE:BTCUSDT", nowhere, "aggTrades.parquet").exists()
    calls = [p for _, p, status in fake.requests if p == "/api/v3/aggTrades"]
    assert len(calls) >= 24 + 3 + 3  # every hour of `nowhere`, hours 0-3 of `recent`, then pages of 1,000


def test_recent_klines_come_from_rest_in_pages(sq, venue, tmp_path):
    fake, archive = venue
    recent = TODAY - dt.timedelta(days=1)
    text = make_csv("klines", "futures", recent, n=1440, seed=5, interval="1m")
    neighbours = make_csv("klines", "futures", TODAY - dt.timedelta(days=2), n=1440, seed=6, interval="1m")
    fake.klines[("futures", "BTCUSDT", "1m")] = rest_klines(neighbours) + rest_klines(text)
    out = tmp_path / "data"
    warm = _fetch(sq, out, "BINANCE-FUT:BTCUSDT", "--kind", "klines", "--interval", "1m", "--start", "2019-01-01", "--end", "2019-01-01")
    assert warm.exit_code == 1  # nothing that old; exchangeInfo is in the day's cache now
    fake.forced.append((429, 1))  # the first history call is rate limited: back off for Retry-After, then go on
    r = _fetch(sq, out, "BINANCE-FUT:BTCUSDT", "--kind", "klines", "--interval", "1m", "--start", recent.isoformat(), "--end", recent.isoformat())
    assert r.exit_code == 0, r.stderr
    assert _rows(_file(out, "BINANCE-FUT:BTCUSDT", recent, "klines-1m.parquet")) == expected_bars(text, "ms")
    klines = [status for _, p, status in fake.requests if p == "/fapi/v1/klines"]
    assert klines == [429, 200, 200]  # 1,000 + 440 candles after the back-off


def test_days_not_over_or_never_archived_are_missing_without_rest(sq, venue, tmp_path):
    fake, archive = venue
    out = tmp_path / "data"
    r = _fetch(sq, out, "BINANCE:BTCUSDT", "--kind", "aggTrades", "--start", "2019-01-01", "--end", "2019-01-02")
    assert r.exit_code == 1
    missing = json.loads(r.stdout)["symbols"][0]["missing"]
    assert set(missing) == {"2019-01-01", "2019-01-02"} and all("not in the archive" in m for m in missing.values())
    assert not any(p.endswith("aggTrades") for _, p, _s in fake.requests)  # too old for REST: not asked
    r = _fetch(sq, out, "BINANCE:BTCUSDT", "--kind", "aggTrades", "--start", TODAY.isoformat(), "--end", TODAY.isoformat())
    assert r.exit_code == 1 and "not over yet" in r.stderr
    r = _fetch(sq, out, "BINANCE-FUT:BTCUSDT", "--kind", "bookTicker", "--start", "2024-01-01", "--end", "2024-01-01")
    assert r.exit_code == 1 and "no REST history of bookTicker" in r.stderr
    assert not out.exists()


def _trade_days(archive, days: list[dt.date]) -> dict[dt.date, str]:
    paths = {}
    for i, day in enumerate(days):
        paths[day] = day_path("spot", "aggTrades", "BTCUSDT", day)
        archive.put_day(paths[day], make_csv("aggTrades", "spot", day, n=200, seed=i + 1))
    return paths


def test_an_interrupted_fetch_leaves_no_partial_file_and_a_rerun_completes(sq, venue, tmp_path):
    fake, archive = venue
    days = [dt.date(2024, 6, 1), dt.date(2024, 6, 2), dt.date(2024, 6, 3)]
    paths = _trade_days(archive, days)
    out = tmp_path / "data"

    def interrupt_after_first_day(p) -> None:
        if p.day:
            raise KeyboardInterrupt

    env = Environment(stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=io.StringIO(), stdin_isatty=False, stdout_isatty=False, stderr_isatty=False)
    opts = FetchOptions(["BINANCE:BTCUSDT"], "aggTrades", days[0], days[-1], out=str(out))
    with pytest.raises(KeyboardInterrupt):
        run_fetch(env, opts, progress=interrupt_after_first_day)
    written = sorted(p.parent.name for p in out.rglob("*.parquet"))
    assert written == ["date=2024-06-01"] and _hidden(out) == []
    assert archive.count(paths[days[1]]) == 0

    r = _fetch(sq, out, "BINANCE:BTCUSDT", "--kind", "aggTrades", "--start", "2024-06-01", "--end", "2024-06-03")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["days"] == {"fetched": 2, "present": 1, "missing": 0}
    assert [archive.count(paths[d]) for d in days] == [1, 1, 1]


def test_ctrl_c_stops_after_the_day_in_hand(venue, tmp_path):
    fake, archive = venue
    days = [dt.date(2024, 7, 1), dt.date(2024, 7, 2), dt.date(2024, 7, 3)]
    paths = _trade_days(archive, days)
    archive.delays[paths[days[1]]] = 2.0  # the second day is slow to come
    out = tmp_path / "data"
    cmd = [SQ_BIN, "fetch", "BINANCE:BTCUSDT", "--kind", "aggTrades", "--start", "2024-07-01", "--end", "2024-07-03", "-o", str(out)]
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while archive.count(paths[days[1]]) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert archive.count(paths[days[1]]) == 1
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr.decode()
    assert sorted(p.parent.name for p in out.rglob("*.parquet")) == ["date=2024-07-01", "date=2024-07-02"]
    assert _hidden(out) == [] and archive.count(paths[days[2]]) == 0
    report = json.loads(stdout)
    assert report["stopped_by"] == "SIGINT" and report["days"]["fetched"] == 2

    rerun = subprocess.run(cmd, env=subprocess_env(), capture_output=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert json.loads(rerun.stdout)["days"] == {"fetched": 1, "present": 2, "missing": 0}


@pytest.mark.parametrize("args,words", [
    (["BINANCE:BTCUSDT", "--kind", "bogus"], "choose one of trades, aggTrades, bookTicker, klines"),
    (["BINANCE:BTCUSDT", "--kind", "klines"], "needs --interval"),
    (["BINANCE:BTCUSDT", "--kind", "klines", "--interval", "7m"], "'7m' is not a Binance klines interval"),
    (["BINANCE:BTCUSDT", "--kind", "aggTrades", "--interval", "1m"], "--interval is for --kind klines"),
    (["BINANCE:BTCUSDT", "--kind", "bookTicker"], "USD-M futures only: use BINANCE-FUT:BTCUSDT"),
    (["BINANCE:BTCUSDT", "--kind", "aggTrades", "--start", "2024-02-01"], "is after --end"),
    (["BINANCE:BTCUSDT", "--kind", "aggTrades", "--start", "2024-13-01"], "--start must be a date"),
    (["SIM:DEMO", "--kind", "aggTrades"], "no downloadable history"),
    (["BINANCE:BTCUSDT", "NSE:INFY", "--kind", "aggTrades"], "several venues"),
    (["BINANCE:NOPEUSDT", "--kind", "aggTrades"], "unknown symbol BINANCE:NOPEUSDT"),
])
def test_bad_usage_is_one_line_exit_2_and_nothing_written(sq, venue, tmp_path, args, words):
    fake, archive = venue
    out = tmp_path / "data"
    dates = [] if "--start" in args else ["--start", "2024-01-01"]
    r = _fetch(sq, out, *args, *dates, "--end", "2024-01-31")
    assert r.exit_code == 2, r.stderr
    assert len(r.stderr_lines) == 1 and words in r.stderr, r.stderr
    assert not out.exists() and archive.requests == []
    if "NOPEUSDT" not in args[0]:
        assert fake.requests == []  # refused before any request


def test_an_unreachable_archive_is_exit_69(sq, binance_fake, monkeypatch, tmp_path):
    binance_fake(credentials=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SQ_BINANCE_DATA_URL", f"http://127.0.0.1:{port}")
    r = _fetch(sq, tmp_path / "data", "BINANCE:BTCUSDT", "--kind", "aggTrades", "--start", "2024-01-01", "--end", "2024-01-01")
    assert r.exit_code == 69 and len(r.stderr_lines) == 1 and "cannot reach" in r.stderr


def test_a_terminal_gets_a_progress_bar_and_no_json(sq, venue, tmp_path):
    fake, archive = venue
    _trade_days(archive, [dt.date(2024, 8, 1), dt.date(2024, 8, 2)])
    r = sq(["fetch", "BINANCE:BTCUSDT", "--kind", "aggTrades", "--start", "2024-08-01", "--end", "2024-08-02", "-o", str(tmp_path / "d")],
           stdout_isatty=True, stderr_isatty=True)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == b"" and "fetched 2 days of aggTrades" in r.stderr


def test_the_archive_url_comes_from_the_config_file(sq, venue, tmp_path, monkeypatch):
    fake, archive = venue
    monkeypatch.delenv("SQ_BINANCE_DATA_URL")
    config = tmp_path / "sq.toml"
    config.write_text(f'[binance]\ndata_url = "{archive.url}"\n')
    _trade_days(archive, [dt.date(2024, 9, 1)])
    r = sq(["--config", str(config), "fetch", "BINANCE:BTCUSDT", "--kind", "aggTrades", "--start", "2024-09-01", "--end", "2024-09-01",
            "-o", str(tmp_path / "d")])
    assert r.exit_code == 0, r.stderr
    assert archive.zip_requests() == [day_path("spot", "aggTrades", "BTCUSDT", dt.date(2024, 9, 1))]


def test_zerodha_candles_fetch_into_a_bars_dataset_and_resume(sq, tmp_path, kite_env, monkeypatch):
    """`sq fetch` of Kite candles end to end: the official minute candles land as one bars file per
    IST trading day (a weekend skipped), a re-run asks Kite nothing, and Binance-only flags and
    Zerodha-only flags are refused on the other venue before any request."""
    import datetime as dt
    import json as json_

    import polars as pl

    monkeypatch.setenv("ZKITE_ACCESS_TOKEN", kite_env.issue_token())
    out = tmp_path / "candles"
    args = ["fetch", "NSE:RELIANCE", "--kind", "candles", "--interval", "minute", "--start", "2017-12-15", "--end", "2017-12-18",
            "-o", str(out), "--json"]
    r = sq(args)
    assert r.exit_code == 0, r.stderr
    report = json_.loads(r.stdout)
    files = sorted(out.rglob("*.parquet"))
    assert [f.parent.name for f in files] == ["date=2017-12-15", "date=2017-12-18"]  # Sat/Sun are not trading days
    first = pl.read_parquet(files[0])
    candles = json_.loads((ROOT / "fixtures" / "vectors" / "kite" / "historical_minute.json").read_text())["data"]["candles"]
    assert first["open"].to_list() == [c[1] for c in candles] and first["volume"].to_list() == [float(c[5]) for c in candles]
    assert first["ts"].cast(pl.Int64).to_list()[0] == int(dt.datetime.strptime(candles[0][0], "%Y-%m-%dT%H:%M:%S%z").timestamp()) * 10**9
    asked = len(kite_env.historical)
    again = sq(args)
    assert again.exit_code == 0 and len(kite_env.historical) == asked  # everything already present
    assert json_.dumps(report)  # the report is JSON
    wrong = sq(["fetch", "BINANCE:BTCUSDT", "--kind", "klines", "--interval", "1m", "--oi", "--start", "2024-01-01", "--end", "2024-01-01",
                "-o", str(tmp_path / "x")])
    assert wrong.exit_code == 2 and "--oi" in wrong.stderr and not (tmp_path / "x").exists()
