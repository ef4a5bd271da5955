"""Bars (sq.core.bars, sq.core.barstream): time bars against polars `group_by_dynamic`, however the
input is cut; tick and volume bars against a plain-Python reference; session bars across IST
days; where prices come from (trades, ticks, the mid); the interval grammar; bad input."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sq.core import schemas as S
from sq.core.bars import BAR_SESSION, BAR_TICKS, BAR_TIME, BAR_VOLUME, VOLUME_EPS, parse_interval
from sq.core.barstream import BarStream
from sq.core.exits import DataError, UsageError
from sq.core.sessions import UTC_DAY
from tests.support.barsref import as_frame, assert_same_bars, polars_time_bars
from tests.support.marketdata import market_rows, pylist, random_market

MIN = 60_000_000_000
SEC = 1_000_000_000
DAY = 86_400 * SEC


def run_bars(table: pa.Table, interval: str, cuts=(), session_of=None, warnings=None) -> pa.Table:
    """The bars of `table` cut into batches at row indices `cuts`."""
    bs = BarStream(S.schema_instruments(table.schema), parse_interval(interval), session_of=session_of,
                   warn=warnings.append if warnings is not None else lambda m: None)
    out = []
    edges = [0, *sorted(set(c for c in cuts if 0 < c < table.num_rows)), table.num_rows]
    for lo, hi in zip(edges, edges[1:]):
        for batch in table.slice(lo, hi - lo).to_batches():
            b = bs.process(batch)
            if b is not None:
                out.append(b)
    out += bs.finish()
    if warnings is not None:
        warnings.extend(bs.warnings())
    return pa.Table.from_batches(out, schema=bs.schema)


# ---------------------------------------------------------------------------------------------
# time bars vs polars


MARKETS = {seed: random_market(seed, 4_000) for seed in (1, 2)}
WHOLE = {(seed, every): run_bars(MARKETS[seed], every) for seed in MARKETS for every in ("1s", "1m", "5m", "1h", "1d", "7s")}


@pytest.mark.parametrize("every", ["1s", "1m", "5m", "1h", "1d", "7s"])
@pytest.mark.parametrize("seed", [1, 2])
def test_time_bars_equal_polars_group_by_dynamic(seed, every):
    got = WHOLE[(seed, every)]
    assert S.stream_kind(got.schema) == "bars" and S.bars_interval(got.schema) == every
    assert got.schema.names == [f.name for f in S.BARS_FIELDS]
    assert got.column("oi").null_count == got.num_rows
    assert_same_bars(as_frame(got), polars_time_bars(MARKETS[seed], every))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from([1, 2]), every=st.sampled_from(["1s", "1m", "1h", "7s"]),
       cuts=st.lists(st.integers(min_value=1, max_value=3_999), max_size=12))
def test_time_bars_do_not_depend_on_where_the_input_is_cut(seed, every, cuts):
    got = run_bars(MARKETS[seed], every, cuts)
    assert pylist(got) == pylist(WHOLE[(seed, every)])  # same rows, same order


def test_bars_come_out_in_open_time_then_symbol_order():
    rows = pylist(WHOLE[(1, "1m")])
    keys = [(r["ts"], r["symbol"]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_a_quiet_symbols_bar_closes_when_the_stream_passes_its_end():
    bs = BarStream({}, parse_interval("1m"))
    first = market_rows([(10 * SEC, "SIM:A", S.TRADE, 1, 100.0, 1.0, 1), (20 * SEC, "SIM:B", S.TRADE, 1, 50.0, 2.0, 2)])
    assert bs.process(first) is None  # both bars still open
    later = market_rows([(61 * SEC, "SIM:B", S.LEVEL, 1, 49.0, 3.0, 3)], ["SIM:A", "SIM:B"])
    closed = pylist(bs.process(later))
    assert [(r["ts"], r["symbol"], r["volume"]) for r in closed] == [(0, "SIM:A", 1.0), (0, "SIM:B", 2.0)]
    assert bs.finish() == []


# ---------------------------------------------------------------------------------------------
# tick and volume bars vs a plain-Python reference


def python_count_bars(table: pa.Table, mode: int, size: float) -> list[dict]:
    """The documented rules, one trade at a time: tick bars close at `size` trades; volume bars at
    `size` volume, splitting the trade that crosses (remainders within 1e-9·size are zero); bars
    still open at the end follow in (first trade time, symbol) order."""
    rows = pylist(table)
    open_: dict[str, dict] = {}
    out = []

    def add(sym, ts, px, q):
        b = open_.get(sym)
        if b is None:
            b = open_[sym] = dict(ts=ts, symbol=sym, open=px, high=px, low=px, close=px, volume=0.0, trades=0, pq=0.0)
        b["high"], b["low"], b["close"] = max(b["high"], px), min(b["low"], px), px
        b["volume"] += q
        b["pq"] += px * q
        b["trades"] += 1
        return b

    def close(sym):
        out.append(open_.pop(sym))

    eps = size * VOLUME_EPS
    for r in rows:
        if r["kind"] != S.TRADE:
            continue
        sym, px, q = r["symbol"], r["price"], r["qty"]
        if mode == BAR_TICKS:
            if add(sym, r["ts"], px, q)["trades"] >= size:
                close(sym)
            continue
        rest = q
        while True:
            room = size - (open_[sym]["volume"] if sym in open_ else 0.0)
            if rest >= room - eps:
                part = min(room, rest)
                add(sym, r["ts"], px, part)
                close(sym)
                rest -= part
                if rest <= eps:
                    break
            else:
                add(sym, r["ts"], px, rest)
                break
    out += sorted(open_.values(), key=lambda b: (b["ts"], b["symbol"]))
    for b in out:
        b["vwap"] = b.pop("pq") / b["volume"] if b["volume"] > 0 else None
        b["oi"] = None
    return out


def assert_rows_match(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if k != "vwap"} == {k: v for k, v in w.items() if k != "vwap"}
        assert g["vwap"] == pytest.approx(w["vwap"], rel=1e-12)


@pytest.mark.parametrize("interval,mode,size", [("1t", BAR_TICKS, 1), ("7t", BAR_TICKS, 7), ("500t", BAR_TICKS, 500),
                                                ("10v", BAR_VOLUME, 10.0), ("100v", BAR_VOLUME, 100.0), ("3v", BAR_VOLUME, 3.0),
                                                ("2.5v", BAR_VOLUME, 2.5)])
def test_tick_and_volume_bars_equal_the_python_reference(interval, mode, size):
    table = MARKETS[1]
    want = python_count_bars(table, mode, size)
    got = pylist(run_bars(table, interval))
    assert_rows_match(got, want)
    assert_rows_match(pylist(run_bars(table, interval, cuts=(5, 6, 1000, 2999))), want)
    if mode == BAR_VOLUME:  # every bar but each symbol's last holds exactly the bar's volume
        full = [r for r in got[:-3] if r["volume"] != size]
        assert not full or all(r["volume"] == pytest.approx(size) for r in full)


def test_a_trade_bigger_than_several_volume_bars_is_split_across_them():
    t = market_rows([(1 * SEC, "SIM:A", S.TRADE, 1, 10.0, 3.0, 1), (2 * SEC, "SIM:A", S.TRADE, 1, 11.0, 12.0, 2),
                     (3 * SEC, "SIM:A", S.TRADE, 1, 12.0, 1.0, 3)])
    rows = pylist(run_bars(pa.Table.from_batches([t]), "5v"))
    assert [(r["ts"], r["open"], r["close"], r["volume"], r["trades"]) for r in rows] == [
        (1 * SEC, 10.0, 11.0, 5.0, 2),  # 3 at 10, then 2 of the 12 at 11
        (2 * SEC, 11.0, 11.0, 5.0, 1),  # 5 more of the 12
        (2 * SEC, 11.0, 11.0, 5.0, 1),  # its last 5: the trade ends exactly on a boundary
        (3 * SEC, 12.0, 12.0, 1.0, 1),  # the open bar at the end of the input
    ]
    assert rows[0]["vwap"] == pytest.approx((3 * 10.0 + 2 * 11.0) / 5)


# ---------------------------------------------------------------------------------------------
# session bars


IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def ist_ns(day: int, hh: int, mm: int, ss: int = 0) -> int:
    return int(dt.datetime(2024, 6, day, hh, mm, ss, tzinfo=IST).timestamp()) * SEC


def test_session_bars_cover_the_nse_session_per_ist_day_and_the_utc_day_elsewhere():
    import polars as pl

    from sq.venues.registry import trading_session

    rng = np.random.default_rng(5)
    # three IST days (Mon 3 June – Wed 5 June 2024), trades from 08:00 to 17:00 IST: pre-open and
    # after-close trades fall outside the session; BINANCE trades straddle UTC midnight
    ts = np.sort(rng.integers(ist_ns(3, 8, 0), ist_ns(5, 17, 0), 3_000))
    sym = rng.choice(["NSE:INFY", "BINANCE:BTCUSDT"], len(ts))
    price = np.round(rng.uniform(1500, 1600, len(ts)), 2)
    qty = rng.integers(1, 100, len(ts)).astype(float)
    table = pa.Table.from_batches([market_rows([(int(t), str(s), S.TRADE, 1, float(p), float(q), i)
                                                for i, (t, s, p, q) in enumerate(zip(ts, sym, price, qty))])])
    warnings: list[str] = []
    got = as_frame(run_bars(table, "session", cuts=(17, 1500), session_of=trading_session, warnings=warnings))

    df = pl.DataFrame({"t": ts, "symbol": sym, "price": price, "qty": qty})
    nse = trading_session("NSE:INFY")
    offset = nse.offset_ns
    local = pl.col("t") + offset
    tod = local % DAY
    inside = (pl.col("symbol") != "NSE:INFY") | ((tod >= nse.open_ns) & (tod < nse.close_ns))
    day = (pl.when(pl.col("symbol") == "NSE:INFY").then(local - tod + nse.open_ns - offset).otherwise(pl.col("t") - pl.col("t") % DAY))
    want = (df.filter(inside).with_columns(day.alias("ts")).group_by("ts", "symbol", maintain_order=True).agg(
        pl.col("price").first().alias("open"), pl.col("price").max().alias("high"), pl.col("price").min().alias("low"),
        pl.col("price").last().alias("close"), pl.col("qty").sum().alias("volume"), pl.len().cast(pl.Int64).alias("trades"),
        ((pl.col("price") * pl.col("qty")).sum() / pl.col("qty").sum()).alias("vwap"))
        .with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC"))).sort("ts", "symbol"))
    assert_same_bars(got, want)
    nse_bars = got.filter(pl.col("symbol") == "NSE:INFY")["ts"].to_list()
    assert [t.strftime("%Y-%m-%d %H:%M") for t in nse_bars] == ["2024-06-03 03:45", "2024-06-04 03:45", "2024-06-05 03:45"]
    outside = df.filter(~inside).height
    assert outside > 0 and warnings == [f"{outside} trade(s) outside their symbol's trading session left out"]


def test_a_session_bar_closes_at_the_session_close():
    from sq.venues.registry import trading_session

    bs = BarStream({}, parse_interval("session"), session_of=trading_session)
    assert bs.process(market_rows([(ist_ns(3, 10, 0), "NSE:INFY", S.TRADE, 1, 1500.0, 1.0, 1)])) is None
    assert bs.process(market_rows([(ist_ns(3, 15, 29, 59), "NSE:INFY", S.LEVEL, 1, 1499.0, 1.0, 2)])) is None
    closed = pylist(bs.process(market_rows([(ist_ns(3, 15, 30), "NSE:INFY", S.LEVEL, 1, 1499.0, 1.0, 3)])))
    assert [r["ts"] for r in closed] == [ist_ns(3, 9, 15)]


def test_session_bars_of_symbols_without_a_session_table_are_utc_days():
    t = pa.Table.from_batches([market_rows([(DAY - SEC, "SIM:A", S.TRADE, 1, 1.0, 1.0, 1), (DAY + SEC, "SIM:A", S.TRADE, 1, 2.0, 1.0, 2)])])
    rows = pylist(run_bars(t, "session"))  # no session_of: every symbol trades the UTC day
    assert [(r["ts"], r["open"]) for r in rows] == [(0, 1.0), (DAY, 2.0)]
    assert UTC_DAY.open_ns == 0 and UTC_DAY.close_ns == DAY


# ---------------------------------------------------------------------------------------------
# where prices come from


def test_a_symbol_with_only_ticks_takes_their_last_prices_without_volume():
    t = market_rows([(1 * SEC, "NSE:INFY", S.TICK, 0, 1500.0, 3.0, 1), (2 * SEC, "NSE:INFY", S.TICK, 0, 1502.5, 3.0, 2),
                     (3 * SEC, "NSE:INFY", S.TICK, 0, 1499.0, 0.0, 3), (61 * SEC, "NSE:INFY", S.TICK, 0, 1501.0, 1.0, 4)])
    rows = pylist(run_bars(pa.Table.from_batches([t]), "1m"))
    assert rows == [
        dict(ts=0, symbol="NSE:INFY", open=1500.0, high=1502.5, low=1499.0, close=1499.0, volume=0.0, trades=None, vwap=None, oi=None),
        dict(ts=60 * SEC, symbol="NSE:INFY", open=1501.0, high=1501.0, low=1501.0, close=1501.0, volume=0.0, trades=None, vwap=None, oi=None),
    ]


def test_trades_take_over_from_ticks():
    """Ticks until a symbol's first trade (a Zerodha stream's first packet has no derived trade);
    then trades: the bar the ticks opened is made from trades, bars already written stay tick
    bars, and later ticks (which repeat the trades' last price) are ignored without a warning."""
    t = market_rows([(1 * SEC, "SIM:A", S.TRADE, 1, 10.0, 2.0, 1), (2 * SEC, "SIM:A", S.TICK, 0, 99.0, 0.0, 2),
                     (3 * SEC, "SIM:B", S.TICK, 0, 20.0, 0.0, 3), (4 * SEC, "SIM:B", S.TRADE, 1, 99.0, 5.0, 4),
                     (5 * SEC, "SIM:B", S.TICK, 0, 1.0, 5.0, 5),
                     (6 * SEC, "SIM:C", S.TICK, 0, 30.0, 0.0, 6), (61 * SEC, "SIM:C", S.TRADE, -1, 31.0, 3.0, 7),
                     (62 * SEC, "SIM:C", S.TICK, 0, 31.0, 3.0, 7)])
    want = {"1m": [("SIM:A", 0, 10.0, 10.0, 2.0, 1), ("SIM:B", 0, 99.0, 99.0, 5.0, 1),
                   ("SIM:C", 0, 30.0, 30.0, 0.0, None), ("SIM:C", 60 * SEC, 31.0, 31.0, 3.0, 1)],
            # tick bars: SIM:C's bar of one tick was still open at its first trade, so it is dropped
            "2t": [("SIM:A", 1 * SEC, 10.0, 10.0, 2.0, 1), ("SIM:B", 4 * SEC, 99.0, 99.0, 5.0, 1), ("SIM:C", 61 * SEC, 31.0, 31.0, 3.0, 1)]}
    for interval, bars in want.items():
        warnings: list[str] = []
        rows = pylist(run_bars(pa.Table.from_batches([t]), interval, warnings=warnings))
        assert sorted((r["symbol"], r["ts"], r["open"], r["low"], r["volume"], r["trades"]) for r in rows) == bars, interval
        assert warnings == []


def test_a_symbol_with_book_levels_only_follows_its_mid_and_comes_last():
    rows = [(1 * SEC, "SIM:B", S.TRADE, 1, 50.0, 1.0, 1),
            (1 * SEC, "SIM:A", S.LEVEL, 1, 99.0, 1.0, 2), (1 * SEC, "SIM:A", S.LEVEL, -1, 101.0, 1.0, 2),  # mid 100
            (2 * SEC, "SIM:A", S.LEVEL, 1, 99.5, 1.0, 3),  # mid 100.25
            (3 * SEC, "SIM:A", S.LEVEL, 1, 99.5, 4.0, 4),  # qty only: the mid does not change
            (4 * SEC, "SIM:A", S.LEVEL, -1, 100.5, 1.0, 5),  # mid 100
            (70 * SEC, "SIM:A", S.LEVEL, 1, 99.5, 0.0, 6),  # the best bid goes: mid (99 + 100.5) / 2
            (71 * SEC, "SIM:B", S.TRADE, 1, 51.0, 1.0, 7)]
    table = pa.Table.from_batches([market_rows(rows, ["SIM:A", "SIM:B"])])
    for cuts in ((), (2,), (3, 5)):
        warnings: list[str] = []
        got = pylist(run_bars(table, "1m", cuts, warnings=warnings))
        assert warnings == ["SIM:A: no trades or ticks; bars follow the mid price (volume 0)"]
        assert [(r["ts"], r["symbol"], r["open"], r["high"], r["low"], r["close"], r["volume"], r["trades"]) for r in got] == [
            (0, "SIM:B", 50.0, 50.0, 50.0, 50.0, 1.0, 1), (60 * SEC, "SIM:B", 51.0, 51.0, 51.0, 51.0, 1.0, 1),
            (0, "SIM:A", 100.0, 100.25, 100.0, 100.0, 0.0, None), (60 * SEC, "SIM:A", 99.75, 99.75, 99.75, 99.75, 0.0, None)]


def test_book_levels_before_a_symbols_first_trade_leave_no_mid_bars():
    rows = [(1 * SEC, "SIM:A", S.LEVEL, 1, 99.0, 1.0, 1), (1 * SEC, "SIM:A", S.LEVEL, -1, 101.0, 1.0, 1),
            (90 * SEC, "SIM:A", S.TRADE, 1, 101.0, 1.0, 2)]
    got = pylist(run_bars(pa.Table.from_batches([market_rows(rows)]), "1m"))
    assert [(r["ts"], r["close"], r["trades"]) for r in got] == [(60 * SEC, 101.0, 1)]


def test_a_trade_in_a_bar_that_already_closed_is_left_out_and_counted():
    rows = [(10 * SEC, "SIM:A", S.TRADE, 1, 1.0, 1.0, 1), (65 * SEC, "SIM:B", S.TRADE, 1, 2.0, 1.0, 2),
            (59 * SEC, "SIM:A", S.TRADE, 1, 3.0, 1.0, 3), (66 * SEC, "SIM:A", S.TRADE, 1, 4.0, 1.0, 4)]
    warnings: list[str] = []
    got = pylist(run_bars(pa.Table.from_batches([market_rows(rows)]), "1m", warnings=warnings))
    assert [(r["ts"], r["symbol"], r["close"], r["volume"]) for r in got] == [(0, "SIM:A", 1.0, 1.0), (60 * SEC, "SIM:A", 4.0, 1.0),
                                                                             (60 * SEC, "SIM:B", 2.0, 1.0)]
    assert warnings == ["1 trade(s) came after their bar had begun or closed (timestamps went backwards; first at row 2); left out"]


def test_volume_bars_skip_tick_only_symbols():
    rows = [(1 * SEC, "NSE:INFY", S.TICK, 0, 1500.0, 5.0, 1), (2 * SEC, "SIM:A", S.TRADE, 1, 1.0, 5.0, 2)]
    warnings: list[str] = []
    got = pylist(run_bars(pa.Table.from_batches([market_rows(rows)]), "10v", warnings=warnings))
    assert [r["symbol"] for r in got] == ["SIM:A"]
    assert warnings == ["1 tick row(s) carry no traded volume; volume bars count trades only"]


# ---------------------------------------------------------------------------------------------
# the grammar and bad input


@pytest.mark.parametrize("text,mode,size", [
    ("1s", BAR_TIME, SEC), ("5s", BAR_TIME, 5 * SEC), ("1m", BAR_TIME, MIN), ("15m", BAR_TIME, 15 * MIN), ("4h", BAR_TIME, 4 * 60 * MIN),
    ("1d", BAR_TIME, DAY), ("90s", BAR_TIME, 90 * SEC), ("session", BAR_SESSION, 0), ("500t", BAR_TICKS, 500),
    ("100v", BAR_VOLUME, 100), ("0.5v", BAR_VOLUME, 0.5), (" 1M ", BAR_TIME, MIN),
])
def test_intervals(text, mode, size):
    spec = parse_interval(text)
    assert (spec.mode, spec.size) == (mode, size)


@pytest.mark.parametrize("text,needle", [("7x", "unknown bar interval '7x'"), ("0m", "is zero"), ("0t", "is zero"), ("0v", "is zero"),
                                         ("0.0v", "is zero"), ("1.5t", "whole trades"), ("", "unknown bar interval"), ("m", "unknown"),
                                         ("-1m", "unknown"), ("1mo", "unknown"), ("4000d", "longer than 3660 days"),
                                         ("2000000000000000t", "larger than")])
def test_bad_intervals_are_usage_errors(text, needle):
    with pytest.raises(UsageError, match=needle):
        parse_interval(text)


@pytest.mark.parametrize("price,qty,what", [(float("nan"), 1.0, "trade price nan"), (-1.0, 1.0, "trade price -1.0"),
                                            (1.0, float("inf"), "trade qty inf"), (1.0, -2.0, "trade qty -2.0")])
def test_bad_trades_are_data_errors_naming_the_row(price, qty, what):
    rows = [(1 * SEC, "SIM:A", S.TRADE, 1, 1.0, 1.0, 1), (2 * SEC, "SIM:A", S.TRADE, 1, price, qty, 2)]
    with pytest.raises(DataError, match=f"row 1 \\(SIM:A\\): {what} is not a finite non-negative number"):
        run_bars(pa.Table.from_batches([market_rows(rows)]), "1m")


def test_a_trade_that_would_fill_millions_of_volume_bars_is_a_data_error():
    t = market_rows([(1 * SEC, "SIM:A", S.TRADE, 1, 1.0, 1e12, 1)])
    with pytest.raises(DataError, match="rows 0..0: their trades fill more than 10,000,000 volume bars of 1v; choose a larger bar volume"):
        run_bars(pa.Table.from_batches([t]), "1v")


def test_unknown_kinds_are_data_errors():
    with pytest.raises(DataError, match="unknown event kind 9"):
        run_bars(pa.Table.from_batches([market_rows([(1, "SIM:A", 9, 1, 1.0, 1.0, 1)])]), "1m")
