"""Every example in every command's --help runs (issue #14): each `sq …` line of the Examples
section (and each cron line's command) is run by bash, offline, in a scratch directory holding
the files the examples name (a SIM dataset `data`, `demo.parquet`, the repository's fixtures).
An example that cannot run offline is in ALLOWED with the reason, which the test prints; an
entry that no longer matches an example fails, so the list cannot go stale."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sq.commands import COMMANDS
from sq.devtools import help_text
from tests.support.process import ROOT

VENUE = "needs a real venue (network and credentials)"
ALLOWED = {
    "sq subscribe SIM:DEMO            # live view on a terminal; Ctrl-C to stop": "a live view until Ctrl-C",
    "sq subscribe NSE:RELIANCE --mode quote --for 5m -o reliance.parquet": VENUE,
    "sq subscribe NFO:NIFTY-FUT --expiry next | sq book --depth 5": VENUE,
    "sq record NSE:RELIANCE NSE:INFY --mode full -o data --for 6h15m": VENUE,
    "sq record NFO:NIFTY-FUT MCX:CRUDEOIL-FUT --expiry next -o data --for 6h": VENUE,
    "sq auth zerodha": VENUE, "sq auth zerodha --request-token 9wRrJYXvZ1pT   # the token from the redirect URL": VENUE,
    "sq live --strategy mm BINANCE:BTCUSDT --config live.toml --confirm-live --shadow mm:clip=0.002": VENUE,
    "sq report ~/.local/share/sq/runs/20261207T034500Z-1a2b3c": "reports a run the user has",
    "sq report runs/live-today runs/paper-today --json": "compares runs the user has",
    "sq report runs/live-today -o live-vs-shadow.html": "reports a live run (and its shadow) the user has", "sq auth zerodha --manual": VENUE + "; a browser", "sq auth binance --testnet": VENUE,
    "sq paper --resume ~/.local/share/sq/runs/20260125T093000Z-3f9a00": "continues a crashed run the user has",
    "sq live --strategy mm BINANCE:BTCUSDT --config live.toml --confirm-live --param clip=0.001": VENUE,
    "sq live --strategy lt NSE:INFY --config live.toml --confirm-live --for 6h --json": VENUE,
    "sq live --resume ~/.local/share/sq/runs/20260125T093000Z-3f9a00 --config live.toml --confirm-live": VENUE,
    "15 9 * * 1-5  SQ_CONFIRM_LIVE=1 flock -n /tmp/sq-live.lock sq live --strategy mm NSE:INFY --config ~/live.toml --for 6h --json >> ~/sq-live.log": VENUE,
    "sq import binance_incremental_book_L2_2024-01-01_BTCUSDT.csv.gz --symbol BINANCE:BTCUSDT -o data": "imports the user's Tardis file",
    "sq import binance_trades_2024-01-0*.csv.gz --symbol BINANCE:BTCUSDT -o data --json": "imports the user's Tardis files",
    "sq fetch NFO:NIFTY26JANFUT --kind candles --interval day --oi --start 2025-12-01 --end 2026-01-27 -o data":
        "a dated contract: the local Kite lists only contracts near today",
    "sq order place BINANCE-FUT:BTCUSDT sell 0.01 --price 65000 --config live.toml --confirm-live": VENUE,
    "sq order place BINANCE-FUT:BTCUSDT sell 0.01 --type stop-market --trigger 60000 --price 60000 --reduce-only --config live.toml --confirm-live": VENUE,
    "sq order place BINANCE:BTCUSDT sell 0.01 --type oco --price 70000 --trigger 60000 --config live.toml --confirm-live": VENUE,
    "sq order place NSE:INFY sell 10 --type stop-market --trigger 1450 --price 1450 --config live.toml --confirm-live": VENUE,
    "sq order modify sq1a2b3c4d-1 --price 65100 --config live.toml --confirm-live": VENUE + "; an order the user placed",
    "sq order cancel --all --symbol BINANCE:BTCUSDT --config live.toml --confirm-live": VENUE,
    "sq orders --venue binance --config live.toml": VENUE,
    "sq orders NSE:INFY --json": VENUE,
    "sq positions --venue binance --config live.toml": VENUE,
    "sq positions NSE:INFY --json": VENUE,
}
CRON = re.compile(r"^([0-9*/,-]+\s+){5}")


def examples(args: list[str]) -> list[str]:
    """The example lines of `sq ARGS --help`: commands, cron lines and comments (not prose)."""
    text = help_text(args)
    if "Examples:" not in text:
        return []
    out, pending = [], ""
    for line in text.split("Examples:", 1)[1].splitlines():
        line = pending + line.strip()
        pending = ""
        if line.endswith("\\"):  # a long example goes on on the next line
            pending = line[:-1]
            continue
        if line.startswith("sq ") or (CRON.match(line) and " sq " in line):
            out.append(line)
    return out


def _command(line: str) -> str:
    """What bash runs for an example: a cron line without its five time fields."""
    if not line.startswith("sq "):
        line = CRON.sub("", line, count=1)
    return line


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A SIM:DEMO market stream file the examples name (demo.parquet, ticks.parquet, …)."""
    d = tmp_path_factory.mktemp("demo")
    r = subprocess.run([sys.executable, "-m", "sq", "subscribe", "SIM:DEMO", "--limit", "20000", "-o", str(d / "demo.parquet")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return d / "demo.parquet"


def _binance_history(request) -> dict:
    """The local Binance (exchangeInfo) and its public data archive holding the days the
    Binance fetch examples ask for; the variables that point sq at them."""
    import datetime as dt

    from tests.support.fakes.binance import SymbolSpec
    from tests.support.fakes.binance_archive import day_path, make_csv

    fake = request.getfixturevalue("binance_fake")(credentials=False, spot=(SymbolSpec(), SymbolSpec(symbol="ETHUSDT", base="ETH")))
    archive = request.getfixturevalue("binance_archive")()
    days = lambda first, n: [first + dt.timedelta(days=i) for i in range(n)]  # noqa: E731
    for day in days(dt.date(2024, 1, 1), 31):
        archive.put_day(day_path("spot", "aggTrades", "BTCUSDT", day), make_csv("aggTrades", "spot", day))
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for day in days(dt.date(2024, 1, 1), 7):
            archive.put_day(day_path("spot", "klines", symbol, day, "1m"), make_csv("klines", "spot", day, interval="1m"))
    archive.put_day(day_path("futures", "bookTicker", "BTCUSDT", dt.date(2024, 3, 1)), make_csv("bookTicker", "futures", dt.date(2024, 3, 1)))
    for day in days(dt.date(2025, 1, 1), 7):
        archive.put_day(day_path("spot", "trades", "BTCUSDT", day), make_csv("trades", "spot", day))
    return {**fake.env(), "SQ_BINANCE_DATA_URL": archive.url}


def _scratch(tmp_path: Path, demo: Path) -> dict:
    (tmp_path / "home").mkdir()
    shutil.copytree(ROOT / "fixtures" / "sim-demo", tmp_path / "data")
    os.symlink(ROOT / "fixtures", tmp_path / "fixtures")
    for name in ("demo.parquet", "ticks.parquet", "trades.parquet", "zerodha.parquet"):
        shutil.copy(demo, tmp_path / name)
    shutil.copy(ROOT / "tests" / "support" / "plan_trading.json", tmp_path / "trading.json")  # the original plan's layout
    (tmp_path / "live.toml").write_text('trading_mode = "live"\n')
    _user_files(tmp_path)
    bindir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZKITE_", "BINANCE_", "SQ_BINANCE", "SQ_KITE")) and k not in ("SQ_CONFIG", "SQ_CONFIRM_LIVE")}
    env.update(HOME=str(tmp_path / "home"), PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}", PAGER="cat", COLUMNS="100",
               SQ_BINANCE_REST_URL="http://127.0.0.1:9", SQ_BINANCE_WS_URL="ws://127.0.0.1:9", SQ_BINANCE_DATA_URL="http://127.0.0.1:9",
               PYTHONPATH=str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""))
    return env


def _user_files(d: Path) -> None:
    """Files the import examples name, as a user would have them: a Binance archive day, a CSV
    of ticks and daily candles."""
    import datetime as dt
    import zipfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.support.fakes.binance_archive import make_csv

    with zipfile.ZipFile(d / "BTCUSDT-aggTrades-2024-01-01.zip", "w") as z:
        z.writestr("BTCUSDT-aggTrades-2024-01-01.csv", make_csv("aggTrades", "spot", dt.date(2024, 1, 1)))
    (d / "ticks.csv").write_text("time,px,size,aggressor\n1704700800000,100.0,1,buy\n1704700801000,100.5,2,sell\n1704700802000,100.25,1,buy\n")
    (d / "corporate-actions.csv").write_text("symbol,ex_date,kind,ratio_from,ratio_to,amount\nNSE:INFY,2024-06-05,split,1,2,\n")
    # NSE:INFY trades of a week in June 2024 (the examples' days), imported as a user would
    (d / "nse.csv").write_text("time,px,size,aggressor\n1717386300000,100.0,1,buy\n1717389000000,100.5,2,sell\n1717732800000,100.25,1,buy\n")
    days = [dt.datetime(2024, 1, 8), dt.datetime(2024, 1, 9)]
    pq.write_table(pa.table({"date": days, "open": [1.0, 2.0], "high": [2.0, 3.0], "low": [0.5, 1.5], "close": [1.5, 2.5], "volume": [10.0, 20.0]}),
                   d / "candles.parquet")


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_every_example_runs(name, tmp_path, demo, capsys, request):
    lines = examples([name] if name else [])
    env = _scratch(tmp_path, demo)
    if name in ("bars", "backtest"):  # a Zerodha dataset: NSE ticks in `data` for bars, in nse-ticks/ for backtest
        target = "data" if name == "bars" else "nse-ticks"
        r = subprocess.run([sys.executable, "-m", "sq", "import", "nse.csv", "--symbol", "NSE:INFY", "--map", "ts=time,price=px,qty=size,side=aggressor",
                            "--ts-unit", "ms", "--tick-size", "0.05", "--lot-size", "1", "-o", target], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    if name == "reconcile":  # paper runs' journals where the examples look for them
        for journal in ("runs/crashed", "home/.local/share/sq/runs/20260125T093000Z-3f9a00"):
            r = subprocess.run([sys.executable, "-m", "sq", "paper", "-s", "mm", "--from", "demo.parquet", "--for", "2s", "--journal", journal, "--json"],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, r.stderr
    if name in ("subscribe", "record"):  # the local Binance's market
        env.update(request.getfixturevalue("binance_fake")(credentials=False).env())
    if name in ("reconcile", "kill"):  # the local Binance and Kite, with an account on each
        env.update(request.getfixturevalue("binance_fake")().env())
        kite = request.getfixturevalue("kite_env")
        kite.mock_positions = False  # an account with no positions elsewhere: flatten has nothing it cannot close
        env.update(kite.environ(), ZKITE_ACCESS_TOKEN=kite.issue_token())
        env.update({k: os.environ[k] for k in ("BINANCE_API_KEY", "BINANCE_API_SECRET") if k in os.environ})
    if name == "fetch":
        env.update(_binance_history(request))
        kite = request.getfixturevalue("kite_env")  # the local Kite: instruments dump and historical candles
        env.update(kite.environ(), ZKITE_ACCESS_TOKEN=kite.issue_token())
    for line in lines:
        if line in ALLOWED:
            with capsys.disabled():
                print(f"\n  not run: sq {name} example {line!r}: {ALLOWED[line]}")
            continue
        r = subprocess.run(["bash", "-o", "pipefail", "-c", _command(line)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=600, stdin=subprocess.DEVNULL)
        stderr = r.stderr.decode(errors="replace")
        assert r.returncode == 0, f"sq {name} --help example failed (exit {r.returncode}): {line}\n{stderr[-2000:]}"
    if name == "fetch":  # the downloads landed where the examples read them back
        assert len(list((tmp_path / "data" / "venue=binance").rglob("*.parquet"))) == 31 + 2 * 7 + 1  # (the trades example: the default dir)
        assert list((tmp_path / "data" / "venue=zerodha").rglob("candles-5minute.parquet"))


def test_the_allow_list_names_only_examples_there_are():
    every = {line for name in ["", *COMMANDS] for line in examples([name] if name else [])}
    assert set(ALLOWED) <= every, set(ALLOWED) - every
