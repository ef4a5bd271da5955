"""Market calendars inside the engine: each symbol's trading-hours window, local day by local day,
and the moment of its broker's intraday square-off (docs/market-rules.md).

The kernels know one window per symbol (`SI_HOURS_OPEN`/`SI_HOURS_CLOSE`: a span of the UTC day,
or `HOURS_HOLIDAY`), checked by `risk.check`. `Calendars` rewrites that window whenever the
engine's clock enters a new local day of the symbol's market — the session, shortened to the
square-off when the symbol squares off; an empty window on a weekend; `HOURS_HOLIDAY` on an
exchange holiday — and reports the square-off when the clock reaches it. The engine calls
`roll` at those boundaries only (`next_ns`), splitting its input there, so the kernels stay
calendar-free and a batch boundary still changes nothing (a calendar attached when its symbol
first appears opens its first day at once: `fresh`).

A symbol's cost model (`sq.core.costs.CostSchedule`, docs/costs.md) rides on the same days: on
each local day the rates in force that date are written to its `SF_C_*` columns, so a rate that
changes on a date applies to trades from that date on. A symbol with rates but no calendar gets
one that enforces nothing (no hours, no square-off), only to know its days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable

from sq.core.costs import CostSchedule
from sq.core.engine import layout as L
from sq.core.sessions import NS_PER_DAY, MarketCalendar, TradingSession

NEVER = 2**63 - 1  # a boundary that never comes
AT_ONCE = -(2**63)  # a boundary already due (a calendar not yet applied)


@dataclass
class _Entry:
    """One symbol's calendar and where the engine stands in it."""

    calendar: MarketCalendar
    hours: bool  # enforce the session and the holidays (else only the square-off, if any)
    s: int = -1  # the engine's symbol id, once the symbol has state
    day: int = AT_ONCE  # the local day whose window is set
    cut_ns: int = NEVER  # today's square-off (UTC ns), until it is done
    next_day_ns: int = AT_ONCE  # the next local midnight (UTC ns)
    costs: CostSchedule | None = None  # the symbol's cost rates by trade date
    only_costs: bool = False  # the calendar is a stand-in that only tells the days of the costs


def window(calendar: MarketCalendar, hours: bool, day: int) -> tuple[int, int]:
    """(open, close) of the hours window of local day `day` as the risk check reads it: ns of the
    UTC day, `HOURS_NONE` (no window), or `HOURS_HOLIDAY`; an empty window when nothing trades."""
    closed = calendar.closed(day)
    cut = calendar.square_off_ns()
    if hours:
        if closed == "holiday":
            return L.HOURS_HOLIDAY, 0
        if closed:
            return 0, 0
        lo, hi = calendar.session.open_ns, calendar.session.close_ns
        if cut is not None:
            hi = min(hi, cut)
    else:
        if closed or cut is None:
            return L.HOURS_NONE, 0
        lo, hi = 0, cut  # only the square-off: no new orders after it
    if hi <= lo:
        return 0, 0
    if hi - lo >= NS_PER_DAY:
        return L.HOURS_NONE, 0
    off = calendar.session.offset_ns
    return (lo - off) % NS_PER_DAY, (hi - off) % NS_PER_DAY


class Calendars:
    """The market calendars of an engine's symbols, by name (a symbol gets its calendar when it
    first gets state, so the engine's symbol ids stay in the order of the data)."""

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}
        self.next_ns = NEVER  # the earliest boundary of a calendar in force
        self.fresh = False  # a calendar was just attached: its first day is still to open
        self._warned: set[int] = set()

    def add(self, name: str, calendar: MarketCalendar, hours: bool) -> None:
        old = self.entries.get(name)
        self.entries[name] = _Entry(calendar, bool(hours), costs=old.costs if old else None)

    def add_costs(self, name: str, schedule: CostSchedule) -> None:
        """The symbol's cost rates by trade date (its calendar, or a stand-in that enforces nothing)."""
        e = self.entries.get(name)
        if e is None:
            session = TradingSession(dt.time(0), dt.time(0), schedule.utc_offset)
            e = self.entries[name] = _Entry(MarketCalendar(session, weekend=frozenset()), False, only_costs=True)
        e.costs = schedule
        if e.s >= 0:  # already open: reopen today under the rates
            e.day, e.next_day_ns, e.cut_ns = AT_ONCE, AT_ONCE, NEVER
            self.fresh = True

    def attach(self, ids: Callable[[str], int | None], known: int) -> None:
        """Give each calendar whose symbol now has state (id below `known`) its symbol id; it is
        applied at the next `roll`."""
        for name, e in self.entries.items():
            if e.s < 0:
                s = ids(name)
                if s is not None and s < known:
                    e.s = s
                    e.day, e.next_day_ns, e.cut_ns = AT_ONCE, AT_ONCE, NEVER
                    self.fresh = True

    def roll(self, now: int, si: Any, warn: Callable[[str], None], *, fresh: bool = False, sf: Any = None) -> list[tuple[int, int]]:
        """Apply every boundary up to UTC instant `now` (with `fresh`: only open the first day of
        the calendars just attached): each symbol's window for the local day of `now`; returns
        the square-offs now due as (symbol id, when)."""
        due = []
        for name, e in self.entries.items():
            if e.s < 0 or (fresh and e.day != AT_ONCE):
                continue
            cal = e.calendar
            if now >= e.next_day_ns:
                day = cal.local_day(now)
                if day != e.day:
                    self._open_day(name, e, day, si, warn, sf)
            if now >= e.cut_ns:
                due.append((e.s, e.cut_ns))
                e.cut_ns = NEVER
        if fresh:
            self.fresh = False
        self._next()
        return due

    def _next(self) -> None:
        self.next_ns = min([min(e.next_day_ns, e.cut_ns) for e in self.entries.values() if e.s >= 0 and e.day != AT_ONCE] + [NEVER])

    def _open_day(self, name: str, e: _Entry, day: int, si: Any, warn: Callable[[str], None], sf: Any = None) -> None:
        cal = e.calendar
        e.day = day
        e.next_day_ns = cal.day_start_ns(day + 1)
        if e.costs is not None and sf is not None:
            sf[e.s, L.SF_C_ON] = 1.0
            sf[e.s, L.SF_C_ON + 1:L.SF_C_GST + 1] = e.costs.on(cal.date_of(day)).row()
        if e.only_costs:
            return
        lo, hi = window(cal, e.hours, day)
        si[e.s, L.SI_HOURS_OPEN] = lo
        si[e.s, L.SI_HOURS_CLOSE] = hi
        si[e.s, L.SI_SQ] = 0
        cut = cal.square_off_ns()
        e.cut_ns = cal.day_start_ns(day) + cut if cut is not None and cal.closed(day) is None else NEVER
        year = cal.date_of(day).year
        if e.hours and cal.years and not cal.covers(day) and year not in self._warned:
            self._warned.add(year)
            warn(f"{name}: no exchange holidays known for {year}; only weekends are closed (docs/market-rules.md)")

    def write_costs(self, sf: Any) -> None:
        """Write each symbol's rates of the day it stands in (a checkpoint of an sq without cost
        columns resumes with its rates at once, not at the next local day)."""
        for e in self.entries.values():
            if e.costs is not None and e.s >= 0 and e.day != AT_ONCE:
                sf[e.s, L.SF_C_ON] = 1.0
                sf[e.s, L.SF_C_ON + 1:L.SF_C_GST + 1] = e.costs.on(e.calendar.date_of(e.day)).row()

    # -- resume
    def snapshot(self) -> dict[str, list[int]]:
        """Where each symbol stands (plain ints, by name)."""
        return {name: [e.day, e.cut_ns, e.next_day_ns] for name, e in self.entries.items() if e.s >= 0}

    def restore(self, state: dict[str, list[int]], ids: Callable[[str], int | None], known: int) -> None:
        """Continue from `snapshot()` output (the engine's symbols restored first)."""
        for e in self.entries.values():
            e.s = -1
        self.attach(ids, known)
        for name, (day, cut, nxt) in (state or {}).items():
            e = self.entries.get(name)
            if e is not None and e.s >= 0:
                e.day, e.cut_ns, e.next_day_ns = int(day), int(cut), int(nxt)
        self.fresh = any(e.s >= 0 and e.day == AT_ONCE for e in self.entries.values())
        self._next()
