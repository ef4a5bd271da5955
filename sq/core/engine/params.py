"""Strategy parameters per symbol: defaults, the config's instruments, `--param` overrides.

Parameter names and ranges are the reference's (`clip`, `threshold`, `max_order_size`,
`max_position`, `max_loss`) plus `ioc` (the liquidity taker's time in force). Precedence, last
wins: strategy defaults → the config's `[[instruments]]` entry → `--param k=v` (every symbol) →
`--param SYMBOL.k=v` (one symbol). An unknown name is a usage error (exit 2) listing the valid
ones; a value out of range is a configuration error (exit 78) naming the parameter.

Units: `clip`, `max_order_size`, `max_position` in base quantity; `threshold` in ticks for `mm`
(distance of the fair price from the touch) and a ratio for `lt`; `max_loss` a positive amount
of quote currency (a negative value, as the reference writes it, means the same).
"""

from __future__ import annotations

import difflib
import math
from typing import Iterable, Mapping

from sq.core.exits import ConfigError, UsageError

PARAMS = ("clip", "threshold", "max_order_size", "max_position", "max_loss", "ioc")
DEFAULTS = {
    "mm": {"clip": 1.0, "threshold": 0.6, "max_order_size": 10.0, "max_position": 10.0, "max_loss": 1000.0, "ioc": 0.0},
    "lt": {"clip": 1.0, "threshold": 0.8, "max_order_size": 10.0, "max_position": 10.0, "max_loss": 1000.0, "ioc": 1.0},
}
STRATEGIES = tuple(DEFAULTS)  # the built-in strategies, by name
ALL = "*"


def check_strategy(strategy: str) -> str:
    s = (strategy or "").strip().lower()
    if s not in DEFAULTS:
        raise UsageError(f"unknown strategy {strategy!r}; valid strategies: {', '.join(DEFAULTS)}")
    return s


def check_name(name: str) -> str:
    if name not in PARAMS:
        close = difflib.get_close_matches(name, PARAMS, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown parameter {name!r}{hint}; valid parameters: {', '.join(PARAMS)}")
    return name


def validate(strategy: str, name: str, value: float, where: str = "") -> float:
    """Range-check one parameter; returns its normalised value (max_loss as a positive amount)."""
    label = f"{where}{name}"
    v = float(value)
    if not math.isfinite(v) and not (name in ("max_loss", "max_position", "max_order_size") and v == math.inf):
        raise ConfigError(f"parameter {label} must be a finite number, got {value!r}")
    if name == "max_loss":
        return abs(v)
    if name in ("clip", "max_order_size") and not v > 0:
        raise ConfigError(f"parameter {label} must be > 0, got {value!r}")
    if name == "max_position" and v < 0:
        raise ConfigError(f"parameter {label} must be ≥ 0, got {value!r}")
    if name == "threshold":
        if v < 0 or (strategy == "lt" and not v > 0):
            raise ConfigError(f"parameter {label} must be {'> 0 (a ratio)' if strategy == 'lt' else '≥ 0 (ticks)'}, got {value!r}")
    if name == "ioc" and v not in (0.0, 1.0):
        raise ConfigError(f"parameter {label} must be 0 or 1, got {value!r}")
    return v


def parse_overrides(items: Iterable[str]) -> list[tuple[str | None, str, float]]:
    """`k=v` / `SYMBOL.k=v` strings → (symbol or None, name, value); bad syntax is a usage error."""
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
        check_name(key.strip().lower())
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"--param {item!r}: {raw!r} is not a number") from None
        out.append((sym, key.strip().lower(), value))
    return out


def resolve(strategy: str, symbols: Iterable[str], config=None, overrides: Iterable[str] = ()) -> dict[str, dict[str, float]]:
    """Parameters for every symbol (see the module docstring for precedence and units)."""
    strategy = check_strategy(strategy)
    parsed = parse_overrides(overrides)
    result: dict[str, dict[str, float]] = {}
    for sym in symbols:
        p = dict(DEFAULTS[strategy])
        inst = config.instrument(sym) if config is not None else None
        if inst is not None:
            for name in PARAMS[:5]:
                v = getattr(inst, name)
                if v is not None:
                    p[name] = validate(strategy, name, v, f"instruments[{sym}].")
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


def normalise(strategy: str, params: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Check a params mapping given to the Engine directly (the `*` key applies to every symbol)."""
    strategy = check_strategy(strategy)
    out = {}
    for sym, p in params.items():
        q = dict(DEFAULTS[strategy])
        for name, v in p.items():
            q[check_name(name)] = validate(strategy, name, v, "" if sym == ALL else f"{sym}.")
        out[sym if sym == ALL else sym.upper()] = q
    return out
