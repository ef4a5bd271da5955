"""Trading costs: a fill's charges under a cost model, and dated tables of cost rates.

A cost model (`CostRates`) is what a venue charges per fill, as fractions of the fill's notional
(price × quantity; for options, the premium):

* brokerage: `maker_bps`/`taker_bps` (basis points by liquidity), plus `brokerage_pct` capped at
  `brokerage_cap` per executed order, or `brokerage_flat` per executed order: an order filled in
  parts pays the cap or the flat fee once, not once per fill;
* transaction tax (STT/CTT) on buys (`tax_buy`) and sells (`tax_sell`);
* exchange transaction charges (`txn`) and regulatory fees (`regulatory`, e.g. SEBI) on both sides;
* stamp duty on buys (`stamp_buy`);
* GST at `gst` over brokerage + transaction charges + regulatory fees.

The engine evaluates the same arithmetic per fill in its kernels (`sq.core.engine.costs`); this
module is the reference a live run compares a broker's contract note with. A `CostSchedule` is a
symbol's rates over time (effective dates), applied by the trade date in the market's time zone.
Venues build them (docs/costs.md); nothing here names a venue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields

COMPONENTS = ("brokerage", "tax", "txn", "regulatory", "stamp", "gst")  # the order of the engine's accumulators


@dataclass(frozen=True)
class CostRates:
    """One cost model; every rate a fraction of notional except the bps and the ₹-style amounts."""

    maker_bps: float = 0.0
    taker_bps: float = 0.0
    brokerage_pct: float = 0.0  # a fraction of notional (0.0003 = 0.03%)
    brokerage_cap: float = 0.0  # per executed order (0: no cap)
    brokerage_flat: float = 0.0  # per executed order (0: none; replaces brokerage_pct)
    tax_buy: float = 0.0
    tax_sell: float = 0.0
    txn: float = 0.0
    regulatory: float = 0.0
    stamp_buy: float = 0.0
    gst: float = 0.0

    def row(self) -> list[float]:
        """The values in field order (the engine's per-symbol rate columns after its on-flag)."""
        return [float(getattr(self, f.name)) for f in fields(self)]


@dataclass(frozen=True)
class Charges:
    """One fill's (or one order's) charges by component."""

    brokerage: float = 0.0
    tax: float = 0.0
    txn: float = 0.0
    regulatory: float = 0.0
    stamp: float = 0.0
    gst: float = 0.0

    @property
    def total(self) -> float:
        return self.brokerage + self.tax + self.txn + self.regulatory + self.stamp + self.gst

    def __add__(self, other: "Charges") -> "Charges":
        return Charges(*(getattr(self, k) + getattr(other, k) for k in COMPONENTS))

    def as_dict(self) -> dict[str, float]:
        return {**{k: getattr(self, k) for k in COMPONENTS}, "total": self.total}


def brokerage(rates: CostRates, notional: float, maker: bool, paid: float) -> float:
    """Brokerage of one fill of an order that has paid `paid` so far (the per-order cap or flat fee)."""
    b = notional * (rates.maker_bps if maker else rates.taker_bps) * 1e-4
    if rates.brokerage_flat > 0.0:
        b += max(rates.brokerage_flat - paid, 0.0)
    elif rates.brokerage_pct > 0.0:
        x = notional * rates.brokerage_pct
        if rates.brokerage_cap > 0.0:
            x = min(x, max(rates.brokerage_cap - paid, 0.0))
        b += x
    return b


def fill_charges(rates: CostRates, side: int, price: float, qty: float, *, maker: bool = False, paid: float = 0.0) -> Charges:
    """The charges of one fill (`side` +1 buy, −1 sell) of an order that has paid `paid` brokerage."""
    notional = float(price) * float(qty)
    brok = brokerage(rates, notional, maker, paid)
    txn = notional * rates.txn
    reg = notional * rates.regulatory
    return Charges(brok, notional * (rates.tax_buy if side > 0 else rates.tax_sell), txn, reg,
                   notional * rates.stamp_buy if side > 0 else 0.0, (brok + txn + reg) * rates.gst)


def order_charges(rates: CostRates, side: int, fills: list[tuple[float, float]], *, maker: bool = False) -> Charges:
    """The charges of one order filled as `fills` [(price, qty), …] (brokerage once up to the cap)."""
    total, paid = Charges(), 0.0
    for price, qty in fills:
        c = fill_charges(rates, side, price, qty, maker=maker, paid=paid)
        paid += c.brokerage
        total = total + c
    return total


@dataclass(frozen=True)
class CostSchedule:
    """A symbol's cost rates over time: (effective date, rates) sorted by date; a trade date before
    the first uses the first. `utc_offset` is the market's: a trade's date is its local date."""

    periods: tuple[tuple[dt.date, CostRates], ...]
    utc_offset: dt.timedelta = dt.timedelta(0)
    label: str = field(default="", compare=False)  # what the rates are (e.g. "NSE equity intraday"), for docs and errors

    def on(self, date: dt.date) -> CostRates:
        """The rates in force on `date`."""
        chosen = self.periods[0][1]
        for start, rates in self.periods:
            if start <= date:
                chosen = rates
            else:
                break
        return chosen
