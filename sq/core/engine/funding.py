"""Funding payments on perpetual futures, applied between kernel calls (docs/funding.md).

A perpetual's holder pays or receives funding at the venue's funding times: the payment is
position × mark price × rate, so a long pays a positive rate and a short receives it. The
kernels know nothing of it: `Engine.process` splits its input at each funding time (like the
market calendars' boundaries), lets the venue answers due by then land, and books the payment
into the symbol's `SF_FUNDING` column, which net PnL (and so the risk layer's loss limits)
subtracts. Each payment on an open position becomes one `funding` journal record.

`FundingSchedule` holds the funding events still to come per symbol (from a funding file in
backtest and paper replay, or from the venue's current funding rate in a live feed) and the
symbols that should have funding but have no data (`expect`): a run whose clock crosses their
funding times warns once instead of silently booking nothing.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

NEVER = 2**63 - 1
NS_PER_HOUR = 3_600_000_000_000


def payment(position: float, mark: float, rate: float) -> float:
    """What the holder of `position` pays at a funding time (negative: receives)."""
    return position * mark * rate


@dataclass
class FundingSchedule:
    """Funding events to come, per symbol name: sorted (ts ns, rate, mark) lists."""

    events: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)  # symbol → funding interval (ns), no data yet
    next_ns: int = NEVER

    def add(self, symbol: str, ts_ns: int, rate: float, mark: float = math.nan) -> None:
        """One funding event (an event at a time already held is replaced: the newer rate wins)."""
        ev = self.events.setdefault(symbol.upper(), [])
        item = (int(ts_ns), float(rate), float(mark))
        i = bisect.bisect_left(ev, (item[0], -math.inf, -math.inf))
        if i < len(ev) and ev[i][0] == item[0]:
            ev[i] = item
        else:
            ev.insert(i, item)
        self.expected.pop(symbol.upper(), None)
        self._update()

    def expect(self, symbol: str, interval_ns: int) -> None:
        """`symbol` is a perpetual funded every `interval_ns`: warn if its funding is unknown."""
        if symbol.upper() not in self.events:
            self.expected[symbol.upper()] = int(interval_ns)

    def _update(self) -> None:
        self.next_ns = min((ev[0][0] for ev in self.events.values() if ev), default=NEVER)

    def due(self, now_ns: int) -> list[tuple[int, str, float, float]]:
        """The events at or before `now_ns` (removed), in time order: (ts, symbol, rate, mark)."""
        out = []
        for sym, ev in self.events.items():
            k = bisect.bisect_right(ev, (int(now_ns), math.inf, math.inf))
            out.extend((t, sym, r, m) for t, r, m in ev[:k])
            del ev[:k]
        self._update()
        out.sort()
        return out

    def missing(self, first_ns: int, now_ns: int) -> list[str]:
        """Symbols expected to be funded whose first funding time since `first_ns` is ≤ `now_ns`
        (each reported once)."""
        out = []
        for sym, every in list(self.expected.items()):
            if every > 0 and (first_ns // every + 1) * every <= now_ns:
                out.append(sym)
                del self.expected[sym]
        return out

    def snapshot(self) -> dict:
        return {"events": {k: [list(x) for x in v] for k, v in self.events.items()}, "expected": dict(self.expected)}

    def restore(self, state: dict) -> None:
        self.events = {k: [tuple(x) for x in v] for k, v in (state.get("events") or {}).items()}
        self.expected = dict(state.get("expected") or {})
        self._update()
