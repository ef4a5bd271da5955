"""The bar execution kernel: a bar strategy's signals become orders, fills and PnL (one numba call).

Bars arrive in time order (all symbols interleaved) with, per bar, the signal the strategy
computed at that bar's close: a `target` position (NaN: no opinion), or entry/exit flags with a
`size`, and optional `stop` / `take` prices for the position an entry opens. For every bar:

  1. the order working for its symbol meets the bar (the order was placed at an earlier bar's
     close): `next_open` fills at the bar's open; `market` (a marketable limit) fills at the open
     when the open is inside the limit, else at the limit when the bar reaches it, else expires;
     `limit` (passive) fills at its price when the bar trades *through* it (low < buy price,
     high > sell price) and otherwise keeps working until the next signal re-places it;
  2. the position's protective orders: a stop-loss fills when the bar reaches it (at the stop,
     or at the open when the bar opens beyond it), a take-profit likewise as a limit; when one
     bar reaches both, the stop is assumed first (the conservative order);
  3. the position is marked to the close — and closed there when the symbol is past its broker's
     intraday square-off (`SI_SQ`, set by the engine's market calendar: its working order
     canceled, a taker fill at the close, reason `square_off`) —, the account's equity curve and
     drawdown updated (a pnl row is written for a bar with a fill, marked at its close), and the
     engine's loss limits checked (`risk.breached`: a breach halts the strategy and cancels its
     orders, as in an event strategy);
  4. the bar's signal is turned into one order toward the wanted position at the bar's close,
     through the engine's pre-trade risk checks (`risk.check`: order size, position, losses,
     notional, price band, trading hours, circuit limits, order rate) with the same rejection
     reasons; a working order aiming elsewhere is canceled first. A signal that keeps the
     position (no opinion, or the position it already has) and gives a `stop` or `take` moves
     the position's protective prices to them, as a live run modifies the venue's orders.

Fees are the fill model's maker (passive limits, take-profits) and taker (the rest) basis points;
positions and PnL are booked by the engine's position keeper (`positions.add_fill`), journal rows
use the engine's layouts, so bar and event runs write the same orders, fills and pnl streams.
"""

from __future__ import annotations

import math

from sq.core.engine import costs
from sq.core.engine import positions
from sq.core.engine import risk
from sq.core.engine import rows as W
from sq.core.engine.layout import (
    kernel,
    G_CANCELS,
    G_EVENTS,
    G_FILLS,
    G_HALTED,
    G_LASTLOC,
    G_LASTTS,
    G_MESSAGES,
    G_NEQ,
    G_NEXT_COID,
    G_NEXT_MIN,
    G_NEXT_TRADE,
    G_NF,
    G_NO,
    G_NP,
    G_OPEN,
    G_ORDERS,
    GF_FILLED_QTY,
    GF_MAXDD,
    GF_PEAK,
    GF_SENT_QTY,
    HALT_NONE,
    NS_PER_MIN,
    R_HALTED,
    R_OK,
    R_SQUARE_OFF,
    R_STOP_LOSS,
    R_TAKE_PROFIT,
    SF_LOT,
    SF_POS,
    SF_TICK,
    SI_CONF,
    SI_PNL_DIRTY,
    SI_SQ,
    EV_ACCEPTED,
    EV_CANCELED,
    EV_EXPIRED,
    EV_FILLED,
    EV_NEW,
    EV_REJECTED,
)

# execution styles (declaration.EXECUTIONS order)
EX_NEXT_OPEN, EX_MARKET, EX_LIMIT = 0, 1, 2
# entry/exit flags of a bar's signal
ENTER_LONG, EXIT_LONG, ENTER_SHORT, EXIT_SHORT = 1, 2, 4, 8

# per-symbol ints / floats of the bar executor
BI_WORK, BI_SIDE, BI_COID, BI_ENTRY = 0, 1, 2, 3
NBI = 4
BF_QTY, BF_PX, BF_WSTOP, BF_WTAKE, BF_STOP, BF_TAKE, BF_WTARGET = 0, 1, 2, 3, 4, 5, 6
NBF = 7

ST_OK, ST_FLUSH, ST_GROW_EQ = 0, 2, 4  # the event kernel's codes for the same requests
ROWS_PER_BAR = 12  # the most journal rows one bar can write (before a halt's cancels)


@kernel
def _order_row(oo_i, oo_f, g, ts, s, coid, event, side, px, qty, filled, leaves, reason):
    W.write_order(oo_i, oo_f, g, ts, s, coid, 0, event, side, reason, px, qty, filled, leaves)


@kernel
def _fill(sf, si, g, gf, fo_i, fo_f, ts, s, coid, side, px, qty, maker):
    """Book a fill and write its row."""
    fee, _ = costs.fill_cost(sf, gf, s, side, px, qty, maker, 0.0)  # a bar order fills at once: its own brokerage
    positions.add_fill(sf, s, side, px, qty, fee)
    si[s, SI_PNL_DIRTY] = 1
    W.write_fill(fo_i, fo_f, g, ts, s, coid, 0, g[G_NEXT_TRADE], side, maker, px, qty, fee)
    g[G_NEXT_TRADE] += 1
    g[G_FILLS] += 1
    gf[GF_FILLED_QTY] += qty


@kernel
def _protect(sf, bf, s, was):
    """After a fill: protective prices follow the position (cleared when flat, taken from the
    filled order when it opened or grew the position)."""
    pos = sf[s, SF_POS]
    if pos == 0.0:
        bf[s, BF_STOP] = math.nan
        bf[s, BF_TAKE] = math.nan
    elif abs(pos) > abs(was) or pos * was < 0.0:
        bf[s, BF_STOP] = bf[s, BF_WSTOP]
        bf[s, BF_TAKE] = bf[s, BF_WTAKE]


@kernel
def _move_protection(sf, bf, s, stop, take):
    """A bar that keeps the position and gives a stop-loss or take-profit moves the position's
    (as a live run modifies the venue's protective order): each given price replaces the old."""
    if sf[s, SF_POS] == 0.0:
        return
    if stop == stop:
        bf[s, BF_STOP] = stop
        bf[s, BF_WSTOP] = stop
    if take == take:
        bf[s, BF_TAKE] = take
        bf[s, BF_WTAKE] = take


@kernel
def _end_order(bi, g, s):
    bi[s, BI_WORK] = 0
    g[G_OPEN] -= 1


@kernel
def _work(bi, bf, sf, si, g, gf, oo_i, oo_f, fo_i, fo_f, s, ts, o, h, l, style):
    """Step 1: the working order of symbol `s` meets this bar."""
    side = bi[s, BI_SIDE]
    px = bf[s, BF_PX]
    qty = bf[s, BF_QTY]
    coid = bi[s, BI_COID]
    fill = math.nan
    maker = False
    if style == EX_NEXT_OPEN:
        fill = o
    elif style == EX_MARKET:
        if (side > 0 and o <= px) or (side < 0 and o >= px):
            fill = o
        elif (side > 0 and l <= px) or (side < 0 and h >= px):
            fill = px
    elif (side > 0 and l < px) or (side < 0 and h > px):
        fill = px
        maker = True
    if fill == fill:
        was = sf[s, SF_POS]
        _fill(sf, si, g, gf, fo_i, fo_f, ts, s, coid, side, fill, qty, maker)
        _order_row(oo_i, oo_f, g, ts, s, coid, EV_FILLED, side, px, qty, qty, 0.0, 0)
        _end_order(bi, g, s)
        _protect(sf, bf, s, was)
    elif style == EX_MARKET:
        _order_row(oo_i, oo_f, g, ts, s, coid, EV_EXPIRED, side, px, qty, 0.0, 0.0, 0)
        _end_order(bi, g, s)


@kernel
def _stops(bf, sf, si, g, gf, oo_i, oo_f, fo_i, fo_f, s, ts, o, h, l):
    """Step 2: the position's stop-loss, then its take-profit."""
    pos = sf[s, SF_POS]
    if pos == 0.0:
        return
    side = -1 if pos > 0.0 else 1
    stop = bf[s, BF_STOP]
    take = bf[s, BF_TAKE]
    px = math.nan
    reason = 0
    maker = False
    if stop == stop and ((pos > 0.0 and l <= stop) or (pos < 0.0 and h >= stop)):
        gap = (pos > 0.0 and o <= stop) or (pos < 0.0 and o >= stop)
        px = o if gap else stop
        reason = R_STOP_LOSS
    elif take == take and ((pos > 0.0 and h >= take) or (pos < 0.0 and l <= take)):
        gap = (pos > 0.0 and o >= take) or (pos < 0.0 and o <= take)
        px = o if gap else take
        reason = R_TAKE_PROFIT
        maker = True
    if reason == 0:
        return
    qty = abs(pos)
    coid = g[G_NEXT_COID]
    g[G_NEXT_COID] += 1
    g[G_ORDERS] += 1
    gf[GF_SENT_QTY] += qty
    ref = stop if reason == R_STOP_LOSS else take
    _order_row(oo_i, oo_f, g, ts, s, coid, EV_NEW, side, ref, qty, 0.0, qty, reason)
    _fill(sf, si, g, gf, fo_i, fo_f, ts, s, coid, side, px, qty, maker)
    _order_row(oo_i, oo_f, g, ts, s, coid, EV_FILLED, side, ref, qty, qty, 0.0, reason)
    bf[s, BF_STOP] = math.nan
    bf[s, BF_TAKE] = math.nan


@kernel
def _square_off(bi, bf, sf, si, g, gf, oo_i, oo_f, fo_i, fo_f, s, ts, c):
    """A bar of a symbol past its broker's square-off (`SI_SQ`): its working order is canceled
    and its position closed at the bar's close (a taker fill), both with reason `square_off`."""
    cancel_working(bi, bf, g, oo_i, oo_f, s, ts, R_SQUARE_OFF)
    pos = sf[s, SF_POS]
    if pos == 0.0:
        return
    side = -1 if pos > 0.0 else 1
    qty = abs(pos)
    coid = g[G_NEXT_COID]
    g[G_NEXT_COID] += 1
    g[G_ORDERS] += 1
    gf[GF_SENT_QTY] += qty
    _order_row(oo_i, oo_f, g, ts, s, coid, EV_NEW, side, c, qty, 0.0, qty, R_SQUARE_OFF)
    _fill(sf, si, g, gf, fo_i, fo_f, ts, s, coid, side, c, qty, False)
    _order_row(oo_i, oo_f, g, ts, s, coid, EV_FILLED, side, c, qty, qty, 0.0, R_SQUARE_OFF)
    bf[s, BF_STOP] = math.nan
    bf[s, BF_TAKE] = math.nan


@kernel
def cancel_working(bi, bf, g, oo_i, oo_f, s, ts, reason):
    """Cancel symbol `s`'s working order (a new signal, a halt, the end of a paper run)."""
    if bi[s, BI_WORK] == 0:
        return
    q = bf[s, BF_QTY]
    _order_row(oo_i, oo_f, g, ts, s, bi[s, BI_COID], EV_CANCELED, bi[s, BI_SIDE], bf[s, BF_PX], q, 0.0, 0.0, reason)
    _end_order(bi, g, s)
    g[G_CANCELS] += 1


@kernel
def halt_all(si, sf, bi, bf, g, oo_i, oo_f, nsym, reason, ts):
    """Halt: no new orders; cancel every working order and drop the protective ones."""
    if g[G_HALTED] == HALT_NONE:
        g[G_HALTED] = reason
    for q in range(nsym):
        cancel_working(bi, bf, g, oo_i, oo_f, q, ts, R_HALTED)
        bf[q, BF_STOP] = math.nan
        bf[q, BF_TAKE] = math.nan


@kernel
def _wanted(sf, s, target, flags, size):
    """The position the bar's signal asks for (NaN: none)."""
    if target == target:
        return target
    if flags == 0:
        return math.nan
    if not (size == size and size != 0.0):
        size = sf[s, SF_LOT]  # no size given: one lot
    d = sf[s, SF_POS]
    if (flags & EXIT_LONG) != 0 and d > 0.0:
        d = 0.0
    if (flags & EXIT_SHORT) != 0 and d < 0.0:
        d = 0.0
    if (flags & ENTER_LONG) != 0 and d <= 0.0:
        d = abs(size)
    elif (flags & ENTER_SHORT) != 0 and d >= 0.0:
        d = -abs(size)
    return d


@kernel
def _decide(si, sf, bi, bf, oi, of, g, gf, rej, oo_i, oo_f, s, t, c, target, flags, size, stop, take, style, offset, nsym):
    """Step 4: one order toward the position the bar's signal wants, placed at the close `t`."""
    want = _wanted(sf, s, target, flags, size)
    if not want == want:
        _move_protection(sf, bf, s, stop, take)
        return
    lot = sf[s, SF_LOT]
    tick = sf[s, SF_TICK]
    if lot > 0.0:
        want = math.copysign(math.floor(abs(want) / lot + 1e-9) * lot, want)
    pos = sf[s, SF_POS]
    if bi[s, BI_WORK] != 0:
        if bf[s, BF_WTARGET] == want and style != EX_LIMIT:
            return  # already on its way
        cancel_working(bi, bf, g, oo_i, oo_f, s, t, 0)
    if want == pos:
        _move_protection(sf, bf, s, stop, take)
        return
    side = 1 if want > pos else -1
    qty = abs(want - pos)
    if style == EX_NEXT_OPEN:
        px = math.nan
        px_ticks = c / tick
    elif style == EX_MARKET:
        px_ticks = math.floor(c / tick + 1e-9) + side * offset if side > 0 else math.ceil(c / tick - 1e-9) - offset
        if px_ticks < 1.0:
            px_ticks = 1.0
        px = px_ticks * tick
    else:
        px_ticks = math.floor(c / tick + 1e-9) if side > 0 else math.ceil(c / tick - 1e-9)
        if px_ticks < 1.0:
            px_ticks = 1.0
        px = px_ticks * tick
    coid = g[G_NEXT_COID]
    g[G_NEXT_COID] += 1
    why = risk.check(si, sf, oi, of, g, gf, s, side, px_ticks, qty, c / tick, t, nsym)
    if why != R_OK:
        rej[why] += 1
        _order_row(oo_i, oo_f, g, t, s, coid, EV_REJECTED, side, px, qty, 0.0, 0.0, why)
        return
    g[G_ORDERS] += 1
    g[G_OPEN] += 1
    gf[GF_SENT_QTY] += qty
    bi[s, BI_WORK] = 1
    bi[s, BI_SIDE] = side
    bi[s, BI_COID] = coid
    entry = abs(want) > abs(pos) or want * pos < 0.0
    bi[s, BI_ENTRY] = 1 if entry else 0
    bf[s, BF_QTY] = qty
    bf[s, BF_PX] = px
    bf[s, BF_WTARGET] = want
    bf[s, BF_WSTOP] = stop if entry else bf[s, BF_STOP]
    bf[s, BF_WTAKE] = take if entry else bf[s, BF_TAKE]
    _order_row(oo_i, oo_f, g, t, s, coid, EV_NEW, side, px, qty, 0.0, qty, 0)
    _order_row(oo_i, oo_f, g, t, s, coid, EV_ACCEPTED, side, px, qty, 0.0, qty, 0)


@kernel
def run(sym, ts, tclose, o, h, l, c, where, target, flags, size, stop, take, start, style, offset,
        si, sf, bi, bf, oi, of, g, gf, rej, oo_i, oo_f, fo_i, fo_f, po_i, po_f, eq, nsym, margin):
    """Bars start..n (bar i's signal at `where[i]`); returns (status, i): ST_OK with i = n when
    done, else the room it needs."""
    n = len(sym)
    acct = positions.account_total(sf, nsym)  # the account's net PnL, kept up to date bar by bar
    for i in range(start, n):
        if g[G_NO] + margin > oo_i.shape[0] or g[G_NF] + margin > fo_i.shape[0] or g[G_NP] + margin > po_i.shape[0]:
            return ST_FLUSH, i
        s = sym[i]
        t = ts[i]
        if g[G_NEXT_MIN] == 0:
            g[G_NEXT_MIN] = (t // NS_PER_MIN + 1) * NS_PER_MIN
        while t >= g[G_NEXT_MIN]:
            if g[G_NEQ] >= eq.shape[0]:
                return ST_GROW_EQ, i
            acct = positions.account_total(sf, nsym)  # (re-summed: no drift from the running updates)
            eq[g[G_NEQ]] = acct
            g[G_NEQ] += 1
            g[G_NEXT_MIN] += NS_PER_MIN
        before = positions.total(sf, s)
        if bi[s, BI_WORK] != 0:
            _work(bi, bf, sf, si, g, gf, oo_i, oo_f, fo_i, fo_f, s, t, o[i], h[i], l[i], style)
        _stops(bf, sf, si, g, gf, oo_i, oo_f, fo_i, fo_f, s, t, o[i], h[i], l[i])
        te = tclose[i]
        positions.mark(sf, s, c[i])
        if si[s, SI_SQ] != 0:
            _square_off(bi, bf, sf, si, g, gf, oo_i, oo_f, fo_i, fo_f, s, te, c[i])
        acct += positions.total(sf, s) - before  # only symbol s moved: O(1), not a sum over every symbol
        if acct > gf[GF_PEAK]:
            gf[GF_PEAK] = acct
        elif gf[GF_PEAK] - acct > gf[GF_MAXDD]:
            gf[GF_MAXDD] = gf[GF_PEAK] - acct
        if g[G_HALTED] == HALT_NONE:
            why = risk.breached(si, sf, g, gf, s, te, nsym)
            if why != HALT_NONE:
                halt_all(si, sf, bi, bf, g, oo_i, oo_f, nsym, why, te)
        if si[s, SI_PNL_DIRTY] != 0:
            W.pnl_row(po_i, po_f, g, si, sf, s, te)
        g[G_EVENTS] += 1
        g[G_MESSAGES] += 1
        g[G_LASTTS] = te
        if te > g[G_LASTLOC]:
            g[G_LASTLOC] = te
        if si[s, SI_CONF] == 0:
            continue
        if g[G_HALTED] != HALT_NONE:
            k = where[i]
            want = _wanted(sf, s, target[k], flags[k], size[k])
            if want == want and want != sf[s, SF_POS]:
                rej[R_HALTED] += 1  # the signal asks for an order a halted strategy may not send
            continue
        k = where[i]
        _decide(si, sf, bi, bf, oi, of, g, gf, rej, oo_i, oo_f, s, te, c[i], target[k], flags[k], size[k],
                stop[k], take[k], style, offset, nsym)
    return ST_OK, n
