"""Level updates of the engine's L2 book, on the book kernel's layout (`sq.core.book`).

The engine keeps its books in a `BookState` (same `qbuf`/`ist` arrays, same window and
recentring rules) but applies events itself, between the venue-side and strategy-side steps of
its own loop, so it needs the single-level primitive on its own: set the total quantity at one
tick; the best bid/ask stay exact after every update.
"""

from __future__ import annotations

from sq.core import book as B
from sq.core.engine.layout import inline_kernel


@inline_kernel
def apply_level(qbuf, ist, g, s, side, t, q):
    """Set the total quantity at tick `t` on `side` (+1 bid, −1 ask) of symbol `s`; 0 deletes.

    Returns B.ST_OK, or B.ST_GROW_BOOK (nothing changed) when the window must grow first.
    """
    base = ist[s, B.I_BASE]
    w = ist[s, B.I_W]
    i = t - base
    if i < 0 or i >= w or ist[s, B.I_BASESET] == 0:
        if q == 0.0:
            return B.ST_OK  # deleting a price we do not hold
        st = B.recentre(qbuf, ist, g, s, t)
        if st != B.ST_OK:
            return st
        base = ist[s, B.I_BASE]
        i = t - base
    off = ist[s, B.I_OFF]
    if side > 0:
        p = off + i
        old = qbuf[p]
        qbuf[p] = q
        if old == 0.0:
            if q > 0.0:
                nb = ist[s, B.I_NB]
                if nb == 0:
                    ist[s, B.I_BB] = t
                    ist[s, B.I_BLO] = t
                else:
                    if t > ist[s, B.I_BB]:
                        ist[s, B.I_BB] = t
                    if t < ist[s, B.I_BLO]:
                        ist[s, B.I_BLO] = t
                ist[s, B.I_NB] = nb + 1
        elif q == 0.0:
            nb = ist[s, B.I_NB] - 1
            ist[s, B.I_NB] = nb
            if nb > 0 and t == ist[s, B.I_BB]:
                j = p - 1
                while qbuf[j] == 0.0:
                    j -= 1
                ist[s, B.I_BB] = base + (j - off)
    else:
        p = off + w + i
        old = qbuf[p]
        qbuf[p] = q
        if old == 0.0:
            if q > 0.0:
                na = ist[s, B.I_NA]
                if na == 0:
                    ist[s, B.I_BA] = t
                    ist[s, B.I_AHI] = t
                else:
                    if t < ist[s, B.I_BA]:
                        ist[s, B.I_BA] = t
                    if t > ist[s, B.I_AHI]:
                        ist[s, B.I_AHI] = t
                ist[s, B.I_NA] = na + 1
        elif q == 0.0:
            na = ist[s, B.I_NA] - 1
            ist[s, B.I_NA] = na
            if na > 0 and t == ist[s, B.I_BA]:
                j = p + 1
                while qbuf[j] == 0.0:
                    j += 1
                ist[s, B.I_BA] = base + (j - off - w)
    return B.ST_OK


@inline_kernel
def qty_at(qbuf, ist, s, side, t):
    """Quantity resting at tick `t` on `side` (0.0 when none or outside the window)."""
    i = t - ist[s, B.I_BASE]
    w = ist[s, B.I_W]
    if i < 0 or i >= w or ist[s, B.I_BASESET] == 0:
        return 0.0
    if side > 0:
        return qbuf[ist[s, B.I_OFF] + i]
    return qbuf[ist[s, B.I_OFF] + w + i]


@inline_kernel
def best_qty(qbuf, ist, s, side):
    """Quantity at the best level of `side` (0.0 when the side is empty)."""
    if side > 0:
        if ist[s, B.I_NB] == 0:
            return 0.0
        return qbuf[ist[s, B.I_OFF] + ist[s, B.I_BB] - ist[s, B.I_BASE]]
    if ist[s, B.I_NA] == 0:
        return 0.0
    return qbuf[ist[s, B.I_OFF] + ist[s, B.I_W] + ist[s, B.I_BA] - ist[s, B.I_BASE]]
