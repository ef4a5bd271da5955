"""One numba call per burst of frames: scan, judge by the sync rules, write the market rows.

The hot path of `MarketPipeline.feed`. For each frame in arrival order the kernel scans the bytes
(`parser.scan_frame`), looks the symbol up, judges a depth diff by the documented rules
(`book_sync.diff_verdict`, which updates the symbol's row of the state table) and, when the verdict
is APPLY, writes the frame's level rows straight into the caller's output arrays: no Python object
per frame, no intermediate arrays.

It stops at the first frame that needs Python and says why (`stop`): a frame that is not a depth
diff the kernel could decode (trades, tickers, control replies, malformed frames), a depth diff of
an unknown symbol or with unknown fields, or one the sync buffers (BUFFER) or that shows a gap
(GAP). The verdict of such a depth diff is already applied to the state table, and its levels sit
in the output arrays just past the rows written (not counted). The caller handles that frame and
calls again from the next one, so every row comes out in stream order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sq.core.schemas import LEVEL
from sq.venues.binance import parser
from sq.venues.binance.book_sync import APPLY, IGNORE, NO_VERDICT, S_DUPS, diff_verdict

MS = 1_000_000

# why the kernel returned (`stop`)
DONE = 0  # every frame handled
STOP_FRAME = 1  # frames[f] is not a decoded depth diff: handle the whole frame in Python
STOP_DEPTH = 2  # frames[f] is a decoded depth diff the kernel judged but Python must finish (see above)

# fields of `info` (the stopped frame and the call's totals)
I_STOP, I_FRAME, I_NEXT_BYTE, I_ROWS, I_LEVELS_END, I_VERDICT, I_DEPTH, I_DUPS = range(8)
N_INFO = 8


@njit(cache=True, _nrt=False)
def feed_burst(buf, lens, f0, b0, recv, recv_step, st, codemap, judge, hashes, order, sym_buf, sym_off,
               ints, i64, f64, sym, kind, side, r, info):
    """Frames f0… of a burst (buf, bytes, holds them back to back; frame f0 starts at byte b0).

    recv[f * recv_step] is frame f's receive time; codemap maps the table's symbol index to the
    pipeline's code (its last entry -1: unknown); judge == 0: depth diffs are not judged and make
    no rows (no local book). Rows go from index r of the outputs: i64 rows (ts, recv, seq), f64
    rows (price, qty), sym, kind, side. ints (1 × 10) holds the scan fields of the last frame.
    Fills info (I_*): why it stopped, at which frame, where the next frame starts in buf, rows
    written so far, the end of the stopped frame's levels, its verdict, depth frames seen, and the
    total of duplicates in the state table.
    """
    ts_o, rc_o, seq_o = i64[0], i64[1], i64[2]
    px_o, qty_o = f64[0], f64[1]
    ndepth = 0
    b = b0
    stop = DONE
    f = f0
    lev_end = r
    verdict = NO_VERDICT
    while f < len(lens):
        e = b + lens[f]
        # levels go straight to the output columns; seq_o takes the scanner's frame index for now
        nl = parser.scan_frame(buf, b, e, 0, ints, px_o, qty_o, side, seq_o, r, hashes, order, sym_buf, sym_off)
        b = e
        if ints[0, 0] != parser.ST_DEPTH:
            stop = STOP_FRAME
            break
        ndepth += 1
        code = codemap[ints[0, 9]]
        verdict = NO_VERDICT
        if code >= 0 and judge != 0:
            verdict = diff_verdict(st, code, ints[0, 3], ints[0, 4], ints[0, 5])
        if verdict == APPLY:
            rcv = recv[f * recv_step]
            E = ints[0, 1]
            ts = E * MS if E > 0 else rcv
            u = ints[0, 4]
            for j in range(r, nl):
                ts_o[j] = ts
                rc_o[j] = rcv
                seq_o[j] = u
                sym[j] = code
                kind[j] = LEVEL
            r = nl
        if code < 0 or ints[0, 8] > 0 or verdict > IGNORE:
            stop = STOP_DEPTH
            lev_end = nl
            break
        f += 1
    dups = 0
    for c in range(st.shape[0]):
        dups += st[c, S_DUPS]
    info[I_STOP] = stop
    info[I_FRAME] = f
    info[I_NEXT_BYTE] = b
    info[I_ROWS] = r
    info[I_LEVELS_END] = lev_end
    info[I_VERDICT] = verdict
    info[I_DEPTH] = ndepth
    info[I_DUPS] = dups


class Outputs:
    """Row columns for one burst, sized for the most levels its bytes can hold (≥ 9 bytes each)."""

    __slots__ = ("i64", "f64", "sym", "kind", "side")

    def __init__(self, nbytes: int):
        cap = nbytes // 9 + 1
        self.i64 = np.empty((3, cap), dtype=np.int64)
        self.f64 = np.empty((2, cap), dtype=np.float64)
        self.sym = np.empty(cap, dtype=np.int32)
        self.kind = np.empty(cap, dtype=np.uint8)
        self.side = np.empty(cap, dtype=np.int8)
