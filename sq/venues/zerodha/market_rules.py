"""Indian exchange rules sq enforces before an order leaves (zerodha.md, "Market rules").

* Sessions in IST: pre-open order entry 09:00–09:08 (matching until 09:15), normal 09:15–15:30,
  closed on weekends; currency (CDS/BCD) 09:00–17:00; MCX 09:00–23:30. The gateway checks the
  time of day only; exchange holidays (`holidays`) and the broker's MIS square-off (`SQUARE_OFF`)
  are the engine's market calendar (`sq.venues.zerodha.market_calendar`, docs/market-rules.md),
  enforced before an order reaches the gateway — in backtest and paper as in live.
* Prices rounded to the instrument's tick — buys down, sells up, so rounding never makes an
  order more aggressive than asked; quantities rounded down to lot multiples.
* Circuit limits from a full quote (`lower_circuit_limit` / `upper_circuit_limit`): a limit price
  outside them is refused here instead of at the exchange.
* Freeze quantities (no API; NIFTY 1,800, BANKNIFTY 600 by default, overridable) cap one order's
  size: bigger orders are sliced into lot-multiple pieces each at most the freeze quantity.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Mapping

from sq.venues.zerodha.session import IST

PRE_OPEN, PRE_OPEN_ENTRY_END, OPEN, CLOSE = dt.time(9, 0), dt.time(9, 8), dt.time(9, 15), dt.time(15, 30)
SESSIONS = {  # exchange → (open, close) of the normal session
    "NSE": (OPEN, CLOSE), "BSE": (OPEN, CLOSE), "NFO": (OPEN, CLOSE), "BFO": (OPEN, CLOSE),
    "CDS": (dt.time(9, 0), dt.time(17, 0)), "BCD": (dt.time(9, 0), dt.time(17, 0)),
    "MCX": (dt.time(9, 0), dt.time(23, 30)),
}
PRE_OPEN_EXCHANGES = ("NSE", "BSE", "NFO", "BFO")
# the segments with a market calendar in the engine (sessions, the holidays list, square-off)
CALENDAR_EXCHANGES = ("NSE", "BSE", "NFO", "BFO")
# Zerodha squares off MIS (intraday) positions at these IST times: equity 15:20, F&O 15:25
# (currency 16:45, commodity 25 minutes before the close: segments without a calendar here)
SQUARE_OFF = {"NSE": dt.time(15, 20), "BSE": dt.time(15, 20), "NFO": dt.time(15, 25), "BFO": dt.time(15, 25)}
DEFAULT_FREEZE = {"NIFTY": 1800.0, "BANKNIFTY": 600.0}


def phase(now: dt.datetime, exchange: str) -> str:
    """`pre_open` (order entry window), `pre_open_matching`, `normal` or `closed` at `now`."""
    local = now.astimezone(IST)
    if local.weekday() >= 5:
        return "closed"
    t = local.time()
    open_, close = SESSIONS.get(exchange.upper(), (OPEN, CLOSE))
    if exchange.upper() in PRE_OPEN_EXCHANGES and PRE_OPEN <= t < OPEN:
        return "pre_open" if t < PRE_OPEN_ENTRY_END else "pre_open_matching"
    if open_ <= t < close:
        return "normal"
    return "closed"


def hours_violation(now: dt.datetime, exchange: str, variety: str = "regular") -> str | None:
    """Why an order may not be sent now (None = fine). AMO orders are for closed hours only."""
    p = phase(now, exchange)
    if variety == "amo":
        return None if p == "closed" else "after-market orders are accepted only outside market hours"
    if p in ("normal", "pre_open"):
        return None
    if p == "pre_open_matching":
        return f"{exchange} pre-open order entry closed at 09:08 IST; the market opens 09:15 IST"
    open_, close = SESSIONS.get(exchange.upper(), (OPEN, CLOSE))
    return f"{exchange} is closed at {now.astimezone(IST):%a %H:%M} IST (normal session {open_:%H:%M}–{close:%H:%M})"


def round_price(price: float, tick: float, side: int) -> float:
    """Round to the tick grid, buys down and sells up (never more aggressive than asked)."""
    if not math.isfinite(price) or tick <= 0:
        return price
    steps = price / tick
    n = math.floor(steps + 1e-9) if side > 0 else math.ceil(steps - 1e-9)
    return round(n * tick, 10)


def round_lots(qty: float, lot: float) -> float:
    """Round a quantity down to a whole number of lots (0 when less than one lot)."""
    lot = lot if lot > 0 else 1.0
    return math.floor(qty / lot + 1e-9) * lot


@dataclass(frozen=True)
class Circuit:
    lower: float
    upper: float

    def violation(self, price: float) -> str | None:
        if not math.isfinite(price) or self.lower <= 0 and self.upper <= 0:
            return None
        if price < self.lower or price > self.upper:
            return f"price {price:g} outside the circuit limits {self.lower:g}–{self.upper:g}"
        return None


def circuit_from_quote(quote: Mapping) -> Circuit | None:
    """Circuit limits of one `/quote` entry (None when the quote has none)."""
    lo, hi = quote.get("lower_circuit_limit"), quote.get("upper_circuit_limit")
    if lo is None or hi is None:
        return None
    return Circuit(float(lo), float(hi))


def freeze_quantity(name: str, tradingsymbol: str, overrides: Mapping[str, float] | None = None) -> float | None:
    """The freeze quantity of an F&O contract by its underlying `name` (or tradingsymbol), if known."""
    table = {**DEFAULT_FREEZE, **{k.upper(): float(v) for k, v in (overrides or {}).items()}}
    for key in (tradingsymbol.upper(), name.upper()):
        if key in table:
            return table[key]
    return None


def slice_quantity(qty: float, freeze: float | None, lot: float) -> list[float]:
    """Split `qty` into slices of at most `freeze` (rounded down to lots); one slice when no freeze."""
    lot = lot if lot > 0 else 1.0
    if freeze is None or qty <= freeze:
        return [qty]
    step = round_lots(freeze, lot)
    if step <= 0:
        step = lot
    full, rest = divmod(round(qty / lot), round(step / lot))
    out = [step] * int(full)
    if rest:
        out.append(rest * lot)
    return out
