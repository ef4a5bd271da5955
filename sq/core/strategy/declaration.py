"""A strategy's declaration: its name, parameters, own state and event handlers.

    from sq.strategy import Strategy, BUY, SELL

    strategy = Strategy("mine", "Join the touch when the microprice leans our way.", state=2)
    CLIP = strategy.param("clip", 1.0, above=0, doc="order size in base quantity")
    EDGE = strategy.param("edge", 0.6, min=0, max=10, doc="ticks the fair price must clear")

    @strategy.on_book
    def on_book(ctx, s):
        ...

`param` returns the parameter's column (an int): handlers read it with `ctx.param(s, EDGE)`,
numba sees a constant. The handlers stay plain Python functions here; the loader compiles each
to the one signature of its event (`sq.core.strategy.handlers`), so the engine is compiled once
for every strategy. Every strategy also has sq's risk parameters (`RISK_PARAMS`), applied by the
engine's risk checks, never by the strategy.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

from sq.core.durations import parse_duration_ns

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
EVENTS = ("on_book", "on_trade", "on_fill", "on_timer")
KINDS = ("event", "bar")


class DeclarationError(ValueError):
    """A strategy file declares something sq cannot run (a usage error where it is loaded)."""


@dataclass(frozen=True)
class Param:
    """One declared parameter: default, range and a one-line doc.

    `min`/`max` are inclusive bounds, `above` an exclusive lower bound; `choices` a closed set;
    `inf_ok` lets the value be +inf ("no limit"); `magnitude` takes the absolute value (a loss
    limit may be written either way)."""

    name: str
    default: float
    min: float | None = None
    max: float | None = None
    above: float | None = None
    choices: tuple[float, ...] | None = None
    doc: str = ""
    inf_ok: bool = False
    magnitude: bool = False

    def check(self, value: float) -> float:
        """The value, normalised; raises ValueError naming what is allowed."""
        v = float(value)
        if self.magnitude:
            v = abs(v)
        if math.isnan(v) or (math.isinf(v) and not (self.inf_ok and v > 0)):
            raise ValueError("must be a finite number")
        if self.choices is not None and v not in self.choices:
            raise ValueError(f"must be one of {', '.join(f'{c:g}' for c in self.choices)}")
        if self.above is not None and not v > self.above:
            raise ValueError(f"must be > {self.above:g}")
        if self.min is not None and v < self.min:
            raise ValueError(f"must be ≥ {self.min:g}")
        if self.max is not None and v > self.max:
            raise ValueError(f"must be ≤ {self.max:g}")
        return v

    def range_text(self) -> str:
        """`> 0`, `0 … 10`, `0 | 1`, or `any` (for listings)."""
        if self.choices is not None:
            return " | ".join(f"{c:g}" for c in self.choices)
        lo = f"> {self.above:g}" if self.above is not None else (f"≥ {self.min:g}" if self.min is not None else "")
        if self.max is not None:
            lo_v = self.above if self.above is not None else self.min
            return f"{lo_v:g} … {self.max:g}" if lo_v is not None else f"≤ {self.max:g}"
        return lo or "any"

    def to_json(self) -> dict:
        return {"name": self.name, "default": self.default, "min": self.min, "max": self.max, "above": self.above,
                "choices": list(self.choices) if self.choices is not None else None, "range": self.range_text(), "doc": self.doc}


RISK_PARAMS = (
    Param("max_order_size", 10.0, above=0.0, inf_ok=True, doc="largest order, base quantity (sq's risk check)"),
    Param("max_position", 10.0, min=0.0, inf_ok=True, doc="largest absolute position, base quantity (sq's risk check)"),
    Param("max_loss", 1000.0, inf_ok=True, magnitude=True, doc="a symbol's loss that halts the strategy, quote currency (sq's risk check)"),
)
RISK_NAMES = tuple(p.name for p in RISK_PARAMS)


class Strategy:
    """A strategy declaration (see the module docstring)."""

    def __init__(self, name: str, doc: str = "", *, state: int = 0, timer: str | None = None):
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise DeclarationError(f"strategy name {name!r} must be lower-case letters, digits and _ (starting with a letter)")
        if not isinstance(state, int) or not 0 <= state <= 4096:
            raise DeclarationError(f"strategy {name}: state must be a number of slots from 0 to 4096, got {state!r}")
        self.name = name
        self.doc = " ".join((doc or "").split())
        self.kind = "event"
        self.state = state
        self.timer_ns = 0
        if timer is not None:
            try:
                self.timer_ns = parse_duration_ns(timer, option="timer")
            except Exception as e:  # noqa: BLE001 - re-raised as the declaration's own error
                raise DeclarationError(f"strategy {name}: timer {timer!r}: {getattr(e, 'message', e)}") from None
            if self.timer_ns <= 0:
                raise DeclarationError(f"strategy {name}: the timer interval must be longer than zero")
        self.params: list[Param] = []
        self.handlers: dict[str, Callable] = {}
        self.source = ""  # where it was loaded from (set by the loader)
        self.spec = name  # what `--strategy` takes to load it again (a resumed run, a sweep worker)

    # -- declaring
    def param(self, name: str, default: float, *, min: float | None = None, max: float | None = None,  # noqa: A002
              above: float | None = None, choices: tuple[float, ...] | list[float] | None = None, doc: str = "") -> int:
        """Declare a parameter; returns its column for `ctx.param(s, column)`."""
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise DeclarationError(f"strategy {self.name}: parameter name {name!r} must be lower-case letters, digits and _")
        if name in RISK_NAMES:
            raise DeclarationError(f"strategy {self.name}: {name} is one of sq's risk parameters ({', '.join(RISK_NAMES)}); "
                                   "every strategy has them already")
        if any(p.name == name for p in self.params):
            raise DeclarationError(f"strategy {self.name}: parameter {name} is declared twice")
        p = Param(name, float(default), min, max, above, tuple(float(c) for c in choices) if choices is not None else None,
                  " ".join(doc.split()))
        try:
            p.check(p.default)
        except ValueError as e:
            raise DeclarationError(f"strategy {self.name}: the default of {name} ({default!r}) {e}") from None
        self.params.append(p)
        return len(self.params) - 1

    def _handler(self, event: str, fn: Callable) -> Callable:
        if not callable(fn):
            raise DeclarationError(f"strategy {self.name}: {event} must decorate a function")
        if event in self.handlers:
            raise DeclarationError(f"strategy {self.name}: {event} is declared twice")
        self.handlers[event] = fn
        return fn

    def on_book(self, fn: Callable) -> Callable:
        """`fn(ctx, s)` after every complete book message of symbol `s` (never inside a snapshot)."""
        return self._handler("on_book", fn)

    def on_trade(self, fn: Callable) -> Callable:
        """`fn(ctx, s, side, ticks, qty)` on every public trade (`side` the aggressor's; the book
        is still as it was before the trade)."""
        return self._handler("on_trade", fn)

    def on_fill(self, fn: Callable) -> Callable:
        """`fn(ctx, s, side, price, qty)` when one of our orders fills (price in quote currency)."""
        return self._handler("on_fill", fn)

    def on_timer(self, fn: Callable) -> Callable:
        """`fn(ctx, s)` for every symbol each `timer` interval of data time."""
        if not self.timer_ns:
            raise DeclarationError(f"strategy {self.name}: on_timer needs Strategy(..., timer='1s') (the interval)")
        return self._handler("on_timer", fn)

    # -- reading
    @property
    def all_params(self) -> tuple[Param, ...]:
        """The strategy's own parameters, then sq's risk parameters."""
        return tuple(self.params) + RISK_PARAMS

    def find(self, name: str) -> Param | None:
        return next((p for p in self.all_params if p.name == name), None)

    def defaults(self) -> dict[str, float]:
        return {p.name: p.default for p in self.all_params}

    def describe(self) -> dict:
        """What `sq strategies --json` lists for this strategy."""
        return {"name": self.name, "kind": self.kind, "source": self.source, "doc": self.doc,
                "events": [e for e in EVENTS if e in self.handlers], "state": self.state,
                "timer_ns": self.timer_ns or None, "params": [p.to_json() for p in self.all_params]}

    def __repr__(self) -> str:
        return f"Strategy({self.name!r}, source={self.source!r})"


EXECUTIONS = ("next_open", "market", "limit")
BAR_FUNCTIONS = ("indicators", "signals")


class BarStrategy(Strategy):
    """A bar strategy: polars functions over a symbol's bars return signals (docs/strategies.md).

        strategy = BarStrategy("cross", "Long while the fast SMA is above the slow one.", interval="1m")
        FAST = strategy.param("fast", 10, min=2, max=500, doc="bars in the fast average")

        @strategy.signals
        def signals(bars, p):
            return bars.with_columns(target=...)

    `interval` is the bar the strategy reads (`sq bars` grammar: 1m, 15m, 1h, 1d, session, …): a
    market stream is turned into such bars as they close; a bars stream must have it.
    `execution` says how a signal becomes an order at the bar's close: `next_open` (a market
    order filled at the next bar's open), `market` (a marketable limit `offset` ticks through the
    close, good for the next bar) or `limit` (a passive limit at the close, re-placed each bar).
    """

    def __init__(self, name: str, doc: str = "", *, interval: str = "1m", execution: str = "next_open", offset: int = 5):
        super().__init__(name, doc)
        from sq.core.bars import parse_interval
        from sq.core.exits import UsageError

        self.kind = "bar"
        try:
            self.interval = parse_interval(str(interval)).label
        except UsageError as e:
            raise DeclarationError(f"strategy {name}: interval {interval!r}: {e}") from None
        if execution not in EXECUTIONS:
            raise DeclarationError(f"strategy {name}: execution must be one of {', '.join(EXECUTIONS)}; got {execution!r}")
        if not isinstance(offset, int) or not 0 <= offset <= 10_000:
            raise DeclarationError(f"strategy {name}: offset must be a whole number of ticks from 0 to 10000, got {offset!r}")
        self.execution = execution
        self.offset = offset

    def _event_only(self, event: str):
        raise DeclarationError(f"strategy {self.name}: a bar strategy has no {event} handler; it declares "
                               "@strategy.indicators and @strategy.signals (use Strategy for an event strategy)")

    def on_book(self, fn: Callable) -> Callable:
        self._event_only("on_book")

    def on_trade(self, fn: Callable) -> Callable:
        self._event_only("on_trade")

    def on_fill(self, fn: Callable) -> Callable:
        self._event_only("on_fill")

    def on_timer(self, fn: Callable) -> Callable:
        self._event_only("on_timer")

    def indicators(self, fn: Callable) -> Callable:
        """`fn(bars, p) -> DataFrame`: add the indicator columns the signals read (optional)."""
        return self._handler("indicators", fn)

    def signals(self, fn: Callable) -> Callable:
        """`fn(bars, p) -> DataFrame` with `target`, or `enter_long`/`exit_long`/`enter_short`/
        `exit_short` (+ optional `size`, `stop_loss`, `take_profit`)."""
        return self._handler("signals", fn)

    def describe(self) -> dict:
        d = super().describe()
        d["events"] = [f for f in BAR_FUNCTIONS if f in self.handlers]
        d.update(interval=self.interval, execution=self.execution, offset=self.offset)
        return d
