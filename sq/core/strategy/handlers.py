"""Compile a strategy's handlers to the one signature of their event, as first-class functions.

The engine kernel takes each handler as a numba *first-class function* (`FunctionType`), not
as a dispatcher: its compiled, cached code is the same for every strategy, and a new or edited
strategy compiles only its own small handlers (seconds), never the kernel. A strategy without a
handler for an event gets sq's no-op for it (compiled once, cached).

Each user handler is called through a small wrapper (`wrap`): a first-class function cannot
pass an exception to its caller (numba's C wrapper would print it and carry on), so the wrapper
catches it and records the call in the engine state; the kernel stops at once and the engine
calls the user's handler again from Python with the same arguments to get the exception's class
and message for the report (`reproduce`).

A handler that cannot compile is a `StrategyCompileError` (exit 2) carrying numba's message cut
down to the user's file and line, raised before any market data is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from numba import njit, types
from numba.core.types.function_type import CompileResultWAP

from sq.core.engine import layout as L
from sq.core.engine.context import CONTEXT
from sq.core.exits import UsageError

SIGNATURES = {
    "on_book": types.void(CONTEXT, types.int64),
    "on_trade": types.void(CONTEXT, types.int64, types.int64, types.int64, types.float64),
    "on_fill": types.void(CONTEXT, types.int64, types.int64, types.float64, types.float64),
    "on_timer": types.void(CONTEXT, types.int64),
}
ARGS = {"on_book": "ctx, s", "on_trade": "ctx, s, side, ticks, qty", "on_fill": "ctx, s, side, price, qty", "on_timer": "ctx, s"}


class StrategyCompileError(UsageError):
    """A strategy handler numba cannot compile (exit 2), with the message trimmed to the user's line."""


@njit(SIGNATURES["on_book"], cache=True)
def _no_book(ctx, s):
    return


@njit(SIGNATURES["on_trade"], cache=True)
def _no_trade(ctx, s, side, ticks, qty):
    return


@njit(SIGNATURES["on_fill"], cache=True)
def _no_fill(ctx, s, side, price, qty):
    return


NO_OP = {"on_book": _no_book, "on_trade": _no_trade, "on_fill": _no_fill, "on_timer": _no_book}


@njit(cache=True)
def raised(ctx, s, side, ticks, price, qty):
    """A handler raised: record it (and its arguments) for the engine, which stops the run."""
    g = ctx.g
    g[L.G_BAD_COUNT] += 1
    if g[L.G_BAD] == L.BAD_NONE:
        g[L.G_BAD] = L.BAD_RAISED
        g[L.G_BAD_SYM] = s
        g[L.G_BAD_HANDLER] = g[L.G_HANDLER]
        g[L.G_ERR_SIDE] = side
        g[L.G_ERR_TICKS] = ticks
        ctx.gf[L.GF_ERR_PRICE] = price
        ctx.gf[L.GF_ERR_QTY] = qty


_WRAPPERS = {
    "on_book": ("ctx, s", "s, 0, 0, 0.0, 0.0"),
    "on_trade": ("ctx, s, side, ticks, qty", "s, side, ticks, 0.0, qty"),
    "on_fill": ("ctx, s, side, price, qty", "s, side, 0, price, qty"),
    "on_timer": ("ctx, s", "s, 0, 0, 0.0, 0.0"),
}


def wrap(user: Any, event: str) -> Any:
    """`user` (a compiled handler) inside a try/except that records an exception (see above)."""
    args, record = _WRAPPERS[event]
    source = f"def wrapped({args}):\n    try:\n        user({args})\n    except Exception:\n        raised(ctx, {record})\n"
    namespace: dict[str, Any] = {"user": user, "raised": raised}
    exec(compile(source, f"<sq {event} wrapper>", "exec"), namespace)
    return njit(SIGNATURES[event])(namespace["wrapped"])


def reproduce(user: Any, event: str, ctx: Any, g: Any, gf: Any) -> BaseException | None:
    """Call the user's handler again from Python with the recorded arguments: the exception it
    raises (None when it does not raise again)."""
    s, side, ticks = int(g[L.G_BAD_SYM]), int(g[L.G_ERR_SIDE]), int(g[L.G_ERR_TICKS])
    price, qty = float(gf[L.GF_ERR_PRICE]), float(gf[L.GF_ERR_QTY])
    args = {"on_book": (s,), "on_timer": (s,), "on_trade": (s, side, ticks, qty), "on_fill": (s, side, price, qty)}[event]
    try:
        user(ctx, *args)
    except Exception as e:  # noqa: BLE001 - the user's exception is the report
        return e
    return None


@dataclass(frozen=True)
class Handlers:
    """The compiled handlers of one strategy, as the engine kernel takes them."""

    on_book: Any
    on_trade: Any
    on_fill: Any
    on_timer: Any
    user: dict  # event → the user's own compiled handler (for `reproduce`)
    dispatchers: tuple  # the compiled wrappers, kept alive with their code


def _wap(dispatcher: Any, event: str) -> CompileResultWAP:
    return CompileResultWAP(dispatcher.overloads[SIGNATURES[event].args])


def compile_handlers(handlers: dict[str, Callable], *, where: str = "", cache: bool = True) -> Handlers:
    """Compile each given handler (`{"on_book": fn, ...}`) to its event's signature."""
    user: dict[str, Any] = {}
    wrapped: dict[str, Any] = {}
    for event, fn in handlers.items():
        if event not in SIGNATURES:
            raise UsageError(f"{where}: unknown event {event!r} (events: {', '.join(SIGNATURES)})")
        user[event] = compile_one(fn, event, where=where, cache=cache)
        wrapped[event] = wrap(user[event], event)
    out = {e: _wap(wrapped.get(e) or NO_OP[e], e) for e in SIGNATURES}
    return Handlers(out["on_book"], out["on_trade"], out["on_fill"], out["on_timer"], user, tuple(wrapped.values()))


def compile_one(fn: Callable, event: str, *, where: str = "", cache: bool = True) -> Any:
    """One handler compiled to its event's signature; a compile failure is a StrategyCompileError."""
    from numba.core.errors import NumbaError

    name = getattr(fn, "__name__", event)
    try:
        try:
            return njit(SIGNATURES[event], cache=cache and _cacheable(fn))(fn)
        except RuntimeError as e:  # numba cannot write a cache beside a read-only file
            if "cannot cache" not in str(e):
                raise
            return njit(SIGNATURES[event])(fn)
    except NumbaError as e:
        raise StrategyCompileError(f"{where or name}: {event} handler {name}({ARGS[event]}) does not compile: "
                                   f"{trim_numba_message(str(e), fn)}") from None
    except TypeError as e:  # e.g. a handler taking the wrong number of arguments
        raise StrategyCompileError(f"{where or name}: {event} handler {name} must take ({ARGS[event]}): {e}") from None


def _cacheable(fn: Callable) -> bool:
    """numba caches functions of real files only (not `exec`'d text or an interactive session)."""
    import os

    code = getattr(fn, "__code__", None)
    return code is not None and os.path.isfile(code.co_filename)


_NOISE = re.compile(r"^(During:|Failed in nopython mode pipeline|\s*raised from|- Resolution failure|Rejected as the implementation"
                    r"|This error may have been|For more information|\s*\^|\s*$)")


def trim_numba_message(message: str, fn: Callable) -> str:
    """numba's error cut to what a strategy author needs: the first problem line and the user's
    `file:line` (`<source elided>` and numba's own frames dropped)."""
    code = getattr(fn, "__code__", None)
    filename = code.co_filename if code else ""
    lines = [ln.rstrip() for ln in message.splitlines()]
    where = ""
    for i, ln in enumerate(lines):
        m = re.match(r'\s*File "([^"]+)", line (\d+):', ln)
        if m and (not filename or m.group(1).endswith(filename.rsplit("/", 1)[-1])):
            block = []
            for x in lines[i + 1:]:
                if x.strip() == "^" or x.strip().startswith("^"):
                    break
                if x.strip() and "<source elided>" not in x:
                    block.append(x.strip())
            where = f"{m.group(1)}:{m.group(2)}: {block[-1] if block else ''}".rstrip(": ")
            break
    problem = next((ln.strip() for ln in lines if ln.strip() and not _NOISE.match(ln) and not ln.strip().startswith("File ")
                    and "<source elided>" not in ln), "numba could not compile it")
    problem = re.sub(r"\x1b\[[0-9;]*m", "", problem)
    problem = re.sub(r"numba\.ContextType\(.*\)\)\)", "the strategy context (ctx)", problem)
    return f"{problem} ({where})" if where else problem
