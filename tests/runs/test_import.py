"""`sq import`: files → the dataset layout, read back by `sq book` and `sq backtest`; day files split
by UTC day and replaced (never duplicated) on re-import; tick and lot size from the venue, the
config, the flags or the data; bad input gets one line, its exit code, and leaves the dataset
byte-for-byte as it was."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S

L2 = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance,BTCUSDT,1704067200000000,1704067200001000,true,ask,100.5,2
binance,BTCUSDT,1704067200000000,1704067200001000,true,ask,100.6,3
binance,BTCUSDT,1704067200000000,1704067200001000,true,bid,100.4,1.5
binance,BTCUSDT,1704067200000000,1704067200001000,true,bid,100.3,4
binance,BTCUSDT,1704067201000000,1704067201001000,false,bid,100.4,0
binance,BTCUSDT,1704067201000000,1704067201001000,false,bid,100.2,7
binance,BTCUSDT,1704067201000000,1704067201001000,false,bid,100.1,1
binance,BTCUSDT,1704067202000000,1704067202001000,false,ask,100.5,1
binance,BTCUSDT,1704067203000000,1704067203001000,true,bid,99.9,1
binance,BTCUSDT,1704067203000000,1704067203001000,true,ask,100.1,2
binance,BTCUSDT,1704067204000000,1704067204001000,false,ask,100.1,0.25
binance,BTCUSDT,1704067204000000,1704067204001000,false,ask,100.3,5
"""

# the book after each message of L2, by hand: (bids best first, asks best first)
BOOKS = [
    ([(100.4, 1.5), (100.3, 4.0)], [(100.5, 2.0), (100.6, 3.0)]),
    ([(100.3, 4.0), (100.2, 7.0), (100.1, 1.0)], [(100.5, 2.0), (100.6, 3.0)]),
    ([(100.3, 4.0), (100.2, 7.0), (100.1, 1.0)], [(100.5, 1.0), (100.6, 3.0)]),
    ([(99.9, 1.0)], [(100.1, 2.0)]),
    ([(99.9, 1.0)], [(100.1, 0.25), (100.3, 5.0)]),
]

TRADES = """exchange,symbol,timestamp,local_timestamp,id,side,price,amount
binance,BTCUSDT,1704067200500000,1704067200501000,11,buy,100.5,0.5
binance,BTCUSDT,1704067201500000,1704067201501000,12,sell,100.3,1
binance,BTCUSDT,1704067203500000,1704067203501000,13,buy,100.1,2
"""

QUOTES = """exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount
binance,BTCUSDT,1704067200000000,1704067200002000,2,100.5,100.4,1.5
binance,BTCUSDT,1704067201000000,1704067201002000,,,100.3,4
binance,BTCUSDT,1704067202000000,1704067202002000,0.125,100.6,100.2,0.75
"""

DAY = "date=2024-01-01"


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def book_rows(sq, data: Path, depth: int = 3) -> list[dict]:
    r = sq(["book", str(data), "--depth", str(depth), "--format", "jsonl"])
    assert r.exit_code == 0, r.stderr
    return [json.loads(line) for line in r.stdout.decode().splitlines()]


def levels(row: dict, side: str, depth: int = 3) -> list[tuple[float, float]]:
    return [(row[f"{side}_px_{i}"], row[f"{side}_qty_{i}"]) for i in range(depth) if row[f"{side}_px_{i}"] is not None]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (hidden ones too) and its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def day_file(data: Path, name: str, date: str = DAY, symbol: str = "SIM%3ADEMO", venue: str = "sim") -> Path:
    return data / f"venue={venue}" / f"symbol={symbol}" / date / name


def test_tardis_l2_import_rebuilds_the_hand_computed_book(sq, tmp_path):
    data = tmp_path / "data"
    r = sq(["import", write(tmp_path, "l2.csv", L2), "--symbol", "SIM:DEMO", "-o", str(data)])
    assert r.exit_code == 0, r.stderr
    assert r.stderr_lines == [f"sq: imported 16 rows of SIM:DEMO from 1 file (tardis-incremental_book_L2) into 1 day file "
                              f"(2024-01-01) under {data}"]
    f = day_file(data, "import-tardis-incremental_book_L2.parquet")
    schema = pq.read_schema(f)
    assert S.stream_kind(schema) == "market" and S.schema_instruments(schema)["SIM:DEMO"].tick_size == 0.01
    got = book_rows(sq, data)
    assert [(levels(row, "bid"), levels(row, "ask")) for row in got] == BOOKS
    assert [row["ts"][:19] for row in got] == [f"2024-01-01 00:00:0{k}" for k in range(5)]


def test_quotes_become_top_of_book_rows(sq, tmp_path):
    data = tmp_path / "data"
    assert sq(["import", write(tmp_path, "q.csv", QUOTES), "-s", "SIM:DEMO", "-o", str(data)]).exit_code == 0
    got = book_rows(sq, data, depth=2)
    assert [(levels(r, "bid", 2), levels(r, "ask", 2)) for r in got] == [
        ([(100.4, 1.5)], [(100.5, 2.0)]), ([(100.3, 4.0)], []), ([(100.2, 0.75)], [(100.6, 0.125)])]


def test_trades_and_book_imported_apart_are_read_in_time_order(sq, tmp_path):
    data = tmp_path / "data"
    for name, text in (("l2.csv", L2), ("t.csv", TRADES)):
        assert sq(["import", write(tmp_path, name, text), "-s", "SIM:DEMO", "-o", str(data)]).exit_code == 0
    got = book_rows(sq, data)
    assert [(r["ts"][17:23], r["last_trade_px"]) for r in got] == [
        ("00.000", None), ("00.500", 100.5), ("01.000", 100.5), ("01.500", 100.3), ("02.000", 100.3),
        ("03.000", 100.3), ("03.500", 100.1), ("04.000", 100.1)]


def test_backtest_runs_over_an_imported_dataset(sq, tmp_path):
    data = tmp_path / "data"
    for name, text in (("l2.csv", L2), ("t.csv", TRADES)):
        assert sq(["import", write(tmp_path, name, text), "-s", "SIM:DEMO", "-o", str(data)]).exit_code == 0
    r = sq(["backtest", "--strategy", "mm", str(data), "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["symbols"] == ["SIM:DEMO"] and doc["events"] == 16 + 3 and doc["messages"] >= 5
    assert len(doc["inputs"]) == 2


def test_a_multi_day_file_is_split_per_utc_day(sq, tmp_path):
    base = 1_704_067_200_000  # ms, 2024-01-01
    day = 86_400_000
    times = [base + 5, base + day - 1, base + day, base + 2 * day + 7, base + 2 * day + 8]
    pl.DataFrame({"time": times, "px": [1.5, 1.25, 1.5, 1.75, 2.0], "size": [1, 2, 3, 4, 5]}).write_parquet(tmp_path / "t.parquet")
    data = tmp_path / "data"
    r = sq(["import", str(tmp_path / "t.parquet"), "-s", "SIM:DEMO", "-o", str(data), "--map", "ts=time,price=px,qty=size", "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [(d["date"], d["rows"]) for d in doc["days"]] == [("2024-01-01", 2), ("2024-01-02", 1), ("2024-01-03", 2)]
    for d, want in zip(doc["days"], ([1.5, 1.25], [1.5], [1.75, 2.0])):
        t = pq.read_table(d["file"])
        assert t.column("price").to_pylist() == want and set(t.column("symbol").to_pylist()) == {"SIM:DEMO"}
        assert Path(d["file"]).name == "import-trades.parquet"


def test_importing_again_replaces_and_adjacent_days_both_stay(sq, tmp_path):
    data = tmp_path / "data"
    src = write(tmp_path, "l2.csv", L2)
    assert sq(["import", src, "-s", "SIM:DEMO", "-o", str(data)]).exit_code == 0
    first = day_file(data, "import-tardis-incremental_book_L2.parquet").read_bytes()
    r = sq(["import", src, "-s", "SIM:DEMO", "-o", str(data), "--json"])
    doc = json.loads(r.stdout)
    assert doc["days"][0]["replaced_rows"] == 16 and doc["days"][0]["rows"] == 16
    assert "replaced 16 rows of earlier imports" in r.stderr
    assert day_file(data, "import-tardis-incremental_book_L2.parquet").read_bytes() == first
    # the next day's file opens with a snapshot stamped a moment before midnight: it joins the
    # first day's file without pushing the first day's rows out
    next_day = ("exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
                "binance,BTCUSDT,1704153599999000,1704153600000500,true,bid,101.1,1\n"
                "binance,BTCUSDT,1704153599999000,1704153600000500,true,ask,101.2,1\n"
                "binance,BTCUSDT,1704153601000000,1704153601000500,false,ask,101.3,2\n")
    doc = json.loads(sq(["import", write(tmp_path, "l2b.csv", next_day), "-s", "SIM:DEMO", "-o", str(data), "--json"]).stdout)
    assert [(d["date"], d["new_rows"], d["kept_rows"], d["replaced_rows"]) for d in doc["days"]] == [
        ("2024-01-01", 4, 16, 0), ("2024-01-02", 1, 0, 0)]
    got = book_rows(sq, data)
    assert [(levels(r, "bid"), levels(r, "ask")) for r in got] == BOOKS + [
        ([(101.1, 1.0)], [(101.2, 1.0)]), ([(101.1, 1.0)], [(101.2, 1.0), (101.3, 2.0)])]


def test_tick_and_lot_size_from_the_binance_venue(sq, tmp_path, binance_fake):
    binance_fake()
    data = tmp_path / "data"
    r = sq(["import", write(tmp_path, "t.csv", TRADES), "-s", "BINANCE:BTCUSDT", "-o", str(data), "--json"])
    assert r.exit_code == 0, r.stderr
    inst = json.loads(r.stdout)["instrument"]
    assert (inst["tick_size"], inst["lot_size"], inst["tick_size_from"], inst["venue"]) == (0.01, 0.001, "venue", "binance")
    f = day_file(data, "import-tardis-trades.parquet", symbol="BINANCE%3ABTCUSDT", venue="binance")
    assert S.schema_instruments(pq.read_schema(f))["BINANCE:BTCUSDT"].lot_size == 0.001
    r = sq(["import", str(tmp_path / "t.csv"), "-s", "BINANCE:NOSUCHCOIN", "-o", str(data)])
    assert r.exit_code == 2 and "unknown symbol BINANCE:NOSUCHCOIN" in r.stderr


def test_offline_the_config_then_the_data_give_the_grids(sq, tmp_path, monkeypatch):
    monkeypatch.setenv("SQ_BINANCE_REST_URL", "http://127.0.0.1:9")  # nothing listens there
    src = write(tmp_path, "t.csv", TRADES)
    r = sq(["import", src, "-s", "BINANCE:BTCUSDT", "-o", str(tmp_path / "a"), "--json"])
    assert r.exit_code == 0, r.stderr
    inst = json.loads(r.stdout)["instrument"]
    assert (inst["tick_size"], inst["tick_size_from"], inst["lot_size"], inst["lot_size_from"]) == (0.1, "inferred", 0.1, "inferred")
    assert "cannot ask binance" in r.stderr and "inferred 0.1 from the data" in r.stderr
    cfg = tmp_path / "sq.toml"
    cfg.write_text('[[instruments]]\nsymbol = "BINANCE:BTCUSDT"\ntick_size = 0.01\nlot_size = 0.0001\n')
    r = sq(["--config", str(cfg), "import", src, "-s", "BINANCE:BTCUSDT", "-o", str(tmp_path / "b"), "--json"])
    inst = json.loads(r.stdout)["instrument"]
    assert (inst["tick_size"], inst["tick_size_from"], inst["lot_size"], inst["lot_size_from"]) == (0.01, "config", 0.0001, "config")
    r = sq(["--config", str(cfg), "import", src, "-s", "BINANCE:BTCUSDT", "-o", str(tmp_path / "c"), "--json", "--tick-size", "0.05"])
    inst = json.loads(r.stdout)["instrument"]
    assert (inst["tick_size"], inst["tick_size_from"], inst["lot_size_from"]) == (0.05, "flag", "config")


# ----------------------------------------------------------------------------------------------
# bad input: one line, its exit code, the dataset untouched


BAD = [
    ("unreadable", lambda t: [write(t, "bad.csv", "time,px\n1,2,3,4\n\x00\x01garbage\n"), "--map", "ts=time,price=px,qty=px"], 65, "bad.csv"),
    ("binary", lambda t: [str(_binary(t)), "--format", "tardis-trades"], 65, "not a tardis-trades file"),
    ("missing column", lambda t: [write(t, "m.csv", "time,px,size\n1704067200,1,2\n"), "--map", "ts=time,price=price_usd,qty=size"], 65,
     "no column 'price_usd'"),
    ("implausible times", lambda t: [write(t, "i.csv", "ts,price,qty\n5,1,2\n6,1,2\n")], 65, "not a time since the epoch"),
    ("unit says otherwise", lambda t: [write(t, "u.csv", "ts,price,qty\n1704067200,1,2\n"), "--ts-unit", "ns"], 65, "outside 1980–2100"),
    ("off the tick grid", lambda t: [write(t, "g.csv", TRADES), "--tick-size", "0.25"], 65, "not a multiple of the tick size 0.25"),
    ("unknown format", lambda t: [write(t, "f.csv", TRADES), "--format", "tardis-candles"], 2, "unknown --format 'tardis-candles'"),
    ("bad mapping", lambda t: [write(t, "b.csv", TRADES), "--map", "price"], 2, "write FIELD=COLUMN"),
    ("bad unit", lambda t: [write(t, "b.csv", TRADES), "--ts-unit", "minutes"], 2, "--ts-unit must be"),
    ("missing file", lambda t: [str(t / "nope.csv")], 66, "input file not found"),
]


def _binary(tmp_path: Path) -> Path:
    p = tmp_path / "blob.csv"
    p.write_bytes(bytes(range(256)) * 4)
    return p


@pytest.mark.parametrize("case, args, code, words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_changes_nothing(sq, tmp_path, case, args, code, words):
    data = tmp_path / "data"
    assert sq(["import", write(tmp_path, "l2.csv", L2), "-s", "SIM:DEMO", "-o", str(data)]).exit_code == 0
    assert sq(["import", write(tmp_path, "t0.csv", TRADES), "-s", "SIM:DEMO", "-o", str(data)]).exit_code == 0
    before = snapshot(data)
    r = sq(["import", *args(tmp_path), "-s", "SIM:DEMO", "-o", str(data)])
    assert r.exit_code == code, r.stderr
    assert len(r.stderr_lines) == 1 and words in r.stderr, r.stderr
    assert snapshot(data) == before


def test_an_unknown_symbol_prefix_is_a_usage_error(sq, tmp_path):
    data = tmp_path / "data"
    r = sq(["import", write(tmp_path, "t.csv", TRADES), "-s", "BINANSE:BTCUSDT", "-o", str(data)])
    assert r.exit_code == 2 and len(r.stderr_lines) == 1 and "unknown venue prefix 'BINANSE'" in r.stderr
    assert not data.exists()


def test_archive_formats_reach_their_venue_through_the_registry(sq, tmp_path):
    """A Binance archive format with a symbol of another venue is refused before any file is read."""
    r = sq(["import", write(tmp_path, "a.csv", "1,2\n"), "--format", "binance-aggtrades", "-s", "SIM:DEMO", "-o", str(tmp_path / "d")])
    assert r.exit_code == 2 and "binance-aggtrades reads binance archive files; SIM:DEMO is not a binance symbol" in r.stderr


def test_tick_and_lot_size_from_the_kite_dump(sq, tmp_path, kite_env):
    """NSE:INFY's grid from the instruments dump of the logged-in Kite session (the Kite fake);
    without a session the venue cannot be asked and the data decides, with a warning."""
    from tests.support.kitelive import store_session

    src = write(tmp_path, "t.csv", TRADES.replace("100.3,", "100.35,"))
    r = sq(["import", src, "-s", "NSE:INFY", "-o", str(tmp_path / "a"), "--json"])
    assert r.exit_code == 0 and "cannot ask zerodha" in r.stderr, r.stderr
    assert json.loads(r.stdout)["instrument"]["tick_size_from"] == "inferred"
    store_session(kite_env)
    r = sq(["import", src, "-s", "NSE:INFY", "-o", str(tmp_path / "b"), "--json"])
    assert r.exit_code == 0, r.stderr
    inst = json.loads(r.stdout)["instrument"]
    assert (inst["tick_size"], inst["lot_size"], inst["tick_size_from"], inst["instrument_token"]) == (0.05, 1.0, "venue", 408065)


@pytest.mark.parametrize("market, unit, day", [("spot", "ms", "2024-06-03"), ("spot", "us", "2025-02-03"), ("futures", "ms", "2025-02-03")])
def test_a_binance_archive_zip_imports_row_for_row(sq, tmp_path, market, unit, day):
    """A Binance aggTrades archive file the user downloaded (spot without a header in ms before
    2025 and µs after, futures with one) imports into the same rows `sq fetch` writes."""
    import datetime as dt

    import polars as pl

    from tests.support.fakes.binance_archive import expected_trades, make_csv, zip_of

    date = dt.date.fromisoformat(day)
    symbol = "BINANCE:BTCUSDT" if market == "spot" else "BINANCE-FUT:BTCUSDT"
    text = make_csv("aggTrades", market, date, n=60, seed=5)
    src = tmp_path / f"BTCUSDT-aggTrades-{day}.zip"
    src.write_bytes(zip_of(src.with_suffix(".csv").name, text))
    out = tmp_path / "data"
    r = sq(["import", str(src), "--format", "binance-aggtrades", "-s", symbol, "-o", str(out), "--json",
            "--tick-size", "0.01" if market == "spot" else "0.1", "--lot-size", "0.00001" if market == "spot" else "0.001"])
    assert r.exit_code == 0, r.stderr
    files = sorted(out.rglob("*.parquet"))
    assert len(files) == 1 and f"date={day}" in str(files[0])
    got = pl.read_parquet(files[0]).sort("ts")
    want = expected_trades("aggTrades", text, unit)
    assert got.height == len(want)
    for column in ("ts", "recv_ts", "side", "price", "qty"):
        values = got[column].cast(pl.Int64).to_list() if column in ("ts", "recv_ts") else got[column].to_list()
        assert values == [w[column] for w in want], column
    seq = got["seq"].to_list()
    assert seq == sorted(seq) and len(set(seq)) == len(seq)  # every trade its own message (the importer numbers them)
    assert set(got["symbol"].cast(pl.Utf8).to_list()) == {symbol} and set(got["kind"].to_list()) == {2}
