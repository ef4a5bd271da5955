"""The reference market maker, on every complete book message of a symbol.

Join the best bid when the fair price (the microprice) sits at least `threshold` ticks above
it, else quote one tick behind; the same for the ask; size `clip` rounded down to the lot, on
both sides. Example: BBO 100×101 with 200/200 → fair 100.5; threshold 0.6 → quotes 99 / 102.
"""

from sq.strategy import BUY, SELL, Strategy

strategy = Strategy("mm", "Market maker: join or step back from the touch by where the microprice leans.")
CLIP = strategy.param("clip", 1.0, above=0.0, doc="order size on each side, base quantity (rounded down to the lot)")
THRESHOLD = strategy.param("threshold", 0.6, min=0.0, doc="ticks the fair price must clear from the touch to join it")
IOC = strategy.param("ioc", 0.0, choices=(0.0, 1.0), doc="unused by mm (kept so mm and lt share --param sets)")


@strategy.on_book
def on_book(ctx, s):
    fair = ctx.fair(s)
    if not fair == fair:  # NaN: a side is empty or the touch has no size
        return
    bb = ctx.bid(s)
    ba = ctx.ask(s)
    threshold = ctx.param(s, THRESHOLD)
    bid = bb if fair - bb >= threshold else bb - 1
    ask = ba if ba - fair >= threshold else ba + 1
    size = ctx.lots(s, ctx.param(s, CLIP))
    ctx.quote(s, BUY, bid, size)
    ctx.quote(s, SELL, ask, size)
