"""A market's regular trading session and its calendar (docs/market-rules.md).

A `TradingSession` is the daily window `sq bars session` builds one bar from; a `MarketCalendar`
adds which local days the market is closed (weekends, exchange holidays) and the broker's
intraday square-off time — what the engine enforces in backtest, paper and live. Both are facts
of the exchange, so each venue package says which a symbol trades in (`trading_session(symbol)`,
`market_calendar(symbol, config)`, reached through `sq.venues.registry`); core only does the
arithmetic, as whole nanoseconds, with no time-zone database (sessions are fixed offsets from
UTC, which holds for every venue sq knows). A session bar needs no calendar: a day without trades
makes no bar.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

NS_PER_DAY = 86_400_000_000_000
NS_PER_MINUTE = 60_000_000_000


@dataclass(frozen=True)
class TradingSession:
    """Open and close as local times of day, and the local time zone's offset from UTC.

    A session lies within one local day (open < close); its bar is [open, close) local time,
    labelled by the UTC instant of the open."""

    open: dt.time
    close: dt.time
    utc_offset: dt.timedelta = dt.timedelta(0)
    label: str = "UTC day"

    @property
    def open_ns(self) -> int:
        """Local time of day of the open, ns after local midnight."""
        return _ns_of_day(self.open)

    @property
    def close_ns(self) -> int:
        """Local time of day of the close, ns after local midnight (a 24:00 close is NS_PER_DAY)."""
        return NS_PER_DAY if self.close == dt.time(0) and self.open == dt.time(0) else _ns_of_day(self.close)

    @property
    def offset_ns(self) -> int:
        return int(self.utc_offset.total_seconds()) * 1_000_000_000

    def describe(self) -> str:
        """`09:15–15:30 UTC+05:30 (IST)` — for help and messages."""
        minutes = int(self.utc_offset.total_seconds()) // 60
        sign = "+" if minutes >= 0 else "-"
        zone = f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        close = "24:00" if self.close_ns == NS_PER_DAY else f"{self.close:%H:%M}"
        return f"{self.open:%H:%M}–{close} {zone} ({self.label})"


@dataclass(frozen=True)
class MarketCalendar:
    """When a market trades: its `session` on every local day that is not a `weekend` weekday
    (Monday = 0) or one of its `holidays` (local dates), and the local time of the broker's
    intraday square-off (None: no square-off). `years` are the years the holiday list covers —
    a day of any other year is only closed on weekends, and a run says so."""

    session: TradingSession
    holidays: frozenset = frozenset()
    years: frozenset = frozenset()
    weekend: frozenset = frozenset({5, 6})
    square_off: dt.time | None = None

    def local_day(self, ts_ns: int) -> int:
        """Days since 1970-01-01 of the local date of UTC instant `ts_ns`."""
        return (int(ts_ns) + self.session.offset_ns) // NS_PER_DAY

    def day_start_ns(self, day: int) -> int:
        """The UTC instant (ns) of local midnight starting local day `day`."""
        return int(day) * NS_PER_DAY - self.session.offset_ns

    @staticmethod
    def date_of(day: int) -> dt.date:
        return EPOCH + dt.timedelta(days=int(day))

    def closed(self, day: int) -> str | None:
        """Why local day `day` has no session: `holiday`, `weekend`, or None (it trades)."""
        date = self.date_of(day)
        if date in self.holidays:
            return "holiday"
        if date.weekday() in self.weekend:
            return "weekend"
        return None

    def covers(self, day: int) -> bool:
        """Whether the holiday list covers the year of local day `day`."""
        return self.date_of(day).year in self.years

    def square_off_ns(self) -> int | None:
        """The square-off as ns after local midnight (None: none)."""
        return None if self.square_off is None else _ns_of_day(self.square_off)

    def square_off_earlier(self, minutes: int) -> "MarketCalendar":
        """This calendar with its square-off `minutes` earlier (a live run acts before the broker)."""
        if self.square_off is None:
            return self
        t = dt.datetime.combine(EPOCH, self.square_off) - dt.timedelta(minutes=minutes)
        return replace(self, square_off=t.time())


EPOCH = dt.date(1970, 1, 1)

# markets that trade around the clock (and streams of unknown origin): one bar per UTC day
UTC_DAY = TradingSession(dt.time(0), dt.time(0))


def _ns_of_day(t: dt.time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000_000 + t.microsecond * 1000
