"""How numbers and codes look to people: the one place every terminal view and `--format table`
takes its formats from.

* Prices carry the decimals their instrument's tick implies (tick 0.05 → `99.40`, 0.1 → `99.4`,
  1e-8 → 8 decimals), so a column of prices lines up and never drops a trailing zero. Values
  between ticks get more: a mid one decimal more (half a tick), averages (microprice, VWAP, an
  average fill price) two more. A symbol without a known tick falls back to 6 significant digits.
* Counts (events, orders, fills, rows) with thousands separators: `12,345`.
* Imbalance (−1…1) with 3 decimals.
* Market `kind` and `side` codes by name (docs/streams.md): kind `level`, `trade`, …; a level's
  side `bid`/`ask`, a trade's (the aggressor) and an order's or fill's `buy`/`sell`.
"""

from __future__ import annotations

import decimal
import math
from typing import Any, Mapping

from sq.core import schemas as S

MAX_DECIMALS = 12
UNKNOWN = "—"  # what a view shows for a missing or NaN value

# the extra decimals of prices that fall between ticks
MID_EXTRA = 1
AVERAGE_EXTRA = 2


def tick_decimals(tick: float | None) -> int | None:
    """The decimals a price on this tick grid needs (0.05 → 2, 0.1 → 1, 1 → 0, 1e-8 → 8);
    None when the tick is unknown (missing, zero, negative or not finite)."""
    if tick is None or not isinstance(tick, (int, float)) or not math.isfinite(tick) or tick <= 0:
        return None
    d = decimal.Decimal(repr(round(float(tick), MAX_DECIMALS))).normalize()
    return max(0, min(MAX_DECIMALS, -int(d.as_tuple().exponent)))


def format_price(value: Any, decimals: int | None, extra: int = 0, *, missing: str = UNKNOWN) -> str:
    """A price with `decimals` (+ `extra` for values between ticks); 6 significant digits
    when the decimals are unknown; `missing` for None/NaN."""
    if value is None or value != value:
        return missing
    if decimals is None:
        return f"{value:.6g}"
    return f"{value:.{min(decimals + extra, MAX_DECIMALS)}f}"


def format_qty(value: Any, *, missing: str = UNKNOWN) -> str:
    """A quantity as short as it is exact (`2`, `0.001`)."""
    if value is None or value != value:
        return missing
    return f"{value:g}"


def format_count(n: Any, *, missing: str = UNKNOWN) -> str:
    """A count with thousands separators (`12,345`); a rate (float) rounded to a whole number."""
    if n is None or n != n:
        return missing
    return f"{n:,.0f}" if isinstance(n, float) else f"{int(n):,}"


def format_imbalance(value: Any, *, missing: str = UNKNOWN) -> str:
    """Book imbalance (−1…1) with 3 decimals."""
    if value is None or value != value:
        return missing
    return f"{value:.3f}"


def format_pnl(value: Any, *, missing: str = UNKNOWN) -> str:
    """Money (PnL, fees, drawdown) with 4 decimals and thousands separators."""
    if value is None or value != value:
        return missing
    return f"{value:,.4f}"


def kind_name(code: Any) -> str:
    """A market `kind` code's name (`level`, `trade`, …); the number itself when unknown."""
    return S.KIND_NAMES.get(int(code), str(code)) if code is not None else ""


def side_name(side: Any, kind: Any = None) -> str:
    """A `side` code's name: `bid`/`ask` for a book level, else `buy`/`sell`; empty for 0 (no side)."""
    if side is None or int(side) == S.NO_SIDE:
        return ""
    names = S.LEVEL_SIDE_NAMES if kind is not None and int(kind) == S.LEVEL else S.SIDE_NAMES
    return names.get(int(side), str(side))


class PriceFormats:
    """Per-symbol price decimals from the instruments of a stream (`sq.instruments`)."""

    def __init__(self, instruments: Mapping[str, S.Instrument] | None):
        self.decimals: dict[str, int | None] = {s: tick_decimals(i.tick_size) for s, i in (instruments or {}).items()}

    def of(self, symbol: str | None) -> int | None:
        return self.decimals.get(symbol) if symbol is not None else None

    def price(self, symbol: str | None, value: Any, extra: int = 0, *, missing: str = UNKNOWN) -> str:
        return format_price(value, self.of(symbol), extra, missing=missing)
