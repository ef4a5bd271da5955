"""The position keeper, per symbol, plus maker/taker fees.

Fills are booked at the fill price; an open position is marked to the mid on every book
message. `open_vwap` of the reference holds the open *notional* of each side; the average
price is notional / |position|. Realized PnL here is the reference's (gross) realized; fees are
kept apart in `SF_FEES`, so the reference worked example comes out exactly when fees are zero.
Net figures (what risk and the journal use) are realized − fees + unrealized.
"""

from __future__ import annotations

import math

from sq.core.engine.layout import (
    inline_kernel,
    kernel,
    SF_FEES,
    SF_FUNDING,
    SF_MARK,
    SF_OV_BUY,
    SF_OV_SELL,
    SF_POS,
    SF_REAL,
    SF_TURNOVER,
    SF_UNREAL,
    SF_VOL,
)


@kernel
def add_fill(sf, s, side, price, qty, fee):
    """Book one fill of `qty` at `price` on `side` (+1 buy, -1 sell) for symbol `s`."""
    old = sf[s, SF_POS]
    pos = old + side * qty
    sf[s, SF_POS] = pos
    sf[s, SF_VOL] += qty
    sf[s, SF_FEES] += fee
    sf[s, SF_TURNOVER] += price * qty
    mine = SF_OV_BUY if side > 0 else SF_OV_SELL
    opp = SF_OV_SELL if side > 0 else SF_OV_BUY
    if old * side >= 0:  # opening or adding (flat included)
        sf[s, mine] += price * qty
    else:  # reducing, maybe flipping through zero
        a_old = abs(old)
        v_opp = sf[s, opp] / a_old
        sf[s, opp] = v_opp * abs(pos)
        sf[s, SF_REAL] += min(qty, a_old) * (v_opp - price) * side
        if pos * old < 0:
            sf[s, mine] = price * abs(pos)
            sf[s, opp] = 0.0
    if pos == 0:
        sf[s, SF_OV_BUY] = 0.0
        sf[s, SF_OV_SELL] = 0.0
        sf[s, SF_UNREAL] = 0.0
    elif pos > 0:
        sf[s, SF_UNREAL] = (price - sf[s, SF_OV_BUY] / abs(pos)) * abs(pos)
    else:
        sf[s, SF_UNREAL] = (sf[s, SF_OV_SELL] / abs(pos) - price) * abs(pos)


@inline_kernel
def mark(sf, s, mid):
    """Mark an open position to `mid` (nothing when flat or when the mid is undefined)."""
    if not math.isfinite(mid):
        return
    sf[s, SF_MARK] = mid
    pos = sf[s, SF_POS]
    if pos > 0:
        sf[s, SF_UNREAL] = (mid - sf[s, SF_OV_BUY] / pos) * pos
    elif pos < 0:
        sf[s, SF_UNREAL] = (sf[s, SF_OV_SELL] / -pos - mid) * -pos


@inline_kernel
def total(sf, s):
    """Net PnL of symbol `s`: realized + unrealized − fees − funding paid."""
    return sf[s, SF_REAL] + sf[s, SF_UNREAL] - sf[s, SF_FEES] - sf[s, SF_FUNDING]


@inline_kernel
def account_total(sf, n):
    """Net PnL over the first `n` symbols."""
    t = 0.0
    for s in range(n):
        t += sf[s, SF_REAL] + sf[s, SF_UNREAL] - sf[s, SF_FEES] - sf[s, SF_FUNDING]
    return t


@inline_kernel
def avg_price(sf, s):
    """Average open price of the position (NaN when flat)."""
    pos = sf[s, SF_POS]
    if pos > 0:
        return sf[s, SF_OV_BUY] / pos
    if pos < 0:
        return sf[s, SF_OV_SELL] / -pos
    return math.nan
