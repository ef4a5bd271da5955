"""`sq strategies new NAME [--kind event|bar]`: a starting strategy file that trades out of the box.

`event` (the default) is a complete event strategy on the public SDK: it quotes both sides
around the microprice and leans away from its own inventory; `bar` is a bar strategy that holds
a long position while the close is above its moving average, with a stop under each entry. Both
declare their parameters, so
`sq backtest --strategy ./NAME.py DATA` trades at once and `--param`/`--sweep` work on it.
It is written atomically and never over an existing file.
"""

from __future__ import annotations

import os
from pathlib import Path

from sq.core.exits import UsageError
from sq.core.strategy.declaration import NAME_RE

EVENT = '''"""{name}: quote both sides around the microprice, leaning away from inventory.

Run it:   sq backtest --strategy {file} DATA
Tune it:  sq backtest --strategy {file} DATA --sweep edge=0.5,1,2 --sweep skew=0,0.5,1
Paper:    sq paper --strategy {file} SIM:DEMO --for 1m
Reference of everything `ctx` offers: docs/strategies.md in the sq repository.
"""

import math

from sq.strategy import BUY, SELL, Strategy

strategy = Strategy("{name}", "Quotes around the microprice, leaning away from its inventory.")
SIZE = strategy.param("size", 1.0, above=0.0, doc="order size on each side, base quantity")
EDGE = strategy.param("edge", 1.0, min=0.0, doc="ticks between the fair price and each quote")
SKEW = strategy.param("skew", 0.5, min=0.0, doc="ticks the quotes move away per order size of inventory")


@strategy.on_book
def on_book(ctx, s):
    fair = ctx.fair(s)  # microprice in ticks; NaN while a side of the book is empty
    if not fair == fair:
        return
    size = ctx.lots(s, ctx.param(s, SIZE))
    if not size > 0.0:
        return
    center = fair - ctx.param(s, SKEW) * ctx.position(s) / size
    edge = ctx.param(s, EDGE)
    bid = min(math.floor(center - edge), ctx.ask(s) - 1)  # never cross the touch
    ask = max(math.ceil(center + edge), ctx.bid(s) + 1)
    if bid >= 1:
        ctx.quote(s, BUY, bid, size)
    ctx.quote(s, SELL, ask, size)
'''
BAR = '''"""{name}: long while the close is above its moving average, flat below; a stop under every entry.

Run it:   sq backtest --strategy {file} BARS          (bars of the interval below: sq bars 1m DATA, sq fetch … --kind klines)
Tune it:  sq backtest --strategy {file} BARS --sweep length=10,20,50
Paper:    sq paper --strategy {file} SIM:DEMO --for 5m
Reference (bar frame columns, signal columns, indicators): docs/strategies.md in the sq repository.
"""

import polars as pl

from sq import indicators as ta
from sq.strategy import BarStrategy

strategy = BarStrategy("{name}", "Long while the close is above its moving average.", interval="1m", execution="next_open")
strategy.param("length", 20, min=2, max=5000, doc="bars in the moving average")
strategy.param("size", 1.0, above=0.0, doc="position size, base quantity")
strategy.param("stop_pct", 1.0, min=0.0, max=50.0, doc="stop-loss below the entry bar's close, % (0: none)")


@strategy.indicators
def indicators(bars, p):
    return bars.with_columns(average=ta.sma(pl.col("close"), p.length))


@strategy.signals
def signals(bars, p):
    above = pl.col("close") > pl.col("average")
    entry = above & ~above.shift(1, fill_value=False)
    return bars.with_columns(
        enter_long=entry,
        exit_long=pl.col("close") < pl.col("average"),
        stop_loss=pl.when(entry & (p.stop_pct > 0)).then(pl.col("close") * (1 - p.stop_pct / 100)),
    )
'''
TEMPLATES = {"event": EVENT, "bar": BAR}


def new_strategy(name: str, *, kind: str = "event", path: str | None = None) -> Path:
    """Write the starting file for strategy `name` (default `./NAME.py`); returns its path."""
    if not NAME_RE.match(name or ""):
        raise UsageError(f"strategy name {name!r} must be lower-case letters, digits and _ (starting with a letter)")
    if kind not in TEMPLATES:
        raise UsageError(f"--kind must be one of {', '.join(TEMPLATES)}; got {kind!r}")
    target = Path(path) if path else Path(f"{name}.py")
    if target.suffix != ".py":
        raise UsageError(f"{target}: a strategy file ends in .py")
    if target.exists():
        raise UsageError(f"{target} already exists; choose another name or -o PATH (nothing was written)")
    shown = str(target) if target.is_absolute() or str(target).startswith(("./", "../")) else f"./{target}"
    text = TEMPLATES[kind].format(name=name, file=shown)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    try:
        os.link(tmp, target)  # fails if the target appeared meanwhile: never overwrite
    except FileExistsError:
        raise UsageError(f"{target} already exists; choose another name or -o PATH (nothing was written)") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target
