"""A strategy for the protective-order tests: one entry, then a stop and a take-profit.

On its first book with both sides it sends `entry` (+1 buy at the ask, -1 sell at the bid, 0
nothing) for `size` as an IOC. From then on, on every book it steers the symbol's stop and
take-profit (side `pside`, trigger in ticks, `*_limit` 0: a market order, `*_qty` 0: the
position's size, `ro` reduce-only, `*_src` the trigger source) until `cancel_at` books have been
seen, when it cancels the stop. State slots: 0 entry sent, 1 books seen, 2–3 `ctx.working_stop`.
"""

import math

from sq.strategy import BUY, Strategy

strategy = Strategy("protector", "One entry, then a stop and a take-profit.", state=4)
ENTRY = strategy.param("entry", 1.0, choices=(-1.0, 0.0, 1.0), doc="the entry's side (0: none)")
SIZE = strategy.param("size", 1.0, above=0.0, doc="entry size")
PSIDE = strategy.param("pside", -1.0, choices=(-1.0, 1.0), doc="the protective orders' side")
STOP = strategy.param("stop", 0.0, min=0.0, doc="stop trigger, ticks (0: none)")
STOP_LIMIT = strategy.param("stop_limit", 0.0, min=0.0, doc="stop limit, ticks (0: market)")
STOP_QTY = strategy.param("stop_qty", 0.0, min=0.0, doc="stop size (0: the position's)")
STOP_SRC = strategy.param("stop_src", 0.0, min=0.0, max=9.0, doc="stop trigger source")
TP = strategy.param("tp", 0.0, min=0.0, doc="take-profit trigger, ticks (0: none)")
TP_LIMIT = strategy.param("tp_limit", 0.0, min=0.0, doc="take-profit limit, ticks (0: market)")
TP_QTY = strategy.param("tp_qty", 0.0, min=0.0, doc="take-profit size (0: the position's)")
TP_SRC = strategy.param("tp_src", 0.0, min=0.0, max=9.0, doc="take-profit trigger source")
RO = strategy.param("ro", 1.0, choices=(0.0, 1.0), doc="reduce-only")
CANCEL_AT = strategy.param("cancel_at", 0.0, min=0.0, doc="cancel the stop at this many books (0: never)")


@strategy.on_book
def on_book(ctx, s):
    st = ctx.state(s)
    st[1] += 1.0
    if st[0] == 0.0 and ctx.has_bid(s) and ctx.has_ask(s):
        st[0] = 1.0
        entry = ctx.param(s, ENTRY)
        if entry > 0.0:
            ctx.take(s, BUY, ctx.ask(s), ctx.param(s, SIZE))
        elif entry < 0.0:
            ctx.take(s, -1, ctx.bid(s), ctx.param(s, SIZE))
        return
    pside = 1 if ctx.param(s, PSIDE) > 0 else -1
    ro = ctx.param(s, RO) != 0.0
    cancel_at = ctx.param(s, CANCEL_AT)
    if ctx.param(s, STOP) > 0.0:
        if cancel_at > 0.0 and st[1] >= cancel_at:
            ctx.cancel_stop(s)
        else:
            q = ctx.param(s, STOP_QTY) if ctx.param(s, STOP_QTY) > 0.0 else abs(ctx.position(s))
            lim = ctx.param(s, STOP_LIMIT)
            if q > 0.0:
                ctx.stop(s, pside, ctx.param(s, STOP), q, math.nan if lim == 0.0 else lim, ro, int(ctx.param(s, STOP_SRC)))
    if ctx.param(s, TP) > 0.0:
        q = ctx.param(s, TP_QTY) if ctx.param(s, TP_QTY) > 0.0 else abs(ctx.position(s))
        lim = ctx.param(s, TP_LIMIT)
        if q > 0.0:
            ctx.take_profit(s, pside, ctx.param(s, TP), q, limit=math.nan if lim == 0.0 else lim, reduce_only=ro,
                            trigger=int(ctx.param(s, TP_SRC)))
    t, q = ctx.working_stop(s)
    st[2] = t
    st[3] = q
