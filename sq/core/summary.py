"""How a run's summary document reads: numbers at the instrument's precision, ISO-8601 times,
the parameters a run actually used, and why a run traded little.

`sq backtest`, `sq paper`, `sq live` and every `sq backtest --sweep` point build their summary
from the engine's raw floats; `present` is the one place those floats are rounded, so the same
run prints the same numbers everywhere (`--json`, the journal's seal, a sweep row):

- prices (`avg_price`) to the tick's decimals plus two (an average of prices on the tick needs
  a little more than the tick: fills at 100.05 and 100.10 average 100.075);
- quantities (`position`, `volume`) to the lot's decimals;
- money (PnL, fees, turnover, drawdown) to the decimals of one tick on one lot, kept within
  2..8 (INR and USD cents; a BTC lot of 0.00001 at a 0.01 tick: 7 decimals);
- ratios to 6 decimals (Sharpe, Sortino, Calmar, returns on capital, VaR, win rate, exposure),
  basis points to 3 (spread capture, markouts), rates (per second) to 1, latencies in µs to 1,
  durations in s to 6 (drawdown duration, holding time); inventory as quantities, average
  win / loss, expectancy and gross notional as money (`metrics`, docs/metrics.md).

The engine's own `summary()` keeps full precision (its tests and the report's curves use it).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Mapping

MONEY_DECIMALS = (2, 8)  # the fewest and the most decimals a money amount is shown with
MONEY_KEYS = frozenset({"realized", "unrealized", "total", "fees", "turnover", "max_drawdown", "pnl_total", "gross", "funding", "costs", "net",
                        "brokerage", "tax", "txn", "regulatory", "stamp", "gst",  # these six: sq.core.costs.COMPONENTS
                        "capital", "avg_win", "avg_loss", "expectancy", "avg_gross_notional"})  # the last five: `metrics` (docs/metrics.md)
QTY_KEYS = frozenset({"position", "volume", "inventory_mean_abs", "inventory_max_abs"})
PRICE_KEYS = frozenset({"avg_price"})
RATIO_KEYS = frozenset({"sharpe", "fill_ratio", "sortino", "calmar", "return_on_capital", "var_95", "cvar_95", "var_cf_95", "cvar_cf_95",
                        "win_rate", "profit_factor", "exposure", "periods_per_year"})
BPS_KEYS = frozenset({"spread_capture_bps", "markout_1s_bps", "markout_10s_bps", "markout_60s_bps"})  # basis points to 3 decimals
RATE_KEYS = frozenset({"events_per_s", "points_per_s"})
SECONDS_KEYS = frozenset({"elapsed_s", "wall_s", "checkpoint_s", "load_s", "warm_s", "max_drawdown_duration_s", "avg_holding_s"})
LATENCY_KEYS = frozenset({"p50", "p99"})
TOP_REJECTIONS = 3  # reasons named in a run's one-line summary


def decimals(step: float) -> int:
    """Decimal places needed to print multiples of `step` exactly (0.01 → 2, 0.5 → 1, 5 → 0)."""
    if not (step > 0 and math.isfinite(step)):
        return 0
    for d in range(0, 12):
        if abs(round(step, d) - step) < 1e-12 * max(1.0, abs(step)):
            return d
    return 12


def money_decimals(tick: float, lot: float) -> int:
    """The decimals of one tick's worth of one lot, kept within `MONEY_DECIMALS`."""
    lo, hi = MONEY_DECIMALS
    return max(lo, min(hi, decimals(float(tick) * float(lot)) if tick > 0 and lot > 0 else hi))


def iso_utc(ns: int | None) -> str | None:
    """A nanosecond UTC timestamp as ISO-8601 with Z: whole seconds (`2026-12-06T22:05:31Z`),
    else milliseconds (`2026-12-06T22:05:31.250Z`); None stays None."""
    if ns is None:
        return None
    ns = int(ns)
    t = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.timezone.utc)
    ms = (ns % 1_000_000_000) // 1_000_000
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms:03d}Z" if ms else "Z")


def now_iso(ns: int) -> str:
    """A wall-clock time (time.time_ns()) to the second, as `iso_utc` writes it."""
    return iso_utc(int(ns) // 1_000_000_000 * 1_000_000_000)


def params_used(params: Mapping[str, Mapping[str, float]], symbols: list[str], all_key: str = "*") -> dict[str, dict[str, float]]:
    """Each traded symbol's parameters as the engine ran with them (defaults → config → --param);
    a symbol first seen in the data runs with the `*` entry."""
    out = {}
    for sym in symbols:
        p = params.get(sym) or params.get(all_key)
        if p is not None:
            out[sym] = {k: _plain_number(v) for k, v in sorted(p.items())}
    return out


def present(summary: dict[str, Any], instruments: Mapping[str, Any]) -> dict[str, Any]:
    """The summary with every float at its precision (see the module docstring); a new dict.
    `instruments` maps symbol → an object with `tick_size` and `lot_size` (`sq.core.schemas.Instrument`)."""
    grids = {s: (float(getattr(i, "tick_size", 0) or 0), float(getattr(i, "lot_size", 0) or 0)) for s, i in instruments.items()}
    ticks = [t for t, _ in grids.values() if t > 0]
    lots = [q for _, q in grids.values() if q > 0]
    run = _Grid(
        price=max((decimals(t) for t in ticks), default=8) + 2,
        qty=max((decimals(q) for q in lots), default=8),
        money=max((money_decimals(t, q) for t, q in grids.values()), default=MONEY_DECIMALS[1]),
    )

    def of(sym: str) -> "_Grid":
        if sym not in grids:
            return run
        t, q = grids[sym]
        return _Grid(price=(decimals(t) if t > 0 else 8) + 2, qty=decimals(q) if q > 0 else 8, money=money_decimals(t, q))

    return _walk(summary, run, of)


class _Grid:
    """The decimals of one symbol (or of the whole run: the finest of its symbols)."""

    __slots__ = ("price", "qty", "money")

    def __init__(self, *, price: int, qty: int, money: int):
        self.price, self.qty, self.money = price, qty, money


SKIP = frozenset({"params", "sweep"})  # parameter values are the user's own numbers, kept as given


def _walk(doc: Any, grid: _Grid, of, key: str = "") -> Any:
    if isinstance(doc, dict):
        out = {}
        for k, v in doc.items():
            if k in SKIP:
                out[k] = v
            elif k in ("per_symbol", "by_symbol") and isinstance(v, dict):
                out[k] = {s: _walk(row, of(s), of, k) for s, row in v.items()}
            elif k == "position" and isinstance(v, dict):
                out[k] = {s: _round(q, of(s).qty) for s, q in v.items()}
            else:
                out[k] = _walk(v, grid, of, k)
        return out
    if isinstance(doc, list):
        return [_walk(v, grid, of, key) for v in doc]
    if isinstance(doc, float):
        d = _decimals_for(key, grid)
        return doc if d is None else _round(doc, d)
    return doc


def _decimals_for(key: str, grid: _Grid) -> int | None:
    if key in MONEY_KEYS:
        return grid.money
    if key in QTY_KEYS:
        return grid.qty
    if key in PRICE_KEYS:
        return grid.price
    if key in RATIO_KEYS:
        return 6
    if key in BPS_KEYS:
        return 3
    if key in RATE_KEYS or key in LATENCY_KEYS:
        return 1
    if key in SECONDS_KEYS:
        return 6
    return None


def _round(x: Any, d: int) -> Any:
    if not isinstance(x, float) or not math.isfinite(x):
        return x
    r = round(x, d)
    return 0.0 if r == 0 else r  # no -0.0


def _plain_number(v: Any) -> Any:
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


def rejection_note(summary: Mapping[str, Any], *, fills_key: str = "fills", orders_key: str = "orders", n: int = TOP_REJECTIONS) -> str:
    """Why a run traded little, for its one-line summary: its `n` most frequent rejection reasons
    (`rejected: 12 position_too_large, 3 order_rate, …`), `no fills, none rejected` when nothing
    filled and nothing was refused, else "" (a run that traded)."""
    rej = {k: int(v) for k, v in (summary.get("rejections") or {}).items() if v}
    if rej:
        top = sorted(rej.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{v:,} {k}" for k, v in top[:n])
        more = len(top) - n
        return f"rejected: {shown}" + (f", {more} more reason{'s' if more > 1 else ''}" if more > 0 else "")
    if not summary.get(fills_key):
        return "no fills, none rejected" if summary.get(orders_key) else "no orders sent"
    return ""


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.2f}%"


def _num(x: float | None, fmt: str = ",.3f") -> str:
    return "—" if x is None else format(x, fmt)


def metrics_rows(m: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The important trader metrics (a summary's `metrics`, docs/metrics.md) as (label, value)
    rows for the human summaries of `sq backtest`, `sq paper` and `sq live`."""
    if not m:
        return []
    if m.get("sharpe") is not None:
        sharpe = f"{m['sharpe']:.2f} ({m['basis']})"
    elif m.get("capital") is None:
        sharpe = "— (no [paper_trading] starting_capital)"
    elif m.get("var_95") is None:
        sharpe = f"— (the run is shorter than two basis periods; {m['basis']})"
    else:
        sharpe = f"— (returns without variation; {m['basis']})"
    rows = [
        ("return on capital", f"{_pct(m.get('return_on_capital'))} of {_num(m.get('capital'), ',.0f')}"),
        ("Sharpe", sharpe),
        ("Sortino / Calmar", f"{_num(m.get('sortino'), '.2f')} / {_num(m.get('calmar'), '.2f')}"),
        ("max drawdown", f"{_num(m.get('max_drawdown'), ',.4f')} over {_num(m.get('max_drawdown_duration_s'), ',.0f')} s"),
        ("VaR / CVaR 95% (Cornish-Fisher)", f"{_pct(m.get('var_95'))} / {_pct(m.get('cvar_95'))} "
                                            f"({_pct(m.get('var_cf_95'))} / {_pct(m.get('cvar_cf_95'))})"),
        ("round trips", f"{m.get('round_trips') or 0:,}, win rate {_pct(m.get('win_rate'))}, avg win {_num(m.get('avg_win'), ',.4f')} "
                        f"/ loss {_num(m.get('avg_loss'), ',.4f')}"),
        ("profit factor / expectancy", f"{_num(m.get('profit_factor'), '.2f')} / {_num(m.get('expectancy'), ',.4f')}"),
        ("avg holding", f"{_num(m.get('avg_holding_s'), ',.1f')} s"),
        ("spread capture", f"{_num(m.get('spread_capture_bps'), '.2f')} bps"),
        ("markouts 1s / 10s / 60s", " / ".join(_num(m.get(f"markout_{h}_bps"), ".2f") for h in ("1s", "10s", "60s")) + " bps"),
        ("inventory |mean| / |max|", f"{_num(m.get('inventory_mean_abs'), ',.4g')} / {_num(m.get('inventory_max_abs'), ',.4g')}"),
        ("exposure", f"{_pct(m.get('exposure'))} of the time, avg gross notional {_num(m.get('avg_gross_notional'), ',.2f')}"),
    ]
    return rows
