"""The heartbeat a running paper, live or record process writes for `sq status`.

About once a second (never more often: it is one small file rewritten in place) the run's loop
calls `Heartbeat.beat(...)`; the document says what the run is doing *now* — market events and
when the last one arrived, position and PnL (gross, costs, net) per symbol, working orders,
rejections, a risk halt, the circuit breaker and the feed — so `sq status` can tell a healthy run
from a stale or halted one by reading files, without ever talking to the process.

A beat is a handful of lookups over the engine's state arrays (counters, positions), on
the loop between batches: nothing per event, no thread, no lock. A run whose loop stops turning
(its feed stalled, the process hung) stops beating — the beat's age is what `sq status` reads.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from sq.core import runtime

BEAT_EVERY_S = 1.0


def engine_state(engine: Any) -> dict[str, Any]:
    """The engine's part of a heartbeat: counters, positions and PnL split into gross, costs, net."""
    c = engine.counters()
    pos = engine.positions()  # per symbol: realized is net of fees, total = realized + unrealized
    net = sum(p["total"] for p in pos.values())
    costs = sum(p["fees"] for p in pos.values())
    return {
        "events": c["events"], "orders": c["orders"], "fills": c["fills"], "working_orders": c["open_orders"],
        "rejections": engine.rejections(),
        "position": {s: p["position"] for s, p in pos.items()},
        "pnl": {"gross": net + costs, "costs": costs, "net": net,
                "realized": sum(p["realized"] for p in pos.values()), "unrealized": sum(p["unrealized"] for p in pos.values())},
        "halted": engine.halted or None,
    }


class Heartbeat:
    """Writes this process's heartbeat at most once per `every_s` seconds (and on `final`)."""

    def __init__(self, mode: str, *, every_s: float = BEAT_EVERY_S, clock: Callable[[], float] = time.monotonic):
        self.mode = mode
        self.every_s = every_s
        self.clock = clock
        self.next_at = 0.0
        self.last_event_ns = 0  # wall time the last market data arrived
        self.data_ts = 0  # the last market event's own (exchange) time

    def market(self, data_ts: int) -> None:
        """Market data arrived (call per batch: two assignments)."""
        self.last_event_ns = time.time_ns()
        self.data_ts = int(data_ts)

    def due(self) -> bool:
        return self.clock() >= self.next_at

    def beat(self, state: Callable[[], dict[str, Any]], *, final: bool = False) -> None:
        """Write `state()` (only called when a beat is due) with the run's market clock."""
        if not final and not self.due():
            return
        self.next_at = self.clock() + self.every_s
        if not runtime.is_registered_pid():  # a run outside the registry (a library caller): no file
            return
        doc = {"ts": time.time_ns(), "mode": self.mode, "last_event_ns": self.last_event_ns or None,
               "data_ts": self.data_ts or None, "final": final}
        doc.update(state())
        runtime.write_beat(doc)
