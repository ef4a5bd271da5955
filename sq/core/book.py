"""The L2 order book kernel: many symbols, int64 ticks, exact best bid/ask after every event.

Layout (struct of arrays, one row per symbol id `s`; docs/architecture.md):

* `qbuf` float64[...] — one flat buffer; symbol `s` owns a *window* of `W = ist[s, I_W]` ticks
  starting at tick `ist[s, I_BASE]`: bid quantities at `qbuf[off : off+W]`, ask quantities at
  `qbuf[off+W : off+2W]` with `off = ist[s, I_OFF]`. Index = tick − base, so two distinct prices
  never share a slot (no `price mod 256`). Every slot that is not a live
  level holds exactly 0.0.
* `ist` int64[S, NI] — per-symbol integers: window, best bid/ask ticks (`I_BB`, `I_BA`, valid
  when the level counts `I_NB`/`I_NA` are > 0), the lowest touched bid / highest touched ask
  (loose bounds, tightened when recentring), snapshot flag, counters and ring heads.
* `fst` float64[S, NF] — per-symbol floats (tick size and features; see `sq.core.features`).
* rings: `vw_*` [S, R] trades of the rolling VWAP window; `st_*` [S, 2, K] stale depth of top-N
  venues; `pv_*` [S, 2, PV] the previous visible view of a top-N venue while a snapshot is built.
* `last_row` float64[S, ncols] — the last emitted row per symbol (change detection).
* `g` int64[NG] — stream-wide state: the pending (not yet complete) message, error counters and
  the request a kernel makes of its Python caller (grow a window or a ring).

Apply is O(1); the best level moves incrementally and is rescanned (from the old best, outward)
only when the best level itself is deleted. A price outside the window re-centres it around the
live levels (O(live span), rare because the window keeps ≥ 1/4 slack on each side); when the live
span exceeds half the window the kernel returns `ST_GROW_BOOK` and `BookState.grow_window` doubles
that symbol's window, after which the same event is applied again. Locked/crossed books are
counted after each complete message and never repaired.

API for callers (sq book via `sq.core.bookstream`, the engine directly): `BookState(...)` holds
the arrays; `BookState.ensure(n, tick_sizes, views)` adds symbols; `BookState.run(...)` applies
validated event arrays (int64 ticks for level rows) and returns the rows written; `flush` ends
the last message. Read helpers over the same arrays: `top_levels`, `best_qty`, `qty_at`; the
best ticks are `ist[s, I_BB]` / `ist[s, I_BA]` when `ist[s, I_NB]` / `ist[s, I_NA]` > 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sq.core import features as F
from sq.core.features import (
    F_AGG,
    F_LAST_PX,
    F_MSG_TMAX,
    F_MSG_TMIN,
    F_TICK,
    NF,
)

LEVEL, TRADE, CLEAR, SNAPSHOT_END, TICK = 1, 2, 3, 4, 5

# per-symbol integer state (columns of `ist`)
I_OFF = 0
I_W = 1
I_BASE = 2
I_BB = 3
I_BA = 4
I_NB = 5
I_NA = 6
I_BLO = 7  # lowest bid tick touched since the side was last empty (≤ lowest live bid)
I_AHI = 8  # highest ask tick touched since the side was last empty (≥ highest live ask)
I_INSNAP = 9
I_LASTTS = 10
I_HASTS = 11
I_NMSG = 12
I_LASTEMIT = 13
I_HASEMIT = 14
I_VIEW = 15  # visible depth of a top-N venue; 0 = full depth
I_VW_HEAD = 16
I_VW_LEN = 17
I_NST = 18  # 18 bid, 19 ask: stale levels held
I_NPV = 20  # 20 bid, 21 ask: previous visible view saved at `clear`
I_SNAPTS = 22  # ts of the last complete view (last-seen time of its levels)
I_NVOL = 23  # number of mid returns folded into the volatility
I_BASESET = 24
I_MIDKEY = 25  # bid+ask ticks at the last message end with features (NO_MID: undefined)
NI = 26
NO_MID = -(1 << 62)
NO_DUE = np.iinfo(np.int64).max  # no feature upkeep falls due by time (the VWAP window is empty)
U64 = np.uint64
NO_TS = np.iinfo(np.int64).min  # `_load`'s last ts of a symbol that has seen none

# stream-wide state (`g`)
G_PEND = 0
G_PSYM = 1
G_PSEQ = 2
G_PTS = 3
G_PROW = 4
G_LOCKED = 5
G_CROSSED = 6
G_XROW = 7  # global row ending the first locked/crossed message (-1: none)
G_XSYM = 8
G_BACK = 9  # events whose ts went backwards within their symbol
G_BACKROW = 10
G_BACKSYM = 11
G_NEED_SYM = 12
G_NEED_SPAN = 13
G_MESSAGES = 14
NG = 15

# integer parameters (`ip`) and float parameters (`fp`)
P_DEPTH = 0
P_MODE = 1
P_EVERY = 2
P_INTERVAL = 3
P_VWAP_WIN = 4
P_STALE_AGE = 5
P_FEATURES = 6  # 0: book only (no trade features, VWAP or volatility; rows need features on)
NP = 7
FP_VOL_ALPHA = 0

MODE_NONE, MODE_CHANGE, MODE_EVERY, MODE_INTERVAL = 0, 1, 2, 3

ST_OK, ST_GROW_BOOK, ST_GROW_VWAP = 0, 1, 2

STALE_CAP = 64  # stale levels kept per side per symbol (oldest evicted beyond)
VIEW_CAP = 64  # largest top-N view depth
INITIAL_WINDOW = 4096
MAX_WINDOW = 1 << 24
INITIAL_VWAP_CAP = 256
ROW_BLOCK = 64  # rows built row-major before they are copied into the column-major output


def n_columns(depth: int) -> int:
    """Float columns of a book row: 4·depth levels, 8 features, 4 stale-depth columns."""
    return 4 * depth + 8 + 4


# ----------------------------------------------------------------------------------------------
# book primitives


@njit(cache=True, _nrt=False)
def _move(buf, src, dst, n):
    """Move buf[src:src+n] to buf[dst:dst+n] (overlap-safe) and zero what the move vacated."""
    if n <= 0 or src == dst:
        return
    if dst < src:
        for k in range(n):
            buf[dst + k] = buf[src + k]
        lo = dst + n if dst + n > src else src
        for k in range(lo, src + n):
            buf[k] = 0.0
    else:
        for k in range(n - 1, -1, -1):
            buf[dst + k] = buf[src + k]
        hi = dst if dst < src + n else src + n
        for k in range(src, hi):
            buf[k] = 0.0


@njit(cache=True, _nrt=False)
def recentre(qbuf, ist, g, s, t):
    """Re-base symbol `s`'s window so that tick `t` and every live level fit, centred.

    Returns ST_GROW_BOOK (with the needed span in `g`) when they span more than half the window.
    """
    w = ist[s, I_W]
    off = ist[s, I_OFF]
    nb = ist[s, I_NB]
    na = ist[s, I_NA]
    if nb == 0 and na == 0:
        ist[s, I_BASE] = t - w // 2
        ist[s, I_BASESET] = 1
        return ST_OK
    base = ist[s, I_BASE]
    lo = t
    hi = t
    blo = 0
    ahi = 0
    if nb > 0:
        j = ist[s, I_BLO] - base
        while qbuf[off + j] == 0.0:
            j += 1
        blo = base + j
        ist[s, I_BLO] = blo
        if blo < lo:
            lo = blo
        if ist[s, I_BB] > hi:
            hi = ist[s, I_BB]
    if na > 0:
        j = ist[s, I_AHI] - base
        while qbuf[off + w + j] == 0.0:
            j -= 1
        ahi = base + j
        ist[s, I_AHI] = ahi
        if ist[s, I_BA] < lo:
            lo = ist[s, I_BA]
        if ahi > hi:
            hi = ahi
    span = hi - lo + 1
    if 2 * span > w:
        g[G_NEED_SYM] = s
        g[G_NEED_SPAN] = span
        return ST_GROW_BOOK
    nbase = lo - (w - span) // 2
    if nb > 0:
        _move(qbuf, off + (blo - base), off + (blo - nbase), ist[s, I_BB] - blo + 1)
    if na > 0:
        ba = ist[s, I_BA]
        _move(qbuf, off + w + (ba - base), off + w + (ba - nbase), ahi - ba + 1)
    ist[s, I_BASE] = nbase
    return ST_OK


@njit(cache=True, _nrt=False)
def qty_at(qbuf, ist, s, side, t):
    """Quantity resting at tick `t` on `side` (0.0 when none or outside the window)."""
    i = t - ist[s, I_BASE]
    w = ist[s, I_W]
    if i < 0 or i >= w or ist[s, I_BASESET] == 0:
        return 0.0
    if side > 0:
        return qbuf[ist[s, I_OFF] + i]
    return qbuf[ist[s, I_OFF] + w + i]


@njit(cache=True, _nrt=False)
def best_qty(qbuf, ist, s, side):
    """Quantity at the best level of `side` (0.0 when the side is empty)."""
    if side > 0:
        if ist[s, I_NB] == 0:
            return 0.0
        return qbuf[ist[s, I_OFF] + ist[s, I_BB] - ist[s, I_BASE]]
    if ist[s, I_NA] == 0:
        return 0.0
    return qbuf[ist[s, I_OFF] + ist[s, I_W] + ist[s, I_BA] - ist[s, I_BASE]]


@njit(cache=True, _nrt=False)
def set_level(qbuf, ist, g, s, side, t, qv):
    """Set the quantity at tick `t` on `side` (+1 bid, −1 ask) of symbol `s` (0 deletes the
    level), keeping the level counts and best ticks; returns (status, the quantity it replaced).

    The same update as `process` applies inline, one event at a time, for callers that need the
    old quantity (`sq.core.clean` undoes a message with it). ST_GROW_BOOK (the span in `g`)
    means nothing changed: grow the window (`BookState.grow_window`) and call again.
    """
    w = ist[s, I_W]
    j = t - ist[s, I_BASE]
    if ist[s, I_BASESET] == 0 or j < 0 or j >= w:
        if qv == 0.0:
            return ST_OK, 0.0  # deleting a price the window does not hold: nothing to do
        st = recentre(qbuf, ist, g, s, t)
        if st != ST_OK:
            return st, 0.0
        j = t - ist[s, I_BASE]
    sd = 0 if side > 0 else 1
    sg = 1 - 2 * sd
    p = ist[s, I_OFF] + sd * w + j
    old = qbuf[p]
    qbuf[p] = qv
    add = qv != 0.0
    c = ist[s, I_NB + sd]
    best = ist[s, I_BB + sd]
    if add and (c == 0 or t * sg > best * sg):
        ist[s, I_BB + sd] = t
    if add and (c == 0 or t * sg < ist[s, I_BLO + sd] * sg):
        ist[s, I_BLO + sd] = t
    c += (1 if old == 0.0 else 0) - (0 if add else 1)
    ist[s, I_NB + sd] = c
    if not add and t == best and c > 0:  # the best level went: rescan outward
        p -= sg
        while qbuf[p] == 0.0:
            p -= sg
        ist[s, I_BB + sd] = ist[s, I_BASE] + (p - ist[s, I_OFF] - sd * w)
    return ST_OK, old


@njit(cache=True, _nrt=False)
def top_levels(qbuf, ist, s, side, n, out_tick, out_qty):
    """Fill the best `n` levels of `side` (ticks, quantities) by scanning from the best; returns how many."""
    off = ist[s, I_OFF]
    base = ist[s, I_BASE]
    w = ist[s, I_W]
    if side > 0:
        m = min(n, ist[s, I_NB])
        j = off + ist[s, I_BB] - base
        c = 0
        while c < m:
            v = qbuf[j]
            if v != 0.0:
                out_tick[c] = base + (j - off)
                out_qty[c] = v
                c += 1
            j -= 1
        return m
    m = min(n, ist[s, I_NA])
    j = off + w + ist[s, I_BA] - base
    c = 0
    while c < m:
        v = qbuf[j]
        if v != 0.0:
            out_tick[c] = base + (j - off - w)
            out_qty[c] = v
            c += 1
        j += 1
    return m


@njit(cache=True, _nrt=False)
def _nth_level(qbuf, ist, s, side, n):
    """Tick of the n-th best level (1-based) of `side`; the caller ensures the side has ≥ n levels."""
    off = ist[s, I_OFF]
    base = ist[s, I_BASE]
    w = ist[s, I_W]
    c = 0
    if side > 0:
        j = off + ist[s, I_BB] - base
        while True:
            if qbuf[j] != 0.0:
                c += 1
                if c == n:
                    return base + (j - off)
            j -= 1
    j = off + w + ist[s, I_BA] - base
    while True:
        if qbuf[j] != 0.0:
            c += 1
            if c == n:
                return base + (j - off - w)
        j += 1


@njit(cache=True, _nrt=False)
def clear_book(qbuf, ist, pv_tick, pv_qty, s):
    """`clear`: empty the symbol's book (zeroing only the touched range) and enter a snapshot.

    For a top-N venue the visible view before the clear is kept in `pv_*`, so `snapshot_end`
    can tell which levels left the view (stale depth) rather than vanished.
    """
    view = ist[s, I_VIEW]
    if view > 0 and ist[s, I_INSNAP] == 0:
        ist[s, I_NPV] = top_levels(qbuf, ist, s, 1, view, pv_tick[s, 0], pv_qty[s, 0])
        ist[s, I_NPV + 1] = top_levels(qbuf, ist, s, -1, view, pv_tick[s, 1], pv_qty[s, 1])
    off = ist[s, I_OFF]
    base = ist[s, I_BASE]
    w = ist[s, I_W]
    if ist[s, I_NB] > 0:
        for j in range(off + ist[s, I_BLO] - base, off + ist[s, I_BB] - base + 1):
            qbuf[j] = 0.0
    if ist[s, I_NA] > 0:
        for j in range(off + w + ist[s, I_BA] - base, off + w + ist[s, I_AHI] - base + 1):
            qbuf[j] = 0.0
    ist[s, I_NB] = 0
    ist[s, I_NA] = 0
    ist[s, I_INSNAP] = 1


# ----------------------------------------------------------------------------------------------
# stale depth of top-N venues


@njit(cache=True, _nrt=False)
def _stale_add(st_tick, st_qty, st_ts, ist, s, sd, t, q, ts):
    n = ist[s, I_NST + sd]
    for k in range(n):
        if st_tick[s, sd, k] == t:
            st_qty[s, sd, k] = q
            st_ts[s, sd, k] = ts
            return
    if n < st_tick.shape[2]:
        k = n
        ist[s, I_NST + sd] = n + 1
    else:  # full: replace the oldest
        k = 0
        for m in range(1, n):
            if st_ts[s, sd, m] < st_ts[s, sd, k]:
                k = m
    st_tick[s, sd, k] = t
    st_qty[s, sd, k] = q
    st_ts[s, sd, k] = ts


@njit(cache=True, _nrt=False)
def _visible_edge(qbuf, ist, s, side):
    """(full, edge tick): whether the visible side holds the whole view, and its deepest tick."""
    view = ist[s, I_VIEW]
    n = ist[s, I_NB] if side > 0 else ist[s, I_NA]
    if n >= view:
        return True, _nth_level(qbuf, ist, s, side, view)
    return False, 0


@njit(cache=True, _nrt=False)
def stale_prune(qbuf, ist, fst, st_tick, st_qty, st_ts, s, now, max_age):
    """Drop stale levels the view now covers, the price crossed, or that are older than max_age.

    A side whose view is not full shows everything the venue has, so it keeps no stale depth.
    """
    tk = fst[s, F_TICK]
    tmin = fst[s, F_MSG_TMIN]
    tmax = fst[s, F_MSG_TMAX]
    for sd in range(2):
        n = ist[s, I_NST + sd]
        if n == 0:
            continue
        side = 1 if sd == 0 else -1
        full, edge = _visible_edge(qbuf, ist, s, side)
        k = 0
        for m in range(n):
            t = st_tick[s, sd, m]
            drop = (not full) or (now - st_ts[s, sd, m] > max_age)
            if sd == 0:
                drop = drop or t >= edge or (ist[s, I_NA] > 0 and t >= ist[s, I_BA]) or (tmin < np.inf and tmin < t * tk - 0.5 * tk)
            else:
                drop = drop or t <= edge or (ist[s, I_NB] > 0 and t <= ist[s, I_BB]) or (tmax > -np.inf and tmax > t * tk + 0.5 * tk)
            if not drop:
                st_tick[s, sd, k] = t
                st_qty[s, sd, k] = st_qty[s, sd, m]
                st_ts[s, sd, k] = st_ts[s, sd, m]
                k += 1
        ist[s, I_NST + sd] = k


@njit(cache=True, _nrt=False)
def end_view(qbuf, ist, fst, pv_tick, pv_qty, st_tick, st_qty, st_ts, s, now, max_age):
    """`snapshot_end` of a top-N venue: levels of the previous view that left it uncrossed go stale."""
    tk = fst[s, F_TICK]
    tmin = fst[s, F_MSG_TMIN]
    tmax = fst[s, F_MSG_TMAX]
    seen = ist[s, I_SNAPTS]
    for sd in range(2):
        side = 1 if sd == 0 else -1
        full, edge = _visible_edge(qbuf, ist, s, side)
        if not full:
            continue
        for m in range(ist[s, I_NPV + sd]):
            t = pv_tick[s, sd, m]
            if qty_at(qbuf, ist, s, side, t) != 0.0:
                continue
            if sd == 0:
                keep = t < edge and not (ist[s, I_NA] > 0 and t >= ist[s, I_BA]) and not (tmin < np.inf and tmin < t * tk - 0.5 * tk)
            else:
                keep = t > edge and not (ist[s, I_NB] > 0 and t <= ist[s, I_BB]) and not (tmax > -np.inf and tmax > t * tk + 0.5 * tk)
            if keep:
                _stale_add(st_tick, st_qty, st_ts, ist, s, sd, t, pv_qty[s, sd, m], seen)
        ist[s, I_NPV + sd] = 0
    ist[s, I_SNAPTS] = now
    stale_prune(qbuf, ist, fst, st_tick, st_qty, st_ts, s, now, max_age)


# ----------------------------------------------------------------------------------------------
# rows


@njit(cache=True, _nrt=False)
def build_row(qbuf, ist, fst, st_qty, s, depth, row, tick_buf, qty_buf):
    """Write symbol `s`'s visible top-`depth` levels and features into the contiguous `row`.

    Indexes are unsigned (U64): numba adds negative-index wraparound code to every signed
    index, which made rows cost several times their arithmetic.
    """
    tk = fst[s, F_TICK]
    inv = fst[s, F.F_INV]
    nan = np.nan
    ud = U64(depth)
    nb = top_levels(qbuf, ist, s, 1, depth, tick_buf, qty_buf)
    unb = U64(nb)
    sb = 0.0
    for c in range(ud):
        if c < unb:
            q = qty_buf[c]
            row[c] = F.tick_price(tick_buf[c], tk, inv)
            row[ud + c] = q
            sb += q
        else:
            row[c] = nan
            row[ud + c] = nan
    bb = row[U64(0)]
    bq = row[ud]
    bbt = tick_buf[U64(0)]
    na = top_levels(qbuf, ist, s, -1, depth, tick_buf, qty_buf)
    una = U64(na)
    sa = 0.0
    for c in range(ud):
        if c < una:
            q = qty_buf[c]
            row[U64(2) * ud + c] = F.tick_price(tick_buf[c], tk, inv)
            row[U64(3) * ud + c] = q
            sa += q
        else:
            row[U64(2) * ud + c] = nan
            row[U64(3) * ud + c] = nan
    ba = row[U64(2) * ud]
    aq = row[U64(3) * ud]
    hb = nb > 0
    ha = na > 0
    f0 = U64(4) * ud
    if hb and ha:  # from ticks: exact decimal-looking values (0.02, not 0.01999999999999602)
        bat = tick_buf[U64(0)]
        row[f0] = 0.5 * F.tick_price(bbt + bat, tk, inv)
        row[f0 + U64(1)] = F.tick_price(bat - bbt, tk, inv)
    else:
        row[f0] = nan
        row[f0 + U64(1)] = nan
    row[f0 + U64(2)] = F.microprice(bb, bq, ba, aq, hb, ha)
    row[f0 + U64(3)] = F.imbalance(sb, sa) if (hb or ha) else nan
    row[f0 + U64(4)] = fst[s, F_LAST_PX]
    row[f0 + U64(5)] = fst[s, F_AGG]
    row[f0 + U64(6)] = F.vwap_value(fst, s, ist[s, I_VW_LEN])
    row[f0 + U64(7)] = F.vol_value(fst, s, ist[s, I_NVOL])
    for sd in range(2):
        n = ist[s, I_NST + sd]
        tot = 0.0
        for k in range(n):
            tot += st_qty[s, sd, k]
        row[f0 + U64(8 + 2 * sd)] = n
        row[f0 + U64(9 + 2 * sd)] = tot


@njit(cache=True, _nrt=False)
def _same(a, b):
    return a == b or (a != a and b != b)


@njit(cache=True, _nrt=False)
def emit_row(qbuf, ist, fst, st_qty, last_row, ip, s, ts, seq, out_ts, out_sym, out_seq, r, tick_buf, qty_buf,
             row_buf, r0):
    """Emit symbol `s`'s row as row `r` if the mode says so (on change / every N / per interval).

    The float values go row-major into the block `row_buf[r - r0]` (rows r0.. are not yet in
    the column-major output; `_flush_rows` moves a full block there column by column): one
    row's values scattered over ncols columns far apart cost more than building the row.
    An unchanged row leaves its slot to be overwritten.
    """
    mode = ip[P_MODE]
    if mode == MODE_EVERY:
        ist[s, I_NMSG] += 1
        if ist[s, I_NMSG] % ip[P_EVERY] != 0:
            return r
    elif mode == MODE_INTERVAL:
        if ist[s, I_HASEMIT] != 0 and ts - ist[s, I_LASTEMIT] < ip[P_INTERVAL]:
            return r
    row = row_buf[U64(r - r0)]
    build_row(qbuf, ist, fst, st_qty, s, ip[P_DEPTH], row, tick_buf, qty_buf)
    ncol = U64(row_buf.shape[1])
    last = last_row[s]
    if mode != MODE_EVERY and ist[s, I_HASEMIT] != 0:
        same = True
        for c in range(ncol):
            if not _same(row[c], last[c]):
                same = False
                break
        if same:
            return r
    ur = U64(r)
    for c in range(ncol):
        last[c] = row[c]
    ist[s, I_HASEMIT] = 1
    ist[s, I_LASTEMIT] = ts
    out_ts[ur] = ts
    out_sym[ur] = s
    out_seq[ur] = seq
    return r + 1


@njit(cache=True, _nrt=False)
def _flush_rows(out_f, row_buf, r0, r):
    """Copy the block rows r0..r-1 from row-major `row_buf` into column-major `out_f`: its
    first out_f.shape[0] columns (output without the stale-depth columns omits those)."""
    m = U64(r - r0)
    ur0 = U64(r0)
    for c in range(U64(min(out_f.shape[0], row_buf.shape[1]))):
        for k in range(m):
            out_f[c, ur0 + k] = row_buf[k, c]


# ----------------------------------------------------------------------------------------------
# the event loop


@njit(cache=True, _nrt=False)
def _load(ist, s):
    """The read-only hot scalars of symbol `s` (see `process`); the last ts is NO_TS when none was seen."""
    lastts = ist[s, I_LASTTS] if ist[s, I_HASTS] != 0 else NO_TS
    return ist[s], ist[s, I_BASE], ist[s, I_W], ist[s, I_OFF], ist[s, I_BASESET], ist[s, I_INSNAP], ist[s, I_VIEW], lastts


@njit(cache=True, _nrt=False)
def _store(ist, s, lastts):
    """Write back the one hot scalar `process` keeps in a register (the book counters and best
    ticks are updated in place in `ist`)."""
    if lastts != NO_TS:
        ist[s, I_LASTTS] = lastts
        ist[s, I_HASTS] = 1


@njit(cache=True, _nrt=False)
def message_features(fst, ist, vw_ts, vw_pq, vw_q, s, now, vwin, alpha, nb, na, bb, ba):
    """Message-end feature upkeep: reset the per-message trade range, age the VWAP window to
    (now − vwin, now], and fold the log mid return into the EWMA variance (a return only between
    two defined mids that differ; an undefined mid breaks the chain).

    The mid is worked out only when its key (bid + ask ticks, `I_MIDKEY`) moved since the last
    upkeep: the same key gives the same mid, so the previous mid and the variance stand as they
    are (a trade's or the VWAP window's upkeep skips a division and the compare)."""
    fst[s, F_MSG_TMIN] = np.inf
    fst[s, F_MSG_TMAX] = -np.inf
    vwlen = ist[s, I_VW_LEN]
    if vwlen > 0 and vw_ts[s, ist[s, I_VW_HEAD]] <= now - vwin:
        h, k = F.vwap_evict(fst, vw_ts, vw_pq, vw_q, s, ist[s, I_VW_HEAD], vwlen, now, vwin)
        ist[s, I_VW_HEAD] = h
        ist[s, I_VW_LEN] = k
    key = bb + ba if (nb > 0 and na > 0) else NO_MID
    if key == ist[s, I_MIDKEY]:
        return
    ist[s, I_MIDKEY] = key
    prev = fst[s, F.F_PREV_MID]
    if nb > 0 and na > 0:
        mid = 0.5 * F.tick_price(bb + ba, fst[s, F_TICK], fst[s, F.F_INV])
        if mid > 0.0:
            if prev == prev and mid != prev:
                ret = np.log(mid / prev)
                if ist[s, I_NVOL] == 0:
                    fst[s, F.F_VAR] = ret * ret
                else:
                    fst[s, F.F_VAR] += alpha * (ret * ret - fst[s, F.F_VAR])
                ist[s, I_NVOL] += 1
            fst[s, F.F_PREV_MID] = mid
            return
    fst[s, F.F_PREV_MID] = np.nan


@njit(cache=True, _nrt=False)
def trade_features(fst, ist, vw_ts, vw_pq, vw_q, s, now, side, px, qty, vwin, bid_qty, ask_qty, has_bid, has_ask):
    """A trade: aggressive-trade ratio against the book before it, last price, VWAP window.

    Returns False (nothing changed) when the VWAP ring is full and must grow first.
    """
    vwlen = ist[s, I_VW_LEN]
    head = ist[s, I_VW_HEAD]
    if vwlen > 0 and vw_ts[s, head] <= now - vwin:
        head, vwlen = F.vwap_evict(fst, vw_ts, vw_pq, vw_q, s, head, vwlen, now, vwin)
        ist[s, I_VW_HEAD] = head
        ist[s, I_VW_LEN] = vwlen
    if vwlen >= vw_ts.shape[1]:
        return False
    fst[s, F_AGG] = F.agg_trade_ratio(qty, side, bid_qty, ask_qty, has_bid, has_ask)
    ist[s, I_VW_LEN] = F.vwap_push(fst, vw_ts, vw_pq, vw_q, s, head, vwlen, now, px, qty)
    tick_features(fst, s, px)  # last price and the per-message trade range
    return True


@njit(cache=True, _nrt=False)
def _time_check(g, rows, i, s, t_ns, lastts):
    """Event `i` of symbol `s` at `t_ns` against the symbol's latest ts: a step backwards is
    counted in `g` (the first one's row and symbol kept), a warning, not an error; returns the
    latest ts."""
    if t_ns < lastts:
        if g[G_BACK] == 0:
            g[G_BACKROW] = rows[i]
            g[G_BACKSYM] = s
        g[G_BACK] += 1
        return lastts
    return t_ns


@njit(cache=True, _nrt=False)
def count_crossed(g, nb, na, bb, ba, row, s):
    """A message of symbol `s` ended with these book counts and best ticks: count it in `g` when
    the book is locked or crossed (the first such message's row and symbol are kept)."""
    if nb > 0 and na > 0 and bb >= ba:
        if bb == ba:
            g[G_LOCKED] += 1
        else:
            g[G_CROSSED] += 1
        if g[G_XROW] < 0:
            g[G_XROW] = row
            g[G_XSYM] = s


@njit(cache=True, _nrt=False)
def tick_features(fst, s, px):
    """A `tick` (last price without a size): last price and the per-message trade range."""
    fst[s, F_LAST_PX] = px
    if px < fst[s, F_MSG_TMIN]:
        fst[s, F_MSG_TMIN] = px
    if px > fst[s, F_MSG_TMAX]:
        fst[s, F_MSG_TMAX] = px


@njit(cache=True, _nrt=False)
def _feature_keys(ist, fst, vw_ts, s, vwin):
    """What makes symbol `s`'s next message end need feature upkeep: (its mid key at the last
    upkeep, the ts from which upkeep is due). Due from the ts its oldest VWAP trade expires, or
    at once when it had a trade or tick since its last upkeep (its per-message trade range is
    set: min ≤ max; inf/−inf when reset), which a snapshot can defer past other symbols' messages."""
    due = NO_DUE
    if fst[s, F_MSG_TMIN] <= fst[s, F_MSG_TMAX]:
        due = np.iinfo(np.int64).min
    elif ist[s, I_VW_LEN] > 0:
        due = vw_ts[s, ist[s, I_VW_HEAD]] + vwin
    return ist[s, I_MIDKEY], due


# why the tight loop of `process` stopped
R_END, R_MSGEND, R_SWITCH, R_RECENTRE, R_OTHER = 0, 1, 2, 3, 4


@njit(cache=True, _nrt=False, nogil=True)  # nogil: the Parquet writer thread encodes meanwhile
def process(ts, sym, kind, side, tick, price, qty, seq, rows, start, final,
            qbuf, ist, fst, vw_ts, vw_pq, vw_q, st_tick, st_qty, st_ts, pv_tick, pv_qty, last_row,
            g, ip, fp, out_ts, out_sym, out_seq, out_f, r, tick_buf, qty_buf, row_buf):
    """Apply events `start..n` (already validated) and act at every message end.

    Returns (status, i, r): ST_OK with i = n when done, or a grow request (ST_GROW_BOOK /
    ST_GROW_VWAP for symbol g[G_NEED_SYM]) with `i` the event to resume from after growing; `r`
    is the next free output row. The message of the last event stays pending in `g` (its end is
    only known from the next event) unless `final` is true (end of stream), so messages may span
    batches.

    Every applied event's ts is checked against the latest ts of its symbol (a backwards step is
    counted in `g`, a warning, not an error). At a message end (outside a snapshot): count a
    locked/crossed book, prune stale depth, keep the features (VWAP window, mid-return
    volatility), then (unless MODE_NONE) emit a row by the mode.

    Speed: a tight inner loop applies level events to the cached symbol and ends messages that
    need nothing but the crossed check; with features on and neither rows nor a top-N view (the
    engine's mode) it also folds a trade into the aggressive-trade ratio and the VWAP ring and
    runs a message end's feature upkeep with one call, in place. Everything else (another
    symbol, a recentre, other trades and ticks, snapshots, rows) makes it stop with a reason
    that the outer loop handles with helper calls before resuming. A trade that stopped it ends
    its own one-event message there, without a second trip through the loop. (Stopping and
    resuming costs more than the one call: measured on the synthetic stream, features-only
    went from 0.55x to 0.59x of the minimal book when upkeep stopped breaking out, and
    level-only messages lost ~3%.)

    The current symbol's read-only scalars (base, window, offset, flags) and its last ts live in
    locals; its book counters, best ticks and touched bounds are updated in place in its `ist`
    row, indexed by side (bid 0, ask 1: the (I_BB, I_BA), (I_NB, I_NA), (I_BLO, I_AHI) pairs),
    so the level update has no branch on the side and "new level / update / delete" and "beats
    the best" are selects, not mispredicted branches; only the rescan after deleting the best
    level branches. That also keeps the loop's live values within the registers (a dozen more
    loop-carried locals cost spills on every event; so did inlining the VWAP eviction loop into
    the trade path). The pending message's ts is not carried per event: it is `ts[pidx]`. Array
    indexes in the loop are cast to uint64 (U64): numba emits negative-index wraparound code for
    every signed index, which cost ~25% here.
    Measured on bench/synthetic.py: the side branch cost ~10%, a separate time-check pass ~10%.
    """
    n = len(ts)
    mode = ip[P_MODE]
    vwin = ip[P_VWAP_WIN]
    alpha = fp[FP_VOL_ALPHA]
    feats = ip[P_FEATURES] != 0
    slow_end = mode != MODE_NONE
    pend = g[G_PEND]
    pseq = g[G_PSEQ]
    pts0 = g[G_PTS]  # ts of the pending message when it came from an earlier call
    prow = g[G_PROW]  # global row of the pending message's last event when it came from an earlier call
    pidx = -1  # its index in this call's arrays, once it comes from this call
    nmsg = 0
    status = ST_OK
    cs = -1
    if pend != 0:
        cs = g[G_PSYM]  # while a message is pending, it belongs to the current symbol cs
    elif start < n:
        cs = sym[start]
    if cs < 0:
        return status, n, r  # nothing pending and no events
    (hs, base, w, off, bset, insnap, view, lastts) = _load(ist, cs)
    uwin = np.uint64(w) if bset != 0 else np.uint64(0)  # unsigned window check: 0 ≤ j < w in one compare
    endwork = 2 if (slow_end or view > 0) else (1 if feats else 0)  # at a message end: 2 always stop, 1 when features are due
    midkey, due = _feature_keys(ist, fst, vw_ts, cs, vwin)
    vcap = vw_ts.shape[1]
    r0 = r  # rows r0..r-1 are in the row block, not yet in out_f
    i = start
    while True:
        # ---------------- tight loop: no calls in here
        reason = R_END
        while i < n:
            ui = U64(i)  # unsigned indexes: numba adds no negative-index wraparound code
            s = sym[ui]
            q = seq[ui]
            if pend != 0 and (cs != s or pseq != q):
                pend = 0
                if insnap == 0:
                    nmsg += 1
                    # `count_crossed`, written out: the call here cost ~5% of level-only updates.
                    # Best ticks first: one compare in the common case (they are stale on an
                    # empty side, so the counts are checked only when the ticks say crossed)
                    if hs[I_BB] >= hs[I_BA] and hs[I_NB] > 0 and hs[I_NA] > 0:
                        if hs[I_BB] == hs[I_BA]:
                            g[G_LOCKED] += 1
                        else:
                            g[G_CROSSED] += 1
                        if g[G_XROW] < 0:
                            g[G_XROW] = rows[pidx] if pidx >= 0 else prow
                            g[G_XSYM] = cs
                    if endwork != 0:
                        if endwork == 2:
                            reason = R_MSGEND
                            break
                        # feature upkeep only when something it depends on moved
                        key = hs[I_BB] + hs[I_BA] if (hs[I_NB] > 0 and hs[I_NA] > 0) else NO_MID
                        mts = ts[pidx] if pidx >= 0 else pts0
                        if key != midkey or mts >= due:
                            message_features(fst, ist, vw_ts, vw_pq, vw_q, cs, mts, vwin, alpha, hs[I_NB], hs[I_NA], hs[I_BB], hs[I_BA])
                            midkey = key  # what the upkeep stored; due: the oldest VWAP trade's expiry
                            due = vw_ts[U64(cs), U64(hs[I_VW_HEAD])] + vwin if hs[I_VW_LEN] > 0 else NO_DUE
            if s != cs:
                reason = R_SWITCH
                break
            k = kind[ui]
            if k == LEVEL:
                t = tick[ui]
                qv = qty[ui]
                j = t - base
                if np.uint64(j) >= uwin:
                    if qv != 0.0:
                        reason = R_RECENTRE
                        break
                    # deleting a price we do not hold: nothing to do
                else:
                    # side-free: sd 0 bid / 1 ask indexes the (bid, ask) pairs of `ist` and the
                    # window halves; sg orients "better" (higher bid, lower ask)
                    add = qv != 0.0  # validated: qv ≥ 0
                    sd = 0 if side[ui] > 0 else 1
                    sg = 1 - 2 * sd
                    up = U64(off + sd * w + j)
                    old = qbuf[up]
                    qbuf[up] = qv
                    inb, ibb, ibl = U64(I_NB + sd), U64(I_BB + sd), U64(I_BLO + sd)
                    c = hs[inb]
                    bst = hs[ibb]
                    wst = hs[ibl]
                    x = t * sg
                    hs[ibb] = t if (add and (c == 0 or x > bst * sg)) else bst
                    hs[ibl] = t if (add and (c == 0 or x < wst * sg)) else wst
                    c += (1 if old == 0.0 else 0) - (0 if add else 1)
                    hs[inb] = c
                    if not add and t == bst and c > 0:  # the best level went: rescan outward
                        p = off + sd * w + j - sg
                        while qbuf[p] == 0.0:
                            p -= sg
                        hs[ibb] = base + (p - off - sd * w)
            elif k == TRADE and endwork == 1:
                # features without rows or a top-N view: the trade's features, call-free. Its
                # message end needs upkeep only for what `due` and `midkey` already track (the
                # per-message trade range serves stale depth only). A full ring or an expired
                # VWAP trade goes the slow way.
                vh = hs[I_VW_HEAD]
                vl = hs[I_VW_LEN]
                t_ns = ts[ui]
                if vl >= vcap or (vl > 0 and vw_ts[U64(cs), U64(vh)] <= t_ns - vwin):
                    reason = R_OTHER
                    break
                sdk = side[ui]
                if sdk > 0:
                    opp = qbuf[U64(off + w + hs[I_BA] - base)] if hs[I_NA] > 0 else 0.0
                else:
                    opp = qbuf[U64(off + hs[I_BB] - base)] if hs[I_NB] > 0 else 0.0
                px = price[ui]
                qv = qty[ui]
                fst[U64(cs), U64(F_AGG)] = F.agg_ratio(qv, sdk, opp)
                fst[U64(cs), U64(F_LAST_PX)] = px
                hs[I_VW_LEN] = F.vwap_push(fst, vw_ts, vw_pq, vw_q, cs, vh, vl, t_ns, px, qv)
                if vl == 0:
                    due = t_ns + vwin
            elif feats or (k != TRADE and k != TICK):
                reason = R_OTHER
                break
            lastts = _time_check(g, rows, i, cs, ts[ui], lastts)
            pend = 1
            pseq = q
            pidx = i
            i += 1
        # ---------------- the reason the tight loop stopped
        if reason == R_END:
            if not (final and pend != 0):
                break
            pend = 0
            if insnap == 0:
                nmsg += 1
                count_crossed(g, hs[I_NB], hs[I_NA], hs[I_BB], hs[I_BA], rows[pidx] if pidx >= 0 else prow, cs)
                reason = R_MSGEND
            else:
                break
        _store(ist, cs, lastts)
        nb = hs[I_NB]
        na = hs[I_NA]
        bb = hs[I_BB]
        ba = hs[I_BA]
        if reason == R_OTHER:  # trades/ticks with features, clear, snapshot_end
            k = kind[i]
            t_ns = ts[i]
            if k == TRADE or k == TICK:
                if k == TRADE:
                    bq = qbuf[off + bb - base] if nb > 0 else 0.0
                    aq = qbuf[off + w + ba - base] if na > 0 else 0.0
                    if not trade_features(fst, ist, vw_ts, vw_pq, vw_q, cs, t_ns, side[i], price[i], qty[i], vwin,
                                          bq, aq, nb > 0, na > 0):
                        g[G_NEED_SYM] = cs
                        status = ST_GROW_VWAP
                        break
                else:
                    tick_features(fst, cs, price[i])
                lastts = _time_check(g, rows, i, cs, t_ns, lastts)
                pend = 1
                pseq = seq[i]
                pidx = i
                i += 1
                # the symbol's book and window are as they were: no reload. When the next event
                # starts another message, this one ends here, without a trip through the tight loop
                if insnap != 0 or i >= n or (sym[i] == cs and seq[i] == pseq):
                    midkey, due = _feature_keys(ist, fst, vw_ts, cs, vwin)
                    continue
                pend = 0
                nmsg += 1
                count_crossed(g, nb, na, bb, ba, rows[pidx], cs)
                reason = R_MSGEND
        if reason == R_MSGEND:  # the rest of a message end (the crossed check is done)
            mts = ts[pidx] if pidx >= 0 else pts0
            if view > 0 and (ist[cs, I_NST] > 0 or ist[cs, I_NST + 1] > 0):
                stale_prune(qbuf, ist, fst, st_tick, st_qty, st_ts, cs, mts, ip[P_STALE_AGE])
            if feats:
                message_features(fst, ist, vw_ts, vw_pq, vw_q, cs, mts, vwin, alpha, nb, na, bb, ba)
            if mode != MODE_NONE:
                r = emit_row(qbuf, ist, fst, st_qty, last_row, ip, cs, mts, pseq, out_ts, out_sym, out_seq, r,
                             tick_buf, qty_buf, row_buf, r0)
                if r - r0 == row_buf.shape[0]:
                    _flush_rows(out_f, row_buf, r0, r)
                    r0 = r
            if i >= n:
                break
            midkey, due = _feature_keys(ist, fst, vw_ts, cs, vwin)
            continue  # the event at i is processed by the tight loop (pend is 0 now)
        if reason == R_SWITCH:
            cs = sym[i]
        elif reason == R_RECENTRE:
            st = recentre(qbuf, ist, g, cs, tick[i])
            if st != ST_OK:
                status = st
                break
            # the tight loop applies the event now that it fits
        else:  # R_OTHER: clear, snapshot_end
            if k == CLEAR:
                clear_book(qbuf, ist, pv_tick, pv_qty, cs)
            elif k == SNAPSHOT_END and ist[cs, I_INSNAP] != 0:
                ist[cs, I_INSNAP] = 0
                if ist[cs, I_VIEW] > 0:
                    end_view(qbuf, ist, fst, pv_tick, pv_qty, st_tick, st_qty, st_ts, cs, t_ns, ip[P_STALE_AGE])
            _store(ist, cs, _time_check(g, rows, i, cs, t_ns, lastts))  # the reload below reads it back
            pend = 1
            pseq = seq[i]
            pidx = i
            i += 1
        (hs, base, w, off, bset, insnap, view, lastts) = _load(ist, cs)
        uwin = np.uint64(w) if bset != 0 else np.uint64(0)
        endwork = 2 if (slow_end or view > 0) else (1 if feats else 0)
        midkey, due = _feature_keys(ist, fst, vw_ts, cs, vwin)
    _store(ist, cs, lastts)
    g[G_PEND] = pend
    g[G_PSYM] = cs
    g[G_PSEQ] = pseq
    if pidx >= 0:
        g[G_PTS] = ts[pidx]
        g[G_PROW] = rows[pidx]
    g[G_MESSAGES] += nmsg
    _flush_rows(out_f, row_buf, r0, r)
    return status, i, r


# ----------------------------------------------------------------------------------------------
# Python side: the state container and the grow-and-resume loop


def _pool_array(n: int, dtype) -> np.ndarray:
    """An uninitialised writable NumPy array of `n` items backed by Arrow's memory pool."""
    import pyarrow as pa

    dt = np.dtype(dtype)
    return np.frombuffer(pa.allocate_buffer(max(int(n), 1) * dt.itemsize), dtype=dt)[: int(n)]


class BookState:
    """All kernel state for a growing set of symbols; the engine and `sq book` share it.

    Symbols are the dense ids of a `SymbolRegistry`; `ensure(n, tick_sizes, views)` adds rows for
    new ids. `run(...)` applies a validated batch of events, growing windows and rings when the
    kernel asks, and returns the number of rows written to the output buffers.
    """

    def __init__(self, *, depth: int = 5, mode: int = MODE_CHANGE, every: int = 1, interval_ns: int = 0,
                 vwap_window_ns: int = 60_000_000_000, vol_halflife: float = 100.0,
                 stale_max_age_ns: int = 60_000_000_000, features: bool = True):
        if mode != MODE_NONE and not features:
            raise ValueError("book rows carry features: features=False needs mode=MODE_NONE")
        self.depth = int(depth)
        self.ncols = n_columns(self.depth)
        self.ip = np.zeros(NP, dtype=np.int64)
        self.ip[P_DEPTH] = self.depth
        self.ip[P_MODE] = mode
        self.ip[P_EVERY] = max(1, int(every))
        self.ip[P_INTERVAL] = int(interval_ns)
        self.ip[P_VWAP_WIN] = int(vwap_window_ns)
        self.ip[P_STALE_AGE] = int(stale_max_age_ns)
        self.ip[P_FEATURES] = 1 if features else 0
        self.fp = np.array([F.vol_alpha(vol_halflife)], dtype=np.float64)
        self.g = np.zeros(NG, dtype=np.int64)
        self.g[G_XROW] = -1
        self.g[G_BACKROW] = -1
        self.n = 0
        self.qbuf = np.zeros(0, dtype=np.float64)
        self.ist = np.zeros((0, NI), dtype=np.int64)
        self.fst = np.zeros((0, NF), dtype=np.float64)
        self.vw_ts = np.zeros((0, INITIAL_VWAP_CAP), dtype=np.int64)
        self.vw_pq = np.zeros((0, INITIAL_VWAP_CAP), dtype=np.float64)
        self.vw_q = np.zeros((0, INITIAL_VWAP_CAP), dtype=np.float64)
        self.st_tick = np.zeros((0, 2, STALE_CAP), dtype=np.int64)
        self.st_qty = np.zeros((0, 2, STALE_CAP), dtype=np.float64)
        self.st_ts = np.zeros((0, 2, STALE_CAP), dtype=np.int64)
        self.pv_tick = np.zeros((0, 2, VIEW_CAP), dtype=np.int64)
        self.pv_qty = np.zeros((0, 2, VIEW_CAP), dtype=np.float64)
        self.last_row = np.zeros((0, self.ncols), dtype=np.float64)
        self._tick_buf = np.zeros(max(self.depth, VIEW_CAP), dtype=np.int64)
        self._qty_buf = np.zeros(max(self.depth, VIEW_CAP), dtype=np.float64)
        self._row_buf = np.zeros((ROW_BLOCK, self.ncols), dtype=np.float64)

    # -- symbols
    def ensure(self, n: int, tick_sizes, views) -> None:
        """Grow to `n` symbols; `tick_sizes[s]` and `views[s]` (0 = full depth) for the new ids."""
        old = self.n
        if n <= old:
            return
        k = n - old

        def grow(a, fill=0):
            extra = np.full((k,) + a.shape[1:], fill, dtype=a.dtype)
            return np.concatenate([a, extra])

        self.ist = grow(self.ist)
        self.fst = grow(self.fst)
        self.vw_ts, self.vw_pq, self.vw_q = grow(self.vw_ts), grow(self.vw_pq), grow(self.vw_q)
        self.st_tick, self.st_qty, self.st_ts = grow(self.st_tick), grow(self.st_qty), grow(self.st_ts)
        self.pv_tick, self.pv_qty = grow(self.pv_tick), grow(self.pv_qty)
        self.last_row = grow(self.last_row, np.nan)
        total = len(self.qbuf)
        for s in range(old, n):
            self.ist[s, I_OFF] = total
            self.ist[s, I_W] = INITIAL_WINDOW
            total += 2 * INITIAL_WINDOW
            self.ist[s, I_VIEW] = min(int(views[s]), VIEW_CAP)
            self.fst[s, F.F_TICK] = float(tick_sizes[s])
            self.fst[s, F.F_INV] = F.tick_inverse(float(tick_sizes[s]))
            self.fst[s, F.F_LAST_PX] = np.nan
            self.fst[s, F.F_AGG] = np.nan
            self.fst[s, F.F_VAR] = np.nan
            self.fst[s, F.F_PREV_MID] = np.nan
            self.fst[s, F.F_MSG_TMIN] = np.inf
            self.fst[s, F.F_MSG_TMAX] = -np.inf
            self.ist[s, I_MIDKEY] = NO_MID
        self.qbuf = np.concatenate([self.qbuf, np.zeros(total - len(self.qbuf))])
        self.n = n

    def grow_window(self, s: int, span: int) -> None:
        """Give symbol `s` a window ≥ 4× its live span (repacking the flat buffer), content centred."""
        w = int(self.ist[s, I_W])
        nw = w
        while nw < 4 * span:
            nw *= 2
        if nw > MAX_WINDOW:
            raise OverflowError(span)
        shift = (nw - w) // 2
        sizes = self.ist[: self.n, I_W].copy()
        sizes[s] = nw
        new = np.zeros(int(2 * sizes.sum()), dtype=np.float64)
        pos = 0
        for j in range(self.n):
            off, wj = int(self.ist[j, I_OFF]), int(self.ist[j, I_W])
            if j == s:
                new[pos + shift: pos + shift + w] = self.qbuf[off: off + w]
                new[pos + nw + shift: pos + nw + shift + w] = self.qbuf[off + w: off + 2 * w]
            else:
                new[pos: pos + 2 * wj] = self.qbuf[off: off + 2 * wj]
            self.ist[j, I_OFF] = pos
            pos += 2 * int(sizes[j])
        self.ist[s, I_W] = nw
        self.ist[s, I_BASE] -= shift
        self.qbuf = new

    def grow_vwap(self) -> None:
        """Double every symbol's VWAP ring (unrolling each ring so its head is at 0)."""
        cap = self.vw_ts.shape[1]
        for name in ("vw_ts", "vw_pq", "vw_q"):
            a = getattr(self, name)
            b = np.empty((a.shape[0], 2 * cap), dtype=a.dtype)  # slots past a ring's length are never read
            for s in range(self.n):
                h = int(self.ist[s, I_VW_HEAD])
                b[s, : cap - h] = a[s, h:]
                b[s, cap - h: cap] = a[s, :h]
            setattr(self, name, b)
        self.ist[: self.n, I_VW_HEAD] = 0

    # -- running
    def outputs(self, cap: int, ncols: int | None = None):
        """Fresh output buffers for up to `cap` rows: ts, symbol, seq, column-major floats.

        The memory comes from Arrow's pool (mimalloc/jemalloc), which keeps freed blocks for
        reuse: `sq book` hands these buffers zero-copy to Arrow and gets a new set per batch, and
        fresh NumPy blocks this size are new mmaps (page faults and page zeroing every batch).
        `ncols` (≤ ncols of a row): only the first `ncols` float columns are kept, e.g. without
        the 4 stale-depth columns when the caller does not show them.
        """
        nc = self.ncols if ncols is None else min(int(ncols), self.ncols)
        return (_pool_array(cap, np.int64), _pool_array(cap, np.int32), _pool_array(cap, np.int64),
                _pool_array(nc * cap, np.float64).reshape(nc, cap))

    def _state(self):
        return (self.qbuf, self.ist, self.fst, self.vw_ts, self.vw_pq, self.vw_q, self.st_tick, self.st_qty,
                self.st_ts, self.pv_tick, self.pv_qty, self.last_row, self.g, self.ip, self.fp)

    def run(self, ts, sym, kind, side, tick, price, qty, seq, rows, out, r: int = 0, final: bool = False) -> int:
        """Apply validated event arrays; rows go to `out` from index r; returns the new row count.
        `final`: the last event ends its message (no later event belongs to it): that message
        is completed now instead of when the next event shows it ended.

        Raises OverflowError(symbol id) when a symbol's live prices span more than MAX_WINDOW/2 ticks.
        """
        i = 0
        while True:
            st, i, r = process(ts, sym, kind, side, tick, price, qty, seq, rows, i, final, *self._state(), *out, r,
                               self._tick_buf, self._qty_buf, self._row_buf)
            if st == ST_OK:
                return r
            s = int(self.g[G_NEED_SYM])
            if st == ST_GROW_BOOK:
                try:
                    self.grow_window(s, int(self.g[G_NEED_SPAN]))
                except OverflowError:
                    raise OverflowError(s) from None
            else:
                self.grow_vwap()

    def flush(self, out, r: int = 0) -> int:
        """Complete the pending message at the end of the stream; returns the new row count."""
        e64, e32 = np.zeros(0, np.int64), np.zeros(0, np.int32)
        ef, e8, eu8 = np.zeros(0, np.float64), np.zeros(0, np.int8), np.zeros(0, np.uint8)
        st, _, r = process(e64, e32, eu8, e8, e64, ef, ef, e64, e64, 0, True, *self._state(), *out, r,
                           self._tick_buf, self._qty_buf, self._row_buf)
        return r
