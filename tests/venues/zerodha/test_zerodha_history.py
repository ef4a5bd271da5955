"""Zerodha's historical candles (sq.venues.zerodha.history) against the Kite fake: rows exactly as
in Kite's official answers (fixtures/vectors/kite/historical_*.json), one bars table per IST date,
ranges split at Kite's per-interval limits, 3 requests a second, the oi/continuous flags, holidays
reported, bad input refused before any request, and Kite's refusals mapped to sq's exit codes."""

from __future__ import annotations

import datetime as dt
import io
import json
import urllib.error
import urllib.request

import pytest

from sq.core.config import Secret, load_config
from sq.core.environment import Environment
from sq.core.exits import AuthError, DataError, TempFailure, UsageError, VenueUnavailable
from sq.core.schemas import BARS_FIELDS, Instrument, bars_interval, bars_schema, schema_instruments, stream_kind
from sq.venues.zerodha import history
from sq.venues.zerodha.candles import candles_table
from sq.venues.zerodha.ratelimit import KiteLimits
from sq.venues.zerodha.session import IST, Session, save_session
from tests.support.fakes.kite import KITE_VECTORS
from tests.support.fakes.kite import history as fake_history
from tests.support.marketdata import pylist

HISTORICAL = "/instruments/historical/"
RELIANCE, NIFTY_FUT = "NSE:RELIANCE", "NFO:NIFTY25DECFUT"


@pytest.fixture
def kite(kite_env, monkeypatch):
    """The Kite fake with a valid access token configured (as after `sq auth zerodha`)."""
    monkeypatch.setenv("ZKITE_ACCESS_TOKEN", kite_env.issue_token())
    return kite_env


def open_client(symbols=(RELIANCE,), *, kind="candles", interval="minute", stderr=None, **kw):
    env = Environment(stderr=stderr or io.StringIO())
    return history.open_history(load_config(), env, symbols=list(symbols), kind=kind, interval=interval, **kw)


def fetch_all(client, symbol, days) -> list:
    try:
        return list(client.fetch(symbol, days))
    finally:
        client.close()


def vector(name: str) -> list[list]:
    return json.loads((KITE_VECTORS / f"{name}.json").read_text())["data"]["candles"]


def utc_ns(kite_time: str) -> int:
    """Kite's `2017-12-15T09:15:00+0530` as ns since the epoch, by the standard library."""
    return int(dt.datetime.strptime(kite_time, "%Y-%m-%dT%H:%M:%S%z").timestamp()) * 1_000_000_000


def expected_rows(symbol: str, candles: list[list], *, oi: bool) -> list[dict]:
    return [{"ts": utc_ns(c[0]), "symbol": symbol, "open": c[1], "high": c[2], "low": c[3], "close": c[4], "volume": c[5],
             "trades": None, "vwap": None, "oi": c[6] if oi else None} for c in candles]


def historical(fake) -> list[dict]:
    return [e for e in fake.historical if e["status"] == 200]


def reached(fake) -> list[str]:
    return [p for _, p in fake.requests]


def span(entry: dict) -> int:
    """Calendar days one request covers, both ends included."""
    first = dt.datetime.strptime(entry["from"], history.KITE_TIME).date()
    last = dt.datetime.strptime(entry["to"], history.KITE_TIME).date()
    return (last - first).days + 1


# ---------------------------------------------------------------- rows exactly as Kite sent them


def test_minute_rows_are_the_official_candles_exactly(kite):
    results = fetch_all(open_client(), RELIANCE, [dt.date(2017, 12, 15)])
    assert [(r.day, r.note) for r in results] == [(dt.date(2017, 12, 15), "")]
    table = results[0].table
    assert pylist(table) == expected_rows(RELIANCE, vector("historical_minute"), oi=False)
    assert table.schema.names == [f.name for f in BARS_FIELDS]
    assert stream_kind(table.schema) == "bars" and bars_interval(table.schema) == "1m"
    inst = schema_instruments(table.schema)[RELIANCE]
    assert (inst.venue, inst.tick_size, inst.lot_size) == ("zerodha", 0.05, 1.0)
    [req] = kite.historical
    assert (req["token"], req["interval"], req["from"], req["to"], req["continuous"], req["oi"]) == (
        738561, "minute", "2017-12-15 00:00:00", "2017-12-15 23:59:59", "0", "0")
    assert results[0].source == "kite:/instruments/historical/738561/minute" and results[0].bytes > 0


def test_oi_rows_are_the_official_candles_exactly(kite):
    results = fetch_all(open_client([NIFTY_FUT], oi=True), NIFTY_FUT, [dt.date(2019, 12, 4)])
    table = results[0].table
    assert pylist(table) == expected_rows(NIFTY_FUT, vector("historical_oi"), oi=True)
    inst = schema_instruments(table.schema)[NIFTY_FUT]
    assert (inst.tick_size, inst.lot_size) == (0.1, 75.0)
    assert kite.historical[0]["oi"] == "1"
    # without --oi Kite sends no OI and the column stays null
    again = fetch_all(open_client([NIFTY_FUT]), NIFTY_FUT, [dt.date(2019, 12, 4)])
    assert pylist(again[0].table) == expected_rows(NIFTY_FUT, vector("historical_oi"), oi=False)
    assert kite.historical[-1]["oi"] == "0"


def test_day_candles_belong_to_their_ist_date(kite):
    """A day candle is stamped 00:00 IST, i.e. 18:30 UTC the day before: it still belongs to its
    IST date. `1d` is accepted for Kite's `day`."""
    days = history.calendar(dt.date(2019, 12, 2), dt.date(2019, 12, 8))
    results = fetch_all(open_client([NIFTY_FUT], interval="1d", oi=True), NIFTY_FUT, days)
    assert [r.day for r in results] == [dt.date(2019, 12, d) for d in (2, 3, 4, 5, 6)]
    template = fake_history.template_of(kite, 13238786)
    for r in results:
        want = fake_history.candles(template, "day", r.day, with_oi=True)
        assert pylist(r.table) == expected_rows(NIFTY_FUT, want, oi=True)
        [row] = pylist(r.table)
        assert row["ts"] == utc_ns(f"{r.day.isoformat()}T00:00:00+0530")
        assert bars_interval(r.table.schema) == "1d"
    # the mock's own date: the day candle aggregates exactly the official minute candles
    mock = vector("historical_oi")
    [row] = pylist(results[2].table)
    assert (row["open"], row["high"], row["low"], row["close"], row["volume"], row["oi"]) == (
        mock[0][1], max(c[2] for c in mock), min(c[3] for c in mock), mock[-1][4], sum(c[5] for c in mock), mock[-1][6])
    assert len(kite.historical) == 1 and kite.historical[0]["interval"] == "day"


def test_candles_out_of_order_are_sorted_and_malformed_ones_refused():
    schema = bars_schema({RELIANCE: Instrument(RELIANCE, "zerodha", 0.05)}, "1m")
    mock = vector("historical_minute")
    table = candles_table(mock[::-1], RELIANCE, schema, oi=False, what="test")
    assert pylist(table) == expected_rows(RELIANCE, mock, oi=False)
    for bad in ([mock[0][:4]], [["15/12/2017 09:15", *mock[0][1:]]], [[mock[0][0], "x", *mock[0][2:]]], [mock[0], mock[1][:5]]):
        with pytest.raises(DataError) as e:
            candles_table(bad, RELIANCE, schema, oi=False, what="NSE:RELIANCE minute 2017-12-15..2017-12-15")
        assert e.value.status == 65 and "NSE:RELIANCE minute 2017-12-15" in e.value.message


# ---------------------------------------------------------------- ranges and the rate limit


@pytest.mark.parametrize("interval,start,end,requests", [
    ("minute", dt.date(2017, 12, 1), dt.date(2018, 4, 29), 3),   # 150 calendar days, 60 a request
    ("3minute", dt.date(2017, 12, 1), dt.date(2018, 4, 29), 2),  # 100 a request
    ("15minute", dt.date(2017, 1, 2), dt.date(2017, 7, 20), 1),  # exactly 200 days: one request
    ("15minute", dt.date(2017, 1, 2), dt.date(2017, 7, 21), 2),  # one day more: two
    ("60minute", dt.date(2016, 11, 28), dt.date(2018, 1, 3), 2),  # 402 days, 400 a request
])
def test_a_long_range_is_split_at_kites_limit(kite, interval, start, end, requests):
    days = history.calendar(start, end)
    results = fetch_all(open_client(interval=interval), RELIANCE, days)
    assert [r.day for r in results] == days
    reqs = historical(kite)
    assert len(reqs) == len(kite.historical) == requests
    assert all(span(e) <= history.MAX_DAYS[interval] for e in reqs)
    # the requests cover the asked days without overlap, in order
    assert reqs[0]["from"] == f"{days[0]} 00:00:00" and reqs[-1]["to"] == f"{days[-1]} 23:59:59"
    for a, b in zip(reqs, reqs[1:]):
        assert a["to"] < b["from"]
    template = fake_history.template_of(kite, 738561)
    for r in results[:3] + results[-3:]:
        assert pylist(r.table) == expected_rows(RELIANCE, fake_history.candles(template, interval, r.day, with_oi=False), oi=False)
    assert sum(r.bytes for r in results) > 0 and kite.throttled == 0


def test_the_fake_refuses_a_range_longer_than_kite_allows(kite):
    """Kite's answer to a too-long range, which the client never provokes (above)."""
    url = f"{kite.root}{HISTORICAL}738561/minute?from=2017-10-01+00:00:00&to=2017-11-30+23:59:59&continuous=0&oi=0"
    req = urllib.request.Request(url, headers={"X-Kite-Version": "3", "Authorization": f"token {kite.api_key}:{kite.issue_token()}"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 400
    assert json.loads(e.value.read()) == {"status": "error", "message": "interval exceeds max limit: 60 days", "data": None,
                                          "error_type": "InputException"}


def sparse_days(n: int) -> list[dt.date]:
    """`n` Mondays 63 days apart: one request each at the minute interval."""
    return [dt.date(2017, 1, 2) + dt.timedelta(days=63 * i) for i in range(n)]


def busiest_second(fake) -> int:
    times = sorted(e["at"] for e in fake.historical)
    return max(sum(1 for u in times if t <= u < t + 1.0) for t in times)


def test_requests_keep_to_three_a_second(kite):
    days = sparse_days(7)
    results = fetch_all(open_client(), RELIANCE, days)
    assert [r.table.num_rows for r in results] == [375] * 7
    assert len(kite.historical) == 7 and kite.throttled == 0
    assert busiest_second(kite) <= 3


class Unpaced(KiteLimits):
    """Limits that never wait: what a client ignoring Kite's historical rate would send."""

    def history(self) -> None:
        return None


def test_the_fake_answers_429_beyond_three_a_second_and_the_client_asks_again(kite):
    err = io.StringIO()
    results = fetch_all(open_client(limits=Unpaced(), stderr=err, backoff_s=0.4), RELIANCE, sparse_days(6))
    assert [r.table.num_rows for r in results] == [375] * 6
    statuses = [e["status"] for e in kite.historical]
    assert statuses.count(200) == 6 and statuses.count(429) == kite.throttled >= 1
    assert "zerodha: Kite rate-limited the request for NSE:RELIANCE minute" in err.getvalue()


def test_a_429_that_persists_is_75_and_a_dead_backend_69(kite):
    client = open_client(retries=2, backoff_s=0.01)
    kite.forced = [(429, "NetworkException", "Too many requests")] * 3
    with pytest.raises(TempFailure) as e:
        fetch_all(client, RELIANCE, [dt.date(2017, 12, 15)])
    assert e.value.status == 75 and "rate limited" in e.value.message
    assert sum(p.startswith(HISTORICAL) for p in reached(kite)) == 3 and not kite.forced
    client = open_client(retries=2, backoff_s=0.01)
    kite.forced = [(503, "NetworkException", "Service unavailable")] * 3
    with pytest.raises(VenueUnavailable) as e:
        fetch_all(client, RELIANCE, [dt.date(2017, 12, 15)])
    assert e.value.status == 69 and not kite.forced
    # one refusal, then an answer: asked again, nothing lost
    client = open_client(retries=2, backoff_s=0.01)
    kite.forced = [(503, "NetworkException", "Service unavailable")]
    results = fetch_all(client, RELIANCE, [dt.date(2017, 12, 15)])
    assert pylist(results[0].table) == expected_rows(RELIANCE, vector("historical_minute"), oi=False)


# ---------------------------------------------------------------- flags, holidays, unfinished days


def test_continuous_and_oi_reach_kite(kite):
    results = fetch_all(open_client([NIFTY_FUT], interval="day", oi=True, continuous=True), NIFTY_FUT,
                        history.calendar(dt.date(2025, 11, 24), dt.date(2025, 11, 28)))
    assert [r.table.num_rows for r in results] == [1] * 5
    [req] = kite.historical
    assert (req["continuous"], req["oi"], req["interval"]) == ("1", "1", "day")


def test_a_weekday_holiday_is_reported_not_failed(kite):
    kite.holidays = {dt.date(2017, 12, 25)}  # Christmas, an NSE holiday, was a Monday
    days = history.calendar(dt.date(2017, 12, 22), dt.date(2017, 12, 26))
    assert days == [dt.date(2017, 12, 22), dt.date(2017, 12, 25), dt.date(2017, 12, 26)]
    results = fetch_all(open_client(), RELIANCE, days)
    assert [(r.day, r.table is None, r.note) for r in results] == [
        (dt.date(2017, 12, 22), False, ""), (dt.date(2017, 12, 25), True, "no candles (holiday?)"),
        (dt.date(2017, 12, 26), False, "")]
    assert [r.table.num_rows for r in results if r.table is not None] == [375, 375]
    assert len(kite.historical) == 1


def test_a_day_not_over_in_ist_is_not_fetched(kite):
    noon = dt.datetime(2017, 12, 15, 12, 0, tzinfo=IST)
    results = fetch_all(open_client(clock=lambda: noon), RELIANCE, [dt.date(2017, 12, 14), dt.date(2017, 12, 15)])
    assert [(r.day, r.table is None) for r in results] == [(dt.date(2017, 12, 14), False), (dt.date(2017, 12, 15), True)]
    assert "not over" in results[1].note
    [req] = kite.historical
    assert req["to"] == "2017-12-14 23:59:59"


def test_calendar_is_the_weekdays():
    assert history.calendar(dt.date(2017, 12, 15), dt.date(2017, 12, 18)) == [dt.date(2017, 12, 15), dt.date(2017, 12, 18)]
    assert history.calendar(dt.date(2017, 12, 16), dt.date(2017, 12, 17)) == []
    assert history.KINDS == {"candles": "bars"}
    assert history.INTERVALS == ("minute", "3minute", "5minute", "10minute", "15minute", "30minute", "60minute", "day")


# ---------------------------------------------------------------- bad input, before any request


@pytest.mark.parametrize("kw,words", [
    ({"interval": "2minute"}, ["'2minute'", "minute, 3minute"]),
    ({"interval": None}, ["need an interval"]),
    ({"kind": "trades"}, ["'trades'", "candles"]),
    ({"continuous": True, "interval": "day"}, ["--continuous", "NFO and MCX futures", "NSE:RELIANCE"]),
    ({"continuous": True, "interval": "minute", "symbols": [NIFTY_FUT]}, ["--continuous", "day"]),
    ({"continuous": True, "interval": "day", "symbols": ["CDS:USDINR25DECFUT"]}, ["--continuous", "CDS"]),
])
def test_bad_input_is_a_usage_error_before_any_request(kite, kw, words):
    with pytest.raises(UsageError) as e:
        open_client(**kw)
    assert e.value.status == 2 and all(w in e.value.message for w in words), e.value.message
    assert kite.requests == []


def test_start_after_end_is_a_usage_error():
    with pytest.raises(UsageError) as e:
        history.calendar(dt.date(2018, 1, 2), dt.date(2018, 1, 1))
    assert e.value.status == 2 and "2018-01-02" in e.value.message and "2018-01-01" in e.value.message


@pytest.mark.parametrize("kw,words", [
    ({"symbols": ["NSE:RELIANCEX"]}, ["unknown Zerodha symbol", "NSE:RELIANCEX", "NSE:RELIANCE"]),
    ({"symbols": ["NFO:BANKNIFTY18JAN23500CE"], "continuous": True, "interval": "day"}, ["--continuous", "CE"]),
])
def test_symbols_are_checked_against_the_dump_before_any_historical_request(kite, kw, words):
    if "NFO:BANKNIFTY18JAN23500CE" in kw["symbols"]:
        assert "NFO:BANKNIFTY18JAN23500CE" in kite.rows  # an option of the official dump
    with pytest.raises(UsageError) as e:
        open_client(**kw)
    assert all(w in e.value.message for w in words), e.value.message
    assert reached(kite) == ["/instruments"]


def test_a_symbol_not_opened_is_refused(kite):
    client = open_client()
    with pytest.raises(UsageError) as e:
        fetch_all(client, "NSE:INFY", [dt.date(2017, 12, 15)])
    assert "NSE:INFY" in e.value.message and kite.historical == []


# ---------------------------------------------------------------- the session


def test_an_expired_session_is_77_before_any_request(kite_env):
    z = load_config().zerodha
    past = dt.datetime.now(IST) - dt.timedelta(hours=1)
    save_session(Session(z.api_key, "XX0000", "x", Secret("tok"), past.isoformat(), past.isoformat()))
    with pytest.raises(AuthError) as e:
        open_client()
    assert e.value.status == 77 and "expired" in e.value.message and "run sq auth zerodha" in e.value.message
    assert kite_env.requests == []


def test_a_token_kite_refuses_is_77_without_a_chained_traceback(kite):
    client = open_client()
    kite.expire_tokens()
    with pytest.raises(AuthError) as e:
        fetch_all(client, RELIANCE, [dt.date(2017, 12, 15)])
    assert e.value.status == 77 and "run sq auth zerodha" in e.value.message
    assert e.value.__cause__ is None and e.value.__suppress_context__
    assert sum(p.startswith(HISTORICAL) for p in reached(kite)) == 1  # a refused token is not asked again
