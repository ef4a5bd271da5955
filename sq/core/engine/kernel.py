"""The engine's event loop: one numba call per market batch, in the reference order below.

For every market event, in input order:
  1. if it starts a new venue message, the previous message is complete: mark positions to the
     mid → (features are read from the exact book) → a symbol past its broker's square-off
     flattens (`square_off_step`) → the strategy's `on_book`; a loss-limit breach halts the
     strategy and cancels its orders;
  2. every scheduled item that is due runs first, in (time, sequence) order: requests reaching
     the simulated venue at venue time ≤ the event's ts, answers reaching the engine at local
     time ≤ the event's local time (responses before market data);
  3. the event itself: the venue side sees it at its ts (queue positions, trades against our
     resting orders, crossings), then the book is updated; a trade runs the strategy's
     `on_trade` with the book as it was before the trade. Our fills run `on_fill`; the strategy's
     timer (if it has one) runs `on_timer` for every symbol at the first event at or after each
     interval of data time.
The strategy's handlers arrive as an array of addresses `hx` and the context as its pointer
table (`sq.core.engine.callbacks`): the kernel is compiled once for every strategy. A handler's bad action
(a NaN size, a non-positive price) stops the run: the kernel returns `ST_BAD`.
The open message, the schedule and all state persist across calls, so cutting the input into
different batches gives identical orders and fills. `complete=True` declares that a batch ends
on a message boundary (live sources flush one batch per venue message burst) and closes the
message at once instead of when the next event arrives — same result, lower latency.

The kernel returns early (status, next event) when an output buffer, the schedule, the equity
curve or a book window needs room; the runner makes room and calls again from that event.
"""

from __future__ import annotations

import numpy as np

from sq.core import book as B
from sq.core import features as F
from sq.core.engine import fills as X
from sq.core.engine import levels as LV
from sq.core.engine import orders as O
from sq.core.engine import positions
from sq.core.engine import risk
from sq.core.engine import rows as W
from sq.core.engine import schedule as H
from sq.core.engine.callbacks import handler_functions
from sq.core.engine.layout import (
    batch_kernel,
    inline_kernel,
    kernel,
    GF_DAILY,
    G_EVENTS,
    G_HALTED,
    G_HN,
    G_LASTLOC,
    G_LASTTS,
    G_MESSAGES,
    G_NEQ,
    G_NEXT_MIN,
    G_NF,
    G_NO,
    G_NOB,
    G_NP,
    G_PBOOK,
    G_PEND,
    G_PLOC,
    G_PSEQ,
    G_PSYM,
    G_PTS,
    G_PNL_INT,
    MARKOUT_WINDOW_NS,
    G_SIMVENUE,
    G_BAD,
    G_HANDLER,
    G_HNOW,
    G_HMASK,
    G_HSYM,
    HAS_BOOK,
    HAS_FILL,
    HAS_TRADE,
    G_NEXT_TIMER,
    G_TIMER_NS,
    FO_SIDE,
    FO_SYM,
    FOF_PX,
    FOF_QTY,
    HANDLER_BOOK,
    HANDLER_FILL,
    HANDLER_NONE,
    HANDLER_TIMER,
    HANDLER_TRADE,
    H_KIND,
    H_T,
    HALT_NONE,
    K_CANCEL,
    K_CANCEL_REJ,
    K_EXPIRED,
    K_NEW,
    K_TRIGGER,
    K_VENUE_REJ,
    LOCAL_KINDS_FROM,
    NS_PER_MIN,
    OI_SYM,
    SF_INV,
    SF_LOT,
    SF_MARK,
    SF_MAXLOSS,
    SF_POS,
    SF_TICK,
    SF_VOL,
    SI_CIRC_HI,
    SI_CIRC_LO,
    SI_HAS_CIRC,
    SI_FILL_TS,
    SI_HAS_PNL,
    SI_NARMED,
    SI_NREST,
    SI_PNL_TS,
    SI_SQ,
    SQUARE_OFF_REACH,
)

ST_OK = 0
ST_GROW_BOOK = 1  # BookState.grow_window for symbol bg[G_NEED_SYM]
ST_FLUSH = 2  # output buffers / outbox need emptying
ST_GROW_HEAP = 3
ST_GROW_EQ = 4
ST_BAD = 5  # a strategy handler's action had a bad value (G_BAD says which); the run stops
T_END = 9_223_372_036_854_775_807


@inline_kernel
def _room(g, oo_i, fo_i, po_i, hq, ob, margin):
    if g[G_NO] + margin > oo_i.shape[0] or g[G_NF] + margin > fo_i.shape[0] or g[G_NP] + margin > po_i.shape[0]:
        return ST_FLUSH
    if g[G_NOB] + margin > ob.shape[0]:
        return ST_FLUSH
    if g[G_HN] + margin > hq.shape[0]:
        return ST_GROW_HEAP
    return ST_OK


@inline_kernel
def _gateway(ob, obf, oi, g, hq, hf):
    if g[G_SIMVENUE] != 0 and g[G_NOB] > 0:
        X.consume_outbox(ob, obf, oi, g, hq, hf)


@kernel
def _check_halt(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, s, now, nsym):
    if g[G_HALTED] != HALT_NONE:
        return
    why = risk.breached(si, sf, g, gf, s, now, nsym)
    if why != HALT_NONE:
        O.halt(si, sf, oi, of, g, ob, obf, oo_i, oo_f, why, now)


@inline_kernel
def _due(g, hq, t_venue, t_local):
    """Whether the earliest scheduled item is due (checked inline before calling `drain`)."""
    if g[G_HN] == 0:
        return False
    if hq[0, H_KIND] < LOCAL_KINDS_FROM:
        return hq[0, H_T] <= t_venue
    return hq[0, H_T] <= t_local


@inline_kernel
def fill_event(on_fill, ctx, g, fo_i, fo_f, nf0, now):
    """Run the strategy's `on_fill` for the fill row an answer just wrote (when it wrote one)."""
    if g[G_NF] > nf0 and g[G_HALTED] == HALT_NONE and (g[G_HMASK] & HAS_FILL) != 0:
        r = g[G_NF] - 1
        g[G_HANDLER] = HANDLER_FILL
        g[G_HNOW] = now
        g[G_HSYM] = fo_i[r, FO_SYM]
        on_fill(ctx, fo_i[r, FO_SYM], fo_i[r, FO_SIDE], fo_f[r, FOF_PX], fo_f[r, FOF_QTY])
        g[G_HANDLER] = HANDLER_NONE


@kernel
def answer_fill(hx, table, g, fo_i, fo_f, nf0, now):
    """`fill_event` for an answer a live venue gave (the bridge applies answers one by one)."""
    on_book, on_trade, on_fill, on_timer, ctx = handler_functions(hx, table)
    fill_event(on_fill, ctx, g, fo_i, fo_f, nf0, now)


@kernel
def drain(t_venue, t_local, qbuf, ist, oi, of, si, sf, rest, g, gf, hq, hf, ob, obf,
          oo_i, oo_f, fo_i, fo_f, po_i, po_f, nsym, margin, hx, table):
    """Run every scheduled item due by venue time `t_venue` / local time `t_local`."""
    on_book, on_trade, on_fill, on_timer, ctx = handler_functions(hx, table)
    return drain_with(t_venue, t_local, qbuf, ist, oi, of, si, sf, rest, g, gf, hq, hf, ob, obf,
                      oo_i, oo_f, fo_i, fo_f, po_i, po_f, nsym, margin, on_fill, ctx)


@inline_kernel
def drain_with(t_venue, t_local, qbuf, ist, oi, of, si, sf, rest, g, gf, hq, hf, ob, obf,
               oo_i, oo_f, fo_i, fo_f, po_i, po_f, nsym, margin, on_fill, ctx):
    """`drain` with the strategy's `on_fill` already resolved (the kernel's own calls)."""
    while g[G_HN] > 0:
        k0 = hq[0, H_KIND]
        t0 = hq[0, H_T]
        if k0 < LOCAL_KINDS_FROM:
            if t0 > t_venue:
                break
        elif t0 > t_local:
            break
        st = _room(g, oo_i, fo_i, po_i, hq, ob, margin)
        if st != ST_OK:
            return st
        t, kind, o, px, qty = H.pop(hq, hf, g)
        if kind == K_NEW:
            X.on_new(qbuf, ist, oi, of, rest, si, g, gf, hq, hf, o, t)
        elif kind == K_CANCEL:
            X.on_cancel(oi, of, rest, si, g, hq, hf, o, t)
        elif kind == K_TRIGGER:
            X.on_trigger(qbuf, ist, oi, of, rest, si, sf, g, gf, hq, hf, o, t)
        else:
            reason = px if (kind == K_CANCEL_REJ or kind == K_VENUE_REJ or kind == K_EXPIRED) else 0
            nf0 = g[G_NF]
            if O.on_response(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, fo_i, fo_f, po_i, po_f,
                             kind, o, px, qty, reason, t, nsym):
                _check_halt(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, oi[o, OI_SYM], t, nsym)
            fill_event(on_fill, ctx, g, fo_i, fo_f, nf0, t)
            _gateway(ob, obf, oi, g, hq, hf)
            if g[G_BAD] != 0:
                return ST_BAD
    return ST_OK


@kernel
def square_off_step(qbuf, ist, si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, s, now):
    """While symbol `s` squares off: when it holds a position and no order of it works any more
    (the cut-off's cancels answered, an earlier flattening order done), send an IOC for the whole
    position, priced `SQUARE_OFF_REACH` through the opposite touch and kept within the circuit
    limits — marketable, so it takes the visible book; what it leaves is sent again at the next
    book update. Without an opposite touch it waits for one."""
    pos = sf[s, SF_POS]
    if abs(pos) <= 1e-9 or O.working_any(si, oi, s):
        return
    if pos > 0.0:
        if ist[s, B.I_NB] == 0:
            return
        bb = ist[s, B.I_BB]
        px = bb - max(1, np.int64(bb * SQUARE_OFF_REACH))
        if si[s, SI_HAS_CIRC] != 0 and px < si[s, SI_CIRC_LO]:
            px = si[s, SI_CIRC_LO]
        if px < 1:
            px = 1
        O.square_off_order(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, s, -1, px, pos, now)
    else:
        if ist[s, B.I_NA] == 0:
            return
        ba = ist[s, B.I_BA]
        px = ba + max(1, np.int64(ba * SQUARE_OFF_REACH))
        if si[s, SI_HAS_CIRC] != 0 and px > si[s, SI_CIRC_HI]:
            px = si[s, SI_CIRC_HI]
        O.square_off_order(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, s, 1, px, -pos, now)


@kernel
def square_off_begin(qbuf, ist, oi, of, si, sf, g, gf, hq, hf, ob, obf, oo_i, oo_f, s, now):
    """The broker's cut-off for symbol `s` at local time `now`: cancel its working orders, stop
    its new orders for the rest of its day, and flatten it (`square_off_step`, at once when
    nothing of it works, else once the cancels are answered)."""
    O.square_off_begin(si, sf, oi, of, g, ob, obf, oo_i, oo_f, s, now)
    square_off_step(qbuf, ist, si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, s, now)
    _gateway(ob, obf, oi, g, hq, hf)


@inline_kernel
def end_message(qbuf, ist, oi, of, si, sf, rest, g, gf, rej, hq, hf, ob, obf, oo_i, oo_f, po_i, po_f, nsym, on_book, ctx):
    """The open message is complete: mark, check loss limits, run the strategy's `on_book`."""
    g[G_PEND] = 0
    if g[G_PBOOK] == 0:
        return
    g[G_PBOOK] = 0
    s = g[G_PSYM]
    if ist[s, B.I_INSNAP] != 0:
        return
    g[G_MESSAGES] += 1
    now = g[G_PLOC]
    t = g[G_PTS]
    if ist[s, B.I_NB] > 0 and ist[s, B.I_NA] > 0:
        mid = 0.5 * F.tick_price(ist[s, B.I_BB] + ist[s, B.I_BA], sf[s, SF_TICK], sf[s, SF_INV])
        if sf[s, SF_POS] != 0.0:
            positions.mark(sf, s, mid)
            O.track_equity(sf, gf, nsym)
            if g[G_HALTED] == HALT_NONE and (gf[GF_DAILY] > 0.0 or positions.total(sf, s) < -sf[s, SF_MAXLOSS]):
                _check_halt(si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, s, now, nsym)
            if si[s, SI_HAS_PNL] == 0 or t - si[s, SI_PNL_TS] >= g[G_PNL_INT]:
                W.pnl_row(po_i, po_f, g, si, sf, s, t)
        else:
            sf[s, SF_MARK] = mid
            if si[s, SI_HAS_PNL] != 0 and t - si[s, SI_PNL_TS] >= g[G_PNL_INT] and now - si[s, SI_FILL_TS] <= MARKOUT_WINDOW_NS:
                W.pnl_row(po_i, po_f, g, si, sf, s, t)  # flat, but the mids after a fill are its markouts
    if si[s, SI_NARMED] > 0:  # the venue's stops and take-profits that watch the mark (mid)
        X.mark_triggers(ist, oi, rest, si, g, hq, hf, s, t)
    if si[s, SI_SQ] != 0:
        square_off_step(qbuf, ist, si, sf, oi, of, g, gf, ob, obf, oo_i, oo_f, s, now)
    if g[G_HALTED] == HALT_NONE and (g[G_HMASK] & HAS_BOOK) != 0:
        g[G_HANDLER] = HANDLER_BOOK
        g[G_HNOW] = now
        g[G_HSYM] = s
        on_book(ctx, s)
        g[G_HANDLER] = HANDLER_NONE
    _gateway(ob, obf, oi, g, hq, hf)


@batch_kernel
def run(ts, loc, sym, kind, side, tick, qty, seq, start, complete,
        qbuf, ist, bg, pv_tick, pv_qty,
        oi, of, si, sf, rest, g, gf, rej, hq, hf, ob, obf,
        oo_i, oo_f, fo_i, fo_f, po_i, po_f, eq, nsym, margin,
        hx, table):
    """Process events start..n; returns (status, i) — ST_OK with i = n when done."""
    on_book, on_trade, on_fill, on_timer, ctx = handler_functions(hx, table)
    n = len(ts)
    for i in range(start, n):
        st = _room(g, oo_i, fo_i, po_i, hq, ob, margin)
        if st != ST_OK:
            return st, i
        s = sym[i]
        t = ts[i]
        lt = loc[i]
        if g[G_PEND] != 0 and (g[G_PSYM] != s or g[G_PSEQ] != seq[i]):
            end_message(qbuf, ist, oi, of, si, sf, rest, g, gf, rej, hq, hf, ob, obf, oo_i, oo_f, po_i, po_f, nsym, on_book, ctx)
            if g[G_BAD] != 0:
                return ST_BAD, i
        if _due(g, hq, t, lt):
            st = drain_with(t, lt, qbuf, ist, oi, of, si, sf, rest, g, gf, hq, hf, ob, obf,
                            oo_i, oo_f, fo_i, fo_f, po_i, po_f, nsym, margin, on_fill, ctx)
            if st != ST_OK:
                return st, i
            st = _room(g, oo_i, fo_i, po_i, hq, ob, margin)
            if st != ST_OK:
                return st, i
        if g[G_TIMER_NS] > 0:
            if g[G_NEXT_TIMER] == 0:
                g[G_NEXT_TIMER] = (t // g[G_TIMER_NS] + 1) * g[G_TIMER_NS]
            elif t >= g[G_NEXT_TIMER]:
                g[G_NEXT_TIMER] = (t // g[G_TIMER_NS] + 1) * g[G_TIMER_NS]
                if g[G_HALTED] == HALT_NONE:
                    g[G_HANDLER] = HANDLER_TIMER
                    g[G_HNOW] = lt
                    for q in range(nsym):
                        g[G_HSYM] = q
                        on_timer(ctx, q)
                        if g[G_BAD] != 0:
                            break
                    g[G_HANDLER] = HANDLER_NONE
                    _gateway(ob, obf, oi, g, hq, hf)
                    if g[G_BAD] != 0:
                        return ST_BAD, i
                    st = _room(g, oo_i, fo_i, po_i, hq, ob, margin)
                    if st != ST_OK:
                        return st, i
        if g[G_NEXT_MIN] == 0:
            g[G_NEXT_MIN] = (t // NS_PER_MIN + 1) * NS_PER_MIN
        while t >= g[G_NEXT_MIN]:
            if g[G_NEQ] >= eq.shape[0]:
                return ST_GROW_EQ, i
            eq[g[G_NEQ]] = positions.account_total(sf, nsym)
            g[G_NEQ] += 1
            g[G_NEXT_MIN] += NS_PER_MIN
        k = kind[i]
        if k == B.LEVEL:
            sd = side[i]
            tk = tick[i]
            prev = LV.qty_at(qbuf, ist, s, sd, tk)
            if LV.apply_level(qbuf, ist, bg, s, sd, tk, qty[i]) != B.ST_OK:
                return ST_GROW_BOOK, i
            if si[s, SI_NREST] > 0 and X.level_touches_rest(si, s, sd, tk, qty[i]):
                X.on_level(oi, of, rest, si, g, gf, hq, hf, s, sd, tk, prev, qty[i], ist[s, B.I_INSNAP], t)
            g[G_PBOOK] = 1
        elif k == B.TRADE:
            if si[s, SI_NREST] > 0:
                X.on_trade(oi, of, rest, si, g, gf, hq, hf, s, side[i], tick[i], qty[i], t, sf[s, SF_LOT])
            if si[s, SI_NARMED] > 0:  # the venue's stops and take-profits that watch the last trade
                X.trade_triggers(oi, rest, si, g, hq, hf, s, tick[i], t)
            if g[G_HALTED] == HALT_NONE and ist[s, B.I_INSNAP] == 0 and (g[G_HMASK] & HAS_TRADE) != 0:
                g[G_HANDLER] = HANDLER_TRADE
                g[G_HNOW] = lt
                g[G_HSYM] = s
                on_trade(ctx, s, np.int64(side[i]), tick[i], qty[i])
                g[G_HANDLER] = HANDLER_NONE
                _gateway(ob, obf, oi, g, hq, hf)
                if g[G_BAD] != 0:
                    return ST_BAD, i
        elif k == B.CLEAR:
            B.clear_book(qbuf, ist, pv_tick, pv_qty, s)
            g[G_PBOOK] = 1
        elif k == B.SNAPSHOT_END:
            if ist[s, B.I_INSNAP] != 0:
                ist[s, B.I_INSNAP] = 0
                X.on_snapshot_end(qbuf, ist, oi, of, rest, si, s)
            g[G_PBOOK] = 1
        g[G_EVENTS] += 1
        g[G_PEND] = 1
        g[G_PSYM] = s
        g[G_PSEQ] = seq[i]
        g[G_PTS] = t
        g[G_PLOC] = lt
        g[G_LASTTS] = t
        g[G_LASTLOC] = lt
    if complete and g[G_PEND] != 0:
        st = _room(g, oo_i, fo_i, po_i, hq, ob, margin)
        if st != ST_OK:
            return st, n
        end_message(qbuf, ist, oi, of, si, sf, rest, g, gf, rej, hq, hf, ob, obf, oo_i, oo_f, po_i, po_f, nsym, on_book, ctx)
        if g[G_BAD] != 0:
            return ST_BAD, n
    return ST_OK, n


@kernel
def close_message(qbuf, ist, oi, of, si, sf, rest, g, gf, rej, hq, hf, ob, obf, oo_i, oo_f, po_i, po_f, nsym, hx, table):
    """Complete the open message (end of input, or before a halt)."""
    on_book, on_trade, on_fill, on_timer, ctx = handler_functions(hx, table)
    if g[G_PEND] != 0:
        end_message(qbuf, ist, oi, of, si, sf, rest, g, gf, rej, hq, hf, ob, obf, oo_i, oo_f, po_i, po_f, nsym, on_book, ctx)


@kernel
def halt_all(oi, of, si, sf, g, hq, hf, ob, obf, oo_i, oo_f, reason, now):
    """Halt the strategy at local time `now` and send a cancel for every LIVE order."""
    O.halt(si, sf, oi, of, g, ob, obf, oo_i, oo_f, reason, now)
    _gateway(ob, obf, oi, g, hq, hf)


@kernel
def final_rows(si, sf, g, po_i, po_f, nsym, now):
    """One closing pnl row for every symbol that traded."""
    for s in range(nsym):
        if sf[s, SF_VOL] > 0.0:
            W.pnl_row(po_i, po_f, g, si, sf, s, now)
