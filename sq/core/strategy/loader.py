"""Find a strategy by what the user wrote after `--strategy`, and list every strategy sq can find.

    mm, lt, avellaneda, ma_cross, …  a strategy that ships with sq (`sq/strategies/`)
    ./mine.py  or  ./mine.py:NAME   a Python file (NAME: the attribute holding the Strategy; without
                                    it, the file's only Strategy)
    package.module:NAME             an importable object
    NAME                            a strategy an installed package registers under the entry-point
                                    group `sq.strategies` (`[project.entry-points."sq.strategies"]`)

Built-in strategies are loaded exactly like user files (same `Strategy` declaration, same public
API), so nothing about them is private. Loading never compiles; `compiled(strategy)` does, once
per process, before any market data is read.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from sq.core.exits import UsageError
from sq.core.strategy.declaration import DeclarationError, Strategy

EVENT_BUILTINS = {"mm": "sq.strategies.mm", "lt": "sq.strategies.lt", "avellaneda": "sq.strategies.avellaneda"}
BAR_BUILTINS = {"ma_cross": "sq.strategies.ma_cross", "rsi_macd": "sq.strategies.rsi_macd", "orb": "sq.strategies.orb",
                "supertrend": "sq.strategies.supertrend", "donchian": "sq.strategies.donchian"}
BUILTINS = {**EVENT_BUILTINS, **BAR_BUILTINS}
ENTRY_POINT_GROUP = "sq.strategies"
_LOADED: dict[str, Strategy] = {}
_COMPILED: dict[int, Any] = {}


def load(spec: str) -> Strategy:
    """The strategy `spec` names (see the module docstring); a usage error (exit 2) otherwise."""
    text = (spec or "").strip()
    if not text:
        raise UsageError(f"--strategy is required: one of {', '.join(BUILTINS)}, a file (./mine.py) or package.module:NAME")
    if text in _LOADED:
        return _LOADED[text]
    if text.lower() in BUILTINS:
        found = _from_module(BUILTINS[text.lower()], None, f"built-in strategy {text.lower()}")
        found.source, found.spec = f"builtin ({BUILTINS[text.lower()]})", text.lower()
    elif _is_path(text):
        path, _, attr = _split(text)
        found = _from_file(path, attr or None)
        found.spec = found.source + (f":{attr}" if attr else "")
    elif ":" in text:
        module, _, attr = text.partition(":")
        found = _from_module(module, attr or None, text)
        found.source = found.spec = text
    else:
        found = _from_entry_point(text)
        found.spec = text
    _LOADED[text] = _LOADED[found.spec] = found
    return found


def _is_path(text: str) -> bool:
    head = text.split(":", 1)[0] if not text.endswith(".py") else text
    return head.endswith(".py") or "/" in head or head.startswith(".")


def _split(text: str) -> tuple[str, str, str]:
    if ".py:" in text:
        path, _, attr = text.rpartition(":")
        return path, ":", attr
    return text, "", ""


def _pick(module: Any, attr: str | None, what: str) -> Strategy:
    if attr:
        obj = getattr(module, attr, None)
        if not isinstance(obj, Strategy):
            found = [k for k, v in vars(module).items() if isinstance(v, Strategy)]
            hint = f"; it has {', '.join(found)}" if found else ""
            raise UsageError(f"{what}: {attr!r} is not a sq Strategy{hint}")
        return obj
    found = [v for v in vars(module).values() if isinstance(v, Strategy)]
    unique = list({id(v): v for v in found}.values())
    if not unique:
        raise UsageError(f"{what}: no Strategy in it (declare one: strategy = Strategy('name', 'what it does'))")
    if len(unique) > 1:
        names = [k for k, v in vars(module).items() if isinstance(v, Strategy)]
        raise UsageError(f"{what}: several strategies ({', '.join(names)}); name one: {what}:NAME")
    return unique[0]


def _from_module(module_name: str, attr: str | None, what: str) -> Strategy:
    try:
        module = importlib.import_module(module_name)
    except DeclarationError as e:
        raise UsageError(f"{what}: {e}") from None
    except ModuleNotFoundError as e:
        raise UsageError(f"{what}: cannot import {e.name}") from None
    return _pick(module, attr, what)


def _from_file(path_text: str, attr: str | None) -> Strategy:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UsageError(f"strategy file {path_text} does not exist")
    resolved = path.resolve()
    name = f"sq_user_strategy_{resolved.stem}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise UsageError(f"strategy file {path_text} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except DeclarationError as e:
        raise UsageError(f"{path_text}: {e}") from None
    except SyntaxError as e:
        raise UsageError(f"{path_text}:{e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:  # noqa: BLE001 - the user's file failed while loading: name where
        raise UsageError(f"{path_text}:{_user_line(e, resolved)}: {type(e).__name__} while loading the strategy: {e}") from None
    found = _pick(module, attr, path_text)
    found.source = str(resolved)
    return found


def _user_line(error: BaseException, path: Path) -> str:
    tb = error.__traceback__
    line = "?"
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            line = str(tb.tb_lineno)
        tb = tb.tb_next
    return line


def entry_points() -> dict[str, Any]:
    """Strategies installed packages register (`sq.strategies` entry points), by name."""
    from importlib.metadata import entry_points as eps

    return {ep.name: ep for ep in eps(group=ENTRY_POINT_GROUP)}


def _from_entry_point(name: str) -> Strategy:
    eps = entry_points()
    ep = eps.get(name)
    if ep is None:
        known = list(BUILTINS) + sorted(eps)
        close = difflib.get_close_matches(name.lower(), known, n=2, cutoff=0.5)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise UsageError(f"unknown strategy {name!r}{hint}; valid strategies: {', '.join(known)}, a file (./mine.py) "
                         "or package.module:NAME")
    try:
        obj = ep.load()
    except Exception as e:  # noqa: BLE001 - a broken plug-in is named, not a traceback
        raise UsageError(f"strategy {name} (entry point {ep.value}): {type(e).__name__}: {e}") from None
    if isinstance(obj, Strategy):
        found = obj
    elif hasattr(obj, "__dict__"):
        found = _pick(obj, None, f"strategy {name} ({ep.value})")
    else:
        raise UsageError(f"strategy {name}: entry point {ep.value} is not a sq Strategy")
    found.source = f"entry point {ep.value}"
    return found


def available() -> list[Strategy]:
    """Every strategy sq can find without a path: the built-ins, then installed entry points."""
    out = [load(name) for name in BUILTINS]
    for name in sorted(entry_points()):
        if name not in BUILTINS:
            try:
                out.append(load(name))
            except UsageError:
                continue
    return out


def compiled(strategy: Strategy) -> Any:
    """The strategy's handlers compiled for the engine (once per process)."""
    from sq.core.strategy.handlers import compile_handlers

    key = id(strategy)
    if key not in _COMPILED:
        if strategy.kind == "bar":  # bar strategies are polars functions: nothing for numba here
            check_bar_strategy(strategy)
            _COMPILED[key] = compile_handlers({}, where=strategy.source or strategy.name)
        else:
            _COMPILED[key] = compile_handlers(strategy.handlers, where=strategy.source or strategy.name)
    return _COMPILED[key]


def check_bar_strategy(strategy: Strategy) -> None:
    """A bar strategy must declare `signals` (a usage error, exit 2, before any data is read)."""
    if "signals" not in strategy.handlers:
        raise UsageError(f"strategy {strategy.name} ({strategy.source or strategy.spec}): a bar strategy needs "
                         "@strategy.signals (a function of the bars and the parameters)")
