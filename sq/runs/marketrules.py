"""The exchange's rules in the engine a run drives (docs/market-rules.md), the same in backtest,
paper and live: each symbol's market calendar from its venue (trading hours, exchange holidays,
the broker's intraday square-off), the venue's charges by trade date (docs/costs.md: a venue
without a table keeps the fill model's maker/taker fees) and the circuit limits its instrument carries.

`risk.enforce_trading_hours = false` drops the hours and holidays (a square-off still stops new
orders after it), `risk.enforce_circuit_limits = false` the circuit limits; whether a venue
squares off is the venue's own setting (Zerodha: the MIS product, `[zerodha] square_off`). A
live run squares off `LIVE_LEAD_MIN` before the broker would.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

LIVE_LEAD_MIN = 1  # live: square off this many minutes before the broker's cut-off
CIRCUIT_KEYS = ("lower_circuit_limit", "upper_circuit_limit")  # in an instrument's extras


def circuit_limits(instrument: Any) -> tuple[float, float] | None:
    """(lower, upper) circuit limits of an instrument (its extras, as a venue's quote gave them),
    or None when it has none (or they are not two positive prices, lower below upper)."""
    extra = getattr(instrument, "extra", None) or {}
    try:
        lo, hi = (float(extra[k]) for k in CIRCUIT_KEYS)
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo < hi):
        return None
    return lo, hi


def apply(engine: Any, instruments: Mapping[str, Any], config: Any, *, live: bool = False) -> None:
    """Give `engine` the calendar, the charges and the circuit limits of every symbol in `instruments`."""
    from sq.venues.registry import charges, market_calendar

    risk = config.risk
    for name in sorted(instruments):
        calendar = market_calendar(name, config)
        if calendar is not None:
            engine.calendar_market = True  # its metrics annualise over trading days (docs/metrics.md)
            if live:
                calendar = calendar.square_off_earlier(LIVE_LEAD_MIN)
            if risk.enforce_trading_hours or calendar.square_off is not None:
                engine.set_calendar(name, calendar, hours=risk.enforce_trading_hours)
        schedule = charges(name, instruments[name], config)
        if schedule is not None:
            engine.set_costs(name, schedule)
        if risk.enforce_circuit_limits:
            limits = circuit_limits(instruments[name])
            if limits is not None:
                engine.set_circuit_limits(name, *limits)
