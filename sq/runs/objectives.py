"""What "best" means in a search: an objective to maximise and constraints a point must meet.

`--objective` is a metric name (`sharpe`, `pnl`, `pnl_per_trade`, …) or a Python expression over
them (`pnl_total / max(1, max_drawdown)`); `--require` is a comparison (`fills >= 50`) every
feasible point satisfies. Both are parsed with `ast` and evaluated by a small tree walker that
admits only names from NAMES, numbers, arithmetic (+ - * / // % **, unary -), comparisons,
and/or/not, and the functions abs, min, max, log, sqrt: nothing else of Python is reachable.

A name's value comes from the run's summary: `summary["metrics"]` first (the trader metrics,
sq.core.summary), then the flat summary fields (FLAT). A name that is known but has no value in a
run (a Sharpe of a run too short to have one, a metric this build does not compute yet, a
division by zero, the log of a non-positive number) makes the whole expression "no value": such
a point is never best, and a constraint without a value is not met.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any, Callable

from sq.core.exits import UsageError

# the trader metrics (summary["metrics"]); a name is looked up there first
METRICS = ("basis", "periods_per_year", "capital", "return_on_capital", "sharpe", "sortino", "calmar", "max_drawdown",
           "max_drawdown_duration_s", "var_95", "cvar_95", "var_cf_95", "cvar_cf_95", "round_trips", "win_rate", "avg_win",
           "avg_loss", "profit_factor", "expectancy", "avg_holding_s", "fill_ratio", "spread_capture_bps", "inventory_mean_abs",
           "inventory_max_abs", "markout_1s_bps", "markout_10s_bps", "markout_60s_bps", "turnover", "exposure", "avg_gross_notional")


def _pnl(key: str) -> Callable[[dict], Any]:
    return lambda s: (s.get("pnl") or {}).get(key)


def _per_trade(s: dict) -> float | None:
    fills = s.get("fills")
    total = (s.get("pnl") or {}).get("total")
    return None if not fills or total is None else total / fills


# the flat summary fields, by name
FLAT: dict[str, Callable[[dict], Any]] = {
    "pnl": _pnl("total"), "pnl_total": _pnl("total"), "net": _pnl("total"), "realized": _pnl("realized"),
    "unrealized": _pnl("unrealized"), "gross": _pnl("gross"), "fees": _pnl("fees"), "costs": _pnl("costs"),
    "funding": _pnl("funding"), "pnl_per_trade": _per_trade,
    "fills": lambda s: s.get("fills"), "orders": lambda s: s.get("orders"), "cancels": lambda s: s.get("cancels"),
    "rejections": lambda s: sum((s.get("rejections") or {}).values()), "events": lambda s: s.get("events"),
    "max_drawdown": lambda s: s.get("max_drawdown"), "sharpe": lambda s: s.get("sharpe"),
    "fill_ratio": lambda s: s.get("fill_ratio"), "turnover": lambda s: s.get("turnover"),
}

NAMES: tuple[str, ...] = tuple(sorted(set(METRICS) | set(FLAT)))

# objectives that grow with the length of the run (walk-forward efficiency scales them per unit time)
ADDITIVE = frozenset({"pnl", "pnl_total", "net", "realized", "unrealized", "gross", "fees", "costs", "funding", "fills", "orders",
                      "cancels", "rejections", "events", "turnover", "round_trips"})

FUNCTIONS: dict[str, Callable[..., float]] = {"abs": abs, "min": min, "max": max, "log": math.log, "sqrt": math.sqrt}
_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
           ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b, ast.Pow: lambda a, b: a ** b}
_CMPS = {ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
         ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b}


class _NoValue(Exception):
    """A name without a value in this run, or arithmetic without a result (x/0, log(-1))."""


def values(summary: dict[str, Any]) -> dict[str, float | None]:
    """Every known name's value in one run's summary (None: no value)."""
    metrics = summary.get("metrics") or {}
    out: dict[str, float | None] = {}
    for name in NAMES:
        v = metrics.get(name) if name in metrics else (FLAT[name](summary) if name in FLAT else None)
        out[name] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None
    return out


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, its tree, and the names it reads."""

    text: str
    tree: ast.Expression
    names: tuple[str, ...]

    def evaluate(self, summary: dict[str, Any]) -> float | None:
        """The value on one run (None: no value); a comparison gives 1.0 or 0.0."""
        vals = values(summary)
        try:
            v = _eval(self.tree.body, vals)
        except (_NoValue, ZeroDivisionError, ValueError, OverflowError, TypeError):
            return None
        v = float(v)
        return v if math.isfinite(v) else None


def _usage(option: str, text: str, why: str) -> UsageError:
    return UsageError(f"{option} {text!r}: {why}; names: {', '.join(NAMES)}; functions: {', '.join(FUNCTIONS)}")


def _check(node: ast.AST, option: str, text: str, names: list[str]) -> None:
    if isinstance(node, ast.Expression):
        _check(node.body, option, text, names)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
            raise _usage(option, text, f"{node.value!r} is not a number")
    elif isinstance(node, ast.Name):
        if node.id not in NAMES:
            raise _usage(option, text, f"unknown name {node.id!r}")
        names.append(node.id)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        _check(node.left, option, text, names)
        _check(node.right, option, text, names)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        _check(node.operand, option, text, names)
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, option, text, names)
    elif isinstance(node, ast.Compare) and all(type(o) in _CMPS for o in node.ops):
        for v in [node.left, *node.comparators]:
            _check(v, option, text, names)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
            what = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise _usage(option, text, f"{what}() is not an allowed function")
        if not node.args or (node.func.id in ("abs", "log", "sqrt") and len(node.args) != 1):
            raise _usage(option, text, f"{node.func.id}() takes {'one argument' if node.func.id != 'min' and node.func.id != 'max' else 'arguments'}")
        for a in node.args:
            _check(a, option, text, names)
    else:
        raise _usage(option, text, f"{ast.unparse(node)!r} is not allowed (names, numbers, arithmetic, comparisons, and/or/not, "
                                   f"{', '.join(FUNCTIONS)})")


def _eval(node: ast.AST, vals: dict[str, float | None]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        v = vals.get(node.id)
        if v is None:
            raise _NoValue(node.id)
        return v
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, vals), _eval(node.right, vals))
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, vals)
        return (not v) if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else +v)
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, vals) for v in node.values)
        return any(_eval(v, vals) for v in node.values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, vals)
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, vals)
            if not _CMPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](*(_eval(a, vals) for a in node.args))
    raise TypeError(type(node).__name__)  # pragma: no cover - _check admits only the above


def parse(text: str, option: str = "--objective") -> Expression:
    """A name or an expression → an Expression; anything else is a one-line usage error listing
    the names and functions available."""
    t = (text or "").strip()
    if not t:
        raise _usage(option, text, "empty")
    try:
        tree = ast.parse(t, mode="eval")
    except SyntaxError:
        raise _usage(option, text, "not a valid expression") from None
    names: list[str] = []
    _check(tree, option, t, names)
    return Expression(t, tree, tuple(dict.fromkeys(names)))


def _is_condition(node: ast.AST) -> bool:
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BoolOp):
        return all(_is_condition(v) for v in node.values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _is_condition(node.operand)
    return False


def parse_constraint(text: str) -> Expression:
    """A `--require`: an expression that is a comparison (or and/or/not of comparisons)."""
    e = parse(text, "--require")
    if not _is_condition(e.tree.body):
        raise UsageError(f"--require {text!r}: a constraint is a comparison, e.g. fills>=50 or max_drawdown < 100")
    return e


@dataclass(frozen=True)
class Goal:
    """The objective to maximise and the constraints of a feasible point."""

    objective: Expression
    constraints: tuple[Expression, ...] = ()

    @property
    def additive(self) -> bool:
        """The objective is a quantity that grows with the run's length (pnl, fills, …)."""
        return self.objective.text in ADDITIVE

    def score(self, summary: dict[str, Any]) -> tuple[float | None, bool]:
        """(objective, feasible) of one run: feasible when every constraint holds (a constraint
        without a value does not)."""
        feasible = all(c.evaluate(summary) == 1.0 for c in self.constraints)
        return self.objective.evaluate(summary), feasible


def parse_goal(objective: str | None, requires: list[str] | tuple[str, ...] | None = None) -> Goal:
    """`--objective` (default pnl) and every `--require`, checked before any run."""
    return Goal(parse(objective or "pnl"), tuple(parse_constraint(r) for r in requires or ()))


def best_index(scores: list[tuple[float | None, bool]]) -> int | None:
    """The first point of the highest objective among the feasible points with a value (None:
    no such point)."""
    best = None
    for i, (v, ok) in enumerate(scores):
        if ok and v is not None and (best is None or v > scores[best][0]):
            best = i
    return best
