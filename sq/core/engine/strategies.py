"""The two strategies with the reference semantics (study §2, §3), on per-symbol state.

* `mm` (market maker), on every complete book message of a symbol: join the best bid when the
  fair price sits at least `threshold` ticks above it, else quote one tick behind; the same for
  the ask; size `clip` (rounded down to the lot) on both sides; then the order manager's
  move_order. Example: BBO 100×101, sizes 200/200, threshold 0.6 → 99 / 102.
* `lt` (liquidity taker), on every trade: when trade qty ÷ the opposite top qty before the
  trade ≥ `threshold` (a ratio), follow the aggressor with a limit at the best opposite price
  (IOC unless the `ioc` parameter is 0) and cancel any working order on the other side.

Fixed by design (§9): per-symbol features recomputed from the exact BBO and tested with
isfinite, never shared or stale; sizes and prices on the venue's lot and tick grids.
"""

from __future__ import annotations

import math

from sq.core import book as B
from sq.core.engine import levels as LV
from sq.core.engine import orders as O
from sq.core.engine.layout import (
    DEAD,
    FREE,
    LIVE,
    OI_PX,
    OI_STATE,
    SF_CLIP,
    SF_LOT,
    SF_THR,
    SI_IOC,
    SI_SLOT,
    TIF_GTC,
    TIF_IOC,
    inline_kernel,
    kernel,
)


@inline_kernel
def lot_qty(sf, s):
    """`clip` rounded down to a whole number of lots."""
    lot = sf[s, SF_LOT]
    clip = sf[s, SF_CLIP]
    if lot > 0.0:
        return math.floor(clip / lot + 1e-9) * lot
    return clip


@inline_kernel
def fair_ticks(qbuf, ist, s):
    """Fair price in ticks: (bid·ask_qty + ask·bid_qty)/(bid_qty + ask_qty); NaN when undefined."""
    if ist[s, B.I_NB] == 0 or ist[s, B.I_NA] == 0:
        return math.nan
    bq = LV.best_qty(qbuf, ist, s, 1)
    aq = LV.best_qty(qbuf, ist, s, -1)
    tot = bq + aq
    if not tot > 0.0:
        return math.nan
    return (ist[s, B.I_BB] * aq + ist[s, B.I_BA] * bq) / tot


@inline_kernel
def mm_quotes(bb, ba, fair, threshold):
    """The market maker's (bid, ask) ticks for a BBO and fair price (reference §2)."""
    bid = bb if fair - bb >= threshold else bb - 1
    ask = ba if ba - fair >= threshold else ba + 1
    return bid, ask


@inline_kernel
def _acts(oi, o, px):
    """Whether move_order would do anything for slot order `o` and target `px` (checked inline:
    most book updates leave both quotes where they are)."""
    if o < 0:
        return True
    st = oi[o, OI_STATE]
    return st == DEAD or st == FREE or (st == LIVE and oi[o, OI_PX] != px)


@inline_kernel
def mm_on_book(qbuf, ist, si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, now, nsym):
    """Market maker step for symbol `s` after a complete book message."""
    fair = fair_ticks(qbuf, ist, s)
    if not math.isfinite(fair):
        return
    bid, ask = mm_quotes(ist[s, B.I_BB], ist[s, B.I_BA], fair, sf[s, SF_THR])
    q = lot_qty(sf, s)
    if _acts(oi, si[s, SI_SLOT], bid):
        O.move_order(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, 1, bid, True, q, TIF_GTC, fair, now, nsym)
    if _acts(oi, si[s, SI_SLOT + 1], ask):
        O.move_order(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, -1, ask, True, q, TIF_GTC, fair, now, nsym)


@kernel
def agg_ratio(qbuf, ist, s, aggr, qty):
    """Trade qty ÷ the opposite top-level qty before the trade; NaN when undefined."""
    if aggr > 0:
        if ist[s, B.I_NA] == 0:
            return math.nan
        q = LV.best_qty(qbuf, ist, s, -1)
    elif aggr < 0:
        if ist[s, B.I_NB] == 0:
            return math.nan
        q = LV.best_qty(qbuf, ist, s, 1)
    else:
        return math.nan
    if not q > 0.0:
        return math.nan
    return qty / q


@kernel
def lt_on_trade(qbuf, ist, si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, aggr, qty, now, nsym):
    """Liquidity taker step for symbol `s` on a trade (book still as before the trade)."""
    if ist[s, B.I_NB] == 0 or ist[s, B.I_NA] == 0:
        return
    ratio = agg_ratio(qbuf, ist, s, aggr, qty)
    if not (math.isfinite(ratio) and ratio >= sf[s, SF_THR]):
        return
    fair = fair_ticks(qbuf, ist, s)
    q = lot_qty(sf, s)
    tif = TIF_IOC if si[s, SI_IOC] != 0 else TIF_GTC
    if aggr > 0:
        O.move_order(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, 1, ist[s, B.I_BA], True, q, tif, fair, now, nsym)
        O.move_order(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, -1, 0, False, q, tif, fair, now, nsym)
    else:
        O.move_order(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, 1, 0, False, q, tif, fair, now, nsym)
        O.move_order(si, sf, oi, of, g, gf, rej, ob, obf, oo_i, oo_f, s, -1, ist[s, B.I_BB], True, q, tif, fair, now, nsym)
