"""Say where a strategy failed: which handler, which line of its file, what it did.

Two failures stop a run (its orders are cancelled and its journal sealed by the run, exit 70):
the handler raised (the engine recorded the exception with the handler's traceback, which gives
the line; failing that, the line of a matching `raise` statement), or an action had a bad value (`ctx.quote(s, BUY, ticks, nan)`; the kernel records
the handler, the symbol and what was wrong, and nothing is sent).
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

from sq.core.engine import layout as L


def handler_location(fn: Any) -> tuple[str, int]:
    """(file, first line) of a handler function."""
    code = getattr(fn, "__code__", None)
    return (code.co_filename, code.co_firstlineno) if code else ("?", 0)


def traceback_line(tb: Any, path: str) -> int | None:
    """The line of `path` in a traceback (the innermost frame in the strategy's file)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def raise_line(fn: Any, error: BaseException) -> int | None:
    """The line of the `raise` in `fn` whose exception class (and message, when unique) matches."""
    try:
        source, first = inspect.getsourcelines(fn)
        tree = ast.parse(inspect.cleandoc("".join(source)) if source and source[0][:1].isspace() else "".join(source))
    except (OSError, TypeError, SyntaxError):
        return None
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            call = node.exc
            name = call.func.id if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) else (
                call.id if isinstance(call, ast.Name) else "")
            if name != type(error).__name__:
                continue
            texts = [a.value for a in getattr(call, "args", []) if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            hits.append((node.lineno, texts))
    exact = [ln for ln, texts in hits if str(error) in texts]
    pick = exact or [ln for ln, _ in hits]
    return first + pick[0] - 1 if pick else None


ACTIONS = ("quote", "take", "order", "cancel")


def action_lines(fn: Any, names: tuple[str, ...] = ACTIONS) -> list[int]:
    """Lines of the handler's `ctx.quote/take/order/cancel(...)` calls (where a bad value left)."""
    try:
        source, first = inspect.getsourcelines(fn)
        tree = ast.parse(inspect.cleandoc("".join(source)) if source and source[0][:1].isspace() else "".join(source))
    except (OSError, TypeError, SyntaxError):
        return []
    lines = {first + node.lineno - 1 for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names}
    return sorted(lines)


def describe(engine: Any) -> str:
    """One line, `strategy NAME (FILE:LINE, HANDLER) …`, for the failure the engine recorded."""

    decl = engine.declaration
    g = engine.g
    handler = L.HANDLER_NAMES[int(g[L.G_BAD_HANDLER])] or "a handler"
    fn = decl.handlers.get(handler)
    path, line = handler_location(fn)
    s = int(g[L.G_BAD_SYM])
    symbol = engine.registry.symbols[s] if 0 <= s < len(engine.registry.symbols) else f"symbol {s}"
    if int(g[L.G_BAD]) == L.BAD_RAISED:
        exc_type, error, tb = getattr(engine, "strategy_exception", None) or (Exception, None, None)
        name = getattr(exc_type, "__name__", "Exception")
        line = traceback_line(tb, path) or (raise_line(fn, error) if error is not None else None) or line
        text = f": {error}" if error is not None and str(error) else ""
        return f"strategy {decl.name} ({path}:{line}, {handler}) raised {name}{text} on {symbol}; the strategy stopped"
    what = L.BAD_NAMES[int(g[L.G_BAD])]
    sending = action_lines(fn, ("quote", "take", "order") if int(g[L.G_BAD]) != L.BAD_SIDE else ACTIONS)
    where = f"{path}:{sending[0]}" if len(sending) == 1 else (
        f"{path}:{line}, one of the orders at lines {', '.join(map(str, sending))}" if sending else f"{path}:{line}")
    return (f"strategy {decl.name} ({where}, {handler}): an order with {what} for {symbol}; it was not sent "
            f"({int(g[L.G_BAD_COUNT])} bad action(s)); the strategy stopped")
