"""A market maker with an inventory skew and a volatility-scaled spread (Avellaneda–Stoikov).

On every complete book message of a symbol, with q the position in order sizes, σ² the variance
of the mid in ticks² per second (an exponentially weighted average of squared mid changes over
elapsed time, half-life `halflife_s`), γ the risk aversion, κ the order-book liquidity and τ the
horizon in seconds:

    reservation price  r = mid − q · γ · σ² · τ
    half spread        h = ½ · (γ · σ² · τ + (2/γ) · ln(1 + γ/κ))

It quotes `size` at floor(r − h) and ceil(r + h) ticks (never crossing the touch), so a long
position lowers both quotes (sell sooner, buy later) and a volatile market widens them. A side
that would take the position past `max_position` is not quoted: the strategy stays inside its
limits by itself, before sq's risk checks would refuse it. Own state per symbol: the last mid,
its time and the variance rate.
"""

import math

from sq.strategy import BUY, SELL, Strategy

strategy = Strategy("avellaneda", "Market maker skewing its quotes by inventory, spread scaled by volatility.", state=3)
SIZE = strategy.param("size", 1.0, above=0.0, doc="order size on each side, base quantity (rounded down to the lot)")
GAMMA = strategy.param("gamma", 0.1, above=0.0, doc="risk aversion: how hard inventory pushes the quotes")
KAPPA = strategy.param("kappa", 1.5, above=0.0, doc="order-book liquidity (per tick): higher quotes tighter")
HORIZON = strategy.param("horizon_s", 1.0, above=0.0, doc="seconds of price risk the inventory is priced for")
HALFLIFE = strategy.param("halflife_s", 30.0, above=0.0, doc="half-life of the volatility estimate, seconds")
MIN_SPREAD = strategy.param("min_spread", 1.0, min=1.0, doc="narrowest quoted spread, ticks")

LAST_MID, LAST_T, VAR_RATE = 0, 1, 2  # own state slots


@strategy.on_book
def on_book(ctx, s):
    mid = ctx.mid(s)
    if not mid == mid:  # a side is empty
        return
    st = ctx.state(s)
    now = ctx.now() * 1e-9
    if st[LAST_T] > 0.0:
        dt = now - st[LAST_T]
        if dt > 0.0:
            move = mid - st[LAST_MID]
            w = 1.0 - math.exp(-math.log(2.0) * dt / ctx.param(s, HALFLIFE))
            st[VAR_RATE] += w * (move * move / dt - st[VAR_RATE])
    st[LAST_MID] = mid
    st[LAST_T] = now
    size = ctx.lots(s, ctx.param(s, SIZE))
    if not size > 0.0:
        return
    gamma = ctx.param(s, GAMMA)
    risk = gamma * st[VAR_RATE] * ctx.param(s, HORIZON)
    q = ctx.position(s) / size
    reservation = mid - q * risk
    half = 0.5 * max(risk + (2.0 / gamma) * math.log(1.0 + gamma / ctx.param(s, KAPPA)), ctx.param(s, MIN_SPREAD))
    bid = min(math.floor(reservation - half), ctx.ask(s) - 1)
    ask = max(math.ceil(reservation + half), ctx.bid(s) + 1)
    limit = ctx.max_position(s)
    if ctx.position(s) + size <= limit and bid >= 1:
        ctx.quote(s, BUY, bid, size)
    else:
        ctx.cancel(s, BUY)
    if ctx.position(s) - size >= -limit:
        ctx.quote(s, SELL, ask, size)
    else:
        ctx.cancel(s, SELL)
