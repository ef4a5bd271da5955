"""Corporate actions (sq.core.corporate): the CSV, the factors against hand-computed values (a
1:5 split, then a 1:1 bonus, then a ₹10 dividend on a known close — the worked example of
docs/corporate-actions.md), bars and market streams adjusted, and every kind of bad file."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from sq.core import schemas
from sq.core.corporate import adjust_bars, adjust_stream, load_actions
from sq.core.exits import DataError, ExitStatus, NoInputError
from tests.support.marketdata import market_rows, pylist

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
HEADER = "symbol,ex_date,kind,ratio_from,ratio_to,amount,prev_close\n"
EXAMPLE = HEADER + "NSE:ABC,2024-01-03,split,10,2,,\nNSE:ABC,05-Jan-2024,bonus,1,1,,\nNSE:ABC,2024-01-09,dividend,,,10,\n"

# the worked example's daily bars: date, open, high, low, close, volume, vwap
BARS = [
    ("2024-01-01", 990.0, 1005.0, 985.0, 1000.0, 10_000.0, 998.0),
    ("2024-01-02", 1000.0, 1020.0, 995.0, 1010.0, 12_000.0, 1008.0),
    ("2024-01-03", 203.0, 206.0, 200.0, 202.0, 60_000.0, 203.0),  # split ex-date: face value 10 → 2
    ("2024-01-04", 202.0, 205.0, 201.0, 204.0, 55_000.0, 203.5),
    ("2024-01-05", 103.0, 104.0, 101.0, 102.0, 90_000.0, 102.5),  # bonus 1:1 ex-date
    ("2024-01-08", 102.0, 106.0, 101.0, 105.0, 80_000.0, 104.0),  # the close before the dividend: 105
    ("2024-01-09", 96.0, 97.0, 94.0, 95.0, 85_000.0, 95.5),  # dividend ₹10 ex-date
]
# by hand: before 3 Jan 0.2 × 0.5 × 95/105, before 5 Jan 0.5 × 95/105, before 9 Jan 95/105
CLOSES = [90.47619047619048, 91.38095238095238, 91.38095238095238, 92.28571428571429, 92.28571428571429, 95.0, 95.0]
VOLUMES = [100_000.0, 120_000.0, 120_000.0, 110_000.0, 90_000.0, 80_000.0, 85_000.0]


def nse(symbols):
    """What the venue registry answers for these symbols: NSE and BSE equities, IST."""
    return {"NSE": 330, "BSE": 330}


def write(tmp_path, text, name="ca.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def ns(day: str, zone=dt.timezone.utc, hour=0, minute=0) -> int:
    d = dt.date.fromisoformat(day)
    return int(dt.datetime(d.year, d.month, d.day, hour, minute, tzinfo=zone).timestamp()) * 1_000_000_000


def bars_table(rows=BARS, symbol="NSE:ABC", zone=dt.timezone.utc, extra=()):
    ins = {symbol: schemas.Instrument(symbol, "zerodha", 0.05)}
    all_rows = [(symbol, *r) for r in rows] + list(extra)
    for s, *_ in extra:
        ins[s] = schemas.Instrument(s, "x", 0.01)
    cols = {
        "ts": pa.array([ns(r[1], zone) for r in all_rows], pa.int64()).cast(schemas.TS),
        "symbol": pa.array([r[0] for r in all_rows]).dictionary_encode().cast(schemas.SYMBOL),
        "open": pa.array([r[2] for r in all_rows]), "high": pa.array([r[3] for r in all_rows]),
        "low": pa.array([r[4] for r in all_rows]), "close": pa.array([r[5] for r in all_rows]),
        "volume": pa.array([r[6] for r in all_rows]), "trades": pa.nulls(len(all_rows), pa.int64()),
        "vwap": pa.array([r[7] for r in all_rows]), "oi": pa.nulls(len(all_rows), pa.float64()),
    }
    return pa.Table.from_pydict(cols, schema=schemas.bars_schema(ins, "1d"))


def test_the_file_parses_in_ex_date_order_with_factors(tmp_path):
    actions = load_actions(write(tmp_path, EXAMPLE), nse)
    got = actions.by_symbol["NSE:ABC"]
    assert [(a.kind, a.ex_date.isoformat()) for a in got] == [("split", "2024-01-03"), ("bonus", "2024-01-05"), ("dividend", "2024-01-09")]
    assert [a.volume_factor for a in got] == [0.2, 0.5, 1.0]
    assert got[2].price_factor(105.0) == pytest.approx(95 / 105) and np.isnan(got[2].price_factor())
    assert actions.utc_offset_min == {"NSE:ABC": 330}
    # NSE's "Bonus 1:2" (one new share for every two held): 3 shares where there were 2, price × 2/3
    bonus = load_actions(write(tmp_path, HEADER + "BSE:XYZ,2024-01-03,bonus,1,2,,\n", "b.csv"), nse).by_symbol["BSE:XYZ"][0]
    assert bonus.volume_factor == pytest.approx(2 / 3) and bonus.price_factor() == pytest.approx(2 / 3)
    # each ex-date begins at local (IST) midnight: 18:30 UTC the day before
    assert actions.boundaries("NSE:ABC").tolist() == [ns("2024-01-02", hour=18, minute=30), ns("2024-01-04", hour=18, minute=30),
                                                     ns("2024-01-08", hour=18, minute=30)]


@pytest.mark.parametrize("zone", [dt.timezone.utc, IST], ids=["bars-at-utc-midnight", "bars-at-ist-midnight"])
def test_bars_hand_computed(tmp_path, zone):
    out = adjust_bars(bars_table(zone=zone), load_actions(write(tmp_path, EXAMPLE), nse))
    assert out.column("close").to_pylist() == pytest.approx(CLOSES, rel=1e-12)
    assert out.column("volume").to_pylist() == pytest.approx(VOLUMES, rel=1e-12)
    first = out.slice(0, 1).to_pylist()[0]
    # 990 × 0.1 × 95/105, 1005 × …, 985 × …, 998 × …
    assert (first["open"], first["high"], first["low"], first["vwap"]) == pytest.approx(
        (89.57142857142857, 90.92857142857143, 89.11904761904762, 90.2952380952381), rel=1e-12)
    assert out.schema == bars_table(zone=zone).schema and out.schema.metadata == bars_table().schema.metadata
    assert out.column("trades").null_count == len(BARS)


def test_a_given_prev_close_wins_over_the_data(tmp_path):
    text = EXAMPLE.replace("dividend,,,10,", "dividend,,,10,100")  # factor (100 − 10)/100 = 0.9
    out = adjust_bars(bars_table(), load_actions(write(tmp_path, text), nse))
    assert out.column("close").to_pylist()[4:] == pytest.approx([102 * 0.9, 105 * 0.9, 95.0], rel=1e-12)
    assert out.column("close").to_pylist()[0] == pytest.approx(1000 * 0.2 * 0.5 * 0.9, rel=1e-12)


def test_other_symbols_and_intraday_bars_around_the_ex_date(tmp_path):
    extra = [("NSE:XYZ", "2024-01-01", 50.0, 51.0, 49.0, 50.5, 700.0, None), ("SIM:DEMO", "2024-01-02", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)]
    table = bars_table(rows=[("2024-01-02", 1000.0, 1000.0, 1000.0, 1000.0, 10.0, 1000.0)], extra=extra)
    late = bars_table(rows=[("2024-01-02", 1000.0, 1000.0, 1000.0, 1000.0, 10.0, 1000.0)])  # 15:29 IST, the last minute
    late = late.set_column(0, "ts", pa.array([ns("2024-01-02", IST, 15, 29)], pa.int64()).cast(schemas.TS))
    split = load_actions(write(tmp_path, HEADER + "NSE:ABC,2024-01-03,split,10,2,,\n"), nse)
    out = adjust_bars(table, split)
    assert out.column("close").to_pylist() == [200.0, 50.5, 1.0] and out.column("volume").to_pylist() == [50.0, 700.0, 1.0]
    assert out.column("vwap").to_pylist() == [200.0, None, 1.0]
    assert adjust_bars(late, split).column("close").to_pylist() == [200.0]
    after = late.set_column(0, "ts", pa.array([ns("2024-01-03", IST, 9, 15)], pa.int64()).cast(schemas.TS))
    assert adjust_bars(after, split).column("close").to_pylist() == [1000.0]


def test_a_dividend_not_below_the_close_in_the_data(tmp_path):
    rows = [("2024-01-08", 10.0, 10.0, 10.0, 8.0, 1.0, 9.0), ("2024-01-09", 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)]
    with pytest.raises(DataError, match="the dividend 10 is not below the close before the ex-date"):
        adjust_bars(bars_table(rows), load_actions(write(tmp_path, HEADER + "NSE:ABC,2024-01-09,dividend,,,10,\n"), nse))


# ----------------------------------------------------------------------------------------------
# market streams


def stream(rows, tick=0.05):
    batch = market_rows(rows, ["NSE:ABC", "SIM:DEMO"], tick=tick)
    return batch, {s: schemas.Instrument(s, "x", tick) for s in ("NSE:ABC", "SIM:DEMO")}


def test_a_market_stream_across_a_split(tmp_path):
    L, T, C = schemas.LEVEL, schemas.TRADE, schemas.CLEAR
    pre, post = ns("2024-01-02", IST, 10), ns("2024-01-03", IST, 10)
    batch, ins = stream([(pre, "NSE:ABC", C, 0, 0.0, 0.0, 1), (pre, "NSE:ABC", L, 1, 1000.05, 10.0, 1), (pre + 1, "NSE:ABC", T, -1, 1000.0, 3.0, 2),
                         (pre + 2, "SIM:DEMO", T, 1, 1000.0, 3.0, 3), (post, "NSE:ABC", L, 1, 200.0, 50.0, 4), (post, "NSE:ABC", T, 1, 200.05, 5.0, 5)])
    split = load_actions(write(tmp_path, HEADER + "NSE:ABC,2024-01-03,split,10,2,,\n"), nse)
    instruments, batches = adjust_stream([batch.slice(0, 3), batch.slice(3)], split, ins)
    rows = [r for b in batches for r in pylist(b)]
    assert [(r["symbol"], r["kind"], r["price"], r["qty"]) for r in rows] == [
        ("NSE:ABC", C, 0.0, 0.0), ("NSE:ABC", L, pytest.approx(200.01), pytest.approx(50.0)), ("NSE:ABC", T, 200.0, 15.0),
        ("SIM:DEMO", T, 1000.0, 3.0), ("NSE:ABC", L, 200.0, 50.0), ("NSE:ABC", T, 200.05, 5.0)]
    # the tick of the earliest period in adjusted terms: 0.05 × 0.2
    assert instruments["NSE:ABC"].tick_size == pytest.approx(0.01) and instruments["SIM:DEMO"].tick_size == 0.05
    first = next(adjust_stream([batch], split, ins)[1])
    assert schemas.schema_instruments(first.schema)["NSE:ABC"].tick_size == pytest.approx(0.01)


def test_a_stream_after_every_ex_date_is_unchanged(tmp_path):
    batch, ins = stream([(ns("2024-02-01", IST, 10), "NSE:ABC", schemas.TRADE, 1, 200.05, 5.0, 1)])
    instruments, batches = adjust_stream([batch], load_actions(write(tmp_path, EXAMPLE), nse), ins)  # its dividend has no close: not needed
    assert pylist(next(batches)) == pylist(batch) and instruments["NSE:ABC"].tick_size == 0.05


def test_a_stream_before_a_dividend_needs_its_close(tmp_path):
    batch, ins = stream([(ns("2024-01-08", IST, 10), "NSE:ABC", schemas.TRADE, 1, 105.0, 5.0, 1)])
    with pytest.raises(DataError, match=r"NSE:ABC dividend ex 2024-01-09 \(line 4\): adjusting a market stream needs the close before the ex-date: fill in prev_close"):
        adjust_stream([batch], load_actions(write(tmp_path, EXAMPLE), nse), ins)
    instruments, batches = adjust_stream([batch], load_actions(write(tmp_path, EXAMPLE.replace(",10,\n", ",10,105\n")), nse), ins)
    assert pylist(next(batches))[0]["price"] == pytest.approx(95.0) and instruments["NSE:ABC"].tick_size == pytest.approx(0.05 * 95 / 105)


# ----------------------------------------------------------------------------------------------
# bad files: one line naming the file and line, exit 65 (66 when there is no file)


@pytest.mark.parametrize("text,needle", [
    ("symbol,ex_date,kind,ratio_from,ratio_to\nNSE:ABC,2024-01-03,split,10,2\n", "line 1: the header lacks column 'amount'"),
    (HEADER.replace("prev_close", "prev_clse"), "line 1: unknown column 'prev_clse'"),
    (HEADER + "NSE:ABC,2024-01-03,merger,1,1,,\n", "line 2: unknown kind 'merger' (known: split, bonus, dividend)"),
    (HEADER + "NSE:ABC,2024-01-03,split,10,0,,\n", "line 2: ratio_to must be a positive number, got 0"),
    (HEADER + "NSE:ABC,2024-01-03,bonus,0,1,,\n", "line 2: ratio_from must be a positive number, got 0"),
    (HEADER + "NSE:ABC,2024-01-03,split,ten,2,,\n", "line 2: ratio_from 'ten' is not a number"),
    (HEADER + "NSE:ABC,2024-13-03,split,10,2,,\n", "line 2: ex_date '2024-13-03' is not a date (YYYY-MM-DD or DD-Mon-YYYY)"),
    (HEADER + "NSE:ABC,soon,split,10,2,,\n", "line 2: ex_date 'soon' is not a date"),
    (HEADER + "NSE:ABC,2024-01-03,dividend,,,0,\n", "line 2: amount must be a positive number, got 0"),
    (HEADER + "NSE:ABC,2024-01-03,dividend,,,12,10\n", "line 2: the dividend 12 is not below prev_close 10"),
    (HEADER + "NSE:ABC,2024-01-03,dividend,1,1,12,\n", "line 2: ratio_from must be empty (a dividend has an amount, not a ratio)"),
    (HEADER + "NSE:ABC,2024-01-03,split,10,2,5,\n", "line 2: amount must be empty (a split has a ratio, not an amount)"),
    (HEADER + "NSE:ABC,2024-01-03,split,10,2\n", "line 2: 5 fields where the header has 7"),
    (HEADER + "ABC,2024-01-03,split,10,2,,\n", "line 2: symbol 'ABC' has no venue prefix"),
    (HEADER + "NSE:ABC,2024-01-03,split,10,2,,\n# a comment\n\nBINANCE:BTCUSDT,2024-01-03,split,10,2,,\n",
     "line 5: BINANCE:BTCUSDT has no corporate actions to adjust for: only equities of these exchanges do (BSE, NSE)"),
    ("", "empty corporate-actions file"),
])
def test_bad_files(tmp_path, text, needle):
    p = write(tmp_path, text)
    with pytest.raises(DataError) as e:
        load_actions(p, nse)
    assert needle in e.value.message and str(p) in e.value.message and "\n" not in e.value.message
    assert e.value.status == ExitStatus.DATA_ERR == 65


def test_no_file_is_66(tmp_path):
    with pytest.raises(NoInputError) as e:
        load_actions(tmp_path / "nope.csv", nse)
    assert e.value.status == 66 and "nope.csv: corporate-actions file not found" in e.value.message


def test_the_registry_names_the_markets_with_corporate_actions(tmp_path):
    from sq.venues.registry import corporate_action_markets

    assert corporate_action_markets(["NSE:ABC", "BSE:XYZ"]) == {"NSE": 330, "BSE": 330}
    assert corporate_action_markets(["SIM:DEMO", "BINANCE:BTCUSDT"]) == {}
    ok = load_actions(write(tmp_path, EXAMPLE), corporate_action_markets)
    assert ok.utc_offset_min == {"NSE:ABC": 330}
    for symbol in ("NFO:NIFTY24JANFUT", "SIM:DEMO", "BINANCE-FUT:BTCUSDT"):
        with pytest.raises(DataError, match=f"{symbol} has no corporate actions to adjust for"):
            load_actions(write(tmp_path, HEADER + f"{symbol},2024-01-03,split,10,2,,\n"), corporate_action_markets)
