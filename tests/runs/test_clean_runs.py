"""`--clean` and `--adjust` in the runs: a copy of fixtures/sim-demo with injected bad ticks,
cleaned, trades exactly like the fixture itself (backtest, sweep, paper replay, a crashed and
resumed replay); every dropped row is counted; corporate actions back-adjust an NSE stream;
bad corporate-action files fail first, with one line and nothing written."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sq.core import journal
from sq.core import schemas
from tests.support.crash import kill9_when
from tests.support.process import ROOT, SQ_BIN, subprocess_env

FIXTURE = ROOT / "fixtures" / "sim-demo"
DEMO = "symbol=SIM%3ADEMO"
CLEANED = {"price": 1, "qty": 1, "backwards": 1, "jump": 1, "sigma": 0, "crossed": 0}


def demo_file(root: Path) -> Path:
    return next(root.rglob(f"{DEMO}/**/*.parquet"))


def inject(root: Path, *, negative_qty: bool = True, backwards: bool = True) -> Path:
    """Copy the fixture to `root` and add bad ticks to SIM:DEMO, each as its own message at a
    message boundary: a trade at 1000 (10× the price), a trade at 0, a level of negative
    quantity, a trade a second in the past. Without them the copy is the fixture."""
    shutil.copytree(FIXTURE, root)
    path = demo_file(root)
    table = pq.read_table(path)
    seq = table.column("seq").to_numpy()
    ts = schemas.int64_view(table.column("ts"))
    cuts = np.flatnonzero(np.diff(seq) != 0) + 1  # first rows of messages
    where = (0.01, 0.4, 0.6, 0.8)  # the first early on: a resumed replay has it behind its checkpoint
    bad = [(1000.0, 5.0, schemas.TRADE, 1), (0.0, 5.0, schemas.TRADE, -1)]
    if negative_qty:
        bad.append((99.5, -3.0, schemas.LEVEL, 1))
    if backwards:
        bad.append((100.0, 1.0, schemas.TRADE, 1))
    parts, start = [], 0
    for n, (px, qty, kind, side) in enumerate(bad):
        at = int(cuts[int(len(cuts) * where[n])])
        parts.append(table.slice(start, at - start))
        t = int(ts[at]) - (1_000_000_000 if n == 3 else 0)
        row = {"ts": [t], "recv_ts": [t], "symbol": ["SIM:DEMO"], "kind": [kind], "side": [side], "price": [px], "qty": [qty],
               "orders": [None], "seq": [10**9 + n]}
        parts.append(pa.Table.from_pydict(row, schema=table.schema))
        start = at
    parts.append(table.slice(start))
    pq.write_table(pa.concat_tables(parts).combine_chunks(), path)
    return root


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> Path:
    return inject(tmp_path_factory.mktemp("dirty") / "data")


@pytest.fixture(scope="module")
def absurd(tmp_path_factory) -> Path:
    """Only the two absurd trades: a run without --clean still runs on it."""
    return inject(tmp_path_factory.mktemp("absurd") / "data", negative_qty=False, backwards=False)


def ok(r) -> dict:
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def read(directory: Path, which: str) -> list[dict]:
    t = pq.read_table(directory / f"{which}.parquet")
    return t.set_column(0, "ts", t.column("ts").cast("int64")).to_pylist()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The fixture itself, backtested without cleaning: (summary, journal directory)."""
    from tests.support.process import SqRunner

    j = tmp_path_factory.mktemp("ref") / "j"
    return ok(SqRunner()(["backtest", "-s", "mm", str(FIXTURE), "--journal", str(j), "--json"])), j


def test_backtest_clean_counts_every_bad_tick_and_trades_like_the_clean_data(sq, dirty, reference, tmp_path):
    ref, ref_j = reference
    r = sq(["backtest", "-s", "mm", str(dirty), "--clean", "--journal", str(tmp_path / "j"), "--json"])
    d = ok(r)
    assert d["cleaned"] == {"dropped": CLEANED, "kept": 40_000, "crossed_messages": 0, "drop_crossed": False}
    notices = [line for line in r.stderr.splitlines() if "clean" in line]
    assert notices == ["sq: clean: dropped 4 of 40,004 market rows (1 price, 1 qty, 1 backwards, 1 jump)"]
    assert read(tmp_path / "j", "orders") == read(ref_j, "orders") and read(tmp_path / "j", "fills") == read(ref_j, "fills")
    assert (d["events"], d["fills"], d["pnl"]) == (ref["events"], ref["fills"], ref["pnl"]) and "cleaned" not in ref
    # without --clean the negative quantity stops the run: one line, exit 65
    r = sq(["backtest", "-s", "mm", str(dirty), "--json"])
    assert r.exit_code == 65 and "bad event" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_bad_ticks_matter_and_the_config_turns_cleaning_on(sq, absurd, reference, tmp_path, monkeypatch):
    ref, _ = reference
    raw = ok(sq(["backtest", "-s", "mm", str(absurd), "--json"]))
    assert "cleaned" not in raw and (raw["fills"], raw["pnl"]) != (ref["fills"], ref["pnl"])  # today's behaviour, unchanged
    cfg = tmp_path / "sq.toml"
    cfg.write_text("[clean]\nenabled = true\n")
    monkeypatch.setenv("SQ_CONFIG", str(cfg))
    on = ok(sq(["backtest", "-s", "mm", str(absurd), "--json"]))
    assert on["cleaned"]["dropped"] == dict(CLEANED, qty=0, backwards=0) and (on["fills"], on["pnl"]) == (ref["fills"], ref["pnl"])
    off = ok(sq(["backtest", "-s", "mm", str(absurd), "--no-clean", "--json"]))
    assert "cleaned" not in off and off["pnl"] == raw["pnl"]


def test_sweep_cleans_once_for_every_worker(sq, dirty, reference):
    ref, _ = reference
    d = ok(sq(["backtest", "-s", "mm", str(dirty), "--clean", "--sweep", "clip=1,2", "--jobs", "2", "--json"]))
    assert d["cleaned"]["dropped"] == CLEANED and d["events"] == ref["events"]
    assert d["runs"][0]["params"] == {"clip": 1.0} and d["runs"][0]["pnl"] == ref["pnl"]  # clip=1 is the default


def test_paper_replay_cleans_like_the_backtest(sq, dirty, reference, tmp_path):
    _, ref_j = reference
    jdir = tmp_path / "paper"
    r = sq(["paper", "-s", "mm", "--from", str(dirty), "--clean", "--journal", str(jdir), "--json"])
    d = ok(r)
    assert d["cleaned"]["dropped"] == CLEANED and d["events"] == 40_000
    assert "sq: clean: dropped 4 of 40,004 market rows" in r.stderr
    assert read(jdir, "fills") == read(ref_j, "fills")
    start = journal.load(jdir).start  # the settings it cleaned with, for --resume
    assert start["clean"]["enabled"] is True and start["clean"]["sigma_k"] == 20.0


def test_paper_clean_is_for_replays(sq):
    r = sq(["paper", "-s", "mm", "SIM:DEMO", "--clean", "--for", "1s"])
    assert r.exit_code == 2 and "--clean/--no-clean filter a --from replay" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_crashed_cleaning_replay_resumes_exactly(dirty, reference, tmp_path):
    """kill -9 mid-replay, then --resume: the resumed run cleans from the start again and skips
    the rows the checkpoint had consumed, so the journal equals an uninterrupted run's."""
    _, ref_j = reference
    env = subprocess_env()
    jdir = tmp_path / "cut"

    def past_the_first_bad_tick() -> bool:  # it is ~1 % in; and two fills journaled
        log = jdir / journal.LOG_NAME
        records = [json.loads(line) for line in (log.read_text().splitlines() if log.exists() else []) if line.endswith("}")]
        rows = max((r["d"]["rows"] for r in records if r["k"] == "checkpoint"), default=0)
        return rows > 2_000 and sum(1 for r in records if r["k"] == "fill") >= 2

    kill9_when([SQ_BIN, "paper", "-s", "mm", "--from", str(dirty), "--clean", "--realtime", "--journal", str(jdir)], env,
               past_the_first_bad_tick, 120, "two fills past the first bad tick")
    assert not journal.load(jdir).sealed
    r = subprocess.run([SQ_BIN, "paper", "--resume", str(jdir), "--clean", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "--clean" in r.stderr  # a resumed run cleans as it began
    r = subprocess.run([SQ_BIN, "paper", "--resume", str(jdir), "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["cleaned"]["dropped"] == CLEANED and doc["events"] == 40_000  # each kept row once
    assert read(jdir, "fills") == read(ref_j, "fills")


# ----------------------------------------------------------------------------------------------
# --adjust


@pytest.fixture(scope="module")
def nse_split(tmp_path_factory) -> Path:
    """SIM:DEMO relabelled NSE:ABC (tick 0.002): its first half on 8 Jan at 5× the price and 1/5
    of the quantities, its second half moved to 9 Jan as recorded — as if a 1:5 split (face value
    10 → 2) went ex on 9 Jan."""
    table = pq.read_table(demo_file(FIXTURE))
    n = table.num_rows // 2
    ts = schemas.int64_view(table.column("ts"))
    kind = table.column("kind").to_numpy()
    price = table.column("price").to_numpy().copy()
    qty = table.column("qty").to_numpy().copy()
    priced = kind != schemas.CLEAR
    early = np.arange(table.num_rows) < n
    price[early & priced] *= 5
    qty[early & priced] /= 5
    shifted = np.where(early, ts, ts + 86_400_000_000_000)
    ins = {"NSE:ABC": schemas.Instrument("NSE:ABC", "zerodha", 0.002)}
    schema = schemas.market_schema(ins)
    out = pa.Table.from_arrays([
        pa.array(shifted, pa.int64()).cast(schemas.TS), pa.array(shifted, pa.int64()).cast(schemas.TS),
        pa.array(["NSE:ABC"] * table.num_rows).dictionary_encode().cast(schemas.SYMBOL), table.column("kind"), table.column("side"),
        pa.array(price), pa.array(qty), table.column("orders"), table.column("seq")], schema=schema)
    path = tmp_path_factory.mktemp("nse") / "abc.parquet"
    md = dict(schema.metadata)
    md[schemas.META_END] = b"ok"
    pq.write_table(out.replace_schema_metadata(md), path)
    return path


def test_backtest_adjust_back_adjusts_an_nse_split(sq, nse_split, tmp_path):
    ca = tmp_path / "ca.csv"
    ca.write_text("symbol,ex_date,kind,ratio_from,ratio_to,amount\nNSE:ABC,2024-01-09,split,10,2,\n")
    raw = ok(sq(["backtest", "-s", "mm", str(nse_split), "--journal", str(tmp_path / "raw"), "--json"]))
    adj = ok(sq(["backtest", "-s", "mm", str(nse_split), "--adjust", str(ca), "--journal", str(tmp_path / "adj"), "--json"]))
    assert adj["adjusted"] == {"file": str(ca), "symbols": ["NSE:ABC"]} and "adjusted" not in raw
    raw_px = [f["price"] for f in read(tmp_path / "raw", "fills")]
    adj_px = [f["price"] for f in read(tmp_path / "adj", "fills")]
    assert raw_px and adj_px and max(raw_px) > 400  # unadjusted: ~500 before the split, ~100 after
    assert max(adj_px) < 110 and min(adj_px) > 90  # one continuous series around 100


@pytest.mark.parametrize("text,code,words", [
    ("symbol,ex_date,kind,ratio_from,ratio_to\nNSE:ABC,2024-01-09,split,10,2\n", 65, "the header lacks column 'amount'"),
    ("symbol,ex_date,kind,ratio_from,ratio_to,amount\nNSE:ABC,2024-01-09,consolidation,10,2,\n", 65, "unknown kind 'consolidation'"),
    ("symbol,ex_date,kind,ratio_from,ratio_to,amount\nNSE:ABC,2024-01-09,split,10,0,\n", 65, "ratio_to must be a positive number, got 0"),
    ("symbol,ex_date,kind,ratio_from,ratio_to,amount\nNSE:ABC,9/1/2024,split,10,2,\n", 65, "ex_date '9/1/2024' is not a date"),
    ("symbol,ex_date,kind,ratio_from,ratio_to,amount\nSIM:DEMO,2024-01-09,split,10,2,\n", 65, "SIM:DEMO has no corporate actions to adjust for"),
    ("symbol,ex_date,kind,ratio_from,ratio_to,amount\nNSE:ABC,2024-01-09,dividend,,,2\n", 65,
     "adjusting a market stream needs the close before the ex-date: fill in prev_close"),
    (None, 66, "corporate-actions file not found"),
])
def test_bad_corporate_action_files_fail_first(sq, nse_split, tmp_path, text, code, words):
    ca = tmp_path / "ca.csv"
    if text is not None:
        ca.write_text(text)
    jdir = tmp_path / "j"
    r = sq(["backtest", "-s", "mm", str(nse_split), "--adjust", str(ca), "--journal", str(jdir), "--json"])
    assert r.exit_code == code and words in r.stderr and str(ca) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == b""
    assert not jdir.exists()


def test_bars_adjust_back_adjusts_daily_bars_of_an_nse_split(sq, nse_split, tmp_path):
    """`sq bars 1d --adjust`: the bar before the ex-date is divided by the split factor 5 (volume
    multiplied by it), the bar on and after it is left alone — checked against the raw bars."""
    import polars as pl

    ca = tmp_path / "ca.csv"
    ca.write_text("symbol,ex_date,kind,ratio_from,ratio_to,amount\nNSE:ABC,2024-01-09,split,10,2,\n")
    raw_out, adj_out = tmp_path / "raw.parquet", tmp_path / "adj.parquet"
    assert sq(["bars", "1d", str(nse_split), "-o", str(raw_out)]).exit_code == 0
    r = sq(["bars", "1d", str(nse_split), "--adjust", str(ca), "-o", str(adj_out)])
    assert r.exit_code == 0, r.stderr
    raw, adj = pl.read_parquet(raw_out).sort("ts"), pl.read_parquet(adj_out).sort("ts")
    assert raw.height == adj.height == 2
    for col in ("open", "high", "low", "close"):
        assert adj[col][0] == pytest.approx(raw[col][0] / 5) and adj[col][1] == pytest.approx(raw[col][1])
    assert adj["volume"][0] == pytest.approx(raw["volume"][0] * 5) and adj["volume"][1] == pytest.approx(raw["volume"][1])
    bad = sq(["bars", "1d", str(nse_split), "--adjust", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "x.parquet")])
    assert bad.exit_code == 66 and not (tmp_path / "x.parquet").exists()
