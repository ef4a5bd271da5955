"""Strategies that ship with sq, written on the public SDK (`sq.strategy`) like any user file.

    mm          the reference market maker: join or step back from the touch by the microprice
    lt          the reference liquidity taker: follow a large aggressor with an IOC order
    avellaneda  a market maker with an inventory skew and a volatility-scaled spread
"""
