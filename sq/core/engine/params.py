"""Strategy parameters per symbol: the strategy's declaration, the config's instruments, `--param`.

Every strategy declares its own parameters (name, default, range, doc: `Strategy.param`) and has
sq's risk parameters (`max_order_size`, `max_position`, `max_loss`). Precedence, last wins: the
declared defaults → the config's `[[instruments]]` entry (its named keys and its `params` table)
→ `--param k=v` (every symbol) → `--param SYMBOL.k=v` (one symbol). A name the strategy does not
declare, or a `--param` value out of its declared range, is a usage error (exit 2) with a
suggestion; a config value out of range is a configuration error (exit 78) naming where it is.
"""

from __future__ import annotations

import difflib
from typing import Iterable, Mapping

from sq.core.exits import ConfigError, UsageError
from sq.core.strategy.declaration import Strategy

ALL = "*"
CONFIG_KEYS = ("clip", "threshold", "max_order_size", "max_position", "max_loss")  # named keys of [[instruments]]


def check_name(strategy: Strategy, name: str) -> str:
    """`name` if the strategy has that parameter; a usage error with the closest names otherwise."""
    if strategy.find(name) is None:
        names = [p.name for p in strategy.all_params]
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown parameter {name!r} for strategy {strategy.name}{hint}; its parameters: {', '.join(names)}")
    return name


def validate(strategy: Strategy, name: str, value: float, where: str = "", *, error: type = UsageError) -> float:
    """Range-check one parameter against its declaration; returns the normalised value."""
    param = strategy.find(check_name(strategy, name))
    try:
        return param.check(value)
    except (ValueError, TypeError) as e:
        raise error(f"parameter {where}{name} {e}, got {value!r}") from None


def parse_overrides(items: Iterable[str], strategy: Strategy | None = None) -> list[tuple[str | None, str, float]]:
    """`k=v` / `SYMBOL.k=v` strings → (symbol or None, name, value); bad syntax (or, given the
    strategy, an unknown name) is a usage error."""
    out = []
    for item in items or ():
        if "=" not in item:
            raise UsageError(f"--param {item!r}: expected k=v or SYMBOL.k=v (e.g. clip=2, SIM:DEMO.threshold=0.4)")
        key, _, raw = item.partition("=")
        key = key.strip()
        sym = None
        if "." in key:
            sym, _, key = key.rpartition(".")
            sym = sym.strip().upper()
        key = key.strip().lower()
        if strategy is not None:
            check_name(strategy, key)
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"--param {item!r}: {raw!r} is not a number") from None
        out.append((sym, key, value))
    return out


def _from_config(strategy: Strategy, p: dict[str, float], inst, sym: str) -> None:
    for name in CONFIG_KEYS:
        v = getattr(inst, name)
        if v is not None and strategy.find(name) is not None:
            p[name] = validate(strategy, name, v, f"instruments[{sym}].", error=ConfigError)
    for name, v in (getattr(inst, "params", None) or {}).items():
        key = str(name).strip().lower()
        if strategy.find(key) is None:
            raise ConfigError(f"instruments[{sym}].params.{key}: strategy {strategy.name} has no such parameter "
                              f"(its parameters: {', '.join(q.name for q in strategy.all_params)})")
        p[key] = validate(strategy, key, v, f"instruments[{sym}].params.", error=ConfigError)


def resolve(strategy: Strategy, symbols: Iterable[str], config=None, overrides: Iterable[str] = ()) -> dict[str, dict[str, float]]:
    """Parameters for every symbol (see the module docstring for precedence)."""
    parsed = parse_overrides(overrides, strategy)
    result: dict[str, dict[str, float]] = {}
    for sym in symbols:
        p = strategy.defaults()
        inst = config.instrument(sym) if config is not None and sym != ALL else None
        if inst is not None:
            _from_config(strategy, p, inst, sym)
        for s, name, v in parsed:
            if s is None:
                p[name] = validate(strategy, name, v)
        for s, name, v in parsed:
            if s == sym:
                p[name] = validate(strategy, name, v, f"{sym}.")
        result[sym] = p
    known = set(result)
    for s, name, _ in parsed:
        if s is not None and s not in known:
            raise UsageError(f"--param {s}.{name}: {s} is not among the traded symbols ({', '.join(sorted(known)) or 'none'})")
    return result


def normalise(strategy: Strategy, params: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Check a params mapping given to the Engine directly (the `*` key applies to every symbol)."""
    out = {}
    for sym, p in params.items():
        q = strategy.defaults()
        for name, v in p.items():
            q[name] = validate(strategy, name, v, "" if sym == ALL else f"{sym}.")
        out[sym if sym == ALL else sym.upper()] = q
    return out
