"""The executor: the event strategy that trades a bar strategy's signals on a live order book.

`sq live` runs every strategy through the event `Engine` (its order manager, risk checks, outbox
to the venue gateway, write-ahead journal). A bar strategy has no event handlers, so
`executor(bar)` builds the event `Strategy` that stands in for it there: the same name and the
same parameters (the very `Param` list, so `--param`, the config and the journal resolve them
exactly as for the bar strategy), `state=NSLOTS` per symbol and the handlers below, written on
the public ctx API only. `sq.core.engine.livebarengine.LiveBarEngine` computes the signals as
each bar closes and writes what they ask for into each symbol's state row; the handlers then
work toward it on every book update:

* `W_WANT` — the position wanted (base quantity, signed, whole lots; NaN: no signal yet). While
  position + working orders differ from it, one order works toward it: with `W_STYLE`
  `next_open` or `market`, an IOC limit `W_OFFSET` ticks through the opposite touch (re-sent at
  the new touch while the position is short of the wanted one); with `limit`, a GTC quote at our
  own side's touch for the missing quantity (`ctx.quote` re-prices it as the touch moves). An
  order on the wrong side, or for a quantity that is no longer missing, is canceled first.
* `W_STOP`, `W_TAKE` — the position's stop-loss and take-profit prices (NaN: none). A long
  position is closed when a trade prints at or below the stop or the bid reaches it, or when a
  trade or the bid reaches the take-profit (mirrored for a short): the wanted position becomes
  flat, `W_EXIT` makes the exit an IOC whatever the style, and both prices clear.
* `W_WSTOP`, `W_WTAKE` — the prices of the entry being worked; they become the position's
  `W_STOP`/`W_TAKE` when a fill opens, grows or flips the position (`on_fill`), and the
  position's prices clear when it is flat — as the bar executor (`sq.core.engine.barexec`) does.
* `W_VENUE` — non-zero while the venue holds the position's stop-loss and take-profit as
  protective orders (`sq live` places them, `sq.runs.liveprotect`): the handlers then leave the
  prices to the venue and never watch them (0: they watch, as above).

A signal that has no opinion (null target, no flags) leaves the wanted position as it was.
"""

from __future__ import annotations

import math

from numba import njit

from sq.core.strategy.declaration import EXECUTIONS, BarStrategy, Strategy

BUY, SELL = 1, -1  # sq.core.engine.context BUY, SELL
EX_NEXT_OPEN, EX_MARKET, EX_LIMIT = (EXECUTIONS.index(e) for e in ("next_open", "market", "limit"))

# the state slots of each symbol
W_WANT, W_STYLE, W_OFFSET, W_STOP, W_TAKE, W_WSTOP, W_WTAKE, W_EXIT, W_VENUE = range(9)
NSLOTS = 9

_MADE: dict[int, tuple[BarStrategy, Strategy]] = {}


def executor(bar: BarStrategy) -> Strategy:
    """The event strategy that trades `bar`'s signals (one per bar strategy object, so its
    handlers compile once per process)."""
    made = _MADE.get(id(bar))
    if made is not None and made[0] is bar:
        return made[1]
    ex = Strategy(bar.name, bar.doc, state=NSLOTS)
    ex.params = bar.params  # the same list: the same columns, names, ranges and defaults
    ex.handlers = {"on_book": on_book, "on_trade": on_trade, "on_fill": on_fill}
    ex.source, ex.spec = bar.source, bar.spec
    _MADE[id(bar)] = (bar, ex)
    return ex


def initial_state(style: str, offset: int) -> list[float]:
    """A new symbol's state row: no wanted position, no protective prices."""
    row = [math.nan] * NSLOTS
    row[W_STYLE] = float(EXECUTIONS.index(style))
    row[W_OFFSET] = float(offset)
    row[W_EXIT] = 0.0
    row[W_VENUE] = 0.0
    return row


@njit(cache=True)
def _eps(ctx, s):
    """Quantities closer than this are equal (positions are sums of fills in floating point)."""
    lot = ctx.lot_size(s)
    return lot * 1e-6 if lot > 0.0 else 1e-9


@njit(cache=True)
def work(ctx, s):
    """One step toward the wanted position of `s` on the current book (see the module docstring)."""
    st = ctx.state(s)
    want = st[W_WANT]
    if want != want:
        return
    eps = _eps(ctx, s)
    diff = want - ctx.position(s)
    if abs(diff) <= eps:
        ctx.cancel(s, BUY)
        ctx.cancel(s, SELL)
        return
    side = BUY if diff > 0.0 else SELL
    ctx.cancel(s, -side)
    need = ctx.lots(s, abs(diff))
    if need <= eps:
        return
    px, leaves = ctx.working(s, side)
    if leaves > eps and abs(leaves - need) > eps:
        ctx.cancel(s, side)  # sized for an earlier wanted position: replaced once it is gone
        return
    if st[W_EXIT] != 0.0 or st[W_STYLE] != EX_LIMIT:
        offset = st[W_OFFSET]
        if side == BUY:
            if not ctx.has_ask(s):
                return
            ctx.take(s, BUY, ctx.ask(s) + offset, need)
        else:
            if not ctx.has_bid(s):
                return
            ctx.take(s, SELL, max(1.0, ctx.bid(s) - offset), need)
    elif side == BUY:
        if ctx.has_bid(s):
            ctx.quote(s, BUY, ctx.bid(s), need)
    elif ctx.has_ask(s):
        ctx.quote(s, SELL, ctx.ask(s), need)


@njit(cache=True)
def protect(ctx, s, long_px, short_px):
    """Close the position when its stop-loss or take-profit is reached: `long_px` is the price a
    long position is judged by (a trade, the bid), `short_px` a short one's (a trade, the ask).
    True when the exit began. Never while the venue holds them (`W_VENUE`)."""
    st = ctx.state(s)
    if st[W_VENUE] != 0.0:
        return False
    pos = ctx.position(s)
    stop = st[W_STOP]
    take = st[W_TAKE]
    hit = False
    if pos > 0.0:
        hit = (stop == stop and long_px <= stop) or (take == take and long_px >= take)
    elif pos < 0.0:
        hit = (stop == stop and short_px >= stop) or (take == take and short_px <= take)
    if hit:
        st[W_WANT] = 0.0
        st[W_EXIT] = 1.0
        st[W_STOP] = math.nan
        st[W_TAKE] = math.nan
        st[W_WSTOP] = math.nan
        st[W_WTAKE] = math.nan
    return hit


def on_book(ctx, s):
    if ctx.position(s) != 0.0:
        long_px = ctx.price(s, ctx.bid(s)) if ctx.has_bid(s) else math.nan
        short_px = ctx.price(s, ctx.ask(s)) if ctx.has_ask(s) else math.nan
        protect(ctx, s, long_px, short_px)
    work(ctx, s)


def on_trade(ctx, s, side, ticks, qty):
    if ctx.position(s) != 0.0:
        px = ctx.price(s, ticks)
        if protect(ctx, s, px, px):
            work(ctx, s)


def on_fill(ctx, s, side, price, qty):
    st = ctx.state(s)
    pos = ctx.position(s)
    was = pos - side * qty
    if abs(pos) <= _eps(ctx, s):
        st[W_STOP] = math.nan
        st[W_TAKE] = math.nan
        st[W_EXIT] = 0.0
    elif abs(pos) > abs(was) or pos * was < 0.0:
        st[W_STOP] = st[W_WSTOP]
        st[W_TAKE] = st[W_WTAKE]
