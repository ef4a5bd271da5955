"""Imported rows → the dataset's day files (`sq.core.datasets` layout), replacing, never duplicating.

Each symbol, UTC day and import label has one file, `DIR/venue=…/symbol=…/date=…/import-<label>.parquet`
(`import-<label>-<interval>.parquet` for bars). A message (rows sharing a seq) belongs to the day
of its first row's `ts` and is never split. An import replaces, in each day file it touches, the
rows whose message was received (`recv_ts`; bars: `ts`) within the span of times this import
covers, and keeps the rest: importing the same file again replaces its rows, while files of
adjacent days (whose edges may fall into each other's UTC day) both stay whole. Kept and new
messages are ordered by time, kept ones first on a tie. Message numbers (`seq`) start at a base
of their own per label (`seq_base`), so series merged by time when read never run together.

`plan` reads everything (new rows, existing files) and builds every day's table in memory
before `write` touches the disk, so a failure anywhere leaves the dataset as it was; each file
is then written atomically by `sq.core.datasets.write_partition_file`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numba import njit

from sq.core import schemas as S
from sq.core.datasets import NS_PER_DAY, partition_dir, write_partition_file
from sq.core.exits import DataError
from sq.core.importers.rows import Parsed, fit_columns
from sq.core.streams import PARQUET_COMPRESSION, PARQUET_DATA_PAGE_VERSION, PARQUET_DELTA_COLUMNS, PARQUET_WRITE_BATCH

# Parquet settings of imported files, as `sq.core.streams` writes its files: zstd, the one-symbol
# string column dictionary-encoded, times and seqs (nearly monotone int64) delta-encoded, v2 data
# pages, values handed to the encoders 64K at a time (together ~20% less writer time than the defaults)
PARQUET_OPTIONS = {"compression": PARQUET_COMPRESSION, "use_dictionary": ["symbol"], "data_page_version": PARQUET_DATA_PAGE_VERSION,
                   "write_batch_size": PARQUET_WRITE_BATCH}
DELTA_COLUMNS = PARQUET_DELTA_COLUMNS
ROW_GROUP_ROWS = 1 << 20


@dataclass
class DayFile:
    """One day file an import writes: where, its table, and how many rows are new, kept, replaced."""

    path: Path
    day: dt.date
    table: pa.Table
    new_rows: int
    kept_rows: int
    replaced_rows: int


def file_schema(stream: str, symbol: str, instrument: S.Instrument, interval: str | None) -> pa.Schema:
    """The schema of an imported day file: the stream's columns (`symbol` as plain string, which
    hive `symbol=` partitions need) and metadata: stream kind, instruments, bar interval, end."""
    base = S.bars_schema({symbol: instrument}, interval or "") if stream == "bars" else S.market_schema({symbol: instrument})
    md = dict(base.metadata or {})
    md[S.META_END] = b"ok"
    fields = [pa.field("symbol", pa.string(), nullable=False) if f.name == "symbol" else f for f in base]
    return pa.schema(fields, metadata=md)


def file_name(label: str, interval: str | None) -> str:
    return f"import-{label}-{interval}.parquet" if interval else f"import-{label}.parquet"


def message_times(table: pa.Table, column: str = "ts") -> np.ndarray:
    """Per row, `column` of the first row of its message (consecutive rows sharing a seq)."""
    t = S.int64_view(table.column(column))
    if "seq" not in table.column_names or len(t) == 0:
        return t
    seq = table.column("seq").to_numpy()
    start = np.ones(len(t), dtype=bool)
    np.not_equal(seq[1:], seq[:-1], out=start[1:])
    if start.all():  # one row per message (trades)
        return t
    return t[np.maximum.accumulate(np.where(start, np.arange(len(t)), 0))]


def seq_base(label: str) -> int:
    """The first seq of a series: a 15-bit hash of its label above 48 bits of message numbers, so
    that messages of different series (a day's trades and its book, merged by time when read)
    never share a seq and run together."""
    return (int.from_bytes(hashlib.blake2b(label.encode(), digest_size=2).digest(), "little") & 0x7FFF) << 48


def combine(parts: list[Parsed], label: str) -> pa.Table:
    """The tables of several files of one label, in the order of their first times, their
    messages numbered on from file to file above the label's `seq_base`."""
    tables = sorted((p.table for p in parts if p.table.num_rows), key=lambda t: int(S.int64_view(t.column("ts").slice(0, 1))[0]))
    if not tables:
        return parts[0].table
    if "seq" not in tables[0].column_names:
        return pa.concat_tables(tables).combine_chunks()
    out, offset = [], seq_base(label)
    for t in tables:
        seq = t.column("seq").to_numpy() + offset
        offset = int(seq.max())
        out.append(t.set_column(t.schema.get_field_index("seq"), t.schema.field("seq"), pa.array(seq)))
    return pa.concat_tables(out).combine_chunks()


def plan(out_dir: str | Path, venue: str, symbol: str, label: str, table: pa.Table, schema: pa.Schema,
         interval: str | None = None) -> list[DayFile]:
    """Every day file this import writes for one label, built in memory (nothing is written)."""
    if table.num_rows == 0:
        return []
    span_col = "recv_ts" if "recv_ts" in table.column_names else "ts"
    recv = message_times(table, span_col)
    span = (int(recv.min()), int(recv.max()))
    mts = message_times(table)
    starts, run_days, ordered = day_runs(mts)
    order = None
    if not ordered:  # a clock that steps back over midnight: group rows by day, keeping their order
        days = mts // NS_PER_DAY
        order = np.argsort(days, kind="stable")
        starts, run_days, _ = day_runs(mts[order])
    stops = np.append(starts[1:], len(mts))
    name = file_name(label, interval)
    out = []
    for a, b, d in zip(starts.tolist(), stops.tolist(), run_days.tolist()):
        new = table.slice(a, b - a) if order is None else table.take(pa.array(order[a:b]))
        day = dt.date(1970, 1, 1) + dt.timedelta(days=d)
        directory = partition_dir(out_dir, venue, symbol, day)
        out.append(_merge(directory / name, day, _with_symbol(new, symbol, schema), schema, span, span_col))
    return out


@njit(cache=True, nogil=True)
def _day_runs(ts, out_start, out_day):
    n_runs = 0
    ordered = True
    day = np.int64(0)
    for i in range(len(ts)):
        d = ts[i] // NS_PER_DAY
        if i == 0 or d != day:
            if i > 0 and d < day:
                ordered = False
            out_start[n_runs] = i
            out_day[n_runs] = d
            n_runs += 1
            day = d
    return n_runs, ordered


def day_runs(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(first row of each run of one UTC day, that day since the epoch, whether days never go
    back) for times `ts` in ns; one pass."""
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    starts, days = np.empty(len(ts) + 1, np.int64), np.empty(len(ts) + 1, np.int64)  # pages never written cost nothing
    n, ordered = _day_runs(ts, starts, days)
    return starts[:n], days[:n], bool(ordered)


def write(files: list[DayFile]) -> list[Path]:
    """Write the planned day files, two at a time (Parquet encoding releases the GIL)."""
    def one(f: DayFile) -> Path:
        return write_partition_file(f.path.parent, f.path.name, f.table, row_group_size=ROW_GROUP_ROWS,
                                    column_encoding={c: "DELTA_BINARY_PACKED" for c in DELTA_COLUMNS if c in f.table.column_names},
                                    **PARQUET_OPTIONS)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, files))


def _with_symbol(table: pa.Table, symbol: str, schema: pa.Schema) -> pa.Table:
    """`table` (no symbol column) in `schema`, the constant symbol column inserted."""
    sym = constant_strings(symbol, table.num_rows)
    return pa.Table.from_arrays([sym if f.name == "symbol" else table.column(f.name) for f in schema], schema=schema)


def constant_strings(value: str, n: int, chunk: int = 1 << 22) -> pa.ChunkedArray:
    """`n` copies of `value` as a string column, built from buffers (offsets and repeated bytes),
    in chunks that keep 32-bit offsets in range."""
    raw = value.encode()
    chunks = []
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        offsets = np.arange(0, (m + 1) * len(raw), len(raw) or 1, dtype=np.int32)[: m + 1] if raw else np.zeros(m + 1, np.int32)
        chunks.append(pa.Array.from_buffers(pa.string(), m, [None, pa.py_buffer(offsets), pa.py_buffer(raw * m)]))
    return pa.chunked_array(chunks, type=pa.string())


def _merge(path: Path, day: dt.date, new: pa.Table, schema: pa.Schema, span: tuple[int, int], span_col: str) -> DayFile:
    """The day's new rows plus the rows of an existing file received outside this import's span."""
    times = _existing(path, schema, [span_col, "seq"] if "seq" in schema.names else [span_col])
    if times is None or times.num_rows == 0:
        return DayFile(path, day, new, new.num_rows, 0, 0)
    t = message_times(times, span_col)
    outside = (t < span[0]) | (t > span[1])
    if not outside.any():  # the same data imported again: nothing of the old file stays
        return DayFile(path, day, new, new.num_rows, 0, times.num_rows)
    old = _existing(path, schema)
    kept = old.filter(pa.array(outside))
    if kept.num_rows == 0:
        return DayFile(path, day, new, new.num_rows, 0, old.num_rows)
    both = pa.concat_tables([kept, new]).combine_chunks()
    origin = np.concatenate([np.zeros(kept.num_rows, np.int8), np.ones(new.num_rows, np.int8)])
    order = np.lexsort((np.arange(both.num_rows), origin, message_times(both)))
    # messages stay whole: a message's rows share its first row's time and origin, and keep their order
    return DayFile(path, day, both.take(pa.array(order)), new.num_rows, kept.num_rows, old.num_rows - kept.num_rows)


def _existing(path: Path, schema: pa.Schema, columns: list[str] | None = None) -> pa.Table | None:
    """The existing day file (only `columns`, else all) in `schema`'s types, or None; unreadable is a DataError."""
    if not path.exists():
        return None
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    try:
        old = pq.read_table(path, columns=[c for c in schema.names if c in pq.read_schema(path).names])
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: the existing day file is unreadable ({str(e).splitlines()[0][:120]}); "
                        "move it away and import again") from None
    fitted = fit_columns(old, list(schema), f"{path}: the existing day file does not fit the {S.stream_kind(schema)} schema")
    return fitted.replace_schema_metadata(schema.metadata)
