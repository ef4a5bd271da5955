"""The reference liquidity taker, on every public trade (the book still as before the trade).

When the trade's quantity ÷ the opposite touch's quantity reaches `threshold` (a ratio), follow
the aggressor with a limit at the best opposite price (IOC unless `ioc` is 0) and cancel any
working order on the other side.

With `stop` or `take` above 0 (both off by default) it protects each position it holds with
resting orders at the venue: a reduce-only stop-market `stop` ticks against the price it first
saw the position at (a trade's price), and a reduce-only take-profit-market `take` ticks in its
favour. The venue holds them untriggered and cancels them once the position is flat.
"""

import math

from sq.strategy import BUY, GTC, IOC, SELL, Strategy, TRIGGER_LAST

strategy = Strategy("lt", "Liquidity taker: follow an aggressor that takes a large share of the touch.", state=2)
CLIP = strategy.param("clip", 1.0, above=0.0, doc="order size, base quantity (rounded down to the lot)")
THRESHOLD = strategy.param("threshold", 0.8, above=0.0, doc="trade qty ÷ opposite touch qty that triggers a follow")
USE_IOC = strategy.param("ioc", 1.0, choices=(0.0, 1.0), doc="1: immediate-or-cancel orders, 0: good till cancelled")
STOP = strategy.param("stop", 0.0, min=0.0, doc="protective stop, ticks against the position's first price (0: none)")
TAKE = strategy.param("take", 0.0, min=0.0, doc="protective take-profit, ticks in the position's favour (0: none)")

SEEN_POS, ENTRY = 0, 1  # state slots: the position last seen, the trade price it was first seen at (ticks)


@strategy.on_trade
def on_trade(ctx, s, side, ticks, qty):
    stop, take = ctx.param(s, STOP), ctx.param(s, TAKE)
    if stop > 0.0 or take > 0.0:  # keep the position's reduce-only stop and take-profit where they belong
        st = ctx.state(s)
        pos = ctx.position(s)
        if pos != st[SEEN_POS]:
            if st[SEEN_POS] == 0.0 or (pos > 0.0) != (st[SEEN_POS] > 0.0):
                st[ENTRY] = ticks  # a new position (or a flip): protect it from this price
            st[SEEN_POS] = pos
        if pos != 0.0:
            out = SELL if pos > 0.0 else BUY
            if stop > 0.0:
                ctx.stop(s, out, max(1.0, st[ENTRY] + out * stop), abs(pos), math.nan, True, TRIGGER_LAST)
            if take > 0.0:
                ctx.take_profit(s, out, max(1.0, st[ENTRY] - out * take), abs(pos), math.nan, True, TRIGGER_LAST)
    if not (ctx.has_bid(s) and ctx.has_ask(s)) or side == 0:
        return
    opposite = ctx.ask_qty(s) if side > 0 else ctx.bid_qty(s)
    if not opposite > 0.0 or not qty / opposite >= ctx.param(s, THRESHOLD):
        return
    size = ctx.lots(s, ctx.param(s, CLIP))
    tif = IOC if ctx.param(s, USE_IOC) != 0.0 else GTC
    if side > 0:
        ctx.order(s, BUY, ctx.ask(s), size, tif)
        ctx.cancel(s, SELL)
    else:
        ctx.cancel(s, BUY)
        ctx.order(s, SELL, ctx.bid(s), size, tif)
