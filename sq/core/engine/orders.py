"""The order manager.

One order slot per side per symbol, plus a stop slot and a take-profit slot (`SI_PSLOT`, steered
by `move_protective` like the sides by `move_order`; a reduce-only one is cancelled when a fill
leaves the position flat); states PENDING_NEW → LIVE → PENDING_CANCEL → DEAD. Intents
(`move_order`) follow the reference: a LIVE order at another price is canceled (its replacement
goes out on a later update, once the cancel made it DEAD); a free/DEAD slot gets a new order if
risk allows; PENDING_* slots are left alone. Responses are routed by client order id (the pool
row carries it), ACCEPTED only moves PENDING_NEW → LIVE, a cancel-reject returns the order to
LIVE when it still has leaves (else DEAD), partial fills reduce leaves.

Requests leave the engine through the outbox (`ob`): the simulated venue consumes it at once in
backtest and paper; a live gateway reads the same rows. Every action is journaled as an orders
row; risk rejections are counted always and journaled when they differ from the previous
rejection on that side (a maker at its position limit would otherwise journal one row per book
update).
"""

from __future__ import annotations


from sq.core.engine import costs
from sq.core.engine import positions
from sq.core.engine import risk
from sq.core.engine import rows as W
from sq.core.engine.layout import (
    inline_kernel,
    kernel,
    DEAD,
    EV_ACCEPTED,
    EV_CANCEL_REJECTED,
    EV_CANCEL_SENT,
    EV_CANCELED,
    EV_EXPIRED,
    EV_FILLED,
    EV_NEW,
    EV_PARTIAL,
    EV_REJECTED,
    FREE,
    GF_SENT_QTY,
    GF_FILLED_QTY,
    GF_MAXDD,
    GF_PEAK,
    G_CANCELS,
    G_FILLS,
    G_HALT_REASON,
    G_HALTED,
    G_NEXT_COID,
    G_NEXT_TRADE,
    G_NOB,
    G_OPEN,
    G_ORDERS,
    G_POOLFULL,
    G_POOLPTR,
    HALT_NONE,
    K_ACK,
    K_CANCEL_REJ,
    K_CANCELED,
    K_EXPIRED,
    K_FILL_MAKER,
    K_FILL_TAKER,
    K_VENUE_REJ,
    LIVE,
    OB_COID,
    OB_KIND,
    OB_ORD,
    OB_PX,
    OB_SIDE,
    OB_SYM,
    OB_TIF,
    OB_TS,
    OF_BROK,
    OF_CUMTRADE,
    OF_FILLED,
    OF_FRONT,
    OF_LEAVES,
    OF_QTY,
    OF_XLEAVES,
    OI_COID,
    OI_INFLIGHT,
    OI_PX,
    OI_RIDX,
    OI_SIDE,
    OI_STATE,
    OI_SYM,
    OI_TIF,
    OI_VOID,
    OI_XSTATE,
    OI_OTYPE,
    OI_TRIG,
    OI_TSRC,
    OI_RO,
    OB_OTYPE,
    OB_TRIG,
    OB_TSRC,
    OB_RO,
    OT_LIMIT,
    OT_TP_MARKET,
    EV_TRIGGERED,
    K_TRIGGERED,
    R_REDUCE_ONLY,
    R_TYPE0,
    SF_POS,
    SI_PSLOT,
    OUT_CANCEL,
    OUT_NEW,
    PENDING_CANCEL,
    PENDING_NEW,
    R_OK,
    R_POOL,
    R_SQUARE_OFF,
    SF_INV,
    SF_TICK,
    SI_FILL_TS,
    SI_LASTREJ,
    SI_SLOT,
    SI_SQ,
    TIF_IOC,
    X_NONE,
)

QTY_EPS = 1e-9


@kernel
def _alloc(oi, g):
    """A free pool row (dead, nothing in flight), or -1 when the pool is full."""
    n = oi.shape[0]
    p = g[G_POOLPTR]
    for k in range(n):
        o = p + k
        if o >= n:
            o -= n
        if oi[o, OI_STATE] == FREE:
            g[G_POOLPTR] = o + 1 if o + 1 < n else 0
            return o
    return -1


@kernel
def _outbox(ob, obf, g, now, kind, o, oi, of):
    k = g[G_NOB]
    ob[k, OB_TS] = now
    ob[k, OB_KIND] = kind
    ob[k, OB_ORD] = o
    ob[k, OB_COID] = oi[o, OI_COID]
    ob[k, OB_SYM] = oi[o, OI_SYM]
    ob[k, OB_SIDE] = oi[o, OI_SIDE]
    ob[k, OB_PX] = oi[o, OI_PX]
    ob[k, OB_TIF] = oi[o, OI_TIF]
    ob[k, OB_OTYPE] = oi[o, OI_OTYPE]
    ob[k, OB_TRIG] = oi[o, OI_TRIG]
    ob[k, OB_TSRC] = oi[o, OI_TSRC]
    ob[k, OB_RO] = oi[o, OI_RO]
    obf[k] = of[o, OF_QTY]
    g[G_NOB] = k + 1


@kernel
def _slot(oi, o):
    """The `si` column of the slot order `o` sits in: its side's, or its symbol's stop or take-profit."""
    ot = oi[o, OI_OTYPE]
    if ot == OT_LIMIT:
        return SI_SLOT + (0 if oi[o, OI_SIDE] > 0 else 1)
    return SI_PSLOT + (0 if ot < OT_TP_MARKET else 1)


@kernel
def _send(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, o, s, side, px, qty, tif, now, reason):
    """Fill pool row `o` as a new limit order (a fresh client id, PENDING_NEW), journal its `new`
    row (with `reason`, 0 for none) and put it in the outbox."""
    oi[o, OI_OTYPE] = OT_LIMIT
    oi[o, OI_TRIG] = 0
    oi[o, OI_TSRC] = 0
    oi[o, OI_RO] = 0
    _emit(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, o, s, side, px, qty, tif, now, reason)


@kernel
def _emit(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, o, s, side, px, qty, tif, now, reason):
    """`_send` once the order's type columns are set: a fresh client id, PENDING_NEW, its slot,
    its `new` row and the outbox."""
    coid = g[G_NEXT_COID]
    g[G_NEXT_COID] = coid + 1
    oi[o, OI_COID] = coid
    oi[o, OI_SYM] = s
    oi[o, OI_SIDE] = side
    oi[o, OI_PX] = px
    oi[o, OI_STATE] = PENDING_NEW
    oi[o, OI_XSTATE] = X_NONE
    oi[o, OI_INFLIGHT] = 1
    oi[o, OI_TIF] = tif
    oi[o, OI_VOID] = 0
    oi[o, OI_RIDX] = -1
    of[o, OF_QTY] = qty
    of[o, OF_LEAVES] = qty
    of[o, OF_FILLED] = 0.0
    of[o, OF_XLEAVES] = 0.0
    of[o, OF_FRONT] = 0.0
    of[o, OF_CUMTRADE] = 0.0
    of[o, OF_BROK] = 0.0
    si[s, _slot(oi, o)] = o
    g[G_ORDERS] += 1
    g[G_OPEN] += 1
    gf[GF_SENT_QTY] += qty
    W.order_row(oo_i, oo_f, g, oi, of, o, now, EV_NEW, reason, sf[s, SF_TICK], sf[s, SF_INV])
    _outbox(ob, obf, g, now, OUT_NEW, o, oi, of)


@kernel
def _admit(si, sf, oi, of, g, gf, rej, oo_i, oo_f, s, side, px, qty, fair, now, nsym):
    """The pre-trade risk check and a pool row for a new order of `s` (px in ticks): the row, or
    -1 after counting the rejection (journaled once per reason and side in a row)."""
    sd = 0 if side > 0 else 1
    reason = risk.check(si, sf, oi, of, g, gf, s, side, px, qty, fair, now, nsym)
    o = -1
    if reason == R_OK:
        o = _alloc(oi, g)
        if o < 0:
            reason = R_POOL
            g[G_POOLFULL] += 1
    if reason != R_OK:
        rej[reason] += 1
        if si[s, SI_LASTREJ + sd] != reason:
            si[s, SI_LASTREJ + sd] = reason
            coid = g[G_NEXT_COID]
            g[G_NEXT_COID] = coid + 1
            W.reject_row(oo_i, oo_f, g, now, s, coid, side, px, qty, reason, sf[s, SF_TICK], sf[s, SF_INV])
        return -1
    si[s, SI_LASTREJ + sd] = R_OK
    return o


@kernel
def new_order(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, side, px, qty, tif, fair, now, nsym):
    """Risk-check and send a new order on `side` of `s` (px in ticks); returns its pool row or -1."""
    o = _admit(si, sf, oi, of, g, gf, rej, oo_i, oo_f, s, side, px, qty, fair, now, nsym)
    if o < 0:
        return -1
    _send(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, o, s, side, px, qty, tif, now, 0)
    return o


@kernel
def cancel_order(sf, oi, of, g, ob, obf, oo_i, oo_f, o, now):
    """Ask the venue to cancel a LIVE (or, when halting, PENDING_NEW) order."""
    cancel_order_for(sf, oi, of, g, ob, obf, oo_i, oo_f, o, now, 0)


@kernel
def cancel_order_for(sf, oi, of, g, ob, obf, oo_i, oo_f, o, now, reason):
    """`cancel_order`, its `cancel_sent` row saying why (`reason`, e.g. the square-off)."""
    oi[o, OI_STATE] = PENDING_CANCEL
    oi[o, OI_INFLIGHT] += 1
    g[G_CANCELS] += 1
    s = oi[o, OI_SYM]
    W.order_row(oo_i, oo_f, g, oi, of, o, now, EV_CANCEL_SENT, reason, sf[s, SF_TICK], sf[s, SF_INV])
    _outbox(ob, obf, g, now, OUT_CANCEL, o, oi, of)


@kernel
def move_order(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, side, px, want, qty, tif, fair, now, nsym):
    """Reference moveOrder: steer the side's slot towards price `px` (`want` False: no order).
    After the symbol's square-off (`SI_SQ`) the strategy cancels nothing (its orders were
    canceled; the slot may hold the order that flattens) and a new order meets the risk check,
    whose trading hours are over for the day."""
    o = si[s, SI_SLOT + (0 if side > 0 else 1)]
    st = FREE if o < 0 else oi[o, OI_STATE]
    if si[s, SI_SQ] != 0:
        if want and (st == FREE or st == DEAD):
            new_order(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, side, px, qty, tif, fair, now, nsym)
        return
    if st == LIVE:
        if not want or oi[o, OI_PX] != px:
            cancel_order(sf, oi, of, g, ob, obf, oo_i, oo_f, o, now)
    elif st == FREE or st == DEAD:
        if want:
            new_order(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, side, px, qty, tif, fair, now, nsym)


@kernel
def new_protective(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, slot, side, ot, trig, px, qty, ro, tsrc, fair, now, nsym):
    """Risk-check and send a stop (`slot` P_STOP) or take-profit (P_TAKE_PROFIT) of `s`: order
    type `ot`, trigger `trig` and limit `px` in ticks (a market one: `px` = `trig`, the price
    its risk check and journal rows use). Returns its pool row or -1."""
    o = _admit(si, sf, oi, of, g, gf, rej, oo_i, oo_f, s, side, px, qty, fair, now, nsym)
    if o < 0:
        return -1
    oi[o, OI_OTYPE] = ot
    oi[o, OI_TRIG] = trig
    oi[o, OI_TSRC] = tsrc
    oi[o, OI_RO] = 1 if ro else 0
    _emit(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, o, s, side, px, qty, 0, now, R_TYPE0 + ot)
    return o


@kernel
def move_protective(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, slot, side, ot, trig, px, want, qty, ro, tsrc, fair, now, nsym):
    """`move_order` for the symbol's stop or take-profit slot: a LIVE order of another side, type,
    trigger or limit is canceled (its replacement goes out on a later call, once the cancel made
    it DEAD); a free slot gets a new one if risk allows; PENDING_* is left alone."""
    o = si[s, SI_PSLOT + slot]
    st = FREE if o < 0 else oi[o, OI_STATE]
    if si[s, SI_SQ] != 0:
        if want and (st == FREE or st == DEAD):
            new_protective(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, slot, side, ot, trig, px, qty, ro, tsrc, fair, now, nsym)
        return
    if st == LIVE:
        if not want or oi[o, OI_TRIG] != trig or oi[o, OI_PX] != px or oi[o, OI_SIDE] != side or oi[o, OI_OTYPE] != ot:
            cancel_order(sf, oi, of, g, ob, obf, oo_i, oo_f, o, now)
    elif st == FREE or st == DEAD:
        if want:
            new_protective(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, slot, side, ot, trig, px, qty, ro, tsrc, fair, now, nsym)


@kernel
def _flat(si, sf, oi, of, g, ob, obf, oo_i, oo_f, s, now):
    """Symbol `s`'s position is flat: cancel its LIVE reduce-only stop and take-profit (reason
    `reduce_only`), as a venue does once the position they protect is closed."""
    for c in (SI_PSLOT, SI_PSLOT + 1):
        o = si[s, c]
        if o >= 0 and oi[o, OI_STATE] == LIVE and oi[o, OI_RO] != 0:
            cancel_order_for(sf, oi, of, g, ob, obf, oo_i, oo_f, o, now, R_REDUCE_ONLY)


@kernel
def halt(si, sf, oi, of, g, ob, obf, oo_i, oo_f, reason, now):
    """Stop the strategy: no new orders from now on; cancel every LIVE order (PENDING_NEW ones
    are canceled when their acknowledgement arrives)."""
    if g[G_HALTED] == HALT_NONE:
        g[G_HALTED] = reason
        g[G_HALT_REASON] = reason
    for o in range(oi.shape[0]):
        if oi[o, OI_STATE] == LIVE:
            cancel_order(sf, oi, of, g, ob, obf, oo_i, oo_f, o, now)


@kernel
def working_any(si, oi, s):
    """Whether an order of symbol `s` works on either side, or a stop or take-profit of it
    (pending new, live, pending cancel)."""
    for c in (SI_SLOT, SI_SLOT + 1, SI_PSLOT, SI_PSLOT + 1):
        o = si[s, c]
        if o >= 0:
            st = oi[o, OI_STATE]
            if st == PENDING_NEW or st == LIVE or st == PENDING_CANCEL:
                return True
    return False


@kernel
def square_off_begin(si, sf, oi, of, g, ob, obf, oo_i, oo_f, s, now):
    """The broker's intraday cut-off for symbol `s`: from now until its local day ends the symbol
    squares off (`SI_SQ`); its LIVE orders are canceled (reason `square_off`; a PENDING_NEW one
    when its acknowledgement arrives)."""
    si[s, SI_SQ] = 1
    for c in (SI_SLOT, SI_SLOT + 1, SI_PSLOT, SI_PSLOT + 1):
        o = si[s, c]
        if o >= 0 and oi[o, OI_STATE] == LIVE:
            cancel_order_for(sf, oi, of, g, ob, obf, oo_i, oo_f, o, now, R_SQUARE_OFF)


@kernel
def square_off_order(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, s, side, px, qty, now):
    """Send the IOC order that flattens symbol `s` (px in ticks; no risk check: it only reduces
    the position, as the broker's own square-off would); its `new` row says `square_off`.
    Returns its pool row, or -1 when the pool is full (tried again at the next book update)."""
    o = _alloc(oi, g)
    if o < 0:
        g[G_POOLFULL] += 1
        return -1
    _send(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, o, s, side, px, qty, TIF_IOC, now, R_SQUARE_OFF)
    return o


@kernel
def _dead(si, oi, g, o):
    st = oi[o, OI_STATE]
    if st == PENDING_NEW or st == LIVE or st == PENDING_CANCEL:
        g[G_OPEN] -= 1
    oi[o, OI_STATE] = DEAD


@kernel
def _release(si, oi, o):
    """Recycle a pool row once the order is dead and nothing about it is in flight."""
    if oi[o, OI_STATE] == DEAD and oi[o, OI_INFLIGHT] == 0:
        s = oi[o, OI_SYM]
        c = _slot(oi, o)
        if si[s, c] == o:
            si[s, c] = -1
        oi[o, OI_STATE] = FREE


@inline_kernel
def track_equity(sf, gf, nsym):
    """Update the running peak and max drawdown of the account's net PnL."""
    t = positions.account_total(sf, nsym)
    if t > gf[GF_PEAK]:
        gf[GF_PEAK] = t
    dd = gf[GF_PEAK] - t
    if dd > gf[GF_MAXDD]:
        gf[GF_MAXDD] = dd


@kernel
def on_response(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, fo_i, fo_f, po_i, po_f, kind, o, px, qty, reason, now, nsym):
    """Apply one venue answer for pool row `o`; returns True when a fill changed the position."""
    oi[o, OI_INFLIGHT] -= 1
    s = oi[o, OI_SYM]
    tick = sf[s, SF_TICK]
    inv = sf[s, SF_INV]
    st = oi[o, OI_STATE]
    filled = False
    if kind == K_ACK:
        oi[o, OI_VOID] = px
        W.order_row(oo_i, oo_f, g, oi, of, o, now, EV_ACCEPTED, 0, tick, inv)
        if st == PENDING_NEW:
            oi[o, OI_STATE] = LIVE
            if g[G_HALTED] != HALT_NONE:
                cancel_order(sf, oi, of, g, ob, obf, oo_i, oo_f, o, now)
            elif si[s, SI_SQ] != 0 and oi[o, OI_TIF] != TIF_IOC:  # sent before the cut-off (an IOC ends by itself)
                cancel_order_for(sf, oi, of, g, ob, obf, oo_i, oo_f, o, now, R_SQUARE_OFF)
    elif kind == K_FILL_MAKER or kind == K_FILL_TAKER:
        maker = kind == K_FILL_MAKER
        price = px * tick if inv == 0.0 else px / inv
        fee, brok = costs.fill_cost(sf, gf, s, oi[o, OI_SIDE], price, qty, maker, of[o, OF_BROK])
        of[o, OF_BROK] += brok
        positions.add_fill(sf, s, oi[o, OI_SIDE], price, qty, fee)
        of[o, OF_LEAVES] -= qty
        of[o, OF_FILLED] += qty
        done = of[o, OF_LEAVES] <= QTY_EPS
        if done:
            of[o, OF_LEAVES] = 0.0
        g[G_FILLS] += 1
        gf[GF_FILLED_QTY] += qty
        trade = g[G_NEXT_TRADE]
        g[G_NEXT_TRADE] = trade + 1
        W.fill_row(fo_i, fo_f, g, oi, o, now, trade, price, qty, fee, maker)
        si[s, SI_FILL_TS] = now
        W.order_row(oo_i, oo_f, g, oi, of, o, now, EV_FILLED if done else EV_PARTIAL, 0, tick, inv)
        if done:
            _dead(si, oi, g, o)
        W.pnl_row(po_i, po_f, g, si, sf, s, now)
        track_equity(sf, gf, nsym)
        filled = True
        if abs(sf[s, SF_POS]) <= QTY_EPS and (si[s, SI_PSLOT] >= 0 or si[s, SI_PSLOT + 1] >= 0):
            _flat(si, sf, oi, of, g, ob, obf, oo_i, oo_f, s, now)
    elif kind == K_CANCELED:
        of[o, OF_LEAVES] = 0.0
        W.order_row(oo_i, oo_f, g, oi, of, o, now, EV_CANCELED, 0, tick, inv)
        _dead(si, oi, g, o)
    elif kind == K_CANCEL_REJ:
        W.order_row(oo_i, oo_f, g, oi, of, o, now, EV_CANCEL_REJECTED, reason, tick, inv)
        if st == PENDING_CANCEL:
            if of[o, OF_LEAVES] > QTY_EPS:
                oi[o, OI_STATE] = LIVE
            else:
                _dead(si, oi, g, o)
    elif kind == K_EXPIRED:
        of[o, OF_LEAVES] = 0.0
        W.order_row(oo_i, oo_f, g, oi, of, o, now, EV_EXPIRED, reason, tick, inv)
        _dead(si, oi, g, o)
    elif kind == K_TRIGGERED:
        if qty < of[o, OF_LEAVES]:  # a reduce-only order cut to the position
            of[o, OF_LEAVES] = qty
        W.order_row(oo_i, oo_f, g, oi, of, o, now, EV_TRIGGERED, R_TYPE0 + oi[o, OI_OTYPE], tick, inv)
    elif kind == K_VENUE_REJ:
        of[o, OF_LEAVES] = 0.0
        W.order_row(oo_i, oo_f, g, oi, of, o, now, EV_REJECTED, reason, tick, inv)
        _dead(si, oi, g, o)
    _release(si, oi, o)
    return filled


@kernel
def find_order(oi, coid):
    """The pool row of client order id `coid` (-1 when unknown): how a live gateway's answers
    are routed back."""
    for o in range(oi.shape[0]):
        if oi[o, OI_STATE] != FREE and oi[o, OI_COID] == coid:
            return o
    return -1
