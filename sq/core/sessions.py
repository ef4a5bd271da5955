"""A market's regular trading session: the daily window `sq bars session` builds one bar from.

A `TradingSession` is a fact of the exchange, so each venue package says which session a symbol
trades in (`trading_session(symbol)`, reached through `sq.venues.registry`); core only does the
arithmetic: where a timestamp falls, as whole nanoseconds, with no calendar and no time-zone
database (sessions are fixed offsets from UTC, which holds for every venue sq knows).
Weekends and exchange holidays need no table: a day without trades makes no bar.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

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


# markets that trade around the clock (and streams of unknown origin): one bar per UTC day
UTC_DAY = TradingSession(dt.time(0), dt.time(0))


def _ns_of_day(t: dt.time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000_000 + t.microsecond * 1000
