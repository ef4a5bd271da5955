"""Pre-trade risk, identical in backtest, paper and live (docs/architecture.md).

`check` returns the first failing reason (codes in `layout.REASONS`), in this order: halted,
unconfigured symbol, qty ≤ 0, order size, position *including* the working order on that side,
max loss (net realized + unrealized), daily loss (account), notional of the order, value of the
position the order could leave (the same position as above, at the order's price), open-order
count, price band around the fair price, trading hours (a window of the UTC day; an exchange
holiday rejects everything) and circuit limits (arrays the run fills in from the venue's market
calendar and the instruments, see `Engine.set_calendar`), and last the order-rate token bucket
(so only orders that would be sent spend a token).

`breached` tells the kernel when a loss limit is crossed: the strategy is then halted and its
orders canceled (`orders.halt`).
"""

from __future__ import annotations

import math

from sq.core.engine import positions
from sq.core.engine.layout import (
    kernel,
    GF_BAND,
    GF_BURST,
    GF_DAILY,
    GF_DAY_START,
    GF_NOTIONAL,
    GF_POS_VALUE,
    GF_RATE,
    GF_TOKENS,
    G_DAY,
    G_HALT_ON_LOSS,
    G_HALTED,
    G_MAX_OPEN,
    G_OPEN,
    G_TOKEN_TS,
    HALT_DAILY,
    HALT_MAX_LOSS,
    HALT_NONE,
    HOURS_HOLIDAY,
    NS_PER_DAY,
    OF_LEAVES,
    PENDING_CANCEL,
    PENDING_NEW,
    LIVE,
    OI_STATE,
    R_BAND,
    R_CIRCUIT,
    R_DAILY,
    R_HALTED,
    R_HOLIDAY,
    R_HOURS,
    R_LOSS,
    R_NOTIONAL,
    R_OK,
    R_OPEN,
    R_ORDER_SIZE,
    R_POSITION,
    R_POS_VALUE,
    R_QTY,
    R_RATE,
    R_UNCONF,
    SF_MAXLOSS,
    SF_MAXORD,
    SF_MAXPOS,
    SF_POS,
    SF_TICK,
    SI_CIRC_HI,
    SI_CIRC_LO,
    SI_CONF,
    SI_HAS_CIRC,
    SI_HOURS_CLOSE,
    SI_HOURS_OPEN,
    SI_SLOT,
    SI_PSLOT,
    OI_RO,
    OI_SIDE,
)


@kernel
def working_qty(si, oi, of, s, side):
    """Leaves of the order working on `side` of symbol `s` (0 when none), plus those of its stop
    and take-profit on that side unless they are reduce-only (which can only shrink the position)."""
    q = 0.0
    o = si[s, SI_SLOT + (0 if side > 0 else 1)]
    if o >= 0:
        st = oi[o, OI_STATE]
        if st == PENDING_NEW or st == LIVE or st == PENDING_CANCEL:
            q = of[o, OF_LEAVES]
    for c in (SI_PSLOT, SI_PSLOT + 1):
        o = si[s, c]
        if o >= 0 and oi[o, OI_SIDE] == side and oi[o, OI_RO] == 0:
            st = oi[o, OI_STATE]
            if st == PENDING_NEW or st == LIVE or st == PENDING_CANCEL:
                q += of[o, OF_LEAVES]
    return q


@kernel
def refill_tokens(g, gf, now):
    """Token bucket: `GF_RATE` tokens a second up to `GF_BURST`."""
    rate = gf[GF_RATE]
    if rate <= 0.0:
        return
    dt = now - g[G_TOKEN_TS]
    if dt > 0:
        gf[GF_TOKENS] = min(gf[GF_BURST], gf[GF_TOKENS] + rate * dt * 1e-9)
        g[G_TOKEN_TS] = now


@kernel
def roll_day(g, gf, sf, nsym, now):
    """Start a new daily-loss window when local time enters a new UTC day."""
    day = now // NS_PER_DAY
    if day != g[G_DAY]:
        g[G_DAY] = day
        gf[GF_DAY_START] = positions.account_total(sf, nsym)


@kernel
def check(si, sf, oi, of, g, gf, s, side, px, qty, fair_ticks, now, nsym):
    """The first failing reason for a new order (R_OK when it may be sent). `px` in ticks."""
    if g[G_HALTED] != HALT_NONE:
        return R_HALTED
    if si[s, SI_CONF] == 0:
        return R_UNCONF
    if not qty > 0.0:
        return R_QTY
    if qty > sf[s, SF_MAXORD]:
        return R_ORDER_SIZE
    after = abs(sf[s, SF_POS] + side * (working_qty(si, oi, of, s, side) + qty))
    if after > sf[s, SF_MAXPOS]:
        return R_POSITION
    if positions.total(sf, s) < -sf[s, SF_MAXLOSS]:
        return R_LOSS
    if gf[GF_DAILY] > 0.0:
        roll_day(g, gf, sf, nsym, now)
        if gf[GF_DAY_START] - positions.account_total(sf, nsym) > gf[GF_DAILY]:
            return R_DAILY
    tick = sf[s, SF_TICK]
    if gf[GF_NOTIONAL] > 0.0 and px * tick * qty > gf[GF_NOTIONAL]:
        return R_NOTIONAL
    if gf[GF_POS_VALUE] > 0.0 and after * px * tick > gf[GF_POS_VALUE]:
        return R_POS_VALUE
    if g[G_MAX_OPEN] >= 0 and g[G_OPEN] >= g[G_MAX_OPEN]:
        return R_OPEN
    if gf[GF_BAND] > 0.0:
        if not math.isfinite(fair_ticks) or abs(px - fair_ticks) > fair_ticks * gf[GF_BAND] * 0.01:
            return R_BAND
    lo = si[s, SI_HOURS_OPEN]
    if lo >= 0:
        tod = now % NS_PER_DAY
        hi = si[s, SI_HOURS_CLOSE]
        inside = (lo <= tod < hi) if lo <= hi else (tod >= lo or tod < hi)
        if not inside:
            return R_HOURS
    elif lo == HOURS_HOLIDAY:
        return R_HOLIDAY
    if si[s, SI_HAS_CIRC] != 0 and (px < si[s, SI_CIRC_LO] or px > si[s, SI_CIRC_HI]):
        return R_CIRCUIT
    if gf[GF_RATE] > 0.0:
        refill_tokens(g, gf, now)
        if gf[GF_TOKENS] < 1.0:
            return R_RATE
        gf[GF_TOKENS] -= 1.0
    return R_OK


@kernel
def breached(si, sf, g, gf, s, now, nsym):
    """The halt reason when symbol `s`'s max loss or the account's daily loss is crossed, else 0."""
    if g[G_HALT_ON_LOSS] != 0 and si[s, SI_CONF] != 0 and positions.total(sf, s) < -sf[s, SF_MAXLOSS]:
        return HALT_MAX_LOSS
    if gf[GF_DAILY] > 0.0:
        roll_day(g, gf, sf, nsym, now)
        if gf[GF_DAY_START] - positions.account_total(sf, nsym) > gf[GF_DAILY]:
            return HALT_DAILY
    return HALT_NONE
