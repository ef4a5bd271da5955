"""The strategy SDK: everything a strategy file imports (documented in docs/strategies.md).

    from sq.strategy import Strategy, BUY, SELL, GTC, IOC

    strategy = Strategy("mine", "what it does, in one line")
    SIZE = strategy.param("size", 1.0, above=0, doc="order size, base quantity")

    @strategy.on_book
    def on_book(ctx, s):
        if ctx.has_bid(s) and ctx.has_ask(s):
            ctx.quote(s, BUY, ctx.bid(s), ctx.lots(s, ctx.param(s, SIZE)))

Handlers are plain functions that numba compiles (`@njit` rules: numbers, NumPy, `math`; no
Python objects); `ctx` methods are listed in `sq.core.engine.context`'s docstring and in
docs/strategies.md. A `BarStrategy` instead returns signals from polars functions over bars
(docs/strategies.md, "Bar strategies"). The same file runs in `sq backtest`, `sq paper` and `sq live`.
"""

from sq.core.engine.context import BUY, GTC, IOC, SELL, TRIGGER_LAST, TRIGGER_MARK
from sq.core.strategy.declaration import BarStrategy, Param, Strategy

__all__ = ["Strategy", "BarStrategy", "Param", "BUY", "SELL", "GTC", "IOC", "TRIGGER_LAST", "TRIGGER_MARK"]
