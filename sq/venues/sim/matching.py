"""Price–time (FIFO) matching kernels of the simulated exchange, in numba.

One book per symbol (a `SimState`). Each level keeps a doubly linked FIFO of order slots, so
adding at the tail, cancelling any order and matching from the head are O(1); the best bid/ask
are exact after every step (a level that empties at the top triggers a scan to the next one).

Every exchange action (a flow event or a gateway request) is wrapped by `begin_action` /
`end_action`: it gets one `seq`, and every market row it causes — `trade` rows (side = aggressor
side) and `level` rows (new total at a price, 0 = gone, `orders` = resting orders there) — is
appended to the state's output buffer with that seq. An action that changes nothing gives its
seq back, so seqs stay strictly increasing and every seq has rows. Fills of gateway-owned
orders (owner 1) are appended to the fill buffer.
"""

from __future__ import annotations

from numba import njit

from sq.venues.sim.state import (
    R_BEST_ASK, R_BEST_BID, R_NFILL, R_NFREE, R_NLIVE, R_NORD_BID, R_NOUT, R_NOW, R_SEQ, R_TRADE, R_W,
)

KIND_LEVEL = 1
KIND_TRADE = 2
KIND_CLEAR = 3
KIND_SNAPSHOT_END = 4

LIQ_MAKER = 1
LIQ_TAKER = 2

# time in force codes of `submit`
TIF_GTC = 0
TIF_IOC = 1
TIF_FOK = 2
TIF_POST_ONLY = 3

# submit / modify results
OK = 0
REJECT_POST_ONLY = 1
REJECT_FOK = 2
REJECT_NO_SLOT = 3


@njit(cache=True, inline="always", _nrt=False)
def emit(st, kind, side, lvl, qty, cnt):
    """Append one market row stamped with the current clock and seq."""
    n = st.ints[R_NOUT]
    st.out_ts[n] = st.ints[R_NOW]
    st.out_kind[n] = kind
    st.out_side[n] = side
    st.out_px[n] = lvl
    st.out_qty[n] = qty
    st.out_ord[n] = cnt
    st.out_seq[n] = st.ints[R_SEQ]
    st.ints[R_NOUT] = n + 1


@njit(cache=True, inline="always", _nrt=False)
def emit_level(st, si, lvl):
    emit(st, KIND_LEVEL, 1 - 2 * si, lvl, st.lqty[si, lvl], st.lcnt[si, lvl])


@njit(cache=True, inline="always", _nrt=False)
def begin_action(st, t):
    """Start an exchange action at time t (never before the clock: time is monotone)."""
    if t > st.ints[R_NOW]:
        st.ints[R_NOW] = t
    st.ints[R_SEQ] += 1
    return st.ints[R_NOUT]


@njit(cache=True, inline="always", _nrt=False)
def end_action(st, n0):
    """Give the seq back if the action emitted nothing."""
    if st.ints[R_NOUT] == n0:
        st.ints[R_SEQ] -= 1


@njit(cache=True, inline="always", _nrt=False)
def alloc(st):
    n = st.ints[R_NFREE]
    if n == 0:
        return -1
    st.ints[R_NFREE] = n - 1
    return st.free[n - 1]


@njit(cache=True, inline="always", _nrt=False)
def release(st, slot):
    st.o_oid[slot] = -1
    st.o_qty[slot] = 0
    n = st.ints[R_NFREE]
    st.free[n] = slot
    st.ints[R_NFREE] = n + 1


@njit(cache=True, inline="always", _nrt=False)
def live_add(st, slot):
    n = st.ints[R_NLIVE]
    st.live[n] = slot
    st.o_livepos[slot] = n
    st.ints[R_NLIVE] = n + 1


@njit(cache=True, inline="always", _nrt=False)
def live_remove(st, slot):
    p = st.o_livepos[slot]
    n = st.ints[R_NLIVE] - 1
    last = st.live[n]
    st.live[p] = last
    st.o_livepos[last] = p
    st.o_livepos[slot] = -1
    st.ints[R_NLIVE] = n


@njit(cache=True, inline="always", _nrt=False)
def link(st, slot):
    """Append a slot at the tail of its level's FIFO and update totals and the best price."""
    si = st.o_side[slot]
    lvl = st.o_lvl[slot]
    t = st.tail[si, lvl]
    st.o_prev[slot] = t
    st.o_next[slot] = -1
    if t == -1:
        st.head[si, lvl] = slot
    else:
        st.o_next[t] = slot
    st.tail[si, lvl] = slot
    st.lqty[si, lvl] += st.o_qty[slot]
    st.lcnt[si, lvl] += 1
    st.ints[R_NORD_BID + si] += 1
    if si == 0:
        if lvl > st.ints[R_BEST_BID]:
            st.ints[R_BEST_BID] = lvl
    else:
        if lvl < st.ints[R_BEST_ASK]:
            st.ints[R_BEST_ASK] = lvl


@njit(cache=True, inline="always", _nrt=False)
def unlink(st, slot):
    """Remove a slot (with its remaining qty) from its level; rescan the best if it emptied."""
    si = st.o_side[slot]
    lvl = st.o_lvl[slot]
    p = st.o_prev[slot]
    nx = st.o_next[slot]
    if p == -1:
        st.head[si, lvl] = nx
    else:
        st.o_next[p] = nx
    if nx == -1:
        st.tail[si, lvl] = p
    else:
        st.o_prev[nx] = p
    st.o_next[slot] = -1
    st.o_prev[slot] = -1
    st.lqty[si, lvl] -= st.o_qty[slot]
    st.lcnt[si, lvl] -= 1
    st.ints[R_NORD_BID + si] -= 1
    if st.lcnt[si, lvl] == 0:
        w = st.ints[R_W]
        if si == 0 and lvl == st.ints[R_BEST_BID]:
            if st.ints[R_NORD_BID] == 0:
                st.ints[R_BEST_BID] = -1
            else:
                b = lvl - 1
                while b >= 0 and st.lcnt[0, b] == 0:
                    b -= 1
                st.ints[R_BEST_BID] = b
        elif si == 1 and lvl == st.ints[R_BEST_ASK]:
            if st.ints[R_NORD_BID + 1] == 0:
                st.ints[R_BEST_ASK] = w
            else:
                a = lvl + 1
                while a < w and st.lcnt[1, a] == 0:
                    a += 1
                st.ints[R_BEST_ASK] = a


@njit(cache=True, inline="always", _nrt=False)
def record_fill(st, oid, lvl, qty, liq, side):
    n = st.ints[R_NFILL]
    st.f_oid[n] = oid
    st.f_px[n] = lvl
    st.f_qty[n] = qty
    st.f_ts[n] = st.ints[R_NOW]
    st.f_liq[n] = liq
    st.f_side[n] = side
    st.f_seq[n] = st.ints[R_SEQ]
    st.f_trade[n] = st.ints[R_TRADE]
    st.ints[R_NFILL] = n + 1


@njit(cache=True, inline="always", _nrt=False)
def crosses(st, si, lvl):
    """Would an order on side si at lvl trade against the resting book?"""
    if si == 0:
        return st.ints[R_BEST_ASK] < st.ints[R_W] and lvl >= st.ints[R_BEST_ASK]
    return st.ints[R_BEST_BID] >= 0 and lvl <= st.ints[R_BEST_BID]


@njit(cache=True, inline="always", _nrt=False)
def available(st, si, lvl):
    """Quantity an order on side si limited at lvl could take from the book now."""
    total = 0
    if si == 0:
        a = st.ints[R_BEST_ASK]
        w = st.ints[R_W]
        while a < w and a <= lvl:
            total += st.lqty[1, a]
            a += 1
    else:
        b = st.ints[R_BEST_BID]
        while b >= 0 and b >= lvl:
            total += st.lqty[0, b]
            b -= 1
    return total


@njit(cache=True, _nrt=False)  # called, not inlined: its callers compile it once between them
def match(st, si, limit_lvl, qty, taker_oid, taker_owned):
    """Match an incoming order against the opposite side in price–time order; return the rest.

    Emits one trade row per maker order touched and then one level row per level touched.
    """
    osi = 1 - si
    aside = 1 - 2 * si
    w = st.ints[R_W]
    while qty > 0:
        if si == 0:
            lvl = st.ints[R_BEST_ASK]
            if lvl >= w or lvl > limit_lvl:
                break
        else:
            lvl = st.ints[R_BEST_BID]
            if lvl < 0 or lvl < limit_lvl:
                break
        slot = st.head[osi, lvl]
        while qty > 0 and slot != -1:
            mq = st.o_qty[slot]
            f = qty if qty < mq else mq
            st.ints[R_TRADE] += 1
            emit(st, KIND_TRADE, aside, lvl, f, -1)
            if st.o_owner[slot] != 0:
                record_fill(st, st.o_oid[slot], lvl, f, LIQ_MAKER, -aside)
            if taker_owned:
                record_fill(st, taker_oid, lvl, f, LIQ_TAKER, aside)
            qty -= f
            nxt = st.o_next[slot]
            if f == mq:
                unlink(st, slot)
                if st.o_owner[slot] == 0:
                    live_remove(st, slot)
                release(st, slot)
            else:
                st.o_qty[slot] = mq - f
                st.lqty[osi, lvl] -= f
            slot = nxt
        emit_level(st, osi, lvl)
    return qty


@njit(cache=True, inline="always", _nrt=False)
def add_resting(st, si, lvl, qty, owner, oid):
    """Rest qty at lvl (at the back of the queue); emit the level row. -1 if the pool is full."""
    slot = alloc(st)
    if slot == -1:
        return -1
    st.o_side[slot] = si
    st.o_lvl[slot] = lvl
    st.o_qty[slot] = qty
    st.o_owner[slot] = owner
    st.o_oid[slot] = oid
    link(st, slot)
    if owner == 0:
        live_add(st, slot)
    emit_level(st, si, lvl)
    return slot


@njit(cache=True, inline="always", _nrt=False)
def cancel_slot(st, slot):
    """Remove a resting order and emit its level row; return the quantity cancelled."""
    q = st.o_qty[slot]
    si = st.o_side[slot]
    lvl = st.o_lvl[slot]
    unlink(st, slot)
    if st.o_owner[slot] == 0:
        live_remove(st, slot)
    release(st, slot)
    emit_level(st, si, lvl)
    return q


@njit(cache=True, inline="always", _nrt=False)
def _place(st, si, lvl, qty, tif, oid):
    """Body of submit (inside an action): returns (result, leaves after matching, slot)."""
    x = crosses(st, si, lvl)
    if tif == TIF_POST_ONLY and x:
        return REJECT_POST_ONLY, qty, -1
    if tif == TIF_FOK and available(st, si, lvl) < qty:
        return REJECT_FOK, qty, -1
    rem = qty
    if x:
        rem = match(st, si, lvl, qty, oid, True)
    slot = -1
    if rem > 0 and (tif == TIF_GTC or tif == TIF_POST_ONLY):
        slot = add_resting(st, si, lvl, rem, 1, oid)
        if slot == -1:
            return REJECT_NO_SLOT, rem, -1
    return OK, rem, slot


@njit(cache=True, _nrt=False)
def submit(st, si, lvl, qty, tif, oid, t):
    """A gateway order as one exchange action. Returns (result, leaves, slot or -1).

    `leaves` is what was left after matching: resting in `slot` for GTC/post-only, cancelled
    for IOC (and market orders, which are IOC at the far end of the ladder).
    """
    n0 = begin_action(st, t)
    res, rem, slot = _place(st, si, lvl, qty, tif, oid)
    end_action(st, n0)
    return res, rem, slot


@njit(cache=True, _nrt=False)
def cancel(st, slot, oid, t):
    """Cancel a gateway order if it still rests in `slot`; return the cancelled qty or -1."""
    if slot < 0 or slot >= len(st.o_oid) or st.o_oid[slot] != oid:
        return -1
    n0 = begin_action(st, t)
    q = cancel_slot(st, slot)
    end_action(st, n0)
    return q


@njit(cache=True, _nrt=False)
def modify(st, slot, oid, lvl, qty, t):
    """Change a resting gateway order to `qty` leaves at `lvl`, as one action.

    Same price and less quantity keeps the queue position; anything else loses it (the order
    goes to the back of the queue, and may trade if the new price crosses). Returns
    (result, leaves, new slot) or (-1, 0, -1) if the order no longer rests.
    """
    if slot < 0 or slot >= len(st.o_oid) or st.o_oid[slot] != oid:
        return -1, 0, -1
    n0 = begin_action(st, t)
    si = st.o_side[slot]
    old = st.o_lvl[slot]
    if lvl == old and qty <= st.o_qty[slot]:
        st.lqty[si, old] -= st.o_qty[slot] - qty
        st.o_qty[slot] = qty
        emit_level(st, si, old)
        end_action(st, n0)
        return OK, qty, slot
    cancel_slot(st, slot)
    res, rem, nslot = _place(st, si, lvl, qty, TIF_GTC, oid)
    end_action(st, n0)
    return res, rem, nslot


@njit(cache=True, _nrt=False)
def snapshot(st, t):
    """Emit one message: clear, every level (bids best first, then asks), snapshot_end."""
    n0 = begin_action(st, t)
    w = st.ints[R_W]
    emit(st, KIND_CLEAR, 0, 0, 0, -1)
    b = st.ints[R_BEST_BID]
    while b >= 0:
        if st.lcnt[0, b] > 0:
            emit_level(st, 0, b)
        b -= 1
    a = st.ints[R_BEST_ASK]
    while a < w:
        if st.lcnt[1, a] > 0:
            emit_level(st, 1, a)
        a += 1
    emit(st, KIND_SNAPSHOT_END, 0, 0, 0, -1)
    end_action(st, n0)
