"""The simulated venue of backtest and paper: latency, matching against the visible book,
queue position of resting orders, partial fills (docs/architecture.md).

* Latency: each order draws one latency (constant, or base + a seeded exponential / uniform
  jitter from a splitmix64 stream kept in the state) used for its request and its answers, so a
  given order's answers arrive in venue order; a cancel draws its own request latency.
* A new order reaching the venue is acknowledged, then, if marketable, walks the visible
  opposite levels up to its limit price (taker fills; the recorded book is not modified — our
  size is assumed small against it). An IOC remainder expires; a GTC remainder rests.
* A resting order holds `front` = the quantity visible at its price when it arrived. A trade at
  its price (aggressor on the other side) consumes `front` first and fills us with the rest; a
  trade through its price, or the opposite side quoting through it, fills it completely. A
  level decrease not explained by trades is a cancel: the risk-averse model takes a configured
  share of it from the front (0 = hftbacktest's risk-averse model), the probabilistic model
  splits it by hftbacktest's power-probability function f(x) = x**n. The front never exceeds
  the level's visible quantity.
* Stops and take-profits (`OI_OTYPE` other than limit) are acknowledged and held untriggered
  ("armed": at the end of their symbol's `rest` row, not in the book, no queue position). A
  trade crossing a last-price trigger, or the mid at the end of a venue message crossing a mark
  trigger, schedules a `K_TRIGGER` (a trade's 1 ns later, so the order meets the book the trade's
  message leaves); the order is then cut to the position if reduce-only (or expires when there is
  none) and executes as an IOC without limit (market) or as a limit order (resting with the
  queue ahead of it).
"""

from __future__ import annotations

import math

import numpy as np

from sq.core import book as B
from sq.core.engine import levels as LV
from sq.core.engine import schedule as H
from sq.core.engine.layout import (
    inline_kernel,
    kernel,
    GF_POWER,
    GF_SHARE,
    G_LAT,
    G_LATDIST,
    G_LATJIT,
    G_NEXT_VOID,
    G_NOB,
    G_QMODEL,
    G_RNG,
    G_SLIP_MODEL,
    GF_FILL_PROB,
    GF_SLIP_TICKS,
    SLIP_BOOK,
    SLIP_FIXED,
    SLIP_NORMAL,
    K_ACK,
    K_CANCEL,
    K_CANCEL_REJ,
    K_CANCELED,
    K_EXPIRED,
    K_FILL_MAKER,
    K_FILL_TAKER,
    K_NEW,
    K_VENUE_REJ,
    LAT_EXP,
    LAT_UNIFORM,
    OB_KIND,
    OB_ORD,
    OB_TS,
    OF_CUMTRADE,
    OF_FRONT,
    OF_XLEAVES,
    OF_QTY,
    OI_INFLIGHT,
    OI_LAT,
    OI_PX,
    OI_RIDX,
    OI_SIDE,
    OI_SYM,
    OI_TIF,
    OI_VOID,
    OI_XSTATE,
    OUT_NEW,
    Q_PROB,
    R_V_RESTING,
    R_V_UNKNOWN,
    SI_NREST,
    SI_RA_HI,
    SI_RA_LO,
    SI_RB_HI,
    SI_RB_LO,
    TIF_IOC,
    X_ARMED,
    X_DONE,
    X_RESTING,
    X_TRIGGERED,
    K_TRIGGER,
    K_TRIGGERED,
    OI_OTYPE,
    OI_RO,
    OI_TRIG,
    OI_TSRC,
    OT_LIMIT,
    OT_STOP_LIMIT,
    OT_TP_MARKET,
    OT_TP_LIMIT,
    R_REDUCE_ONLY,
    SF_POS,
    SI_NARMED,
    TRIGGER_LAST,
    TRIGGER_MARK,
)

MARKET_BUY_LIMIT = 1 << 62  # the walk limit of a triggered market buy (ticks): no limit

QTY_EPS = 1e-9


INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min

@kernel
def _next_u01(g):
    """Uniform (0, 1) from the splitmix64 stream in g[G_RNG] (deterministic per seed), in
    wrapping unsigned 64-bit arithmetic (the state is stored as its int64 bit pattern)."""
    x = np.uint64(g[G_RNG]) + np.uint64(0x9E3779B97F4A7C15)
    g[G_RNG] = np.int64(x)
    z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (float(z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@kernel
def latency(g):
    """One order/cancel latency in ns."""
    base = g[G_LAT]
    d = g[G_LATDIST]
    if d == LAT_EXP:
        return base + int(-math.log(_next_u01(g)) * g[G_LATJIT])
    if d == LAT_UNIFORM:
        return base + int(_next_u01(g) * g[G_LATJIT])
    return base


@kernel
def _happens(g, gf):
    """Whether a fill the venue would give happens (`fill_probability`; no draw at 1)."""
    p = gf[GF_FILL_PROB]
    return p >= 1.0 or _next_u01(g) < p


@kernel
def _slip_ticks(g, gf):
    """Extra ticks against an immediate fill, by the slippage model (no draw for `book`)."""
    model = g[G_SLIP_MODEL]
    if model == SLIP_BOOK:
        return 0
    scale = gf[GF_SLIP_TICKS]
    if model == SLIP_FIXED:
        return int(round(scale))
    if model == SLIP_NORMAL:
        u1, u2 = _next_u01(g), _next_u01(g)
        return int(round(abs(math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)) * scale))
    return int(round(scale * (_next_u01(g) ** (-1.0 / 3.0) - 1.0)))  # pareto, tail index 3


@kernel
def consume_outbox(ob, obf, oi, g, hq, hf):
    """The simulated gateway: schedule every outbox request at the venue, then empty the outbox."""
    for k in range(g[G_NOB]):
        o = ob[k, OB_ORD]
        if ob[k, OB_KIND] == OUT_NEW:
            lat = latency(g)
            oi[o, OI_LAT] = lat
            H.push(hq, hf, g, ob[k, OB_TS] + lat, K_NEW, o, 0, 0.0)
        else:
            H.push(hq, hf, g, ob[k, OB_TS] + latency(g), K_CANCEL, o, 0, 0.0)
    g[G_NOB] = 0


@kernel
def _answer(oi, g, hq, hf, o, t, kind, px, qty):
    oi[o, OI_INFLIGHT] += 1
    H.push(hq, hf, g, t + oi[o, OI_LAT], kind, o, px, qty)


@kernel
def _unrest(oi, rest, si, o):
    s = oi[o, OI_SYM]
    j = oi[o, OI_RIDX]
    n = si[s, SI_NREST] - 1
    last = rest[s, n]
    rest[s, j] = last
    oi[last, OI_RIDX] = j
    si[s, SI_NREST] = n
    oi[o, OI_RIDX] = -1
    oi[o, OI_XSTATE] = X_DONE
    _rest_range(oi, rest, si, s)


@kernel
def _rest_range(oi, rest, si, s):
    """Recompute the price range of `s`'s resting buys and sells (`SI_RB_*`, `SI_RA_*`) after its
    resting list changed: `level_touches_rest` reads it to skip the list on most level updates."""
    blo = alo = INT64_MAX
    bhi = ahi = INT64_MIN
    for k in range(si[s, SI_NREST]):
        o = rest[s, k]
        px = oi[o, OI_PX]
        if oi[o, OI_SIDE] > 0:
            blo = min(blo, px)
            bhi = max(bhi, px)
        else:
            alo = min(alo, px)
            ahi = max(ahi, px)
    si[s, SI_RB_LO] = blo
    si[s, SI_RB_HI] = bhi
    si[s, SI_RA_LO] = alo
    si[s, SI_RA_HI] = ahi


@inline_kernel
def level_touches_rest(si, s, side, tick, new):
    """Whether a level update (side, tick, new quantity) can touch one of `s`'s resting orders:
    one of its own side at that price (queue position), or one of the other side it crosses
    (`on_level`'s two cases, from the resting prices' range)."""
    if side > 0:
        return (si[s, SI_RB_LO] <= tick <= si[s, SI_RB_HI]) or (new > 0.0 and tick > si[s, SI_RA_LO])
    return (si[s, SI_RA_LO] <= tick <= si[s, SI_RA_HI]) or (new > 0.0 and tick < si[s, SI_RB_HI])


@kernel
def _fill_resting(oi, of, rest, si, g, gf, hq, hf, o, t, q):
    if q > of[o, OF_XLEAVES]:
        q = of[o, OF_XLEAVES]
    if q <= QTY_EPS or not _happens(g, gf):
        return
    of[o, OF_XLEAVES] -= q
    _answer(oi, g, hq, hf, o, t, K_FILL_MAKER, oi[o, OI_PX], q)
    if of[o, OF_XLEAVES] <= QTY_EPS:
        of[o, OF_XLEAVES] = 0.0
        _unrest(oi, rest, si, o)


@kernel
def on_new(qbuf, ist, oi, of, rest, si, g, gf, hq, hf, o, t):
    """A new order reaches the venue at time t. With `fill_probability` < 1 its immediate fill may
    not happen (it then rests, or expires if IOC); the slippage model moves each immediate fill
    `slip` ticks against it. A stop or take-profit is acknowledged and held untriggered (armed:
    not in the book, no queue position) until its trigger is crossed."""
    oi[o, OI_INFLIGHT] -= 1
    s = oi[o, OI_SYM]
    if si[s, SI_NREST] + si[s, SI_NARMED] >= rest.shape[1]:
        oi[o, OI_XSTATE] = X_DONE
        _answer(oi, g, hq, hf, o, t, K_VENUE_REJ, R_V_RESTING, 0.0)
        return
    void = g[G_NEXT_VOID]
    g[G_NEXT_VOID] = void + 1
    oi[o, OI_VOID] = void
    _answer(oi, g, hq, hf, o, t, K_ACK, void, 0.0)
    if oi[o, OI_OTYPE] != OT_LIMIT:
        _arm(oi, of, rest, si, o)
        return
    _execute(qbuf, ist, oi, of, rest, si, g, gf, hq, hf, o, t, oi[o, OI_PX], oi[o, OI_TIF] == TIF_IOC, of[o, OF_QTY])


@kernel
def _execute(qbuf, ist, oi, of, rest, si, g, gf, hq, hf, o, t, px, ioc, leaves):
    """Order `o` (limit `px` in ticks, `leaves` to fill) takes the visible opposite levels up to
    its limit; an IOC remainder expires, a GTC one rests with the queue ahead of it."""
    s = oi[o, OI_SYM]
    side = oi[o, OI_SIDE]
    crosses = (side > 0 and ist[s, B.I_NA] > 0 and ist[s, B.I_BA] <= px) or (side < 0 and ist[s, B.I_NB] > 0 and ist[s, B.I_BB] >= px)
    live = not crosses or _happens(g, gf)
    slip = _slip_ticks(g, gf) if crosses and live else 0
    # walk the visible opposite side up to the limit price
    if side > 0:
        na = ist[s, B.I_NA] if live else 0
        if na > 0:
            tk = ist[s, B.I_BA]
            seen = 0
            while leaves > QTY_EPS and seen < na and tk <= px:
                q = LV.qty_at(qbuf, ist, s, -1, tk)
                if q > 0.0:
                    seen += 1
                    f = min(leaves, q)
                    leaves -= f
                    _answer(oi, g, hq, hf, o, t, K_FILL_TAKER, min(tk + slip, px), f)  # never past the limit
                tk += 1
    else:
        nb = ist[s, B.I_NB] if live else 0
        if nb > 0:
            tk = ist[s, B.I_BB]
            seen = 0
            while leaves > QTY_EPS and seen < nb and tk >= px:
                q = LV.qty_at(qbuf, ist, s, 1, tk)
                if q > 0.0:
                    seen += 1
                    f = min(leaves, q)
                    leaves -= f
                    _answer(oi, g, hq, hf, o, t, K_FILL_TAKER, max(tk - slip, px), f)
                tk -= 1
    if leaves <= QTY_EPS:
        oi[o, OI_XSTATE] = X_DONE
        of[o, OF_XLEAVES] = 0.0
        return
    if ioc:
        oi[o, OI_XSTATE] = X_DONE
        of[o, OF_XLEAVES] = 0.0
        _answer(oi, g, hq, hf, o, t, K_EXPIRED, 0, leaves)
        return
    of[o, OF_XLEAVES] = leaves
    of[o, OF_FRONT] = LV.qty_at(qbuf, ist, s, side, px)
    of[o, OF_CUMTRADE] = 0.0
    n = si[s, SI_NREST]
    rest[s, n] = o
    oi[o, OI_RIDX] = n
    si[s, SI_NREST] = n + 1
    oi[o, OI_XSTATE] = X_RESTING
    _rest_range(oi, rest, si, s)


@kernel
def _arm(oi, of, rest, si, o):
    """Hold protective order `o` untriggered: its symbol's armed orders fill `rest` from the end."""
    s = oi[o, OI_SYM]
    n = si[s, SI_NARMED]
    rest[s, rest.shape[1] - 1 - n] = o
    oi[o, OI_RIDX] = n
    si[s, SI_NARMED] = n + 1
    of[o, OF_XLEAVES] = of[o, OF_QTY]
    oi[o, OI_XSTATE] = X_ARMED


@kernel
def _disarm(oi, rest, si, o):
    s = oi[o, OI_SYM]
    j = oi[o, OI_RIDX]
    n = si[s, SI_NARMED] - 1
    cap = rest.shape[1] - 1
    last = rest[s, cap - n]
    rest[s, cap - j] = last
    oi[last, OI_RIDX] = j
    si[s, SI_NARMED] = n
    oi[o, OI_RIDX] = -1


@kernel
def _crossed(oi, o, price2):
    """Whether a price (`price2`: twice the price in ticks, so a mid is exact) crosses armed order
    `o`'s trigger: a stop buy at or above it, a stop sell at or below; a take-profit the other way."""
    trig2 = 2 * oi[o, OI_TRIG]
    up = oi[o, OI_SIDE] > 0
    if oi[o, OI_OTYPE] >= OT_TP_MARKET:
        up = not up
    return price2 >= trig2 if up else price2 <= trig2


@kernel
def _triggers(oi, rest, si, g, hq, hf, s, src, price2, t):
    """Trigger every armed order of `s` watching `src` that `price2` crosses: each leaves the armed
    list and is executed by a `K_TRIGGER` item at venue time t (`on_trigger`)."""
    cap = rest.shape[1] - 1
    k = 0
    while k < si[s, SI_NARMED]:
        o = rest[s, cap - k]
        k += 1
        if oi[o, OI_TSRC] == src and _crossed(oi, o, price2):
            _disarm(oi, rest, si, o)
            oi[o, OI_XSTATE] = X_TRIGGERED
            oi[o, OI_INFLIGHT] += 1
            H.push(hq, hf, g, t, K_TRIGGER, o, 0, 0.0)
            k -= 1  # the list moved its last entry into slot k-1


@kernel
def trade_triggers(oi, rest, si, g, hq, hf, s, tick, t):
    """A trade of `s` at `tick` (venue time t) against the armed orders that watch the last price.
    What it triggers executes 1 ns later: against the book as the venue message that printed the
    trade leaves it (a recorded trade comes before the level updates it caused)."""
    _triggers(oi, rest, si, g, hq, hf, s, TRIGGER_LAST, 2 * tick, t + 1)


@kernel
def mark_triggers(ist, oi, rest, si, g, hq, hf, s, t):
    """The end of a venue message of `s` (venue time t): the armed orders that watch the mark
    price, against the book's mid (the simulated venue's mark) when both sides have a level."""
    if ist[s, B.I_NB] > 0 and ist[s, B.I_NA] > 0:
        _triggers(oi, rest, si, g, hq, hf, s, TRIGGER_MARK, ist[s, B.I_BB] + ist[s, B.I_BA], t)


@kernel
def on_trigger(qbuf, ist, oi, of, rest, si, sf, g, gf, hq, hf, o, t):
    """A triggered order executes at venue time t: a reduce-only one is cut to the position (and
    expires, reason `reduce_only`, when there is none to reduce); the engine is told
    (`triggered`), then a market order takes the book as an IOC without limit and a limit order
    takes what crosses and rests with the queue ahead of it."""
    oi[o, OI_INFLIGHT] -= 1
    if oi[o, OI_XSTATE] != X_TRIGGERED:  # canceled meanwhile
        return
    s = oi[o, OI_SYM]
    side = oi[o, OI_SIDE]
    leaves = of[o, OF_XLEAVES]
    if oi[o, OI_RO] != 0:
        pos = sf[s, SF_POS]
        room = pos if side < 0 else -pos
        if room <= QTY_EPS:
            oi[o, OI_XSTATE] = X_DONE
            of[o, OF_XLEAVES] = 0.0
            _answer(oi, g, hq, hf, o, t, K_EXPIRED, R_REDUCE_ONLY, leaves)
            return
        if leaves > room:
            leaves = room
    ot = oi[o, OI_OTYPE]
    limit = ot == OT_STOP_LIMIT or ot == OT_TP_LIMIT
    if limit and si[s, SI_NREST] + si[s, SI_NARMED] >= rest.shape[1]:  # no room left to rest it
        oi[o, OI_XSTATE] = X_DONE
        of[o, OF_XLEAVES] = 0.0
        _answer(oi, g, hq, hf, o, t, K_EXPIRED, R_V_RESTING, leaves)
        return
    _answer(oi, g, hq, hf, o, t, K_TRIGGERED, 0, leaves)
    if limit:
        _execute(qbuf, ist, oi, of, rest, si, g, gf, hq, hf, o, t, oi[o, OI_PX], False, leaves)
    else:
        _execute(qbuf, ist, oi, of, rest, si, g, gf, hq, hf, o, t, MARKET_BUY_LIMIT if side > 0 else 1, True, leaves)


@kernel
def on_cancel(oi, of, rest, si, g, hq, hf, o, t):
    """A cancel reaches the venue: cancel what rests, else reject (already done or not arrived)."""
    oi[o, OI_INFLIGHT] -= 1
    xs = oi[o, OI_XSTATE]
    if xs == X_RESTING:
        q = of[o, OF_XLEAVES]
        of[o, OF_XLEAVES] = 0.0
        _unrest(oi, rest, si, o)
        _answer(oi, g, hq, hf, o, t, K_CANCELED, oi[o, OI_PX], q)
    elif xs == X_ARMED or xs == X_TRIGGERED:
        q = of[o, OF_XLEAVES]
        of[o, OF_XLEAVES] = 0.0
        if xs == X_ARMED:
            _disarm(oi, rest, si, o)
        oi[o, OI_XSTATE] = X_DONE
        _answer(oi, g, hq, hf, o, t, K_CANCELED, oi[o, OI_PX], q)
    else:
        _answer(oi, g, hq, hf, o, t, K_CANCEL_REJ, R_V_UNKNOWN, 0.0)


@kernel
def _queue_depth(of, gf, g, o, prev, new):
    """Queue position after the level at our price went from `prev` to `new`."""
    chg = prev - new - of[o, OF_CUMTRADE]
    of[o, OF_CUMTRADE] = 0.0
    front = of[o, OF_FRONT]
    if chg > 0.0:
        if g[G_QMODEL] == Q_PROB:
            back = prev - front
            if back < 0.0:
                back = 0.0
            n = gf[GF_POWER]
            fb = back ** n
            ff = front ** n
            prob = fb / (fb + ff) if fb + ff > 0.0 else 1.0
            front = front - (1.0 - prob) * chg + min(back - prob * chg, 0.0)
        else:
            front = front - gf[GF_SHARE] * chg
    if front > new:
        front = new
    if front < 0.0:
        front = 0.0
    of[o, OF_FRONT] = front


@inline_kernel
def on_level(oi, of, rest, si, g, gf, hq, hf, s, side, tick, prev, new, insnap, t):
    """A level update of the recorded book at venue time t: queue positions and crossings."""
    k = 0
    while k < si[s, SI_NREST]:
        o = rest[s, k]
        k += 1
        px = oi[o, OI_PX]
        oside = oi[o, OI_SIDE]
        if oside == side:
            if px == tick and insnap == 0:
                _queue_depth(of, gf, g, o, prev, new)
        elif new > 0.0 and ((oside > 0 and tick < px) or (oside < 0 and tick > px)):
            _fill_resting(oi, of, rest, si, g, gf, hq, hf, o, t, of[o, OF_XLEAVES])
            k -= 1  # the list moved its last entry into slot k-1


@kernel
def on_trade(oi, of, rest, si, g, gf, hq, hf, s, aggr, tick, qty, t, lot):
    """A trade of the recorded stream at venue time t against our resting orders.

    A trade at our price fills us with what it leaves after the queue ahead, rounded down to
    whole lots (the fractional queue estimates of the cancel models never make odd-lot fills)."""
    k = 0
    while k < si[s, SI_NREST]:
        o = rest[s, k]
        k += 1
        oside = oi[o, OI_SIDE]
        if aggr == oside:
            continue
        px = oi[o, OI_PX]
        before = si[s, SI_NREST]
        if (oside > 0 and tick < px) or (oside < 0 and tick > px):
            _fill_resting(oi, of, rest, si, g, gf, hq, hf, o, t, of[o, OF_XLEAVES])
        elif tick == px:
            of[o, OF_CUMTRADE] += qty
            front = of[o, OF_FRONT] - qty
            if front < 0.0:
                of[o, OF_FRONT] = 0.0
                q = -front
                if lot > 0.0:
                    q = math.floor(q / lot + 1e-9) * lot
                _fill_resting(oi, of, rest, si, g, gf, hq, hf, o, t, q)
            else:
                of[o, OF_FRONT] = front
        if si[s, SI_NREST] < before:
            k -= 1


@kernel
def on_snapshot_end(qbuf, ist, oi, of, rest, si, s):
    """After a snapshot the front can be no larger than what the venue now shows at our price."""
    for k in range(si[s, SI_NREST]):
        o = rest[s, k]
        q = LV.qty_at(qbuf, ist, s, oi[o, OI_SIDE], oi[o, OI_PX])
        if of[o, OF_FRONT] > q:
            of[o, OF_FRONT] = q
        of[o, OF_CUMTRADE] = 0.0
