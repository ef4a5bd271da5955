"""A bar strategy's polars functions run over one symbol's bars → the executor's signal arrays.

The strategy sees a polars DataFrame of one symbol's bars, oldest first: `ts` (the bar's open,
Datetime ns UTC), `symbol`, `open`, `high`, `low`, `close`, `volume`, `trades`, `vwap`, `oi`
(the bars stream's columns), `session` (an Int64 id of the trading session the bar falls in:
its local date as days since 1970-01-01), `session_open` and `session_close` (Datetime: when that
session opens and closes; NSE 09:15–15:30 IST, the UTC day for around-the-clock markets).
`indicators(bars, p)` (optional) adds columns; `signals(bars, p)` returns the frame with

* `target`: the position wanted after this bar (base quantity, signed; null: no opinion), or
* `enter_long`, `exit_long`, `enter_short`, `exit_short` (booleans; any subset) with an
  optional `size` column (the entry quantity; default: the parameter `size`, else one lot),

and optionally `stop_loss` / `take_profit` (prices for the position an entry opens; null: none).
Row i of the result must still be bar i (same height; add columns, never filter or sort). The
signal of bar i may read bars ≤ i only: sq computes it once over the whole history in a backtest
and again as each bar closes in paper and live, and a strategy that looks ahead gets different
orders in each.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sq.core.exits import StrategyError
from sq.core.strategy.declaration import BarStrategy

BAR_COLUMNS = ("ts", "symbol", "open", "high", "low", "close", "volume", "trades", "vwap", "oi", "session", "session_open",
               "session_close")
FLAG_COLUMNS = ("enter_long", "exit_long", "enter_short", "exit_short")
FLAG_BITS = (1, 2, 4, 8)  # sq.core.engine.barexec ENTER_LONG, EXIT_LONG, ENTER_SHORT, EXIT_SHORT


class Params(Mapping[str, float]):
    """A symbol's parameter values: `p.fast` or `p["fast"]`; whole numbers come as int (ready
    for window lengths), the rest as float."""

    def __init__(self, values: Mapping[str, float]):
        self._v = {k: (int(v) if float(v).is_integer() and math.isfinite(v) else float(v)) for k, v in values.items()}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._v[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r} (parameters: {', '.join(self._v)})") from None

    def __getitem__(self, name: str) -> Any:
        return self._v[name]

    def __iter__(self):
        return iter(self._v)

    def __len__(self) -> int:
        return len(self._v)

    def __repr__(self) -> str:
        return f"Params({self._v})"


class Signals:
    """The executor's arrays for a run of bars: target (NaN: none), flags, size, stop, take."""

    __slots__ = ("target", "flags", "size", "stop", "take")

    @classmethod
    def empty(cls, n: int) -> "Signals":
        """Arrays to be filled whole (every row written later)."""
        s = cls.__new__(cls)
        s.target, s.flags, s.size, s.stop, s.take = np.empty(n), np.empty(n, np.int64), np.empty(n), np.empty(n), np.empty(n)
        return s

    def __init__(self, n: int):
        self.target = np.full(n, np.nan)
        self.flags = np.zeros(n, np.int64)
        self.size = np.full(n, np.nan)
        self.stop = np.full(n, np.nan)
        self.take = np.full(n, np.nan)


def frame(symbol: str, cols: Mapping[str, np.ndarray], session: Any) -> Any:
    """The strategy's view of one symbol's bars (see the module docstring)."""
    import polars as pl

    from sq.core.sessions import NS_PER_DAY

    ts = cols["ts"]
    day = (ts + session.offset_ns) // NS_PER_DAY
    start = day * NS_PER_DAY - session.offset_ns
    return pl.DataFrame({
        "ts": pl.Series("ts", ts, pl.Int64).cast(pl.Datetime("ns", "UTC")),
        "symbol": pl.repeat(symbol, len(ts), eager=True, dtype=pl.String),
        "open": cols["open"], "high": cols["high"], "low": cols["low"], "close": cols["close"], "volume": cols["volume"],
        "trades": pl.Series("trades", cols["trades"], pl.Int64),
        "vwap": pl.Series("vwap", cols["vwap"], pl.Float64).fill_nan(None),
        "oi": pl.Series("oi", cols["oi"], pl.Float64).fill_nan(None),
        "session": pl.Series("session", day, pl.Int64),
        "session_open": pl.Series("session_open", start + session.open_ns, pl.Int64).cast(pl.Datetime("ns", "UTC")),
        "session_close": pl.Series("session_close", start + session.close_ns, pl.Int64).cast(pl.Datetime("ns", "UTC")),
    })


def compute(strategy: BarStrategy, bars: Any, params: Mapping[str, float], last: int) -> Signals:
    """Run the strategy over `bars` (one symbol, oldest first); the signals of its `last` rows."""
    import polars as pl

    p = Params(params)
    df = bars
    n = df.height
    for name in ("indicators", "signals"):
        fn = strategy.handlers.get(name)
        if fn is None:
            continue
        try:
            out = fn(df, p)
        except Exception as e:  # noqa: BLE001 - the strategy's own failure, reported with its line
            raise StrategyError(f"strategy {strategy.name}: {name}() raised {type(e).__name__}: {e}{_where(e, strategy)}") from None
        if isinstance(out, pl.LazyFrame):
            out = out.collect()
        if not isinstance(out, pl.DataFrame):
            raise StrategyError(f"strategy {strategy.name}: {name}() must return a polars DataFrame, got {type(out).__name__}")
        if out.height != n:
            raise StrategyError(f"strategy {strategy.name}: {name}() returned {out.height} rows for {n} bars; "
                                "add columns, never filter or sort the bars")
        df = out
    return _arrays(strategy, df.tail(last) if last < n else df, p)


def _arrays(strategy: BarStrategy, df: Any, p: Params) -> Signals:
    import polars as pl

    n = df.height
    sig = Signals(n)
    names = set(df.columns)
    flags = [c for c in FLAG_COLUMNS if c in names]
    if "target" not in names and not flags:
        raise StrategyError(f"strategy {strategy.name}: signals() must add a `target` column or entry/exit columns "
                            f"({', '.join(FLAG_COLUMNS)})")

    def floats(col: str) -> np.ndarray:
        try:
            s = df.get_column(col).cast(pl.Float64, strict=True)
        except Exception:  # noqa: BLE001 - a column that is not numeric
            raise StrategyError(f"strategy {strategy.name}: column {col!r} must be numeric, got {df.schema[col]}") from None
        return s.fill_null(np.nan).to_numpy().astype(np.float64, copy=False)

    if "target" in names:
        sig.target = floats("target")
        if np.isinf(sig.target).any():
            raise StrategyError(f"strategy {strategy.name}: `target` must be finite (null: no opinion)")
    for col, bit in zip(FLAG_COLUMNS, FLAG_BITS):
        if col in names:
            try:
                v = df.get_column(col).cast(pl.Boolean, strict=True).fill_null(False).to_numpy()
            except Exception:  # noqa: BLE001
                raise StrategyError(f"strategy {strategy.name}: column {col!r} must be boolean, got {df.schema[col]}") from None
            sig.flags |= np.where(v, bit, 0).astype(np.int64)
    if "size" in names:
        sig.size = floats("size")
    else:
        sig.size[:] = float(p["size"]) if "size" in p else np.nan  # NaN: one lot
    for col, attr in (("stop_loss", "stop"), ("take_profit", "take")):
        if col in names:
            setattr(sig, attr, floats(col))
    return sig


def _where(error: BaseException, strategy: BarStrategy) -> str:
    """` (file:line)` of the deepest frame in the strategy's own file, when there is one."""
    src = Path(strategy.source) if strategy.source and not strategy.source.startswith(("builtin", "entry point")) else None
    tb = error.__traceback__
    line = None
    while tb is not None:
        f = Path(tb.tb_frame.f_code.co_filename)
        if (src is not None and f == src) or (src is None and "sq/strategies/" in str(f)):
            line = f"{f.name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return f" ({line})" if line else ""
