"""Perpetuals' funding and per-symbol fee rates in backtest and paper replay (docs/funding.md):
a position held across three funding times pays position × mark × rate at each, net PnL and the
summary carry it, and the journal holds one `funding` record per payment."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sq.core import journal as J
from sq.core import schemas as S
from sq.core.environment import Environment
from sq.core.streams import StreamWriter
from sq.runs import funding as FU

SYM = "BINANCE-FUT:BTCUSDT"
H = 3_600_000_000_000
T0 = 1_717_372_800_000_000_000  # 2024-06-03 00:00 UTC: funding times at 08:00, 16:00 and 00:00
HOLD = (
    "from sq.strategy import BUY, Strategy\n"
    "strategy = Strategy('holder', 'buys 2 once and holds', state=1)\n"
    "@strategy.on_book\n"
    "def on_book(ctx, s):\n"
    "    if ctx.state(s)[0] == 0.0 and ctx.has_ask(s):\n"
    "        ctx.take(s, BUY, ctx.ask(s), 2.0)\n"
    "        ctx.state(s)[0] = 1.0\n"
)
STEPPER = HOLD.replace("from sq.strategy import BUY, Strategy", "from sq.strategy import BUY, SELL, Strategy").replace(
    "'holder', 'buys 2 once and holds'", "'stepper', 'buys 2, sells 1 at noon'") + (
    "    elif ctx.state(s)[0] == 1.0 and ctx.now() >= %d and ctx.has_bid(s):\n"
    "        ctx.take(s, SELL, ctx.bid(s), 1.0)\n"
    "        ctx.state(s)[0] = 2.0\n" % (T0 + 12 * H))
FUNDING = [(T0 + 8 * H, 0.0001, 101.0), (T0 + 16 * H, -0.0002, 102.0), (T0 + 24 * H, 0.0003, 99.5)]


def _market(path: Path) -> None:
    """`_batch()` as the dataset file `path/market.parquet`."""
    batch = _batch()
    path.mkdir(parents=True, exist_ok=True)
    with StreamWriter(Environment(), batch.schema, output=str(path / "market.parquet")) as w:
        w.write(batch)


def _batch():
    """A BTCUSDT perpetual book quoted every 30 minutes for 26 hours around 100."""
    inst = {SYM: S.Instrument(SYM, "binance", 0.1, 0.001)}
    rows = []
    seq = 1
    for k in range(53):
        ts = T0 + 60_000_000_000 + k * H // 2
        mid = 100.0 + (k % 7) * 0.5
        rows.append((ts, S.LEVEL, 1, round(mid - 0.1, 1), 50.0, seq))
        rows.append((ts, S.LEVEL, -1, round(mid + 0.1, 1), 50.0, seq))
        seq += 1
    n = len(rows)
    ts = np.array([r[0] for r in rows], np.int64)
    batch = S.market_batch(S.market_schema(inst), S.symbol_dictionary([SYM]), ts, ts + 1_000_000, np.zeros(n, np.int32),
                           np.array([r[1] for r in rows], np.uint8), np.array([r[2] for r in rows], np.int8),
                           np.array([r[3] for r in rows]), np.array([r[4] for r in rows]), np.array([r[5] for r in rows], np.int64))
    return batch


@pytest.fixture
def dataset(tmp_path):
    d = tmp_path / "data"
    _market(d)
    FU.write(d / FU.FILE_NAME, [(SYM, t, r, m) for t, r, m in FUNDING])
    strat = tmp_path / "holder.py"
    strat.write_text(HOLD)
    return d, strat


def _expected() -> float:
    return sum(2.0 * m * r for _, r, m in FUNDING)


def test_backtest_books_funding_at_three_funding_times(sq, dataset, tmp_path):
    data, strat = dataset
    r = sq(["backtest", "-s", str(strat), str(data), "--journal", str(tmp_path / "bt"), "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    pnl = doc["pnl"]
    want = 2 * 101.0 * 0.0001 + 2 * 102.0 * -0.0002 + 2 * 99.5 * 0.0003  # hand-computed: 0.0202 - 0.0408 + 0.0597
    # the summary shows money at the instrument's precision (2 decimals here); the journal is exact
    assert math.isclose(_expected(), want) and math.isclose(pnl["funding"], want, abs_tol=0.005)
    assert math.isclose(pnl["net"], pnl["gross"] - pnl["fees"] - pnl["funding"], abs_tol=0.015)
    assert math.isclose(pnl["costs"], pnl["fees"] + pnl["funding"], abs_tol=0.015)
    assert pnl["total"] == pnl["net"]
    rows = pq.read_table(tmp_path / "bt" / "funding.parquet").to_pylist()
    assert [(r["rate"], r["mark"], r["position"]) for r in rows] == [(r_, m, 2.0) for _, r_, m in FUNDING]
    assert math.isclose(sum(r["amount"] for r in rows), want, abs_tol=1e-12)


def test_funding_does_not_depend_on_how_the_input_is_cut(tmp_path):
    """One batch, or one row at a time: the same fills, the same funding records, the same net."""
    from sq.core.config import Config
    from sq.core.engine import Engine

    strat = tmp_path / "stepper.py"
    strat.write_text(STEPPER)
    batch = _batch()
    results = []
    for step in (batch.num_rows, 1, 7):
        e = Engine(str(strat), {}, {"*": {}}, config=Config())
        for t, r, m in FUNDING:
            e.set_funding(SYM, t, r, m)
        funding, fills = [], []
        for i in range(0, batch.num_rows, step):
            out = e.process(batch.slice(i, step))
            funding += out.funding
            fills += out.fills.to_pylist()
        out = e.finish()
        funding += out.funding
        fills += out.fills.to_pylist()
        results.append((funding, fills, e.summary()["pnl"]["net"]))
    assert len(results[0][0]) == 3 and len(results[0][1]) == 2
    assert results[1] == results[0] and results[2] == results[0]
    assert [r["position"] for r in results[0][0]] == [2.0, 1.0, 1.0]  # sold 1 between the first two funding times
    want = 2 * 101.0 * 0.0001 + 1 * 102.0 * -0.0002 + 1 * 99.5 * 0.0003
    assert math.isclose(sum(r["amount"] for r in results[0][0]), want, abs_tol=1e-12)


def test_without_funding_data_a_perpetual_warns_once(sq, dataset, tmp_path):
    data, strat = dataset
    (data / FU.FILE_NAME).unlink()
    r = sq(["backtest", "-s", str(strat), str(data), "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["pnl"]["funding"] == 0.0
    assert r.stderr.count("without funding data") == 1, r.stderr


def test_funding_option_names_the_file(sq, dataset, tmp_path):
    data, strat = dataset
    elsewhere = tmp_path / "rates.parquet"
    (data / FU.FILE_NAME).rename(elsewhere)
    r = sq(["backtest", "-s", str(strat), str(data), "--funding", str(elsewhere), "--json"])
    assert r.exit_code == 0, r.stderr
    assert math.isclose(json.loads(r.stdout)["pnl"]["funding"], _expected(), abs_tol=0.005)


def test_paper_replay_journals_the_same_funding_records(sq, dataset, tmp_path):
    data, strat = dataset
    r = sq(["backtest", "-s", str(strat), str(data), "--journal", str(tmp_path / "bt"), "--json"])
    assert r.exit_code == 0, r.stderr
    bt = pq.read_table(tmp_path / "bt" / "funding.parquet")
    bt_rows = [dict(x, ts=int(t)) for x, t in zip(bt.to_pylist(), bt.column("ts").cast("int64").to_pylist())]
    r = sq(["paper", "--strategy", str(strat), "--from", str(data), "--journal", str(tmp_path / "pp"), "--json"])
    assert r.exit_code == 0, r.stderr
    recs = [rec.data for rec in J.load(tmp_path / "pp").records if rec.kind == "funding"]
    assert recs == bt_rows and len(recs) == 3
    assert math.isclose(json.loads(r.stdout)["pnl"]["funding"], _expected(), abs_tol=0.005)


def test_binance_fee_overrides_with_bnb_discount_apply_per_symbol(sq, dataset, tmp_path):
    data, strat = dataset
    base = sq(["backtest", "-s", str(strat), str(data), "--json"])
    cfg = tmp_path / "sq.toml"
    cfg.write_text("[binance]\nfutures_taker_fee_bps = 4.0\nbnb_fee_discount = true\n")
    r = sq(["--config", str(cfg), "backtest", "-s", str(strat), str(data), "--json"])
    assert base.exit_code == 0 and r.exit_code == 0, r.stderr
    fees0, fees = json.loads(base.stdout)["pnl"]["fees"], json.loads(r.stdout)["pnl"]["fees"]
    # one taker fill of 2 at the ask: the flat default 5 bps, then 4 bps × 0.9 (BNB)
    assert fees0 > 0 and math.isclose(fees, fees0 * 4.0 * 0.9 / 5.0, abs_tol=0.0005)


# ---------------------------------------------------------------------------------------------- live (the Binance fake)

# a marketable limit 100 ticks through the ask: the whole 0.01 fills even when the touch is thin
HOLD_SMALL = HOLD.replace("ctx.ask(s), 2.0)", "ctx.ask(s) + 100, 0.01)").replace("buys 2 once", "buys 0.01 once")


def test_live_books_funding_as_the_venue_does_and_uses_the_account_fees(binance_fake, tmp_path):
    """A perpetual held across three funding times of the fake (every 3 s): the run takes the
    account's commission rates (futures taker 5 bps, BNB: ×0.9), books the modelled funding at
    each funding time and journals the venue's own booking, equal to the fake's income rows."""
    import os
    import subprocess

    from tests.support.process import SQ_BIN, subprocess_env

    fake = binance_fake(funding_every_s=3.0, funding_rates=(0.0001, -0.0002, 0.0003))  # 3 s: a poll late under load still sees the rate it books
    fake.exchange.commission[("futures", "BTCUSDT")] = (0.0002, 0.0005)
    fake.exchange.bnb["futures"] = True
    strat = tmp_path / "holder.py"
    strat.write_text(HOLD_SMALL)
    cfg = tmp_path / "live.toml"
    cfg.write_text('trading_mode = "live"\n[live]\nsweep_interval = 0.2\nprevious_runs_hours = 0\n')
    os.chmod(cfg, 0o600)
    journal = tmp_path / "live"
    r = subprocess.run([SQ_BIN, "live", "--strategy", str(strat), SYM, "--journal", str(journal), "--config", str(cfg),
                        "--confirm-live", "--json", "--for", "20s"], capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    loaded = J.load(journal)
    audit = next(rec.data for rec in loaded.records if rec.kind == "audit" and rec.data.get("by") == "sq live (fees)")
    assert audit["fees"][SYM]["taker_bps"] == pytest.approx(4.5) and audit["fees"][SYM]["maker_bps"] == pytest.approx(1.8)
    fills = [rec.data for rec in loaded.records if rec.kind == "fill"]
    held = sum(f["qty"] for f in fills)
    assert fills and held == pytest.approx(0.01), (fills, r.stderr)
    for f in fills:  # the venue charged the account's rate, and the engine charged the same
        assert f["fee"] == pytest.approx(f["price"] * f["qty"] * 4.5e-4)
    assert doc["pnl"]["fees"] == pytest.approx(sum(f["fee"] for f in fills), abs=0.01)
    venue = [rec.data for rec in loaded.records if rec.kind == "funding" and rec.data.get("source") == "venue"]
    model = [rec.data for rec in loaded.records if rec.kind == "funding" and rec.data.get("source") is None]
    income = list(fake.exchange.income)
    assert len(venue) >= 3, (venue, income, r.stderr)
    # every venue record is one of the fake's income rows (each once), the payment its negative
    assert len({v["tran_id"] for v in venue}) == len(venue)
    by_id = {str(x["tranId"]): x for x in income}
    for v in venue:
        row = by_id[v["tran_id"]]
        assert v["amount"] == pytest.approx(-float(row["income"])) and v["ts"] == row["time"] * 1_000_000
    booked = [v for v in venue if any(x["ts"] == v["funding_time"] for x in model)]
    assert len(booked) >= 3, (venue, model)  # (a funding time racing the opening fill may be the venue's alone)
    for v in booked:  # the model: position × mark × the announced rate (the mark a moment before the funding time)
        m = next(x for x in model if x["ts"] == v["funding_time"])
        # (the venue's record carries the model booked before it arrived: this one, or none yet when the
        # venue's income was read first)
        assert m["position"] == pytest.approx(0.01) and v["model"] in (m["amount"], 0.0)
        assert m["amount"] == pytest.approx(v["amount"], rel=0.01)
    assert doc["venue_funding"] == pytest.approx(sum(v["amount"] for v in venue), abs=1e-9)


def test_fetch_funding_writes_a_funding_file_a_day(sq, binance_fake, binance_archive, tmp_path):
    """`sq fetch BINANCE-FUT:… --kind funding`: the settled rates of each day from the REST API,
    one funding.parquet a day that `--funding DIR` (or an input directory holding it) reads."""
    import datetime as dt

    from sq.core.datasets import partition_dir

    fake = binance_fake(credentials=False)
    binance_archive()
    today = dt.datetime.now(dt.timezone.utc).date()
    days = [today - dt.timedelta(days=2), today - dt.timedelta(days=1)]
    want = []
    for day in days:
        midnight = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp() * 1000)
        for k, rate in enumerate((0.0001, -0.00005, 0.0002)):
            t = midnight + k * 8 * 3_600_000
            fake.exchange.funding_history.append({"symbol": "BTCUSDT", "fundingTime": t, "fundingRate": f"{rate:.8f}", "markPrice": "60000.5"})
            want.append((SYM, t * 1_000_000, rate, 60000.5))
    out = tmp_path / "data"
    r = sq(["fetch", SYM, "--kind", "funding", "--start", days[0].isoformat(), "--end", days[1].isoformat(), "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    files = [partition_dir(out, "binance", SYM, d) / FU.FILE_NAME for d in days]
    assert all(f.exists() for f in files)
    assert FU.read(files) == want
    assert FU.funding_files(None, [str(out)]) == sorted(files)
    bad = sq(["fetch", "BINANCE:BTCUSDT", "--kind", "funding", "--start", days[0].isoformat(), "--end", days[0].isoformat(), "-o", str(out)])
    assert bad.exit_code == 2 and "BINANCE-FUT:BTCUSDT" in bad.stderr


def test_paper_on_the_live_feed_books_the_venues_announced_funding(binance_fake, tmp_path):
    """`sq paper BINANCE-FUT:…` on the fake's live feed: the funding times and rates the venue
    announces (premiumIndex, polled off the tick path) are booked on the simulated position."""
    import subprocess

    from tests.support.process import SQ_BIN, subprocess_env

    fake = binance_fake(credentials=False, funding_every_s=1.0, funding_rates=(0.0001, -0.0002, 0.0003))
    strat = tmp_path / "holder.py"
    strat.write_text(HOLD_SMALL)
    cfg = tmp_path / "sq.toml"
    cfg.write_text("[live]\nsweep_interval = 0.2\n")
    journal = tmp_path / "paper"
    r = subprocess.run([SQ_BIN, "--config", str(cfg), "paper", "--strategy", str(strat), SYM, "--journal", str(journal), "--json",
                        "--for", "9s"], capture_output=True, text=True, env=subprocess_env(), timeout=180)
    assert r.returncode == 0, r.stderr
    recs = [rec.data for rec in J.load(journal).records if rec.kind == "funding"]
    assert len(recs) >= 3, (recs, r.stderr)
    settled = {x["fundingTime"] * 1_000_000: float(x["fundingRate"]) for x in fake.exchange.funding_history}
    for rec in recs:  # at the venue's own funding times, at the rate it announced for each
        assert rec["ts"] in settled and rec["rate"] == pytest.approx(settled[rec["ts"]])
        assert rec["position"] == pytest.approx(0.01) and rec["amount"] == pytest.approx(0.01 * rec["mark"] * rec["rate"])
    assert json.loads(r.stdout)["pnl"]["funding"] == pytest.approx(sum(x["amount"] for x in recs), abs=0.01)


def test_a_sweep_books_the_funding_beside_its_inputs(sq, dataset):
    data, strat = dataset
    r = sq(["backtest", "-s", str(strat), str(data), "--sweep", "max_position=5,10", "-j", "1", "--json"])
    assert r.exit_code == 0, r.stderr
    runs = json.loads(r.stdout)["runs"]
    assert len(runs) == 2 and all(math.isclose(x["pnl"]["funding"], _expected(), abs_tol=0.005) for x in runs)


BAR_HOLDER = (
    "import polars as pl\n"
    "from sq.strategy import BarStrategy\n"
    "strategy = BarStrategy('barholder', 'holds 2, then 1 from the 16:00 bar on', interval='1h')\n"
    "@strategy.signals\n"
    "def signals(bars, p):\n"
    "    return bars.with_columns(target=pl.when(pl.col('ts') < pl.lit(%d).cast(pl.Datetime('ns', 'UTC')))"
    ".then(2.0).otherwise(1.0))\n" % (T0 + 15 * H))


def _bars_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """26 hourly bars of the perpetual from T0, and its funding file beside them."""
    import pyarrow as pa

    inst = {SYM: S.Instrument(SYM, "binance", 0.1, 0.001)}
    n = 26
    ts = T0 + np.arange(n, dtype=np.int64) * H
    close = 100.0 + (np.arange(n) % 5) * 0.5
    cols = [pa.array(ts).view(S.TS), S.dict_column(np.zeros(n, np.int32), S.symbol_dictionary([SYM])),
            pa.array(close), pa.array(close + 0.5), pa.array(close - 0.5), pa.array(close), pa.array(np.full(n, 10.0)),
            pa.nulls(n, pa.int64()), pa.nulls(n, pa.float64()), pa.nulls(n, pa.float64())]
    d = tmp_path / "bars"
    d.mkdir()
    pq.write_table(pa.Table.from_batches([pa.RecordBatch.from_arrays(cols, schema=S.bars_schema(inst, "1h"))]), d / "bars.parquet")
    FU.write(d / FU.FILE_NAME, [(SYM, t, r, m) for t, r, m in FUNDING])
    strat = tmp_path / "barholder.py"
    strat.write_text(BAR_HOLDER)
    return d, strat


def test_a_bar_strategy_pays_funding_in_backtest_and_paper(sq, tmp_path):
    """A bar strategy holding a perpetual across three funding times pays position × mark × rate
    at each; its order at the 16:00 bar's close fills at the next bar's open, after that funding
    time's payment. Backtest and paper replay journal the same records."""
    data, strat = _bars_dataset(tmp_path)
    r = sq(["backtest", "-s", str(strat), str(data), "--journal", str(tmp_path / "bt"), "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    want = 2 * 101.0 * 0.0001 + 2 * 102.0 * -0.0002 + 1 * 99.5 * 0.0003  # hand-computed: 0.0202 - 0.0408 + 0.02985
    assert math.isclose(doc["pnl"]["funding"], want, abs_tol=0.005)
    assert math.isclose(doc["pnl"]["net"], doc["pnl"]["gross"] - doc["pnl"]["fees"] - doc["pnl"]["funding"], abs_tol=0.015)
    assert math.isclose(doc["per_symbol"][SYM]["funding"], want, abs_tol=0.005)
    bt = pq.read_table(tmp_path / "bt" / "funding.parquet")
    rows = bt.to_pylist()
    assert [(x["rate"], x["mark"], x["position"]) for x in rows] == [(0.0001, 101.0, 2.0), (-0.0002, 102.0, 2.0), (0.0003, 99.5, 1.0)]
    assert math.isclose(sum(x["amount"] for x in rows), want, abs_tol=1e-12)
    bt_rows = [dict(x, ts=int(t)) for x, t in zip(rows, bt.column("ts").cast("int64").to_pylist())]
    r = sq(["paper", "--strategy", str(strat), "--from", str(data), "--journal", str(tmp_path / "pp"), "--json"])
    assert r.exit_code == 0, r.stderr
    recs = [rec.data for rec in J.load(tmp_path / "pp").records if rec.kind == "funding"]
    assert recs == bt_rows
    assert json.loads(r.stdout)["pnl"] == doc["pnl"]


def test_a_bar_strategy_without_funding_data_warns(sq, tmp_path):
    data, strat = _bars_dataset(tmp_path)
    (data / FU.FILE_NAME).unlink()
    r = sq(["backtest", "-s", str(strat), str(data), "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["pnl"]["funding"] == 0.0
    assert r.stderr.count("without funding data") == 1, r.stderr
