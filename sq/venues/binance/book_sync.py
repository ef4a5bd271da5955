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

The per-event rule is one numba function (`diff_verdict`) over a per-symbol state table, used
both by `SymbolSync.on_diff` and by the burst kernel (`burst.feed_burst`), which judges every
depth diff of a burst as it scans it (the hot path: no Python per frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

# verdicts of on_diff
APPLY, IGNORE, BUFFER, GAP = 0, 1, 2, 3
# verdicts of on_snapshot
SYNCED, RETRY = 10, 11
NO_VERDICT = -1

# columns of the state table
S_SYNCED, S_LAST, S_FIRST, S_FUT, S_GAPS, S_DUPS = range(6)
N_STATE = 6

MAX_BUFFER = 20_000  # events buffered while waiting for a snapshot (the oldest go first)


@njit(cache=True, _nrt=False)
def diff_verdict(st, i, U, u, pu):
    """The documented rule for one diff event of symbol row i (updates the row)."""
    if st[i, S_SYNCED] == 0:
        return BUFFER
    last = st[i, S_LAST]
    gap = False
    if st[i, S_FUT] != 0:
        if st[i, S_FIRST] != 0:
            if u < last:
                st[i, S_DUPS] += 1
                return IGNORE
            if U > last:
                gap = True
        else:
            if u <= last:
                st[i, S_DUPS] += 1
                return IGNORE
            if pu != last:
                gap = True
    else:
        if u <= last:
            st[i, S_DUPS] += 1
            return IGNORE
        if U > last + 1:
            gap = True
    if gap:
        st[i, S_GAPS] += 1
        st[i, S_SYNCED] = 0
        st[i, S_FIRST] = 0
        return GAP
    st[i, S_FIRST] = 0
    st[i, S_LAST] = u
    return APPLY


def new_table(n: int) -> np.ndarray:
    t = np.zeros((n, N_STATE), dtype=np.int64)
    t[:, S_LAST] = -1
    return t


@dataclass
class Pending:
    """A buffered diff event: its ids and whatever payload the caller needs to apply it later."""

    U: int
    u: int
    pu: int
    payload: Any


class SymbolSync:
    """The local-book state of one symbol (a row of a shared state table); `futures` selects the USD-M rules."""

    def __init__(self, futures: bool = False, table: np.ndarray | None = None, row: int = 0):
        self.table = new_table(1) if table is None else table
        self.row = row
        self.table[row, S_FUT] = 1 if futures else 0
        self.buffer: list[Pending] = []
        self.snapshots = 0
        self.snapshot_retries = 0
        self.dropped_buffer = 0

    def _get(self, col: int) -> int:
        return int(self.table[self.row, col])

    futures = property(lambda self: bool(self._get(S_FUT)))
    gaps = property(lambda self: self._get(S_GAPS))
    duplicates = property(lambda self: self._get(S_DUPS))

    @property
    def synced(self) -> bool:
        return bool(self._get(S_SYNCED))

    @synced.setter
    def synced(self, v: bool) -> None:
        self.table[self.row, S_SYNCED] = 1 if v else 0

    @property
    def last(self) -> int:
        return self._get(S_LAST)

    @last.setter
    def last(self, v: int) -> None:
        self.table[self.row, S_LAST] = v

    @property
    def first(self) -> bool:
        return bool(self._get(S_FIRST))

    @first.setter
    def first(self, v: bool) -> None:
        self.table[self.row, S_FIRST] = 1 if v else 0

    def on_diff(self, U: int, u: int, pu: int) -> int:
        """Verdict for one live diff event: APPLY, IGNORE, BUFFER (caller buffers), GAP."""
        v = diff_verdict(self.table, self.row, U, u, pu)
        if v == GAP:
            self.buffer.clear()
        return v

    def push(self, U: int, u: int, pu: int, payload: Any) -> None:
        """Buffer an event while unsynced (after BUFFER or GAP)."""
        if len(self.buffer) >= MAX_BUFFER:
            self.buffer.pop(0)
            self.dropped_buffer += 1
        self.buffer.append(Pending(U, u, pu, payload))

    def restart(self) -> None:
        """Forget the book (a new connection): unsynced, nothing buffered."""
        self.synced = False
        self.first = False
        self.buffer.clear()

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
