"""Each USD-M perpetual's own funding interval (`GET /fapi/v1/fundingInfo`: only the adjusted
symbols are listed, every other one funds every 8 h), at the Binance fake with ETHUSDT on a 4 h
interval: in the instruments' metadata, in `sq fetch --kind funding` (`interval_h`), in a
simulated run without funding data (the missing-funding warning on the symbol's own schedule) and
in `sq live` (journaled, and the next funding time on the 4-hour grid in the summary)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess

import pytest

from sq.core.engine.funding import NS_PER_HOUR, FundingSchedule
from sq.core.schemas import Instrument
from sq.runs import funding as FU
from tests.support.fakes.binance.market import SymbolSpec

ETH = "BINANCE-FUT:ETHUSDT"
BTC = "BINANCE-FUT:BTCUSDT"
FUTURES = (SymbolSpec(), SymbolSpec("ETHUSDT", start_price=3000.0, base="ETH"))


def _fake(binance_fake, **kw):
    return binance_fake(futures=FUTURES, funding_hours={"ETHUSDT": 4.0}, **kw)


def test_the_fake_lists_only_the_adjusted_symbol_and_instruments_carry_the_interval(binance_fake):
    from sq.core.config import load_config
    from sq.core.environment import Environment
    from sq.core.symbols import parse_symbols
    from sq.venues import registry

    fake = _fake(binance_fake)
    import urllib.request

    with urllib.request.urlopen(fake.rest_url + "/fapi/v1/fundingInfo") as r:
        listed = json.loads(r.read())
    assert [(x["symbol"], x["fundingIntervalHours"]) for x in listed] == [("ETHUSDT", 4.0)]
    insts = registry.instrument_info(parse_symbols([ETH, BTC]), load_config(Environment()))
    assert insts[ETH].extra["funding_interval_h"] == 4.0 and insts[BTC].extra["funding_interval_h"] == 8.0
    assert FU.interval_h(ETH, insts) == 4.0 and FU.interval_h(BTC, insts) == 8.0 and FU.interval_h("BINANCE:ETHUSDT", insts) == 0.0


class _Engine:
    def __init__(self):
        self.funding = FundingSchedule()


def test_a_run_without_funding_data_expects_the_symbols_own_schedule():
    """A perpetual on a 4 h interval with no funding file: the engine expects funding every 4 h
    (and warns once its clock crosses 04:00, where an 8-hourly symbol's would not until 08:00)."""
    insts = {ETH: Instrument(ETH, "binance", 0.01, 0.001, {"funding_interval_h": 4.0}), BTC: Instrument(BTC, "binance", 0.01, 0.001)}
    from sq.core.config import Config

    e = _Engine()
    FU.apply(e, insts, Config(), fees=False)
    assert e.funding.expected == {ETH: 4 * NS_PER_HOUR, BTC: 8 * NS_PER_HOUR}
    day = int(dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000_000
    assert e.funding.missing(day + 1 * NS_PER_HOUR, day + 5 * NS_PER_HOUR) == [ETH]  # crossed 04:00 only
    e = _Engine()
    FU.apply(e, insts, Config(), fees=False, hours={ETH: 2.0})  # what its funding files recorded wins
    assert e.funding.expected[ETH] == 2 * NS_PER_HOUR


def test_fetch_funding_records_the_interval(sq, binance_fake, binance_archive, tmp_path):
    import pyarrow.parquet as pq

    from sq.core.datasets import partition_dir

    fake = _fake(binance_fake, credentials=False)
    binance_archive()
    day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    midnight = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp() * 1000)
    for k in range(6):  # every 4 hours
        fake.exchange.funding_history.append({"symbol": "ETHUSDT", "fundingTime": midnight + k * 4 * 3_600_000,
                                              "fundingRate": "0.00010000", "markPrice": "3000.5"})
    out = tmp_path / "data"
    r = sq(["fetch", ETH, "--kind", "funding", "--start", day.isoformat(), "--end", day.isoformat(), "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    f = partition_dir(out, "binance", ETH, day) / FU.FILE_NAME
    t = pq.read_table(f)
    assert t.num_rows == 6 and set(t.column("interval_h").to_pylist()) == {4.0}
    assert FU.intervals([f]) == {ETH: 4.0} and len(FU.read([f])) == 6


def test_live_journals_the_interval_and_the_next_funding_time_on_its_grid(binance_fake, tmp_path):
    from sq.core import journal as J
    from tests.support.process import SQ_BIN, subprocess_env

    _fake(binance_fake)
    strat = tmp_path / "holder.py"
    strat.write_text("from sq.strategy import BUY, Strategy\n"
                     "strategy = Strategy('holder', 'buys 0.01 once and holds', state=1)\n"
                     "@strategy.on_book\n"
                     "def on_book(ctx, s):\n"
                     "    if ctx.state(s)[0] == 0.0 and ctx.has_ask(s):\n"
                     "        ctx.take(s, BUY, ctx.ask(s) + 100, 0.01)\n"
                     "        ctx.state(s)[0] = 1.0\n")
    cfg = tmp_path / "live.toml"
    cfg.write_text('trading_mode = "live"\n[live]\nsweep_interval = 0.2\nprevious_runs_hours = 0\n')
    os.chmod(cfg, 0o600)
    journal = tmp_path / "live"
    r = subprocess.run([SQ_BIN, "live", "--strategy", str(strat), ETH, "--journal", str(journal), "--config", str(cfg),
                        "--confirm-live", "--json", "--for", "6s"], capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    audit = next(rec.data for rec in J.load(journal).records if rec.kind == "audit" and rec.data.get("by") == "sq live (funding)")
    assert audit["funding_interval_h"] == {ETH: 4.0}
    sched = doc["funding_schedule"][ETH]
    assert sched["interval_h"] == 4.0 and sched["next_funding_ns"] % (4 * NS_PER_HOUR) == 0
    assert sched["next_funding_ns"] - dt.datetime.now(dt.timezone.utc).timestamp() * 1e9 <= 4 * NS_PER_HOUR
    held = doc["position"][ETH]
    assert sched["expected_payment"] == pytest.approx(held * 3000.0 * sched["rate"], rel=0.05)
