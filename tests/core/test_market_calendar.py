"""Market calendars (docs/market-rules.md): the hours window of each local day, the venues'
calendars through the registry, and the engine applying them — identical however its input is
cut into batches, and across a snapshot and restore."""

from __future__ import annotations

import datetime as dt

import pytest

from sq.core import schemas as S
from sq.core.config import Config, parse_config
from sq.core.engine import Engine, FillModelConfig
from sq.core.engine import calendars as C
from sq.core.engine import layout as L
from sq.core.journal import rows_from_batch
from sq.core.sessions import MarketCalendar, TradingSession
from tests.support.marketdata import BUYER_STRATEGY, ist_ns, market_table, quoted_minutes

IST = dt.timedelta(hours=5, minutes=30)
NSE = MarketCalendar(TradingSession(dt.time(9, 15), dt.time(15, 30), IST, "IST"), frozenset({dt.date(2026, 1, 26)}),
                     frozenset({2026}), square_off=dt.time(15, 20))
H = 3_600_000_000_000


def day(date: str) -> int:
    return (dt.date.fromisoformat(date) - dt.date(1970, 1, 1)).days


def test_the_window_of_each_local_day():
    friday, monday, saturday = day("2026-01-23"), day("2026-01-26"), day("2026-01-24")
    # 09:15–15:20 IST (the square-off ends entries) is 03:45–09:50 UTC
    assert C.window(NSE, True, friday) == (3 * H + 45 * 60 * 10**9, 9 * H + 50 * 60 * 10**9)
    assert C.window(NSE, True, monday) == (L.HOURS_HOLIDAY, 0)
    assert C.window(NSE, True, saturday) == (0, 0)  # empty: every order outside the hours
    no_square = MarketCalendar(NSE.session, NSE.holidays, NSE.years)
    assert C.window(no_square, True, friday)[1] == 10 * H  # 15:30 IST
    # hours off: only the square-off, from local midnight (18:30 UTC the day before), on trading days
    assert C.window(NSE, False, friday) == (18 * H + 30 * 60 * 10**9, 9 * H + 50 * 60 * 10**9)
    assert C.window(NSE, False, monday) == C.window(no_square, False, friday) == (L.HOURS_NONE, 0)
    assert NSE.square_off_earlier(1).square_off == dt.time(15, 19)


def test_venues_say_each_markets_calendar():
    from sq.venues import registry

    nse = registry.market_calendar("NSE:INFY")
    assert nse.session == registry.trading_session("NSE:INFY") and nse.square_off == dt.time(15, 20)
    assert {dt.date(2026, 1, 26), dt.date(2025, 10, 21), dt.date(2026, 12, 25)} <= nse.holidays and nse.years >= {2025, 2026}
    assert registry.market_calendar("NFO:NIFTY26JANFUT").square_off == dt.time(15, 25)
    assert registry.market_calendar("BSE:INFY").holidays == nse.holidays
    assert registry.market_calendar("NSE:INFY", parse_config({"zerodha": {"product": "CNC"}})).square_off is None
    assert registry.market_calendar("NSE:INFY", parse_config({"zerodha": {"square_off": False}})).square_off is None
    for symbol in ("MCX:CRUDEOIL", "CDS:USDINR26JANFUT", "BINANCE:BTCUSDT", "SIM:DEMO", "FOREIGN"):
        assert registry.market_calendar(symbol) is None


def test_a_holidays_file_replaces_only_its_years(tmp_path):
    from sq.venues import registry

    p = tmp_path / "h.csv"
    p.write_text("date,exchanges,description\n2027-01-26,NSE,Republic Day\n2026-02-02,NSE NFO,made up\n")
    cal = registry.market_calendar("NSE:INFY", parse_config({"zerodha": {"holidays_file": str(p)}}))
    assert dt.date(2027, 1, 26) in cal.holidays and 2027 in cal.years
    assert dt.date(2026, 2, 2) in cal.holidays and dt.date(2026, 1, 26) not in cal.holidays  # 2026 is the file's
    assert dt.date(2025, 3, 14) in cal.holidays  # 2025 is still sq's
    assert dt.date(2027, 1, 26) not in registry.market_calendar("BSE:INFY", parse_config({"zerodha": {"holidays_file": str(p)}})).holidays


# ---------------------------------------------------------------------------------------------- in the engine

SYM, LATER = "NSE:ABC", "NSE:XYZ"  # LATER first appears on the Tuesday, in the middle of the input
INST = {SYM: S.Instrument(SYM, "zerodha", 0.05, 1.0), LATER: S.Instrument(LATER, "zerodha", 0.05, 1.0)}
BUYER = BUYER_STRATEGY


@pytest.fixture(scope="module")
def buyer(tmp_path_factory):
    p = tmp_path_factory.mktemp("cal") / "buyer.py"
    p.write_text(BUYER)
    return str(p)


@pytest.fixture(scope="module")
def market():
    rows = (quoted_minutes(SYM, "2026-01-23", "15:10", 15, bid=100.0, ask=100.1, seq0=1)
            + quoted_minutes(SYM, "2026-01-26", "10:00", 3, bid=100.0, ask=100.1, seq0=100)
            + quoted_minutes(SYM, "2026-01-27", "10:00", 3, bid=100.0, ask=100.1, seq0=200)
            + quoted_minutes(LATER, "2026-01-27", "10:00:30", 3, bid=50.0, ask=50.05, seq0=300))
    return market_table(sorted(rows, key=lambda r: (r[0], r[6])), INST)


def engine(buyer, calendar=NSE):
    e = Engine(buyer, INST, {SYM: {"max_position": 3.0}, LATER: {"max_position": 3.0}}, config=Config(),
               fill=FillModelConfig(order_latency_ns=5_000_000))
    if calendar is not None:
        for name in INST:
            e.set_calendar(name, calendar)
    return e


def journal(outs):
    orders, fills = [], []
    for out in outs:
        orders += rows_from_batch(out.orders)
        fills += rows_from_batch(out.fills)
    return orders, fills


def test_the_engine_applies_the_calendar_however_the_input_is_cut(buyer, market):
    whole = engine(buyer)
    ref = journal([whole.process(b) for b in market.to_batches()] + [whole.finish()])
    assert whole.rejections() == {"trading_hours": 4, "holiday": 3}
    assert [o["reason"] for o in ref[0] if o["event"] == "new"].count("square_off") == 1
    assert {o["symbol"] for o in ref[1]} == {SYM, LATER}
    for size in (1, 2, 7):
        e = engine(buyer)
        got = journal([e.process(b) for b in market.to_batches(max_chunksize=size)] + [e.finish()])
        assert got == ref, size
    plain = engine(buyer, None)
    journal([plain.process(b) for b in market.to_batches()] + [plain.finish()])
    assert plain.rejections() == {}  # no calendar: nothing of the above


def test_a_restored_engine_continues_the_calendar(buyer, market):
    """A snapshot taken after the cut-off (and one before it) restores into an engine that goes
    on exactly as the uninterrupted one: same orders and fills, no second square-off."""
    batches = market.to_batches(max_chunksize=3)
    whole = engine(buyer)
    ref = journal([whole.process(b) for b in batches] + [whole.finish()])
    cut = ist_ns("2026-01-23", "15:20")
    for k in range(1, len(batches)):
        first = engine(buyer)
        head = [first.process(b) for b in batches[:k]]
        state = first.snapshot_state()
        second = engine(buyer)
        second.restore_state(state)
        assert journal(head + [second.process(b) for b in batches[k:]] + [second.finish()]) == ref, k
    assert any(o["ts"] == cut and o["reason"] == "square_off" for o in ref[0])


def test_advance_squares_off_on_the_clock_without_market_data(buyer, market):
    """A live run between ticks (`Engine.advance`): the cut-off passes on a quiet market and the
    position is flattened at once, at the cut-off."""
    e = engine(buyer)
    before = market.filter(market.column("ts").cast("int64").to_numpy() < ist_ns("2026-01-23", "15:19"))
    for b in before.to_batches():
        e.process(b)
    assert e.positions()[SYM]["position"] == 3.0
    assert not rows_from_batch(e.advance(ist_ns("2026-01-23", "15:19:59")).orders)
    rows = rows_from_batch(e.advance(ist_ns("2026-01-23", "15:20:01")).orders)
    assert [(r["event"], r["reason"], r["side"], r["qty"], r["ts"]) for r in rows] == \
        [("new", "square_off", -1, 3.0, ist_ns("2026-01-23", "15:20"))]
    assert e.si[0, L.SI_SQ] == 1


def test_live_squares_off_a_minute_before_the_broker():
    from sq.runs import marketrules

    class Recorder:
        def __init__(self):
            self.calendars, self.circuits, self.costs = {}, {}, {}

        def set_costs(self, name, schedule):
            self.costs[name] = schedule.label

        def set_calendar(self, name, calendar, *, hours):
            self.calendars[name] = (calendar.square_off, hours)

        def set_circuit_limits(self, name, low, high):
            self.circuits[name] = (low, high)

    inst = {"NSE:ABC": S.Instrument("NSE:ABC", "zerodha", 0.05, 1.0, {"lower_circuit_limit": 90.0, "upper_circuit_limit": 110.0}),
            "NFO:XYZ": S.Instrument("NFO:XYZ", "zerodha", 0.05, 1.0), "SIM:DEMO": S.Instrument("SIM:DEMO", "sim", 0.01)}
    live, paper = Recorder(), Recorder()
    marketrules.apply(live, inst, Config(), live=True)
    marketrules.apply(paper, inst, Config())
    assert live.calendars == {"NSE:ABC": (dt.time(15, 19), True), "NFO:XYZ": (dt.time(15, 24), True)}
    assert paper.calendars == {"NSE:ABC": (dt.time(15, 20), True), "NFO:XYZ": (dt.time(15, 25), True)}
    assert live.circuits == paper.circuits == {"NSE:ABC": (90.0, 110.0)}
    assert live.costs == paper.costs == {"NSE:ABC": "Zerodha NSE equity intraday", "NFO:XYZ": "Zerodha NSE futures"}
