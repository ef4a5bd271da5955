"""Journal rows (orders, fills, pnl) written by the kernels into preallocated buffers.

Each writer appends one row; the kernel checks before every event that the buffers have room
for the most a single event can produce, and returns to the runner (which turns the rows into
Arrow batches and empties the buffers) when they do not.
"""

from __future__ import annotations

from sq.core import features as F
from sq.core.engine import positions
from sq.core.engine.layout import (
    kernel,
    FO_COID,
    FO_LIQ,
    FO_SIDE,
    FO_SYM,
    FO_TRADE,
    FO_TS,
    FO_VOID,
    FOF_FEE,
    FOF_PX,
    FOF_QTY,
    G_NF,
    G_NO,
    G_NP,
    OF_FILLED,
    OF_LEAVES,
    OF_QTY,
    OI_COID,
    OI_PX,
    OI_SIDE,
    OI_SYM,
    OI_VOID,
    OO_COID,
    OO_EVENT,
    OO_REASON,
    OO_SIDE,
    OO_SYM,
    OO_TS,
    OO_VOID,
    OOF_FILLED,
    OOF_LEAVES,
    OOF_PX,
    OOF_QTY,
    PO_SYM,
    PO_TS,
    POF_AVG,
    POF_POS,
    POF_REAL,
    POF_TOTAL,
    POF_UNREAL,
    POF_MARK,
    POF_VOL,
    SF_FEES,
    SF_FUNDING,
    SF_MARK,
    SF_POS,
    SF_REAL,
    SF_UNREAL,
    SF_VOL,
    SI_HAS_PNL,
    SI_PNL_DIRTY,
    SI_PNL_TS,
)


@kernel
def order_row(oo_i, oo_f, g, oi, of, o, ts, event, reason, tick, inv):
    """An orders row for pool order `o` (price in ticks converted with the symbol's tick size)."""
    r = g[G_NO]
    oo_i[r, OO_TS] = ts
    oo_i[r, OO_SYM] = oi[o, OI_SYM]
    oo_i[r, OO_COID] = oi[o, OI_COID]
    oo_i[r, OO_VOID] = oi[o, OI_VOID]
    oo_i[r, OO_EVENT] = event
    oo_i[r, OO_SIDE] = oi[o, OI_SIDE]
    oo_i[r, OO_REASON] = reason
    oo_f[r, OOF_PX] = F.tick_price(oi[o, OI_PX], tick, inv)
    oo_f[r, OOF_QTY] = of[o, OF_QTY]
    oo_f[r, OOF_FILLED] = of[o, OF_FILLED]
    oo_f[r, OOF_LEAVES] = of[o, OF_LEAVES]
    g[G_NO] = r + 1


@kernel
def write_order(oo_i, oo_f, g, ts, s, coid, void, event, side, reason, px, qty, filled, leaves):
    """Append one orders row (price in quote currency)."""
    r = g[G_NO]
    oo_i[r, OO_TS] = ts
    oo_i[r, OO_SYM] = s
    oo_i[r, OO_COID] = coid
    oo_i[r, OO_VOID] = void
    oo_i[r, OO_EVENT] = event
    oo_i[r, OO_SIDE] = side
    oo_i[r, OO_REASON] = reason
    oo_f[r, OOF_PX] = px
    oo_f[r, OOF_QTY] = qty
    oo_f[r, OOF_FILLED] = filled
    oo_f[r, OOF_LEAVES] = leaves
    g[G_NO] = r + 1


@kernel
def reject_row(oo_i, oo_f, g, ts, s, coid, side, px, qty, reason, tick, inv):
    """An orders row for an order the risk layer refused (it never left the engine)."""
    write_order(oo_i, oo_f, g, ts, s, coid, 0, 2, side, reason, F.tick_price(px, tick, inv), qty, 0.0, 0.0)  # 2: rejected


@kernel
def write_fill(fo_i, fo_f, g, ts, s, coid, void, trade_id, side, maker, price, qty, fee):
    """Append one fills row."""
    r = g[G_NF]
    fo_i[r, FO_TS] = ts
    fo_i[r, FO_SYM] = s
    fo_i[r, FO_COID] = coid
    fo_i[r, FO_VOID] = void
    fo_i[r, FO_TRADE] = trade_id
    fo_i[r, FO_SIDE] = side
    fo_i[r, FO_LIQ] = 1 if maker else 0
    fo_f[r, FOF_PX] = price
    fo_f[r, FOF_QTY] = qty
    fo_f[r, FOF_FEE] = fee
    g[G_NF] = r + 1


@kernel
def fill_row(fo_i, fo_f, g, oi, o, ts, trade_id, price, qty, fee, maker):
    write_fill(fo_i, fo_f, g, ts, oi[o, OI_SYM], oi[o, OI_COID], oi[o, OI_VOID], trade_id, oi[o, OI_SIDE], maker, price, qty, fee)


@kernel
def pnl_row(po_i, po_f, g, si, sf, s, ts):
    """A pnl row for symbol `s`: position, average open price, net realized, unrealized, total."""
    r = g[G_NP]
    po_i[r, PO_TS] = ts
    po_i[r, PO_SYM] = s
    po_f[r, POF_POS] = sf[s, SF_POS]
    po_f[r, POF_AVG] = positions.avg_price(sf, s)
    po_f[r, POF_REAL] = sf[s, SF_REAL] - sf[s, SF_FEES] - sf[s, SF_FUNDING]
    po_f[r, POF_UNREAL] = sf[s, SF_UNREAL]
    po_f[r, POF_TOTAL] = positions.total(sf, s)
    po_f[r, POF_VOL] = sf[s, SF_VOL]
    po_f[r, POF_MARK] = sf[s, SF_MARK]
    g[G_NP] = r + 1
    si[s, SI_PNL_TS] = ts
    si[s, SI_HAS_PNL] = 1
    si[s, SI_PNL_DIRTY] = 0
