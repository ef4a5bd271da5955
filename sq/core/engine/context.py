"""The strategy context: what a strategy's event handlers read and do, with no state array in sight.

A handler receives `ctx` (one `Context`: a numba structref over the engine's state arrays) and
the symbol id `s`, and calls methods on it. Prices are in *ticks* of the symbol's tick size
(integers; `ctx.price(s, t)` converts), sizes in the instrument's base quantity.

Book (the engine's exact L2 book; `side` is +1 bid / buy, -1 ask / sell):
    ctx.has_bid(s), ctx.has_ask(s)      is the side non-empty
    ctx.bid(s), ctx.ask(s)              best bid / ask in ticks (valid when the side is non-empty)
    ctx.bid_qty(s), ctx.ask_qty(s)      quantity at the best level (0.0 when empty)
    ctx.level(s, side, n)               (ticks, qty) of the n-th best level (n = 0 is the touch;
                                        qty 0.0 when there is no such level)
    ctx.mid(s), ctx.fair(s)             mid and microprice (bid·ask_qty + ask·bid_qty)/(bid_qty + ask_qty)
                                        in ticks, NaN when undefined
    ctx.spread(s)                       ask − bid in ticks (NaN when a side is empty)
    ctx.imbalance(s)                    (bid_qty − ask_qty)/(bid_qty + ask_qty) at the touch, NaN when undefined
    ctx.tick_size(s), ctx.lot_size(s)   the instrument's grid
    ctx.price(s, ticks), ctx.ticks(s, price), ctx.lots(s, qty)   conversions (lots: rounded down)
Account:
    ctx.position(s), ctx.pnl(s)         net position; realized + unrealized − fees
    ctx.max_position(s)                 the risk limit on the absolute position (`max_position`)
    ctx.working(s, side)                (ticks, leaves) of this side's working order (leaves 0.0: none)
    ctx.now()                           local time of the event being handled (ns)
Parameters and own state:
    ctx.param(s, P)                     the value of declared parameter P (the int `Strategy.param` returned)
    ctx.state(s)                        this symbol's float64 scratch row (`Strategy(state=N)` slots, zeroed at start)
Actions (one order per side, the reference order manager: a new price cancels and replaces):
    ctx.quote(s, side, ticks, qty)      a GTC limit order at `ticks` (nothing sent when already there)
    ctx.take(s, side, ticks, qty)       an IOC limit order (marketable when it crosses the touch)
    ctx.order(s, side, ticks, qty, tif) either, with tif GTC or IOC
    ctx.cancel(s, side)                 cancel this side's working order
Every order passes sq's risk checks (size, position, loss, notional, rate, price band, hours,
circuit limits) exactly as in backtest, paper and live. A size that is NaN, infinite or negative,
a price that is NaN or not a positive tick, or a side other than ±1 is a bug in the strategy:
nothing is sent, and the run stops (its orders cancelled, its journal sealed, exit 70).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.core.extending import overload_method
from numba.experimental import structref

from sq.core import book as B
from sq.core import features as F
from sq.core.engine import levels
from sq.core.engine import orders
from sq.core.engine import positions
from sq.core.engine.layout import (
    BAD_NONE,
    BAD_PRICE,
    BAD_QTY,
    BAD_SIDE,
    DEAD,
    FREE,
    G_BAD,
    G_BAD_COUNT,
    G_BAD_HANDLER,
    G_BAD_SYM,
    G_HANDLER,
    G_HNOW,
    LIVE,
    OF_LEAVES,
    OI_PX,
    OI_STATE,
    SF_INV,
    SF_LOT,
    SF_MAXPOS,
    SF_TICK,
    SF_POS,
    SI_SLOT,
    TIF_GTC,
    TIF_IOC,
)

BUY, SELL = 1, -1
GTC, IOC = TIF_GTC, TIF_IOC

FIELDS = (
    ("qbuf", types.float64[::1]), ("ist", types.int64[:, ::1]),
    ("si", types.int64[:, ::1]), ("sf", types.float64[:, ::1]), ("oi", types.int64[:, ::1]), ("of", types.float64[:, ::1]),
    ("g", types.int64[::1]), ("gf", types.float64[::1]), ("rej", types.int64[::1]),
    ("ob", types.int64[:, ::1]), ("obf", types.float64[::1]), ("oo_i", types.int64[:, ::1]), ("oo_f", types.float64[:, ::1]),
    ("pf", types.float64[:, ::1]), ("us", types.float64[:, ::1]),
)


@structref.register
class ContextType(types.StructRef):
    """The numba type of `Context` (one instance type for every strategy: handlers compile to
    the same signature, so the engine kernel is compiled once for all of them)."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(t)) for name, t in fields)


CONTEXT = ContextType(list(FIELDS))


class Context(structref.StructRefProxy):
    """The strategy context over an engine's state (built by `make_context`)."""


structref.define_boxing(ContextType, Context)


@njit(cache=True)
def make_context(qbuf, ist, si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, pf, us):
    """A Context over these arrays (rebuilt by the engine whenever it reallocates one)."""
    ctx = structref.new(CONTEXT)
    ctx.qbuf = qbuf
    ctx.ist = ist
    ctx.si = si
    ctx.sf = sf
    ctx.oi = oi
    ctx.of = of
    ctx.g = g
    ctx.gf = gf
    ctx.rej = rej
    ctx.ob = ob
    ctx.obf = obf
    ctx.oo_i = oo_i
    ctx.oo_f = oo_f
    ctx.pf = pf
    ctx.us = us
    return ctx


def _method(name):
    return overload_method(ContextType, name, jit_options={"cache": True})


# ---------------------------------------------------------------------------------------------- book


@_method("has_bid")
def _has_bid(ctx, s):
    return lambda ctx, s: ctx.ist[s, B.I_NB] > 0


@_method("has_ask")
def _has_ask(ctx, s):
    return lambda ctx, s: ctx.ist[s, B.I_NA] > 0


@_method("bid")
def _bid(ctx, s):
    return lambda ctx, s: ctx.ist[s, B.I_BB]


@_method("ask")
def _ask(ctx, s):
    return lambda ctx, s: ctx.ist[s, B.I_BA]


@_method("bid_qty")
def _bid_qty(ctx, s):
    return lambda ctx, s: levels.best_qty(ctx.qbuf, ctx.ist, s, 1)


@_method("ask_qty")
def _ask_qty(ctx, s):
    return lambda ctx, s: levels.best_qty(ctx.qbuf, ctx.ist, s, -1)


@njit(cache=True, _nrt=False)
def nth_level(qbuf, ist, s, side, n):
    """(ticks, qty) of the n-th non-empty level of `side` from the touch; qty 0.0 when none."""
    if side > 0:
        if ist[s, B.I_NB] == 0:
            return 0, 0.0
        t, stop, step = ist[s, B.I_BB], ist[s, B.I_BLO] - 1, -1
    else:
        if ist[s, B.I_NA] == 0:
            return 0, 0.0
        t, stop, step = ist[s, B.I_BA], ist[s, B.I_AHI] + 1, 1
    k = 0
    while t != stop:
        q = levels.qty_at(qbuf, ist, s, side, t)
        if q > 0.0:
            if k == n:
                return t, q
            k += 1
        t += step
    return 0, 0.0


@_method("level")
def _level(ctx, s, side, n):
    return lambda ctx, s, side, n: nth_level(ctx.qbuf, ctx.ist, s, side, n)


@njit(cache=True, _nrt=False)
def fair_ticks(qbuf, ist, s):
    """Microprice in ticks: (bid·ask_qty + ask·bid_qty)/(bid_qty + ask_qty); NaN when undefined."""
    if ist[s, B.I_NB] == 0 or ist[s, B.I_NA] == 0:
        return math.nan
    bq = levels.best_qty(qbuf, ist, s, 1)
    aq = levels.best_qty(qbuf, ist, s, -1)
    tot = bq + aq
    if not tot > 0.0:
        return math.nan
    return (ist[s, B.I_BB] * aq + ist[s, B.I_BA] * bq) / tot


@_method("fair")
def _fair(ctx, s):
    return lambda ctx, s: fair_ticks(ctx.qbuf, ctx.ist, s)


@_method("mid")
def _mid(ctx, s):
    def impl(ctx, s):
        if ctx.ist[s, B.I_NB] == 0 or ctx.ist[s, B.I_NA] == 0:
            return math.nan
        return 0.5 * (ctx.ist[s, B.I_BB] + ctx.ist[s, B.I_BA])
    return impl


@_method("spread")
def _spread(ctx, s):
    def impl(ctx, s):
        if ctx.ist[s, B.I_NB] == 0 or ctx.ist[s, B.I_NA] == 0:
            return math.nan
        return float(ctx.ist[s, B.I_BA] - ctx.ist[s, B.I_BB])
    return impl


@_method("imbalance")
def _imbalance(ctx, s):
    def impl(ctx, s):
        bq = levels.best_qty(ctx.qbuf, ctx.ist, s, 1)
        aq = levels.best_qty(ctx.qbuf, ctx.ist, s, -1)
        return F.imbalance(bq, aq)
    return impl


@_method("tick_size")
def _tick_size(ctx, s):
    return lambda ctx, s: ctx.sf[s, SF_TICK]


@_method("lot_size")
def _lot_size(ctx, s):
    return lambda ctx, s: ctx.sf[s, SF_LOT]


@_method("price")
def _price(ctx, s, ticks):
    return lambda ctx, s, ticks: F.tick_price(ticks, ctx.sf[s, SF_TICK], ctx.sf[s, SF_INV])


@_method("ticks")
def _ticks(ctx, s, price):
    return lambda ctx, s, price: np.int64(math.floor(price / ctx.sf[s, SF_TICK] + 0.5))


@njit(cache=True, _nrt=False)
def round_lots(qty, lot):
    """`qty` rounded down to a whole number of lots (unchanged without a lot size)."""
    if lot > 0.0:
        return math.floor(qty / lot + 1e-9) * lot
    return qty


@_method("lots")
def _lots(ctx, s, qty):
    return lambda ctx, s, qty: round_lots(qty, ctx.sf[s, SF_LOT])


# ---------------------------------------------------------------------------------------------- account


@_method("position")
def _position(ctx, s):
    return lambda ctx, s: ctx.sf[s, SF_POS]


@_method("max_position")
def _max_position(ctx, s):
    return lambda ctx, s: ctx.sf[s, SF_MAXPOS]


@_method("pnl")
def _pnl(ctx, s):
    return lambda ctx, s: positions.total(ctx.sf, s)


@njit(cache=True, _nrt=False)
def working_order(si, oi, of, s, side):
    """(ticks, leaves) of `side`'s order of `s`; leaves 0.0 when no order works there."""
    o = si[s, SI_SLOT + (0 if side > 0 else 1)]
    if o < 0:
        return 0, 0.0
    st = oi[o, OI_STATE]
    if st == FREE or st == DEAD:
        return 0, 0.0
    return oi[o, OI_PX], of[o, OF_LEAVES]


@_method("working")
def _working(ctx, s, side):
    return lambda ctx, s, side: working_order(ctx.si, ctx.oi, ctx.of, s, side)


@_method("now")
def _now(ctx):
    return lambda ctx: ctx.g[G_HNOW]


@_method("param")
def _param(ctx, s, k):
    return lambda ctx, s, k: ctx.pf[s, k]


@_method("state")
def _state(ctx, s):
    return lambda ctx, s: ctx.us[s]


# ---------------------------------------------------------------------------------------------- actions


@njit(cache=True, _nrt=False)
def _bad(g, s, code):
    """Record a strategy's bad action (the first one is reported; the run stops after the handler)."""
    g[G_BAD_COUNT] += 1
    if g[G_BAD] == BAD_NONE:
        g[G_BAD] = code
        g[G_BAD_SYM] = s
        g[G_BAD_HANDLER] = g[G_HANDLER]


@njit(cache=True, _nrt=False)
def _acts(oi, o, px):
    """Whether moving slot order `o` to `px` would do anything (most book updates leave a quote)."""
    if o < 0:
        return True
    st = oi[o, OI_STATE]
    return st == DEAD or st == FREE or (st == LIVE and oi[o, OI_PX] != px)


@njit(cache=True, _nrt=False)
def place(qbuf, ist, si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, side, ticks, qty, tif):
    """Steer `side`'s order of `s` to a limit at `ticks` for `qty` (checked, then risk-checked)."""
    if side != 1 and side != -1:
        _bad(g, s, BAD_SIDE)
        return
    if not (qty >= 0.0) or qty == math.inf:
        _bad(g, s, BAD_QTY)
        return
    if not (ticks >= 1.0) or ticks == math.inf:
        _bad(g, s, BAD_PRICE)
        return
    px = np.int64(math.floor(ticks + 0.5))
    if _acts(oi, si[s, SI_SLOT + (0 if side > 0 else 1)], px):
        orders.move_order(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, side, px, True, qty, tif,
                          fair_ticks(qbuf, ist, s), g[G_HNOW], si.shape[0])


@njit(cache=True, _nrt=False)
def cancel_side(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, side):
    """Cancel `side`'s working order of `s` (nothing when none works)."""
    if side != 1 and side != -1:
        _bad(g, s, BAD_SIDE)
        return
    orders.move_order(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, side, 0, False, 0.0, TIF_GTC, math.nan,
                      g[G_HNOW], si.shape[0])


@_method("order")
def _order(ctx, s, side, ticks, qty, tif):
    def impl(ctx, s, side, ticks, qty, tif):
        place(ctx.qbuf, ctx.ist, ctx.si, ctx.sf, ctx.oi, ctx.of, ctx.g, ctx.gf, ctx.rej, ctx.ob, ctx.obf, ctx.oo_i, ctx.oo_f,
              s, side, float(ticks), float(qty), tif)
    return impl


@_method("quote")
def _quote(ctx, s, side, ticks, qty):
    def impl(ctx, s, side, ticks, qty):
        place(ctx.qbuf, ctx.ist, ctx.si, ctx.sf, ctx.oi, ctx.of, ctx.g, ctx.gf, ctx.rej, ctx.ob, ctx.obf, ctx.oo_i, ctx.oo_f,
              s, side, float(ticks), float(qty), TIF_GTC)
    return impl


@_method("take")
def _take(ctx, s, side, ticks, qty):
    def impl(ctx, s, side, ticks, qty):
        place(ctx.qbuf, ctx.ist, ctx.si, ctx.sf, ctx.oi, ctx.of, ctx.g, ctx.gf, ctx.rej, ctx.ob, ctx.obf, ctx.oo_i, ctx.oo_f,
              s, side, float(ticks), float(qty), TIF_IOC)
    return impl


@_method("cancel")
def _cancel(ctx, s, side):
    def impl(ctx, s, side):
        cancel_side(ctx.si, ctx.sf, ctx.oi, ctx.of, ctx.g, ctx.gf, ctx.rej, ctx.ob, ctx.obf, ctx.oo_i, ctx.oo_f, s, side)
    return impl
