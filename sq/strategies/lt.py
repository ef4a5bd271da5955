"""The reference liquidity taker, on every public trade (the book still as before the trade).

When the trade's quantity ÷ the opposite touch's quantity reaches `threshold` (a ratio), follow
the aggressor with a limit at the best opposite price (IOC unless `ioc` is 0) and cancel any
working order on the other side.
"""

from sq.strategy import BUY, GTC, IOC, SELL, Strategy

strategy = Strategy("lt", "Liquidity taker: follow an aggressor that takes a large share of the touch.")
CLIP = strategy.param("clip", 1.0, above=0.0, doc="order size, base quantity (rounded down to the lot)")
THRESHOLD = strategy.param("threshold", 0.8, above=0.0, doc="trade qty ÷ opposite touch qty that triggers a follow")
USE_IOC = strategy.param("ioc", 1.0, choices=(0.0, 1.0), doc="1: immediate-or-cancel orders, 0: good till cancelled")


@strategy.on_trade
def on_trade(ctx, s, side, ticks, qty):
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
