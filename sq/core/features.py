"""Per-symbol book features (docs/architecture.md), as numba helpers.

Every feature lives in per-symbol state (rows of `fst` / `ist` and per-symbol rings), never in a
scalar shared across symbols, and every formula returns NaN when it is
undefined instead of keeping a stale value. The book kernel (`sq.core.book`) calls these at the
points the contract fixes: the aggressive-trade ratio on each trade against the book *before*
the trade, the rolling VWAP on trades, and the quoted features when a row is built. The EWMA
volatility of log mid returns is folded in at each complete message by
`sq.core.book.message_features`; mid and spread are computed from integer ticks there and in
`sq.core.book.build_row`, so they print as exact decimals.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

NAN = np.nan

# per-symbol float state (columns of `fst`)
F_TICK = 0  # tick size
F_LAST_PX = 1  # last trade (or `tick` last) price
F_AGG = 2  # aggressive-trade ratio of the last trade
F_VW_PQ = 3  # Σ price·qty of trades in the VWAP window
F_VW_Q = 4  # Σ qty of trades in the VWAP window
F_VAR = 5  # EWMA of squared log mid returns
F_PREV_MID = 6  # mid at the previous complete message (NaN: none)
F_MSG_TMIN = 7  # lowest trade price inside the current message (inf: none)
F_MSG_TMAX = 8  # highest trade price inside the current message (-inf: none)
F_INV = 9  # 1/tick when that is an integer (prices print as t/inv: 9999/100 = 99.99 exactly), else 0
NF = 10


@njit(cache=True, _nrt=False)
def tick_price(t, tick: float, inv: float) -> float:
    """The float price of tick `t`: t / (1/tick) when 1/tick is an integer, so a tick of 0.01
    gives the same float as the decimal literal (99.99, not 99.99000000000001), else t · tick."""
    if inv > 0.0:
        return t / inv
    return t * tick


def tick_inverse(tick: float) -> float:
    """1/tick if it is (within rounding) an integer ≥ 1, else 0.0 (see `tick_price`)."""
    inv = 1.0 / tick
    r = round(inv)
    if r >= 1 and abs(inv - r) <= 1e-9 * inv:
        return float(r)
    return 0.0


@njit(cache=True, _nrt=False)
def microprice(bid: float, bid_qty: float, ask: float, ask_qty: float, has_bid: bool, has_ask: bool) -> float:
    """Fair price (bid·ask_qty + ask·bid_qty) / (bid_qty + ask_qty); NaN when undefined."""
    if not (has_bid and has_ask):
        return NAN
    tot = bid_qty + ask_qty
    if not tot > 0.0:
        return NAN
    return (bid * ask_qty + ask * bid_qty) / tot


@njit(cache=True, _nrt=False)
def imbalance(sum_bid: float, sum_ask: float) -> float:
    """Top-N imbalance (Σbid − Σask)/(Σbid + Σask); NaN when both sides are empty."""
    tot = sum_bid + sum_ask
    if not tot > 0.0:
        return NAN
    return (sum_bid - sum_ask) / tot


@njit(cache=True, _nrt=False)
def agg_ratio(trade_qty: float, side: int, opposite_qty: float) -> float:
    """Trade qty ÷ `opposite_qty`, the top-level qty the aggressor took from before the trade
    (0.0 when that side is empty); NaN when the aggressor is unknown (side 0) or the side is empty."""
    if side == 0 or not opposite_qty > 0.0:
        return NAN
    return trade_qty / opposite_qty


@njit(cache=True, _nrt=False)
def agg_trade_ratio(trade_qty: float, side: int, best_bid_qty: float, best_ask_qty: float, has_bid: bool, has_ask: bool) -> float:
    """Trade qty ÷ the opposite top-level qty before the trade (buyer aggressor → ask side).

    NaN when the aggressor is unknown (side 0) or the opposite side is empty.
    """
    if side > 0:
        return agg_ratio(trade_qty, side, best_ask_qty if has_ask else 0.0)
    return agg_ratio(trade_qty, side, best_bid_qty if has_bid else 0.0)


@njit(cache=True, _nrt=False)
def vwap_push(fst, vw_ts, vw_pq, vw_q, s: int, head: int, length: int, ts: int, price: float, qty: float) -> int:
    """Append one trade to symbol `s`'s VWAP ring (the caller has checked capacity); returns new length."""
    cap = vw_ts.shape[1]
    j = head + length
    if j >= cap:
        j -= cap
    vw_ts[s, j] = ts
    pq = price * qty
    vw_pq[s, j] = pq
    vw_q[s, j] = qty
    fst[s, F_VW_PQ] += pq
    fst[s, F_VW_Q] += qty
    return length + 1


@njit(cache=True, _nrt=False)
def vwap_evict(fst, vw_ts, vw_pq, vw_q, s: int, head: int, length: int, now: int, window: int):
    """Drop trades with ts <= now − window from the ring; returns (head, length).

    The window is (now − window, now]. Sums restart from exactly zero when the ring empties, so
    rounding drift of the running sums never outlives a quiet spell.
    """
    cap = vw_ts.shape[1]
    cutoff = now - window
    while length > 0 and vw_ts[s, head] <= cutoff:
        fst[s, F_VW_PQ] -= vw_pq[s, head]
        fst[s, F_VW_Q] -= vw_q[s, head]
        head += 1
        if head == cap:
            head = 0
        length -= 1
    if length == 0:
        head = 0
        fst[s, F_VW_PQ] = 0.0
        fst[s, F_VW_Q] = 0.0
    return head, length


@njit(cache=True, _nrt=False)
def vwap_value(fst, s: int, length: int) -> float:
    """Σpq/Σq over the window; NaN when no trade (with positive total qty) is in it."""
    if length == 0:
        return NAN
    q = fst[s, F_VW_Q]
    if not q > 0.0:
        return NAN
    return fst[s, F_VW_PQ] / q


@njit(cache=True, _nrt=False)
def vol_value(fst, s: int, n_returns: int) -> float:
    """EWMA standard deviation of log mid returns per mid change; NaN before the first return."""
    if n_returns == 0:
        return NAN
    return math.sqrt(fst[s, F_VAR])


def vol_alpha(halflife: float) -> float:
    """EWMA weight of a new squared return for a half-life of `halflife` mid changes."""
    if not halflife > 0:
        raise ValueError("half-life must be positive")
    return 1.0 - 0.5 ** (1.0 / halflife)
