"""A live run's charges against the venue's own account of them (docs/costs.md).

The engine charges each fill under the symbol's cost model (`sq.core.costs`). When an order is
done, the run asks the venue what it charged (the gateway's `contract_notes`: Zerodha's virtual
contract note), in one request for every order finished since the last look — off the market-data
path, at the run's sweep pace and once more at the end. Each answer is journaled as an `audit`
record with the venue's components, the model's and the difference; a difference above
`TOLERANCE` (₹0.01, or a millionth of the amount when larger) is flagged with a warning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sq.core.costs import COMPONENTS, CostSchedule, order_charges

TOLERANCE = 0.01  # currency units
RELATIVE = 1e-6


@dataclass
class OrderFills:
    """One order's fills as the run booked them."""

    symbol: str
    side: int
    fills: list[tuple[int, float, float]] = field(default_factory=list)  # (ts ns, price, qty)

    @property
    def qty(self) -> float:
        return sum(q for _, _, q in self.fills)

    @property
    def avg_price(self) -> float:
        q = self.qty
        return sum(p * x for _, p, x in self.fills) / q if q > 0 else 0.0


def model_charges(schedule: CostSchedule, order: OrderFills) -> dict[str, float]:
    """What the cost model charges the order (the rates of its first fill's local date)."""
    ts = order.fills[0][0]
    date = (dt.datetime.fromtimestamp(ts / 1e9, dt.timezone.utc) + schedule.utc_offset).date()
    return order_charges(schedule.on(date), order.side, [(p, q) for _, p, q in order.fills]).as_dict()


def compare(model: dict[str, float], venue: dict[str, float]) -> tuple[float, bool]:
    """(venue total − model total, whether the difference is beyond the tolerance)."""
    diff = float(venue.get("total", 0.0)) - float(model["total"])
    return diff, abs(diff) > max(TOLERANCE, RELATIVE * abs(float(model["total"])))


def audit_records(orders: dict[str, OrderFills], venue: list[dict | None], schedules: dict[str, CostSchedule | None],
                  ids: dict[str, str], now_ns: int) -> tuple[list[tuple[str, dict]], list[str]]:
    """The journal's `audit` records and the warnings for orders (client id → fills) the venue
    answered about (`venue`, in the same order); orders without a cost model or an answer get none."""
    recs, warnings = [], []
    for (cid, order), answer in zip(orders.items(), venue):
        schedule = schedules.get(order.symbol)
        if answer is None or schedule is None:
            continue
        model = model_charges(schedule, order)
        diff, flagged = compare(model, answer)
        rec = {"ts": now_ns, "by": "sq live (charges)", "event": "charges", "client_order_id": cid, "venue_order_id": ids.get(cid),
               "symbol": order.symbol, "side": order.side, "qty": order.qty, "avg_price": order.avg_price,
               "venue": {k: float(answer.get(k, 0.0)) for k in (*COMPONENTS, "total")}, "model": model,
               "difference": diff, "flagged": flagged}
        recs.append(("audit", rec))
        if flagged:
            worst = max(COMPONENTS, key=lambda k: abs(float(answer.get(k, 0.0)) - model[k]))
            warnings.append(f"live: {order.symbol} order {cid}: the venue charged {answer.get('total', 0.0):.2f}, the cost model "
                            f"{model['total']:.2f} (difference {diff:+.2f}, most in {worst}); check the charges table (docs/costs.md)")
    return recs, warnings


def venue_answer(gateway: Any, orders: dict[str, OrderFills], ids: dict[str, str]) -> list[dict | None] | None:
    """The gateway's contract notes of `orders` (None: the venue has no such report)."""
    ask = getattr(gateway, "contract_notes", None)
    if ask is None:
        return None
    return ask([{"client_order_id": cid, "venue_order_id": ids.get(cid), "symbol": o.symbol, "side": o.side, "qty": o.qty,
                 "avg_price": o.avg_price} for cid, o in orders.items()])


def audit_orders(gateway: Any, orders: dict[str, OrderFills], schedules: dict[str, CostSchedule | None], ids: dict[str, str],
                 now_ns: int) -> tuple[list[tuple[str, dict]], list[str]] | None:
    """Ask the venue about finished orders and compare: (records, warnings), or None when the
    venue keeps no such report. Venue errors propagate (the caller retries at its next look)."""
    mine = {cid: o for cid, o in orders.items() if schedules.get(o.symbol) is not None and o.fills}
    if not mine:
        return [], []
    answer = venue_answer(gateway, mine, ids)
    if answer is None:
        return None
    return audit_records(mine, list(answer), schedules, ids, now_ns)

