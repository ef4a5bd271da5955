"""What `sq report` reads: a run's journal directory or an sq results file, as plain tables.

Inputs it knows:
- a paper, live or shadow journal directory (`journal.log`, sealed or not; a live run's
  `shadow/` twin is found beside it by `resolve_runs`);
- a backtest's `--journal DIR` (orders.parquet, fills.parquet, pnl.parquet, no journal.log);
- a results file whose Arrow/Parquet schema metadata `sq.results` says what it is: `backtest`
  (a sweep's grid, `sq backtest --sweep … -o FILE`) or `wfo` / `cv` (a walk-forward or
  cross-validation: one row per fold, the JSON object `sq.wfo` beside it).

Mids for the price chart and the markouts: a shadow run's `marks.parquet` (ts, symbol, mid),
else the pnl rows' `mark` column when the schema has one, else derived from the pnl rows where
the position is not flat (mark = avg_price + unrealized / position); None when the journal has
neither (markouts then show as unavailable).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sq.core import journal as J
from sq.core.exits import DataError, NoInputError, UsageError

BACKTEST_FILES = ("orders.parquet", "fills.parquet", "pnl.parquet")
RESULTS_KINDS = ("backtest", "wfo", "cv")
MARKS_FROM_FILE = "marks.parquet (the shadow's mid each second)"
MARKS_FROM_COLUMN = "the pnl rows' mark"
MARKS_FROM_PNL = "pnl rows: avg price + unrealized / position"


@dataclass
class RunData:
    """One run's journal as tables: orders (None when the journal has none), fills, pnl, mids."""

    path: str
    kind: str  # "journal" (paper / live / shadow) or "backtest" (--journal DIR)
    mode: str
    run_id: str
    strategy: str
    symbols: list[str]
    params: list[str]
    sealed: bool | None
    orders: Any
    fills: Any
    pnl: Any
    marks: Any = None
    marks_from: str | None = None
    summary: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return f"{self.mode or 'run'} {self.strategy}".strip() + f" ({Path(self.path).name})"

    @property
    def metrics(self) -> dict[str, Any]:
        m = (self.summary or {}).get("metrics")
        return m if isinstance(m, dict) else {}


@dataclass
class ResultsData:
    """A results file: its table and what its schema metadata says (`sq.wfo` for a walk-forward)."""

    path: str
    kind: str  # backtest | wfo | cv
    table: Any
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.path).name


def _string_table(t: Any) -> Any:
    """The table with its symbol column as plain strings (a dictionary column in the files)."""
    import pyarrow as pa

    if "symbol" in t.column_names and not pa.types.is_string(t.schema.field("symbol").type):
        t = t.set_column(t.column_names.index("symbol"), "symbol", t.column("symbol").cast(pa.string()))
    return t


def _read_parquet(p: Path) -> Any:
    import pyarrow.parquet as pq

    try:
        return _string_table(pq.read_table(p))
    except Exception as e:  # noqa: BLE001 - a damaged file: one line, exit 65
        raise DataError(f"{p}: not a readable Parquet file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def derived_marks(pnl: Any) -> tuple[Any, str | None]:
    """Mids from the pnl rows: their `mark` column, else avg_price + unrealized / position where
    the position is not flat. (None, None) when there is none."""
    import pyarrow as pa

    if pnl is None or pnl.num_rows == 0:
        return None, None
    ts = pnl.column("ts").cast(pa.int64()).to_numpy()
    sym = pnl.column("symbol").cast(pa.string())
    if "mark" in pnl.column_names:
        mark = pnl.column("mark").to_numpy(zero_copy_only=False).astype(np.float64)
        how = MARKS_FROM_COLUMN
    else:
        pos = pnl.column("position").to_numpy(zero_copy_only=False).astype(np.float64)
        avg = pnl.column("avg_price").to_numpy(zero_copy_only=False).astype(np.float64)
        unreal = pnl.column("unrealized").to_numpy(zero_copy_only=False).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            mark = np.where(pos != 0, avg + unreal / np.where(pos != 0, pos, 1.0), np.nan)
        how = MARKS_FROM_PNL
    ok = np.isfinite(mark) & (mark > 0)
    if not ok.any():
        return None, None
    keep = pa.array(ok)
    return pa.table({"ts": pa.array(ts).filter(keep), "symbol": sym.filter(keep), "mid": pa.array(mark).filter(keep)}), how


def _summary_of(loaded: Any) -> dict[str, Any] | None:
    end = loaded.last("end")
    s = end.data.get("summary") if end is not None else None
    return s if isinstance(s, dict) else None


def _journal_run(d: Path) -> RunData:
    loaded = J.load(d)
    start = loaded.start
    return RunData(path=str(d), kind="journal", mode=str(start.get("mode", "")), run_id=str(start.get("run_id", "")),
                   strategy=str(start.get("strategy", "")), symbols=list(start.get("symbols") or []), params=list(start.get("params") or []),
                   sealed=loaded.sealed, orders=_string_table(J.table_of(loaded, "orders")), fills=_string_table(J.table_of(loaded, "fills")),
                   pnl=_string_table(J.table_of(loaded, "pnl")), summary=_summary_of(loaded))


def _backtest_run(d: Path) -> RunData:
    """A backtest's --journal DIR; `summary.json` beside the files is read when there is one."""
    from sq.core import schemas as S

    tables = {}
    for name, schema in zip(BACKTEST_FILES, (S.orders_schema(), S.fills_schema(), S.pnl_schema())):
        p = d / name
        tables[name] = _read_parquet(p) if p.is_file() else _string_table(schema.empty_table())
    summary = None
    if (d / "summary.json").is_file():
        try:
            summary = json.loads((d / "summary.json").read_text())
        except (OSError, ValueError):
            summary = None
    symbols = sorted(set(tables["pnl.parquet"].column("symbol").to_pylist()) | set(tables["fills.parquet"].column("symbol").to_pylist()))
    s = summary or {}
    return RunData(path=str(d), kind="backtest", mode="backtest", run_id="", strategy=str(s.get("strategy", "")),
                   symbols=list(s.get("symbols") or symbols), params=[], sealed=None, orders=tables["orders.parquet"],
                   fills=tables["fills.parquet"], pnl=tables["pnl.parquet"], summary=summary)


def _results(p: Path) -> ResultsData:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = None
    try:
        table = pq.read_table(p)
    except Exception:  # noqa: BLE001 - not Parquet: maybe an Arrow IPC file or stream
        for opener in (pa.ipc.open_file, pa.ipc.open_stream):
            try:
                with pa.memory_map(str(p)) as src:
                    table = opener(src).read_all()
                break
            except Exception:  # noqa: BLE001
                continue
    if table is None:
        raise DataError(f"{p}: not an sq results file (neither Parquet nor Arrow); give a run's journal directory or a results file")
    md = table.schema.metadata or {}
    kind = (md.get(b"sq.results") or b"").decode(errors="replace")
    if kind not in RESULTS_KINDS:
        raise DataError(f"{p}: not an sq results file (no sq.results in its schema metadata); "
                        "sq report reads a run's journal directory, a sweep's -o file or a walk-forward's results")
    meta: dict[str, Any] = {}
    if kind in ("wfo", "cv"):
        try:
            meta = json.loads(md.get(b"sq.wfo") or b"{}")
        except ValueError:
            raise DataError(f"{p}: its sq.wfo metadata is not JSON") from None
        if not isinstance(meta, dict):
            raise DataError(f"{p}: its sq.wfo metadata is not a JSON object")
    return ResultsData(path=str(p), kind=kind, table=table, meta=meta)


def read_input(path: str | Path) -> RunData | ResultsData:
    """One input as data; a one-line error when it is none of the kinds above."""
    p = Path(path)
    if p.is_dir():
        if J.log_path(p).is_file():
            return _journal_run(p)
        if any((p / f).is_file() for f in BACKTEST_FILES):
            return _backtest_run(p)
        raise DataError(f"{p}: not an sq run (no {J.LOG_NAME}, no {' / '.join(BACKTEST_FILES)}); "
                        "give a run's journal directory, a backtest's --journal DIR or a results file")
    if p.is_file():
        return _results(p)
    raise NoInputError(f"{p}: no sq journal there (nothing at that path); give a run's journal directory or a results file")


def read_inputs(paths: list[str]) -> list[RunData | ResultsData]:
    """One input, or two runs to compare; a live run with a shadow beside it compares with it.
    Two runs that have no mids of their own share a `marks.parquet` one of them has."""
    from sq.runs.shadow import MARKS_FILE, SHADOW_DIR

    if not 1 <= len(paths) <= 2:
        raise UsageError(f"sq report takes one run or two to compare; got {len(paths)}")
    items = [read_input(p) for p in paths]
    if len(items) == 2 and any(isinstance(i, ResultsData) for i in items):
        raise UsageError("sq report compares two runs' journals; a results file (sweep, walk-forward) is reported alone")
    if len(items) == 1 and isinstance(items[0], RunData) and J.log_path(Path(paths[0]) / SHADOW_DIR).is_file():
        items.append(_journal_run(Path(paths[0]) / SHADOW_DIR))
    runs = [i for i in items if isinstance(i, RunData)]
    shared = None
    for r in runs:
        for f in (Path(r.path) / MARKS_FILE, Path(r.path) / SHADOW_DIR / MARKS_FILE):
            if shared is None and f.is_file():
                shared = _read_parquet(f)
    for r in runs:
        if shared is not None:
            r.marks, r.marks_from = shared, MARKS_FROM_FILE
        else:
            r.marks, r.marks_from = derived_marks(r.pnl)
    return items
