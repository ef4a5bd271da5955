"""The importers' parsers against small files written by hand: every output row and column checked
exactly against the source lines; format detection; time units; mappings and their errors."""

from __future__ import annotations

import datetime as dt
import gzip
import math
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from sq.core import schemas as S
from sq.core.exits import DataError, UsageError
from sq.core.importers import FORMATS, ParseOptions, detect, store
from sq.core.importers.grid import first_off_grid, infer_grid
from sq.core.importers.mapped import infer_interval, parse_mapping
from sq.core.importers.rows import level_rows

NAN = float("nan")
US = 1_000
T0 = 1_704_067_200_000_000  # 2024-01-01 00:00:00 UTC in µs

L2 = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance,BTCUSDT,1704067200000000,1704067200001000,true,ask,100.5,2
binance,BTCUSDT,1704067200000000,1704067200001000,true,ask,100.6,3
binance,BTCUSDT,1704067200000000,1704067200001000,true,bid,100.4,1.5
binance,BTCUSDT,1704067200000000,1704067200001000,true,bid,100.3,4
binance,BTCUSDT,1704067201000000,1704067201001000,false,bid,100.4,0
binance,BTCUSDT,1704067201000000,1704067201001000,false,bid,100.2,7
binance,BTCUSDT,1704067202000000,1704067202001000,false,ask,100.5,1
binance,BTCUSDT,1704067203000000,1704067203001000,true,bid,99.9,1
binance,BTCUSDT,1704067203000000,1704067203001000,true,ask,100.1,2
binance,BTCUSDT,1704067204000000,1704067204001000,false,ask,100.1,0.25
"""

TRADES = """exchange,symbol,timestamp,local_timestamp,id,side,price,amount
binance,BTCUSDT,1704067200500000,1704067200501000,11,buy,100.5,0.5
binance,BTCUSDT,1704067201500000,1704067201501000,12,sell,100.4,1
binance,BTCUSDT,1704067202500000,1704067202501000,ab-13,unknown,100.45,2
"""

QUOTES = """exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount
binance,BTCUSDT,1704067200000000,1704067200002000,2,100.5,100.4,1.5
binance,BTCUSDT,1704067201000000,1704067201002000,,,100.3,4
binance,BTCUSDT,1704067202000000,1704067202002000,0.125,100.6,100.2,0.75
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    if name.endswith(".gz"):
        p.write_bytes(gzip.compress(text.encode()))
    else:
        p.write_text(text)
    return p


def rows(parsed) -> list[tuple]:
    """(ts, recv_ts, kind, side, price, qty, seq) per row, times as int ns, NaN kept."""
    t = parsed.table
    ts, recv = S.int64_view(t.column("ts")), S.int64_view(t.column("recv_ts"))
    cols = [t.column(c).to_pylist() for c in ("kind", "side", "price", "qty", "seq")]
    return [(int(a), int(b), *vals) for a, b, *vals in zip(ts, recv, *cols)]


def same(got: list[tuple], want: list[tuple]) -> bool:
    def eq(a, b):
        return (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or a == b

    return len(got) == len(want) and all(len(g) == len(w) and all(eq(a, b) for a, b in zip(g, w)) for g, w in zip(got, want))


def csv_lines(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.strip().splitlines()[1:]]


def test_tardis_l2_rows_are_exactly_the_source_with_snapshots_framed(tmp_path):
    parsed = FORMATS["tardis-incremental_book_L2"].parse(write(tmp_path, "l2.csv.gz", L2), ParseOptions())
    want, seq, prev_snap, prev_key = [], 0, False, None
    lines = csv_lines(L2)
    for i, (_, _, ts, lts, snap, side, px, qty) in enumerate(lines):
        ts, lts, snap = int(ts) * US, int(lts) * US, snap == "true"
        starts = snap and not prev_snap
        if starts or (not snap and (prev_snap or (ts, lts) != prev_key)):
            seq += 1
        if starts:
            want.append((ts, lts, S.CLEAR, 0, NAN, 0.0, seq))
        want.append((ts, lts, S.LEVEL, 1 if side == "bid" else -1, float(px), float(qty), seq))
        if snap and (i + 1 == len(lines) or lines[i + 1][4] != "true"):
            want.append((ts, lts, S.SNAPSHOT_END, 0, NAN, 0.0, seq))
        prev_snap, prev_key = snap, (ts, lts)
    assert same(rows(parsed), want)
    assert parsed.source_rows == 10 and parsed.label == "tardis-incremental_book_L2"
    assert [r[6] for r in want] == [1] * 6 + [2, 2, 3, 4, 4, 4, 4, 5]  # two snapshots, three updates
    assert parsed.table.column("orders").null_count == parsed.table.num_rows


def test_tardis_trades_one_row_per_trade_with_the_aggressor(tmp_path):
    parsed = FORMATS["tardis-trades"].parse(write(tmp_path, "t.csv", TRADES), ParseOptions())
    sides = {"buy": 1, "sell": -1, "unknown": 0}
    want = [(int(ts) * US, int(lts) * US, S.TRADE, sides[side], float(px), float(q), i + 1)
            for i, (_, _, ts, lts, _, side, px, q) in enumerate(csv_lines(TRADES))]
    assert same(rows(parsed), want)


def test_tardis_quotes_become_top_of_book_snapshots(tmp_path):
    parsed = FORMATS["tardis-quotes"].parse(write(tmp_path, "q.csv", QUOTES), ParseOptions())
    want = []
    for i, (_, _, ts, lts, aq, ap, bp, bq) in enumerate(csv_lines(QUOTES)):
        ts, lts = int(ts) * US, int(lts) * US
        want.append((ts, lts, S.CLEAR, 0, NAN, 0.0, i + 1))
        if bp:
            want.append((ts, lts, S.LEVEL, 1, float(bp), float(bq), i + 1))
        if ap:
            want.append((ts, lts, S.LEVEL, -1, float(ap), float(aq), i + 1))
        want.append((ts, lts, S.SNAPSHOT_END, 0, NAN, 0.0, i + 1))
    assert same(rows(parsed), want)


def test_tardis_book_snapshot_levels_best_first(tmp_path):
    header = "exchange,symbol,timestamp,local_timestamp," + ",".join(
        f"asks[{i}].price,asks[{i}].amount,bids[{i}].price,bids[{i}].amount" for i in range(5))
    levels = ["101,1,100,2", "102,3,99,4", "103,5,98,6", ",,97,8", ",,,"]
    text = f"{header}\nbinance,BTCUSDT,{T0},{T0 + 5}," + ",".join(levels) + "\n"
    path = write(tmp_path, "s.csv", text)
    assert detect(path).name == "tardis-book_snapshot_5"
    got = rows(detect(path).parse(path, ParseOptions()))
    ts, lts = T0 * US, (T0 + 5) * US
    want = [(ts, lts, S.CLEAR, 0, NAN, 0.0, 1)]
    want += [(ts, lts, S.LEVEL, 1, p, q, 1) for p, q in ((100.0, 2.0), (99.0, 4.0), (98.0, 6.0), (97.0, 8.0))]
    want += [(ts, lts, S.LEVEL, -1, p, q, 1) for p, q in ((101.0, 1.0), (102.0, 3.0), (103.0, 5.0))]
    want += [(ts, lts, S.SNAPSHOT_END, 0, NAN, 0.0, 1)]
    assert same(got, want)


def test_formats_are_told_from_the_header(tmp_path):
    assert detect(write(tmp_path, "a.csv", L2)).name == "tardis-incremental_book_L2"
    assert detect(write(tmp_path, "b.csv.gz", TRADES)).name == "tardis-trades"
    assert detect(write(tmp_path, "c.csv", QUOTES)).name == "tardis-quotes"
    assert detect(write(tmp_path, "d.csv", "time,px,size\n1,2,3\n")).name == "csv"
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "e.bin")
    assert detect(tmp_path / "e.bin").name == "parquet"


def test_a_many_symbol_tardis_file_keeps_the_imported_symbol(tmp_path):
    text = TRADES + "binance,ETHUSDT,1704067203500000,1704067203501000,14,buy,2000.5,3\n"
    path = write(tmp_path, "t.csv", text)
    parsed = FORMATS["tardis-trades"].parse(path, ParseOptions(symbol_name="ETHUSDT"))
    assert rows(parsed) == [(1704067203500000 * US, 1704067203501000 * US, S.TRADE, 1, 2000.5, 3.0, 1)]
    with pytest.raises(DataError, match="several symbols.*XRPUSDT"):
        FORMATS["tardis-trades"].parse(path, ParseOptions(symbol_name="XRPUSDT"))
    # a one-symbol file is taken whole whatever the venue calls it
    assert len(rows(FORMATS["tardis-trades"].parse(write(tmp_path, "u.csv", TRADES), ParseOptions(symbol_name="OTHER")))) == 3


@pytest.mark.parametrize("bad, match", [
    (L2.replace("true,ask,100.6", "true,middle,100.6"), "side 'middle'"),
    (L2.replace(",100.6,3", ",-100.6,3"), "not a finite non-negative"),
    (L2.replace("1704067202000000,1704067202001000", "1704067202000000,"), "empty time"),
])
def test_bad_tardis_values_are_data_errors_naming_the_row(tmp_path, bad, match):
    with pytest.raises(DataError, match=match):
        FORMATS["tardis-incremental_book_L2"].parse(write(tmp_path, "bad.csv", bad), ParseOptions())


def test_a_file_without_the_formats_columns_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not a tardis-incremental_book_L2 file: no column is_snapshot"):
        FORMATS["tardis-incremental_book_L2"].parse(write(tmp_path, "t.csv", TRADES), ParseOptions())


def test_back_to_back_snapshot_runs_and_updates_split_into_messages():
    ts = np.array([1, 1, 2, 2, 3, 3], dtype=np.int64) * 10**18 // 10**9 * 10**9
    snap = np.array([True, True, False, False, True, False])
    parsed = level_rows(ts, ts, snap, np.array([1, -1, 1, 1, 1, -1], np.int8), np.arange(6.0) + 1, np.ones(6), "x")
    kinds = parsed.table.column("kind").to_pylist()
    assert kinds == [S.CLEAR, S.LEVEL, S.LEVEL, S.SNAPSHOT_END, S.LEVEL, S.LEVEL, S.CLEAR, S.LEVEL, S.SNAPSHOT_END, S.LEVEL]
    assert parsed.table.column("seq").to_pylist() == [1, 1, 1, 1, 2, 2, 3, 3, 3, 4]


# ----------------------------------------------------------------------------------------------
# mapped files and time units

SECONDS = 1_704_067_200  # 2024-01-01 00:00:00 UTC


@pytest.mark.parametrize("unit, scale", [("s", 1), ("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)])
@pytest.mark.parametrize("told", [True, False])
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_mapped_trades_in_every_time_unit(tmp_path, unit, scale, told, kind):
    times = [SECONDS * scale + k * scale // 2 if scale > 1 else SECONDS + k for k in range(3)]
    df = pl.DataFrame({"time": times, "px": [10.25, 10.5, 10.0], "size": [1.0, 2.5, 3.0], "aggressor": ["BUY", "s", "-1"]})
    path = tmp_path / f"ticks.{kind}"
    df.write_csv(path) if kind == "csv" else df.write_parquet(path)
    mapping = parse_mapping(["ts=time,price=px", "qty=size,side=aggressor"])
    parsed = FORMATS[kind].parse(path, ParseOptions(mapping=mapping, ts_unit=unit if told else None))
    ns = [t * (1_000_000_000 // scale) for t in times]
    assert rows(parsed) == [(ns[k], ns[k], S.TRADE, s, p, q, k + 1)
                            for k, (s, p, q) in enumerate(((1, 10.25, 1.0), (-1, 10.5, 2.5), (-1, 10.0, 3.0)))]
    assert parsed.label == "trades"


def test_mapped_times_as_datetimes_and_iso_text(tmp_path):
    start = dt.datetime(2024, 1, 1, 12, 0, 0, 250_000)
    pl.DataFrame({"ts": [start, start + dt.timedelta(seconds=1)], "price": [1.5, 1.25], "qty": [1.0, 2.0],
                  "buyer_maker": [True, False]}).write_parquet(tmp_path / "a.parquet")
    got = rows(FORMATS["parquet"].parse(tmp_path / "a.parquet", ParseOptions()))
    first = (SECONDS + 12 * 3600) * 1_000_000_000 + 250_000_000
    assert [(r[0], r[3]) for r in got] == [(first, -1), (first + 1_000_000_000, 1)]
    write(tmp_path, "b.csv", "ts,price,qty\n2024-01-01T12:00:00.25Z,1.5,1\n")
    assert rows(FORMATS["csv"].parse(tmp_path / "b.csv", ParseOptions()))[0][0] == first


@pytest.mark.parametrize("values, unit, match", [
    ([5, 6, 7], None, "not a time since the epoch"),
    ([SECONDS, SECONDS * 1000], None, "ambiguous"),
    ([SECONDS * 1000], "s", "outside 1980–2100"),
    ([-SECONDS], "ms", "outside 1980–2100"),
])
def test_implausible_or_ambiguous_times_are_data_errors(tmp_path, values, unit, match):
    pl.DataFrame({"ts": values, "price": [1.0] * len(values), "qty": [1.0] * len(values)}).write_csv(tmp_path / "x.csv")
    with pytest.raises(DataError, match=match):
        FORMATS["csv"].parse(tmp_path / "x.csv", ParseOptions(ts_unit=unit))


def test_mapped_quotes_and_bars(tmp_path):
    write(tmp_path, "q.csv", f"t,b,bq,a,aq\n{SECONDS},9.5,3,10.5,4\n")
    got = rows(FORMATS["csv"].parse(tmp_path / "q.csv", ParseOptions(mapping=parse_mapping(["ts=t,bid_price=b,bid_qty=bq,ask_price=a,ask_qty=aq"]))))
    ns = SECONDS * 1_000_000_000
    assert same(got, [(ns, ns, S.CLEAR, 0, NAN, 0.0, 1), (ns, ns, S.LEVEL, 1, 9.5, 3.0, 1), (ns, ns, S.LEVEL, -1, 10.5, 4.0, 1),
                      (ns, ns, S.SNAPSHOT_END, 0, NAN, 0.0, 1)])
    write(tmp_path, "k.csv", "open_time,open,high,low,close,volume,n\n"
          f"{SECONDS * 1000},10,11,9,10.5,100,7\n{(SECONDS + 60) * 1000},10.5,12,10,11,50.5,3\n")
    parsed = FORMATS["csv"].parse(tmp_path / "k.csv", ParseOptions(mapping=parse_mapping(["ts=open_time,trades=n"])))
    assert parsed.stream == "bars" and parsed.interval == "1m" and parsed.label == "bars"
    t = parsed.table
    assert S.int64_view(t.column("ts")).tolist() == [ns, ns + 60_000_000_000]
    assert t.column("close").to_pylist() == [10.5, 11.0] and t.column("volume").to_pylist() == [100.0, 50.5]
    assert t.column("trades").to_pylist() == [7, 3] and t.column("vwap").null_count == 2


def test_mapping_errors(tmp_path):
    for bad, match in (("ts", "write FIELD=COLUMN"), ("when=time", "unknown field 'when'"), ("ts=a,ts=b", "twice")):
        with pytest.raises(UsageError, match=match):
            parse_mapping([bad])
    write(tmp_path, "x.csv", "time,px,size\n1704067200,1,2\n")
    with pytest.raises(DataError, match="--map price=price_usd: the file has no column 'price_usd'.*time, px, size"):
        FORMATS["csv"].parse(tmp_path / "x.csv", ParseOptions(mapping={"ts": "time", "price": "price_usd", "qty": "size"}))
    with pytest.raises(DataError, match="no column for price, qty of trades rows; name it with --map price=COLUMN --map qty=COLUMN"):
        FORMATS["csv"].parse(tmp_path / "x.csv", ParseOptions(mapping={"ts": "time"}))


def test_interval_inference_and_grids():
    minute = 60_000_000_000
    assert infer_interval(np.array([0, minute, 2 * minute, 4 * minute]), "x") == "1m"
    assert infer_interval(np.array([0, 3_600_000_000_000]), "x") == "1h"
    assert infer_interval(np.array([0, 86_400_000_000_000 * 7]), "x") == "7d"
    prices = np.round(np.arange(300_000) * 0.05 + 100, 2)
    assert infer_grid(prices) == pytest.approx(0.01)
    prices[-1] = 100.001  # the sample misses it; the whole column is looked at again
    assert infer_grid(prices) == pytest.approx(0.001)
    assert first_off_grid(prices, 0.01) == len(prices) - 1 and first_off_grid(prices, 0.001) == -1


def test_seq_bases_keep_series_apart():
    assert store.seq_base("tardis-trades") != store.seq_base("tardis-incremental_book_L2")
    assert 0 < store.seq_base("trades") < 2**63 - 2**48


@pytest.mark.parametrize("packing", ["plain", "gzip", "zstd", "bzip2", "zip"])
def test_compressed_and_zipped_csv_files_read_alike(tmp_path, packing):
    import bz2
    import zipfile

    import pyarrow as pa

    raw = TRADES.encode()
    path = tmp_path / "trades.data"
    if packing == "plain":
        path.write_bytes(raw)
    elif packing == "gzip":
        path.write_bytes(gzip.compress(raw))
    elif packing == "bzip2":
        path.write_bytes(bz2.compress(raw))
    elif packing == "zstd":
        with pa.CompressedOutputStream(str(path), "zstd") as out:
            out.write(raw)
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("trades.csv", raw)
    fmt = detect(path)
    assert fmt.name == "tardis-trades"
    assert [r[4] for r in rows(fmt.parse(path, ParseOptions()))] == [100.5, 100.4, 100.45]


@pytest.mark.parametrize("column,words", [(pa.array(["abc"]), "Failed to parse string: 'abc'"),  # ArrowInvalid
                                          (pa.array([[1.0]]), "Unsupported cast from list")])  # ArrowNotImplementedError
def test_a_column_that_cannot_take_its_type_is_a_data_error_naming_the_file(column, words):
    from sq.core.importers.rows import fit_columns

    with pytest.raises(DataError) as e:
        fit_columns(pa.table({"price": column}), [pa.field("price", pa.float64())], "x.csv")
    assert e.value.message.startswith("x.csv: ") and words in e.value.message and e.value.status == 65
