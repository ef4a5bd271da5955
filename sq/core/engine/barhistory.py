"""Each symbol's bars so far, and the signals a bar strategy gives the newest ones.

Shared by the engines that run bar strategies — `BarEngine` (backtest, paper) and
`LiveBarEngine` (live) — so a bar's signal is computed one way wherever it runs: the bars are
read and checked (`read_bars`), appended to their symbol's history, and the strategy's polars
functions run over that whole history (`barsignals.frame` + `barsignals.compute`); the rows of
the new bars are kept. A market stream becomes the strategy's bars in `bar_stream` (the
`sq bars` code, `sq.core.barstream`). The history is part of an engine's snapshot, so a resumed
run computes the same signals as one that never stopped.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import pyarrow as pa

from sq.core import schemas as S
from sq.core.exits import DataError
from sq.core.sessions import TradingSession
from sq.core.strategy import barsignals
from sq.core.strategy.declaration import BarStrategy

HISTORY_COLUMNS = ("ts", "tclose", "open", "high", "low", "close", "volume", "trades", "vwap", "oi")
_INT_COLUMNS = ("ts", "tclose", "trades")


def closes(spec: Any, ts: np.ndarray) -> np.ndarray:
    """When each bar closed: its open + the interval for time bars; its open for the rest
    (a count or session bar's end is not in the stream: its open is the last time known)."""
    from sq.core.bars import BAR_TIME

    if spec.mode == BAR_TIME:
        return ts + np.int64(spec.size)
    return ts.copy()


def read_bars(bars: pa.RecordBatch, registry: Any, spec: Any, first_row: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(symbol ids, the HISTORY_COLUMNS arrays) of a bars batch; exit 65 naming the first bad bar
    (`first_row`: how many bars came before, for the message)."""
    n = bars.num_rows
    cols = {c: bars.column(c) for c in bars.schema.names}
    for c in ("ts", "symbol", "open", "high", "low", "close"):
        if c not in cols:
            raise DataError(f"the bars have no {c!r} column")
    codes = registry.codes(cols["symbol"]).astype(np.int64)
    ts = np.ascontiguousarray(S.int64_view(cols["ts"]), np.int64)
    o, h, lo, c = (np.ascontiguousarray(cols[k].to_numpy(zero_copy_only=False), np.float64) for k in ("open", "high", "low", "close"))
    bad = ~(np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & (lo <= h) & (lo > 0))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise DataError(f"bar {first_row + j} ({registry.symbols[codes[j]]}): open/high/low/close must be "
                        "positive numbers with low ≤ high")

    def opt(name: str, dtype, fill) -> np.ndarray:
        a = cols.get(name)
        if a is None or a.null_count == len(a):  # an all-null column (vwap, oi of most sources): no row-by-row fill
            return np.full(n, fill, dtype)
        if a.null_count:
            a = a.fill_null(fill)
        return np.asarray(a.to_numpy(zero_copy_only=False), dtype)

    return codes, {"ts": ts, "tclose": closes(spec, ts), "open": o, "high": h, "low": lo, "close": c,
                   "volume": opt("volume", np.float64, 0.0), "trades": opt("trades", np.int64, -1),
                   "vwap": opt("vwap", np.float64, np.nan), "oi": opt("oi", np.float64, np.nan)}


def bar_stream(batch: pa.RecordBatch, instruments: Mapping[str, S.Instrument], spec: Any,
               session_of: Callable[[str], TradingSession], warn: Callable[[str], None]) -> Any:
    """The BarStream that turns this market stream (its first batch) into the strategy's bars."""
    from sq.core.barstream import BarStream

    return BarStream({**S.schema_instruments(batch.schema), **instruments}, spec, session_of=session_of, warn=warn)


class BarHistory:
    """Per symbol id, its bars so far (HISTORY_COLUMNS arrays, oldest first)."""

    def __init__(self, strategy: BarStrategy, session_of: Callable[[str], TradingSession]):
        self.strategy = strategy
        self.session_of = session_of
        self.by_symbol: dict[int, dict[str, np.ndarray]] = {}

    def add(self, s: int, name: str, rows: Mapping[str, np.ndarray], params: Mapping[str, float]) -> barsignals.Signals:
        """Append symbol `s`'s new bars (arrays the caller no longer changes: the first ones are
        kept as they are); the signals of those bars, computed over its whole history."""
        old = self.by_symbol.get(s)
        if old is None:
            hist = {k: rows[k] for k in HISTORY_COLUMNS}
        else:
            hist = {k: np.concatenate([old[k], rows[k]]) for k in HISTORY_COLUMNS}
        self.by_symbol[s] = hist
        df = barsignals.frame(name, hist, self.session_of(name))
        return barsignals.compute(self.strategy, df, params, len(rows["ts"]))

    def snapshot(self) -> dict[str, np.ndarray]:
        """The history as flat arrays (`bar_<column>`, `bar_symbols`), for an engine's snapshot."""
        syms = sorted(self.by_symbol)
        state = {}
        for k in HISTORY_COLUMNS:
            parts = [self.by_symbol[s][k] for s in syms]
            state[f"bar_{k}"] = np.concatenate(parts) if parts else np.zeros(0, np.int64 if k in _INT_COLUMNS else np.float64)
        state["bar_symbols"] = (np.concatenate([np.full(len(self.by_symbol[s]["ts"]), s, np.int64) for s in syms]) if syms
                                else np.zeros(0, np.int64))
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        self.by_symbol = {}
        if "bar_symbols" in state:
            codes = np.asarray(state["bar_symbols"], np.int64)
            for s in np.unique(codes).tolist():
                rows = codes == s
                self.by_symbol[int(s)] = {k: np.asarray(state[f"bar_{k}"])[rows] for k in HISTORY_COLUMNS}
