"""Binance archive files → sq tables (`sq.venues.binance.archive.read_archive`): every kind in
its spot and futures dialects (no header / header, milliseconds / microseconds), checked value
by value against the CSV text, and every broken file named in a DataError."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pyarrow as pa
import pytest

from sq.core import schemas as S
from sq.core.exits import DataError
from sq.venues.binance.archive import read_archive
from tests.support.fakes.binance_archive import csv_rows, expected_bars, expected_trades, make_csv, zip_of
from tests.support.marketdata import pylist

DAY_2024 = dt.date(2024, 12, 31)
DAY_2025 = dt.date(2025, 1, 2)


def _ns(text: str, unit: str) -> int:
    return int(text) * (1_000 if unit == "us" else 1_000_000)


def _read(text: str, kind: str, market: str, *, zipped: bool = True, interval: str | None = None, symbol: str = "BINANCE:BTCUSDT"):
    data = zip_of("X.csv", text) if zipped else text.encode()
    return read_archive(data, name="X.zip", symbol=symbol, market=market, kind=kind, interval=interval)


def _check_trades(table: pa.Table, text: str, kind: str, unit: str, symbol: str) -> None:
    got = pylist(table)
    assert len(got) > 0 and {g.pop("symbol") for g in got} == {symbol}
    assert got == expected_trades(kind, text, unit)


@pytest.mark.parametrize("kind", ["trades", "aggTrades"])
@pytest.mark.parametrize("day,unit", [(DAY_2024, "ms"), (DAY_2025, "us")])
def test_spot_trades_without_header_in_ms_and_us(kind, day, unit):
    text = make_csv(kind, "spot", day, n=300, seed=3)
    assert not text[0].isalpha()  # no header: the first line is data
    table = _read(text, kind, "spot")
    assert S.stream_kind(table.schema) == "market" and table.schema.names == [f.name for f in S.MARKET_FIELDS]
    _check_trades(table, text, kind, unit, "BINANCE:BTCUSDT")
    day_ns = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    ts = S.int64_view(table.column("ts"))
    assert ((ts >= day_ns) & (ts < day_ns + 86_400 * 10**9)).all()  # the unit was told right


@pytest.mark.parametrize("kind", ["trades", "aggTrades"])
def test_futures_trades_with_header(kind):
    text = make_csv(kind, "futures", DAY_2025, n=200, seed=5)
    assert text.startswith(("id,", "agg_trade_id,"))
    table = _read(text, kind, "futures", symbol="BINANCE-FUT:BTCUSDT")
    _check_trades(table, text, kind, "ms", "BINANCE-FUT:BTCUSDT")


def test_zip_and_bare_csv_give_the_same_table():
    text = make_csv("aggTrades", "spot", DAY_2025, n=50)
    assert _read(text, "aggTrades", "spot").equals(_read(text, "aggTrades", "spot", zipped=False))


def test_book_ticker_is_a_top_of_book_snapshot_per_update():
    text = make_csv("bookTicker", "futures", DAY_2024, n=100, seed=9)
    table = _read(text, "bookTicker", "futures", symbol="BINANCE-FUT:BTCUSDT")
    got = pylist(table)
    rows = csv_rows(text)
    assert len(got) == 4 * len(rows)
    for i, r in enumerate(rows):
        clear, bid, ask, end = got[4 * i: 4 * i + 4]
        assert [x["kind"] for x in (clear, bid, ask, end)] == [S.CLEAR, S.LEVEL, S.LEVEL, S.SNAPSHOT_END]
        assert {x["seq"] for x in (clear, bid, ask, end)} == {int(r[0])}  # one message per update
        assert {x["ts"] for x in (clear, bid, ask, end)} == {_ns(r[5], "ms")}
        assert {x["recv_ts"] for x in (clear, bid, ask, end)} == {_ns(r[6], "ms")}
        assert (bid["side"], bid["price"], bid["qty"]) == (1, float(r[1]), float(r[2]))
        assert (ask["side"], ask["price"], ask["qty"]) == (-1, float(r[3]), float(r[4]))


@pytest.mark.parametrize("market,day,unit", [("spot", DAY_2024, "ms"), ("spot", DAY_2025, "us"), ("futures", DAY_2025, "ms")])
def test_klines_are_bars(market, day, unit):
    text = make_csv("klines", market, day, n=90, seed=2, interval="5m")
    table = _read(text, "klines", market, interval="5m")
    assert S.stream_kind(table.schema) == "bars" and S.bars_interval(table.schema) == "5m"
    assert table.schema.names == [f.name for f in S.BARS_FIELDS]
    got = pylist(table)
    assert {g.pop("symbol") for g in got} == {"BINANCE:BTCUSDT"}
    assert got == expected_bars(text, unit) and len(got) == 90
    assert any(g["vwap"] is None for g in got)


def test_an_empty_file_is_an_empty_day():
    table = _read("", "aggTrades", "spot")
    assert table.num_rows == 0 and S.stream_kind(table.schema) == "market"
    header_only = make_csv("aggTrades", "futures", DAY_2025, n=0)
    assert _read(header_only, "aggTrades", "futures").num_rows == 0


@pytest.mark.parametrize("text,words", [
    ("1,60000.1,0.5,0.5,17000000,True,True\n", "neither millisecond nor microsecond"),
    ("1,60000.1,0.5,0.5,1735776000000,True,True\n2,60000.1,0.5,0.5,1735776000000001,True,True\n", "neither millisecond nor microsecond"),
    ("1,60000.1,0.5\n", "3 columns, expected 6 or 7"),
    ("1,60000.1,0.5,0.5,1735776000000,True,True\n2,abc,0.5,0.5,1735776000000,True,True\n", "not a Binance spot trades file"),
    ("1,60000.1,0.5,0.5,1735776000000,True,True\n2,,0.5,0.5,1735776000000,True,True\n", "empty values"),
])
def test_bad_files_are_data_errors_naming_the_file(text, words):
    with pytest.raises(DataError) as e:
        _read(text, "trades", "spot")
    assert e.value.message.startswith("X.zip: ") and words in e.value.message


def test_broken_zips_are_data_errors():
    good = zip_of("X.csv", make_csv("aggTrades", "spot", DAY_2025, n=500))
    with pytest.raises(DataError, match="X.zip: broken zip file"):
        read_archive(good[: len(good) // 2], name="X.zip", symbol="BINANCE:BTCUSDT", market="spot", kind="aggTrades")
    # a flipped byte inside the compressed data: the CRC (or inflate) catches it
    bad = bytearray(good)
    start = 30 + len("X.csv")
    bad[start + 40] ^= 0xFF
    with pytest.raises(DataError, match="X.zip: "):
        read_archive(bytes(bad), name="X.zip", symbol="BINANCE:BTCUSDT", market="spot", kind="aggTrades")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.csv", "1\n")
        z.writestr("b.csv", "2\n")
    two = buf.getvalue()
    with pytest.raises(DataError, match="expected one CSV file in the zip, found 2"):
        read_archive(two, name="X.zip", symbol="BINANCE:BTCUSDT", market="spot", kind="aggTrades")

