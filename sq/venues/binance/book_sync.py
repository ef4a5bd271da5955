"""Binance's documented local-order-book procedure, per symbol, as a small state machine.

No I/O here: the pipeline feeds it diff-event ids and snapshot ids and acts on the verdicts, so
the algorithm can be tested alone and runs the same live and in replay.

Spot (`/api/v3/depth`): buffer events; a snapshot with lastUpdateId L older than the first
buffered U (L + 1 < U) is fetched again; buffered events with u ≤ L are dropped; the first
applied event must straddle L + 1 (U ≤ L + 1 ≤ u); afterwards an event with u ≤ local id is
ignored (duplicate), one with U > local id + 1 means events were lost (gap), else it is applied.

USD-M futures (`/fapi/v1/depth`): buffered events with u < L are dropped; the first applied event
must have U ≤ L ≤ u; afterwards each event's `pu` must equal the previous event's `u` (an event
with u ≤ local id is a duplicate and ignored).

A gap discards the book: the symbol goes back to buffering (starting with the event that showed
the gap) and asks for a fresh snapshot; the pipeline then emits clear + snapshot rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# verdicts of on_diff
APPLY, IGNORE, BUFFER, GAP = 0, 1, 2, 3
# verdicts of on_snapshot
SYNCED, RETRY = 10, 11

MAX_BUFFER = 20_000  # events buffered while waiting for a snapshot (the oldest go first)


@dataclass
class Pending:
    """A buffered diff event: its ids and whatever payload the caller needs to apply it later."""

    U: int
    u: int
    pu: int
    payload: Any


@dataclass
class SymbolSync:
    """The local-book state of one symbol; `futures` selects the USD-M rules."""

    futures: bool = False
    synced: bool = False
    last: int = -1  # local update id (u of the last applied event, or the snapshot's L)
    first: bool = False  # futures: the next applied event is the first after the snapshot
    buffer: list[Pending] = field(default_factory=list)
    gaps: int = 0
    snapshots: int = 0
    snapshot_retries: int = 0
    duplicates: int = 0
    dropped_buffer: int = 0

    def on_diff(self, U: int, u: int, pu: int) -> int:
        """Verdict for one live diff event: APPLY, IGNORE, BUFFER (caller buffers), GAP."""
        if not self.synced:
            return BUFFER
        last = self.last
        if self.futures:
            if self.first:
                if u < last:
                    self.duplicates += 1
                    return IGNORE
                if U > last:
                    return self._gap()
                self.first = False
            else:
                if u <= last:
                    self.duplicates += 1
                    return IGNORE
                if pu != last:
                    return self._gap()
        else:
            if u <= last:
                self.duplicates += 1
                return IGNORE
            if U > last + 1:
                return self._gap()
        self.last = u
        return APPLY

    def _gap(self) -> int:
        self.gaps += 1
        self.synced = False
        self.first = False
        self.buffer.clear()
        return GAP

    def push(self, U: int, u: int, pu: int, payload: Any) -> None:
        """Buffer an event while unsynced (after BUFFER or GAP)."""
        if len(self.buffer) >= MAX_BUFFER:
            self.buffer.pop(0)
            self.dropped_buffer += 1
        self.buffer.append(Pending(U, u, pu, payload))

    def on_snapshot(self, L: int) -> tuple[int, list[Pending]]:
        """Apply a snapshot with lastUpdateId L.

        Returns (RETRY, []) when the snapshot cannot be bridged to the buffered events (fetch
        again; the buffer is kept), else (SYNCED, events to apply after the snapshot, in order).
        A break inside the buffered events themselves counts as a gap and leaves the events
        after it buffered, unsynced (the caller fetches another snapshot).
        """
        buf = self.buffer
        if buf:
            first_U = buf[0].U
            if (L + 1 < first_U) if not self.futures else (L < first_U):
                self.snapshot_retries += 1
                return RETRY, []
        self.snapshots += 1
        self.synced = True
        self.last = L
        self.first = self.futures
        self.buffer = []
        out: list[Pending] = []
        for i, ev in enumerate(buf):
            verdict = self.on_diff(ev.U, ev.u, ev.pu)
            if verdict == APPLY:
                out.append(ev)
            elif verdict == GAP:
                self.buffer = buf[i:]
                return SYNCED, out
        return SYNCED, out
