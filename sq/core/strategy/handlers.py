"""Compile a strategy's handlers to the one signature of their event, as first-class functions.

The engine kernel takes each handler as a numba *first-class function* (`FunctionType`), not
as a dispatcher: its compiled, cached code is the same for every strategy, and a new or edited
strategy compiles only its own small handlers (seconds), never the kernel. A strategy without a
handler for an event gets sq's no-op for it (compiled once, cached).

The kernel calls a handler through numba's own calling convention (`sq.core.engine.callbacks`),
so an exception it raises stops the kernel and reaches the engine with the handler's traceback.

A handler that cannot compile is a `StrategyCompileError` (exit 2) carrying numba's message cut
down to the user's file and line, raised before any market data is read.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numba import njit
from numba.core.errors import NumbaIRAssumptionWarning

from sq.core.engine.callbacks import EVENTS, SIGNATURES
from sq.core.exits import UsageError

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




@dataclass(frozen=True)
class Handlers:
    """The compiled handlers of one strategy, as the engine kernel takes them: `addresses` holds
    each event's compiled entry point, then its C wrapper (`sq.core.engine.callbacks`)."""

    addresses: np.ndarray  # int64[8]
    dispatchers: tuple  # the compiled handlers, kept alive with their code


def _addresses(dispatcher: Any, event: str) -> tuple[int, int]:
    """(numba entry point, C wrapper) addresses of `dispatcher`'s compiled `event` handler."""
    cres = dispatcher.overloads[SIGNATURES[event].args]
    jit = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
    wrapper = cres.library.get_pointer_to_function(cres.fndesc.llvm_cfunc_wrapper_name)
    return int(jit), int(wrapper)


def compile_handlers(handlers: dict[str, Callable], *, where: str = "", cache: bool = True) -> Handlers:
    """Compile each given handler (`{"on_book": fn, ...}`) to its event's signature."""
    compiled: dict[str, Any] = {}
    for event, fn in handlers.items():
        if event not in SIGNATURES:
            raise UsageError(f"{where}: unknown event {event!r} (events: {', '.join(SIGNATURES)})")
        compiled[event] = compile_one(fn, event, where=where, cache=cache)
    pairs = [_addresses(compiled.get(e) or NO_OP[e], e) for e in EVENTS]
    addresses = np.array([jit for jit, _ in pairs] + [c for _, c in pairs], np.int64)
    return Handlers(addresses, tuple(compiled.values()) + tuple(NO_OP.values()))


def compile_one(fn: Callable, event: str, *, where: str = "", cache: bool = True) -> Any:
    """One handler compiled to its event's signature; a compile failure is a StrategyCompileError."""
    from numba.core.errors import NumbaError

    name = getattr(fn, "__name__", event)
    try:
        with warnings.catch_warnings():  # numba's pedantic notes about inlined methods are not the user's concern
            warnings.simplefilter("ignore", NumbaIRAssumptionWarning)
            try:
                return njit(SIGNATURES[event], cache=cache and _cacheable(fn), boundscheck=True)(fn)
            except RuntimeError as e:  # numba cannot write a cache beside a read-only file
                if "cannot cache" not in str(e):
                    raise
                return njit(SIGNATURES[event], boundscheck=True)(fn)
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
