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
Protective orders (one stop and one take-profit per symbol, held untriggered by the venue):
    ctx.stop(s, side, ticks, qty, limit=NaN, reduce_only=True, trigger=TRIGGER_LAST)
                                        a stop triggered at `ticks` (buy: price ≥ it; sell: ≤), then a
                                        market order (limit NaN) or a limit order at `limit`
    ctx.take_profit(s, side, ticks, qty, limit=NaN, reduce_only=True, trigger=TRIGGER_LAST)
                                        the same, triggered the other way (buy: price ≤ it; sell: ≥)
    ctx.cancel_stop(s), ctx.cancel_take_profit(s)
    ctx.working_stop(s), ctx.working_take_profit(s)   (trigger ticks, leaves); leaves 0.0: none
Every order passes sq's risk checks (size, position, loss, notional, rate, price band, hours,
circuit limits) exactly as in backtest, paper and live.

How it is built (for speed): `ctx` is a one-field named tuple holding a small int64 table of the
state arrays' data pointers and shapes (`make_context`). A handler call passes that one array;
each method rebuilds the arrays it needs as reference-count-free views (`numba.carray`), so
reading the book costs a few loads, not a function call with fifteen arrays. The engine rebuilds the table whenever it reallocates an array, and keeps the
arrays it points into alive. A size that is NaN, infinite or negative,
a price that is NaN or not a positive tick, or a side other than ±1 is a bug in the strategy:
nothing is sent, and the run stops (its orders cancelled, its journal sealed, exit 70).
"""

from __future__ import annotations

import collections
import functools
import math

import numpy as np
from numba import carray, njit, types, typeof
from numba.core.extending import intrinsic, overload_method

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
    BAD_TRIGGER,
    DEAD,
    OI_OTYPE,
    OI_SIDE,
    OI_TRIG,
    OT_STOP_LIMIT,
    OT_STOP_MARKET,
    OT_TP_LIMIT,
    OT_TP_MARKET,
    P_STOP,
    P_TAKE_PROFIT,
    SI_PSLOT,
    TRIGGER_LAST,
    TRIGGER_MARK,
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

ARRAYS = ("qbuf", "ist", "si", "sf", "oi", "of", "g", "gf", "rej", "ob", "obf", "oo_i", "oo_f", "pf", "us")
QBUF, IST, SI, SF, OI, OF, G, GF, REJ, OB, OBF, OO_I, OO_F, PF, US = range(len(ARRAYS))

Context = collections.namedtuple("Context", ["table"])
Context.__doc__ = "The strategy context: a table of the engine's state arrays (data pointer, rows, columns each)."


def make_context(*arrays: np.ndarray) -> Context:
    """A Context over these arrays (`ARRAYS` order, each C-contiguous); the caller keeps them alive."""
    table = np.zeros(3 * len(ARRAYS), np.int64)
    for k, a in enumerate(arrays):
        if not a.flags.c_contiguous:
            raise ValueError(f"context array {ARRAYS[k]} is not C-contiguous")
        table[3 * k] = a.ctypes.data
        table[3 * k + 1] = a.shape[0]
        table[3 * k + 2] = a.shape[1] if a.ndim == 2 else 0
    return Context(table)


CONTEXT = typeof(Context(np.zeros(3 * len(ARRAYS), np.int64)))


def _pointer(dtype):
    @intrinsic
    def to_pointer(typingctx, address):
        if not isinstance(address, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(types.CPointer(dtype)))

        return types.CPointer(dtype)(address), codegen

    return to_pointer


_f64 = _pointer(types.float64)
_i64 = _pointer(types.int64)


@njit(inline="always", cache=True)
def vec_f(t, k):
    """Array `k` of the table as a 1-D float64 view (no reference counting)."""
    return carray(_f64(t[3 * k]), (t[3 * k + 1],))


@njit(inline="always", cache=True)
def vec_i(t, k):
    return carray(_i64(t[3 * k]), (t[3 * k + 1],))


@njit(inline="always", cache=True)
def mat_f(t, k):
    """Array `k` of the table as a 2-D float64 view."""
    return carray(_f64(t[3 * k]), (t[3 * k + 1], t[3 * k + 2]))


@njit(inline="always", cache=True)
def mat_i(t, k):
    return carray(_i64(t[3 * k]), (t[3 * k + 1], t[3 * k + 2]))


def _method(name):
    """A `ctx.name(...)` method, for the Context type only: compiled once and called (LLVM
    inlines the small ones); inlining every method into every handler at numba IR level made
    a strategy's first compile several times slower, with no measurable speed gain."""
    def register(typer):
        @functools.wraps(typer)  # numba reads the method's signature through __wrapped__
        def checked(ctx, *args, **kwargs):
            if getattr(ctx, "instance_class", None) is not Context:
                return None
            return typer(ctx, *args, **kwargs)

        return overload_method(types.BaseNamedTuple, name, jit_options={"cache": True})(checked)

    return register


# ---------------------------------------------------------------------------------------------- book


@_method("has_bid")
def _has_bid(ctx, s):
    return lambda ctx, s: mat_i(ctx.table, IST)[s, B.I_NB] > 0


@_method("has_ask")
def _has_ask(ctx, s):
    return lambda ctx, s: mat_i(ctx.table, IST)[s, B.I_NA] > 0


@_method("bid")
def _bid(ctx, s):
    return lambda ctx, s: mat_i(ctx.table, IST)[s, B.I_BB]


@_method("ask")
def _ask(ctx, s):
    return lambda ctx, s: mat_i(ctx.table, IST)[s, B.I_BA]


@_method("bid_qty")
def _bid_qty(ctx, s):
    return lambda ctx, s: levels.best_qty(vec_f(ctx.table, QBUF), mat_i(ctx.table, IST), s, 1)


@_method("ask_qty")
def _ask_qty(ctx, s):
    return lambda ctx, s: levels.best_qty(vec_f(ctx.table, QBUF), mat_i(ctx.table, IST), s, -1)


@njit(inline="always", cache=True, _nrt=False)
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
    return lambda ctx, s, side, n: nth_level(vec_f(ctx.table, QBUF), mat_i(ctx.table, IST), s, side, n)


@njit(inline="always", cache=True, _nrt=False)
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
    return lambda ctx, s: fair_ticks(vec_f(ctx.table, QBUF), mat_i(ctx.table, IST), s)


@_method("mid")
def _mid(ctx, s):
    def impl(ctx, s):
        if mat_i(ctx.table, IST)[s, B.I_NB] == 0 or mat_i(ctx.table, IST)[s, B.I_NA] == 0:
            return math.nan
        return 0.5 * (mat_i(ctx.table, IST)[s, B.I_BB] + mat_i(ctx.table, IST)[s, B.I_BA])
    return impl


@_method("spread")
def _spread(ctx, s):
    def impl(ctx, s):
        if mat_i(ctx.table, IST)[s, B.I_NB] == 0 or mat_i(ctx.table, IST)[s, B.I_NA] == 0:
            return math.nan
        return float(mat_i(ctx.table, IST)[s, B.I_BA] - mat_i(ctx.table, IST)[s, B.I_BB])
    return impl


@_method("imbalance")
def _imbalance(ctx, s):
    def impl(ctx, s):
        bq = levels.best_qty(vec_f(ctx.table, QBUF), mat_i(ctx.table, IST), s, 1)
        aq = levels.best_qty(vec_f(ctx.table, QBUF), mat_i(ctx.table, IST), s, -1)
        return F.imbalance(bq, aq)
    return impl


@_method("tick_size")
def _tick_size(ctx, s):
    return lambda ctx, s: mat_f(ctx.table, SF)[s, SF_TICK]


@_method("lot_size")
def _lot_size(ctx, s):
    return lambda ctx, s: mat_f(ctx.table, SF)[s, SF_LOT]


@_method("price")
def _price(ctx, s, ticks):
    return lambda ctx, s, ticks: F.tick_price(ticks, mat_f(ctx.table, SF)[s, SF_TICK], mat_f(ctx.table, SF)[s, SF_INV])


@_method("ticks")
def _ticks(ctx, s, price):
    return lambda ctx, s, price: np.int64(math.floor(price / mat_f(ctx.table, SF)[s, SF_TICK] + 0.5))


@njit(inline="always", cache=True, _nrt=False)
def round_lots(qty, lot):
    """`qty` rounded down to a whole number of lots (unchanged without a lot size)."""
    if lot > 0.0:
        return math.floor(qty / lot + 1e-9) * lot
    return qty


@_method("lots")
def _lots(ctx, s, qty):
    return lambda ctx, s, qty: round_lots(qty, mat_f(ctx.table, SF)[s, SF_LOT])


# ---------------------------------------------------------------------------------------------- account


@_method("position")
def _position(ctx, s):
    return lambda ctx, s: mat_f(ctx.table, SF)[s, SF_POS]


@_method("max_position")
def _max_position(ctx, s):
    return lambda ctx, s: mat_f(ctx.table, SF)[s, SF_MAXPOS]


@_method("pnl")
def _pnl(ctx, s):
    return lambda ctx, s: positions.total(mat_f(ctx.table, SF), s)


@njit(inline="always", cache=True, _nrt=False)
def held_order(oi, of, o, price_col):
    """(`price_col` ticks, leaves) of pool order `o` (-1: none); leaves 0.0 when it works no more."""
    if o < 0:
        return 0, 0.0
    st = oi[o, OI_STATE]
    if st == FREE or st == DEAD:
        return 0, 0.0
    return oi[o, price_col], of[o, OF_LEAVES]


@njit(inline="always", cache=True, _nrt=False)
def working_order(si, oi, of, s, side):
    """(ticks, leaves) of `side`'s order of `s`; leaves 0.0 when no order works there."""
    return held_order(oi, of, si[s, SI_SLOT + (0 if side > 0 else 1)], OI_PX)


@_method("working")
def _working(ctx, s, side):
    return lambda ctx, s, side: working_order(mat_i(ctx.table, SI), mat_i(ctx.table, OI), mat_f(ctx.table, OF), s, side)


@_method("now")
def _now(ctx):
    return lambda ctx: vec_i(ctx.table, G)[G_HNOW]


@_method("param")
def _param(ctx, s, k):
    return lambda ctx, s, k: mat_f(ctx.table, PF)[s, k]


@_method("state")
def _state(ctx, s):
    return lambda ctx, s: mat_f(ctx.table, US)[s]


# ---------------------------------------------------------------------------------------------- actions


@njit(inline="always", cache=True, _nrt=False)
def _bad(g, s, code):
    """Record a strategy's bad action (the first one is reported; the run stops after the handler)."""
    g[G_BAD_COUNT] += 1
    if g[G_BAD] == BAD_NONE:
        g[G_BAD] = code
        g[G_BAD_SYM] = s
        g[G_BAD_HANDLER] = g[G_HANDLER]


@njit(inline="always", cache=True, _nrt=False)
def _acts(oi, o, px):
    """Whether moving slot order `o` to `px` would do anything (most book updates leave a quote)."""
    if o < 0:
        return True
    st = oi[o, OI_STATE]
    return st == DEAD or st == FREE or (st == LIVE and oi[o, OI_PX] != px)


@njit(inline="always", cache=True)
def _valid(g, s, side, ticks, qty):
    """The checks of every order call: a side that is not ±1, a negative or infinite quantity, or
    a price below one tick or infinite is counted (`_bad`) and refused (False)."""
    if side != 1 and side != -1:
        _bad(g, s, BAD_SIDE)
        return False
    if not (qty >= 0.0) or qty == math.inf:
        _bad(g, s, BAD_QTY)
        return False
    if not (ticks >= 1.0) or ticks == math.inf:
        _bad(g, s, BAD_PRICE)
        return False
    return True


@njit(cache=True)
def steer(t, s, side, px, want, qty, tif):
    """`orders.move_order` over the table's arrays, called (not inlined) by `place` and
    `cancel_side` only when the order would change. Most calls of a quoting strategy change
    nothing: their path is then a few loads and compares, without building the fifteen array
    views move_order takes (inlined whole, it made every `ctx.quote` a function with a 1 KiB frame)."""
    g = vec_i(t, G)
    si = mat_i(t, SI)
    fair = fair_ticks(vec_f(t, QBUF), mat_i(t, IST), s) if want else math.nan
    orders.move_order(si, mat_f(t, SF), mat_i(t, OI), mat_f(t, OF), g, vec_f(t, GF), vec_i(t, REJ), mat_i(t, OB), vec_f(t, OBF),
                      mat_i(t, OO_I), mat_f(t, OO_F), s, side, px, want, qty, tif, fair, g[G_HNOW], si.shape[0])


@njit(inline="always", cache=True)
def place(t, s, side, ticks, qty, tif):
    """Steer `side`'s order of `s` to a limit at `ticks` for `qty` (checked, then risk-checked)."""
    g = vec_i(t, G)
    if not _valid(g, s, side, ticks, qty):
        return
    px = np.int64(math.floor(ticks + 0.5))
    if _acts(mat_i(t, OI), mat_i(t, SI)[s, SI_SLOT + (0 if side > 0 else 1)], px):
        steer(t, s, side, px, True, qty, tif)


@njit(inline="always", cache=True)
def cancel_side(t, s, side):
    """Cancel `side`'s working order of `s` (nothing when none works)."""
    g = vec_i(t, G)
    if side != 1 and side != -1:
        _bad(g, s, BAD_SIDE)
        return
    o = mat_i(t, SI)[s, SI_SLOT + (0 if side > 0 else 1)]
    if o >= 0 and mat_i(t, OI)[o, OI_STATE] == LIVE:  # move_order cancels nothing else
        steer(t, s, side, 0, False, 0.0, TIF_GTC)


@_method("order")
def _order(ctx, s, side, ticks, qty, tif):
    def impl(ctx, s, side, ticks, qty, tif):
        place(ctx.table, s, side, float(ticks), float(qty), tif)
    return impl


@_method("quote")
def _quote(ctx, s, side, ticks, qty):
    def impl(ctx, s, side, ticks, qty):
        place(ctx.table, s, side, float(ticks), float(qty), TIF_GTC)
    return impl


@_method("take")
def _take(ctx, s, side, ticks, qty):
    def impl(ctx, s, side, ticks, qty):
        place(ctx.table, s, side, float(ticks), float(qty), TIF_IOC)
    return impl


@_method("cancel")
def _cancel(ctx, s, side):
    def impl(ctx, s, side):
        cancel_side(ctx.table, s, side)
    return impl


# ---------------------------------------------------------------------------------------------- protective orders


@njit(inline="always", cache=True)
def protect(t, s, slot, side, ticks, qty, limit, reduce_only, trigger):
    """Steer `s`'s stop (`slot` P_STOP) or take-profit (P_TAKE_PROFIT) to a trigger at `ticks`,
    a market order when `limit` is NaN, else a limit at `limit` (checked, then risk-checked)."""
    g = vec_i(t, G)
    si = mat_i(t, SI)
    oi = mat_i(t, OI)
    if not _valid(g, s, side, ticks, qty):
        return
    if not (math.isnan(limit) or (limit >= 1.0 and limit != math.inf)):
        _bad(g, s, BAD_PRICE)
        return
    if trigger != TRIGGER_LAST and trigger != TRIGGER_MARK:
        _bad(g, s, BAD_TRIGGER)
        return
    trig = np.int64(math.floor(ticks + 0.5))
    market = math.isnan(limit)
    px = trig if market else np.int64(math.floor(limit + 0.5))
    if slot == P_STOP:
        ot = OT_STOP_MARKET if market else OT_STOP_LIMIT
    else:
        ot = OT_TP_MARKET if market else OT_TP_LIMIT
    o = si[s, SI_PSLOT + slot]
    if o >= 0:
        st = oi[o, OI_STATE]
        if st != DEAD and st != FREE and not (st == LIVE and (oi[o, OI_TRIG] != trig or oi[o, OI_PX] != px
                                                             or oi[o, OI_SIDE] != side or oi[o, OI_OTYPE] != ot)):
            return  # already there, or in flight
    orders.move_protective(si, mat_f(t, SF), oi, mat_f(t, OF), g, vec_f(t, GF), vec_i(t, REJ), mat_i(t, OB), vec_f(t, OBF),
                           mat_i(t, OO_I), mat_f(t, OO_F), s, slot, side, ot, trig, px, True, qty, reduce_only, trigger,
                           fair_ticks(vec_f(t, QBUF), mat_i(t, IST), s), g[G_HNOW], si.shape[0])


@njit(inline="always", cache=True)
def unprotect(t, s, slot):
    """Cancel `s`'s stop or take-profit (nothing when none works)."""
    g = vec_i(t, G)
    si = mat_i(t, SI)
    orders.move_protective(si, mat_f(t, SF), mat_i(t, OI), mat_f(t, OF), g, vec_f(t, GF), vec_i(t, REJ), mat_i(t, OB), vec_f(t, OBF),
                           mat_i(t, OO_I), mat_f(t, OO_F), s, slot, 1, 0, 0, 0, False, 0.0, False, 0, math.nan,
                           g[G_HNOW], si.shape[0])


@njit(inline="always", cache=True, _nrt=False)
def working_protective(si, oi, of, s, slot):
    """(trigger ticks, leaves) of `s`'s stop or take-profit; leaves 0.0 when none works."""
    return held_order(oi, of, si[s, SI_PSLOT + slot], OI_TRIG)


@_method("stop")
def _stop(ctx, s, side, ticks, qty, limit=math.nan, reduce_only=True, trigger=TRIGGER_LAST):
    def impl(ctx, s, side, ticks, qty, limit=math.nan, reduce_only=True, trigger=TRIGGER_LAST):
        protect(ctx.table, s, P_STOP, side, float(ticks), float(qty), float(limit), bool(reduce_only), np.int64(trigger))
    return impl


@_method("take_profit")
def _take_profit(ctx, s, side, ticks, qty, limit=math.nan, reduce_only=True, trigger=TRIGGER_LAST):
    def impl(ctx, s, side, ticks, qty, limit=math.nan, reduce_only=True, trigger=TRIGGER_LAST):
        protect(ctx.table, s, P_TAKE_PROFIT, side, float(ticks), float(qty), float(limit), bool(reduce_only), np.int64(trigger))
    return impl


@_method("cancel_stop")
def _cancel_stop(ctx, s):
    def impl(ctx, s):
        unprotect(ctx.table, s, P_STOP)
    return impl


@_method("cancel_take_profit")
def _cancel_take_profit(ctx, s):
    def impl(ctx, s):
        unprotect(ctx.table, s, P_TAKE_PROFIT)
    return impl


@_method("working_stop")
def _working_stop(ctx, s):
    return lambda ctx, s: working_protective(mat_i(ctx.table, SI), mat_i(ctx.table, OI), mat_f(ctx.table, OF), s, P_STOP)


@_method("working_take_profit")
def _working_take_profit(ctx, s):
    return lambda ctx, s: working_protective(mat_i(ctx.table, SI), mat_i(ctx.table, OI), mat_f(ctx.table, OF), s, P_TAKE_PROFIT)
