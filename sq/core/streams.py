"""Reading and writing sq streams: Arrow IPC on pipes, Parquet/Arrow files on disk (docs/streams.md).

Writers
  * Arrow IPC stream to stdout: the schema is flushed at once (a 0-row batch), every batch is
    flushed, and a trailer (a 0-row batch whose custom metadata says `sq.end = ok` and the row
    count) is written only on success — so a killed writer is detectable downstream.
  * `-o FILE.parquet|.arrow|.jsonl`: written to a temp file beside the target and renamed on
    success, so a killed writer never leaves a corrupt file under the final name.
  * `jsonl` and `table` text formats for people and scripts.

Readers accept Parquet files, directories / globs / hive-partitioned datasets, Arrow IPC files,
and Arrow IPC streams (stdin or file), local or under an object-store URI (s3://, gs://;
sq.core.objstore). A stream of the wrong kind, a truncated sq stream, a
corrupt stream or text on stdin raise `DataError` (exit 65); a missing file `NoInputError` (66).
"""

from __future__ import annotations

import datetime as dt
import glob
import io
import itertools
import json
import os
import queue
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from sq.core import schemas as S
from sq.core.datasets import check_spans, check_window, in_spans, in_window, spans_dates, spans_text, window_ns
from sq.core.schemas import int64_view
from sq.core.environment import Environment
from sq.core.exits import DataError, NoInputError, UsageError
from sq.core import objstore
from sq.core.paths import datasync as _datasync

FORMATS = ("auto", "arrow", "parquet", "jsonl", "table")
PARQUET_MAGIC = b"PAR1"
ARROW_FILE_MAGIC = b"ARROW1"
IPC_CONTINUATION = b"\xff\xff\xff\xff"

# Parquet output settings. zstd at level 1 (Arrow's default zstd level; `sq import` files use
# it too): on book streams ~15% less writer CPU than level 3 (polars' default) for files ~1%
# larger (market streams: smaller), and the writer thread is the slower side of `sq book`.
# Row-group statistics only for the columns readers prune on (times, symbol, seq, kind, side:
# everything but floats): min/max of every float column cost ~8% of the writer's CPU and no
# reader of sq's streams filters on them. Dictionary encoding only for
# dictionary-typed columns (symbol): on float/int columns it costs a hash per value and then
# falls back to plain pages on high-cardinality data (polars writes those plain, too). Row
# groups of 128K rows or more (a group per book batch, as in polars' files): the background
# thread encodes one while the producer builds the next, and never waits for a second batch
# (the writer thread is the slower side of `sq book`: every idle moment of it is wall time);
# the first group goes as soon as it has 64K rows.
# Data pages v2 (Parquet format 2.0 pages, read by pyarrow, polars, DuckDB, Spark): the
# definition levels stay outside the compressed block, so a page is compressed from the
# encoder's buffer instead of first being copied after its levels (v1), ~12% of the
# writer's CPU on book streams. Same encodings, codec and level as v1 pages. Values reach the
# column encoders 64K at a time instead of Arrow's default 1024 (a page still ends at the
# first batch boundary past 1 MB, so book pages are the same): ~8% less writer CPU.
IPC_PIPE_BUFFER = 1 << 16  # bytes: small buffers gather here, bigger ones (columns of big batches) go straight through
PARQUET_COMPRESSION = "zstd"
PARQUET_COMPRESSION_LEVEL = 1
PARQUET_ROW_GROUP = 131_072
PARQUET_FIRST_ROW_GROUP = 16_384  # small: the writer thread (the critical path of `sq book`) starts sooner
PARQUET_DATA_PAGE_VERSION = "2.0"
PARQUET_WRITE_BATCH = 65_536
PARQUET_READ_BATCH = 65_536  # rows a Parquet input yields at a time: the first one sooner (9 ms, not 14, on 2.2M events) at no cost over the whole file
# Times and sequence numbers (nearly monotone int64) as DELTA_BINARY_PACKED: a fraction of
# the bytes to compress (ts 18%, seq 78% smaller on book streams) and ~9% less writer CPU.
PARQUET_DELTA_COLUMNS = ("ts", "recv_ts", "seq")

FUNDING_FILE = "funding.parquet"  # a perpetual's funding events beside its market data (docs/funding.md): not a market input


# ----------------------------------------------------------------------------------------------
# output format resolution


def resolve_format(env: Environment, fmt: str, output: str | None) -> str:
    """Decide the concrete output format from --format, -o and whether stdout is a terminal."""
    fmt = (fmt or "auto").lower()
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if fmt == "auto":
        if output:
            suffix = Path(output).suffix.lower()
            if suffix in (".parquet", ".pq"):
                return "parquet"
            if suffix in (".arrow", ".ipc", ".feather"):
                return "arrow"
            if suffix in (".jsonl", ".ndjson", ".json"):
                return "jsonl"
            raise UsageError(f"-o {output}: cannot tell the format from the suffix; use .parquet, .arrow or .jsonl, or --format")
        return "table" if env.stdout_isatty else "arrow"
    if output is None and env.stdout_isatty and fmt in ("arrow", "parquet"):
        raise UsageError(f"refusing to write binary {fmt} data to a terminal; pipe it or use -o FILE")
    return fmt


# ----------------------------------------------------------------------------------------------
# writers


class StreamWriter:
    """Writes one stream kind to stdout or a file in one format; use as a context manager.

    On a clean exit the stream is finished (trailer / rename); on an exception it is aborted
    (no trailer, temp file removed) so downstream readers and the file system never see a
    short stream passed off as complete.
    """

    def __init__(
        self,
        env: Environment,
        schema: pa.Schema,
        *,
        output: str | None = None,
        fmt: str = "auto",
        table_columns: list[str] | None = None,
        table_dates: bool = False,
    ):
        self.env = env
        self.output = output
        if output and S.META_WHOLE_MESSAGES in (schema.metadata or {}):  # a file's readers cut batches of their own
            schema = schema.with_metadata({k: v for k, v in schema.metadata.items() if k != S.META_WHOLE_MESSAGES})
        self.schema = schema
        self.kind = S.stream_kind(schema) or "market"
        self.format = resolve_format(env, fmt, output)
        if self.format == "table" and output:
            raise UsageError("--format table writes to the terminal; drop -o or choose parquet/arrow/jsonl")
        self.rows = 0
        self.batches = 0
        self._closed = False
        self._tmp: str | None = None
        self._sink: IO[bytes] | None = None
        self._native = None  # the native buffer between an Arrow stream writer and stdout
        self._ipc = None
        self._pq = None
        self._behind: WriteBehind | None = None  # an -o file's disk writes, started while it is written
        self._table_columns = table_columns
        self._table_dates = table_dates
        self._header_done = False
        self._instruments: dict[str, S.Instrument] | None = None  # for --format table's price decimals
        self._open()

    # -- setup
    def _open(self) -> None:
        if self.output:
            target = Path(self.output)
            if target.parent and not target.parent.exists():
                raise NoInputError(f"-o {self.output}: directory {str(target.parent)!r} does not exist")
            self._tmp = str(target.parent / f".{target.name}.{os.getpid()}.tmp")
            # Parquet files go through Arrow's native file: a Python file object costs a bytes
            # copy and the GIL per write call from the writer thread
            self._sink = pa.OSFile(self._tmp, "wb") if self.format == "parquet" else open(self._tmp, "wb")
            self._behind = WriteBehind(self._sink.fileno())
        else:
            self._sink = self.env.stdout
        if self.format == "arrow":
            if self.output:
                opts = ipc.IpcWriteOptions(emit_dictionary_deltas=True)
                self._ipc = ipc.new_file(self._sink, self.schema, options=opts)
            else:
                # the IPC writer writes each buffer of a batch (two a column) on its own: into
                # Python's stdout that is a Python call each, most of a small live batch's cost;
                # a native buffer in between makes it one write per flush
                self._native = pa.BufferedOutputStream(pa.PythonFile(_Unclosed(self._sink), mode="w"), IPC_PIPE_BUFFER)
                self._ipc = ipc.new_stream(self._native, self.schema)
                # flush the schema at once: readers otherwise block until the first batch
                self._ipc.write_batch(_empty_batch(self.schema))
                self._flush()
        elif self.format == "parquet":
            md = dict(self.schema.metadata or {})
            md[S.META_END] = b"ok"
            dict_cols = [f.name for f in self.schema if pa.types.is_dictionary(f.type)]
            self._pq = pq.ParquetWriter(self._sink, self.schema.with_metadata(md), compression=PARQUET_COMPRESSION,
                                        compression_level=PARQUET_COMPRESSION_LEVEL, use_dictionary=dict_cols or False,
                                        data_page_version=PARQUET_DATA_PAGE_VERSION, write_batch_size=PARQUET_WRITE_BATCH,
                                        column_encoding=_delta_columns(self.schema) or None,
                                        write_statistics=_statistics_columns(self.schema))
            self._pq_thread = _Background(self._write_row_group)
        self._pq_pending: list[pa.RecordBatch] = []
        self._pq_pending_rows = 0
        self._pq_groups = 0

    def _flush(self) -> None:
        if self._native is not None:
            self._native.flush()  # also flushes stdout
        elif self._sink is not None and not self.output:
            self._sink.flush()

    # -- writing
    def write(self, batch: pa.RecordBatch) -> None:
        """Write one batch (flushed at once on pipes; batched harder for files)."""
        if batch.num_rows == 0:
            return
        if not batch.schema.equals(self.schema, check_metadata=False):
            batch = pa.RecordBatch.from_arrays(batch.columns, schema=self.schema)
        self.rows += batch.num_rows
        self.batches += 1
        if self.format == "arrow":
            if self.output:  # IPC files allow dictionary deltas, not replacements
                batch = self._stable_dictionaries(batch)
            self._ipc.write_batch(batch)
            self._flush()
            if self._behind is not None:
                self._behind.poke()
        elif self.format == "parquet":
            self._pq_pending.append(batch)
            self._pq_pending_rows += batch.num_rows
            if self._pq_pending_rows >= (PARQUET_ROW_GROUP if self._pq_groups else PARQUET_FIRST_ROW_GROUP):
                self._pq_groups += 1
                self._flush_parquet()
        elif self.format == "jsonl":
            self._sink.write(batch_to_jsonl(batch))
            self._flush()
            if self._behind is not None:
                self._behind.poke()
        elif self.format == "table":
            self._write_table(batch)

    def _stable_dictionaries(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Re-encode dictionary columns against one growing per-file dictionary."""
        if not hasattr(self, "_dicts"):
            self._dicts: dict[int, tuple[list, dict]] = {}
        cols = list(batch.columns)
        for i, col in enumerate(cols):
            if not pa.types.is_dictionary(col.type):
                continue
            values, index = self._dicts.setdefault(i, ([], {}))
            local = col.dictionary.to_pylist()
            remap = np.empty(len(local), dtype=np.int32)
            for j, v in enumerate(local):
                k = index.get(v)
                if k is None:
                    k = index[v] = len(values)
                    values.append(v)
                remap[j] = k
            idx = col.indices.to_numpy(zero_copy_only=False)
            codes = remap[idx.astype(np.int64)] if len(idx) else np.zeros(0, dtype=np.int32)
            cols[i] = pa.DictionaryArray.from_arrays(pa.array(codes, type=col.type.index_type), pa.array(values, type=col.type.value_type))
        return pa.RecordBatch.from_arrays(cols, schema=self.schema)

    def _flush_parquet(self) -> None:
        """Hand the pending batches to the writer thread as one row group (Parquet encoding and
        compression release the GIL, so they overlap the producer's next batch)."""
        if self._pq_pending:
            batches = self._pq_pending
            self._pq_pending = []
            self._pq_pending_rows = 0
            table = pa.Table.from_batches(batches, schema=self.schema)
            if len(batches) > 1 and not _same_dictionaries(batches):
                table = table.unify_dictionaries()
            self._pq_thread.put(table)

    def _write_row_group(self, table: pa.Table) -> None:
        self._pq.write_table(table, row_group_size=max(table.num_rows, 1))
        if self._behind is not None:
            self._behind.poke()

    def _write_table(self, batch: pa.RecordBatch) -> None:
        cols = self._table_columns or [n for n in batch.schema.names][:12]
        if self._instruments is None:
            self._instruments = S.schema_instruments(self.schema)
        text = render_text_rows(batch.select(cols), header=not self._header_done, dates=self._table_dates, instruments=self._instruments)
        self._header_done = True
        out = self._sink
        out.write(text.encode())
        out.flush()

    # -- finishing
    def close(self, ok: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if ok:
                if self.format == "arrow" and not self.output:
                    trailer = {S.META_END: b"ok", S.META_ROWS: str(self.rows).encode()}
                    self._ipc.write_batch(_empty_batch(self.schema), custom_metadata=trailer)
                    self._ipc.close()
                    self._flush()
                elif self.format == "arrow":
                    self._ipc.close()
                elif self.format == "parquet":
                    self._flush_parquet()
                    self._pq_thread.join()
                    self._pq.close()
                if self.output:
                    self._sink.flush()
                    self._behind.stop()
                    os.fsync(self._sink.fileno())
                    self._sink.close()
                    os.replace(self._tmp, self.output)
                    self._tmp = None
                elif self.format == "parquet":
                    self._sink.flush()
            else:
                self._abort()
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        if getattr(self, "_pq_thread", None) is not None:
            self._pq_thread.join(check=False)
        if self._behind is not None:
            self._behind.stop(check=False)
        for w in (self._pq, self._ipc if self.output else None):
            if w is not None:
                try:
                    w.close()  # releases the writer; its file is deleted below
                except Exception:
                    pass
        self._pq = None
        if self.output and self._sink is not None:
            try:
                self._sink.close()
            except Exception:
                pass
        if self._tmp:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None

    def __enter__(self) -> "StreamWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close(ok=True)
        elif issubclass(exc_type, (BrokenPipeError,)) or _is_epipe(exc):
            self._closed = True  # nothing more can be written downstream
        else:
            self.close(ok=False)


class _Unclosed:
    """A binary file for Arrow to write to that Arrow cannot close (a `pa.PythonFile` closes its
    file when it is released; stdout stays open)."""

    closed = False

    def __init__(self, f: IO[bytes]):
        self._f = f

    def write(self, data) -> int:
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        pass


def _delta_columns(schema: pa.Schema) -> dict[str, str]:
    """The column_encoding for PARQUET_DELTA_COLUMNS present as int64 or timestamp columns."""
    return {f.name: "DELTA_BINARY_PACKED" for f in schema
            if f.name in PARQUET_DELTA_COLUMNS and (pa.types.is_int64(f.type) or pa.types.is_timestamp(f.type))}


def _statistics_columns(schema: pa.Schema) -> list[str]:
    """The columns whose row-group statistics are written: all but floating-point ones."""
    return [f.name for f in schema if not pa.types.is_floating(f.type)]


def _same_dictionaries(batches: list[pa.RecordBatch]) -> bool:
    """Whether every dictionary column has one dictionary across `batches` (no unify needed)."""
    first = batches[0]
    for i, f in enumerate(first.schema):
        if pa.types.is_dictionary(f.type):
            d = first.column(i).dictionary
            for b in batches[1:]:
                o = b.column(i).dictionary
                if o is not d and not o.equals(d):
                    return False
    return True


class _Background:
    """Runs `fn(item)` for each `put` item, in order, on one thread; a bounded queue keeps at most
    two items waiting. An error in `fn` is raised by the next `put` or by `join`."""

    def __init__(self, fn):
        self._fn = fn
        self._q: queue.Queue = queue.Queue(maxsize=2)
        self._err: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sq-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._err is None:
                try:
                    self._fn(item)
                except BaseException as e:  # handed to the producer thread
                    self._err = e

    def _check(self) -> None:
        if self._err is not None:
            raise self._err

    def put(self, item) -> None:
        self._check()
        self._q.put(item)

    def join(self, check: bool = True) -> None:
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()
        if check:
            self._check()


class WriteBehind:
    """Starts the disk writes of a file while it is still being written: each `poke` (a row
    group or batch written) wakes a thread that `fdatasync`s what is there so far, so the
    fsync that must come before the atomic rename at close has only the tail left (on a 29 MB
    `sq book` output: ~18 ms of the command's ~0.5 s, now overlapped with the writing). A failed
    sync is raised by `stop`: after a failed fsync the kernel may drop the dirty pages and a
    later fsync succeed, so the error must not be lost."""

    def __init__(self, fd: int):
        self._fd = fd
        self._wake = threading.Event()
        self._done = False
        self._err: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="sq-write-behind", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._done:
                return
            try:
                _datasync(self._fd)
            except OSError as e:
                self._err = e
                return

    def poke(self) -> None:
        self._wake.set()

    def stop(self, check: bool = True) -> None:
        """Ends the thread (a sync under way completes first); raises its error with `check`."""
        self._done = True
        self._wake.set()
        self._thread.join()
        if check and self._err is not None:
            raise self._err


def _is_epipe(exc: BaseException | None) -> bool:
    import errno

    return isinstance(exc, OSError) and exc.errno == errno.EPIPE


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


def batch_to_jsonl(batch: pa.RecordBatch) -> bytes:
    """JSON Lines, one object per row; timestamps as ISO-8601 strings with nanoseconds."""
    cols = {}
    for name, col in zip(batch.schema.names, batch.columns):
        t = col.type
        if pa.types.is_timestamp(t):
            cols[name] = col.cast(pa.string()).to_pylist()
        elif pa.types.is_dictionary(t):
            cols[name] = col.cast(pa.string()).to_pylist()
        else:
            cols[name] = col.to_pylist()
    names = list(cols)
    out = io.StringIO()
    for i in range(batch.num_rows):
        row = {n: _json_value(cols[n][i]) for n in names}
        out.write(json.dumps(row, separators=(",", ":")))
        out.write("\n")
    return out.getvalue().encode()


def _json_value(v):
    if isinstance(v, float) and v != v:
        return None
    return v


def render_text_rows(batch: pa.RecordBatch, *, header: bool, dates: bool = False,
                     instruments: Mapping[str, S.Instrument] | None = None) -> str:
    """Plain aligned text rows for --format table on pipes and the demo (no ANSI codes).
    Timestamps show the time of day to the millisecond, or with `dates` the date and the time
    to the second (bars, which span days). Prices carry their instrument's tick decimals, `kind`
    and `side` show as names, counts with separators (sq.core.formatting)."""
    from sq.core import formatting as F

    names = batch.schema.names
    symbols = batch.column("symbol").cast(pa.string()).to_pylist() if "symbol" in names else [None] * batch.num_rows
    kinds = batch.column("kind").to_pylist() if "kind" in names else None
    prices = F.PriceFormats(instruments if instruments is not None else S.schema_instruments(batch.schema))
    values = []
    for name, col in zip(names, batch.columns):
        t = col.type
        extra = _price_extra(name)
        if pa.types.is_timestamp(t):
            vals = [(s[:19] if dates else s[11:23]) if s else "" for s in col.cast(pa.string()).to_pylist()]
        elif pa.types.is_dictionary(t):
            vals = col.cast(pa.string()).to_pylist()
        elif name == "kind" and pa.types.is_integer(t):
            vals = [F.kind_name(v) for v in col.to_pylist()]
        elif name == "side" and pa.types.is_integer(t):
            vals = [F.side_name(v, kinds[i] if kinds is not None else None) for i, v in enumerate(col.to_pylist())]
        elif extra is not None and pa.types.is_floating(t):
            vals = [F.format_price(v, prices.of(s), extra, missing="") for s, v in zip(symbols, col.to_pylist())]
        elif name == "imbalance" and pa.types.is_floating(t):
            vals = [F.format_imbalance(v, missing="") for v in col.to_pylist()]
        elif name in COUNT_COLUMNS and pa.types.is_integer(t):
            vals = [F.format_count(v, missing="") for v in col.to_pylist()]
        elif pa.types.is_floating(t):
            vals = ["" if v is None or v != v else f"{v:.6g}" for v in col.to_pylist()]
        else:
            vals = ["" if v is None else str(v) for v in col.to_pylist()]
        values.append(vals)
    widths = [max([len(n)] + [len(v) for v in vals]) for n, vals in zip(names, values)]
    lines = []
    if header:
        lines.append("  ".join(n.rjust(w) for n, w in zip(names, widths)))
    for i in range(batch.num_rows):
        lines.append("  ".join(vals[i].rjust(w) for vals, w in zip(values, widths)))
    return "\n".join(lines) + "\n"


# price columns of the stream kinds: on the tick grid (0 extra decimals), a mid (half a tick: 1),
# or an average (2); see sq.core.formatting
_GRID_PRICES = frozenset({"price", "open", "high", "low", "close", "last_trade_px", "spread"})
_AVERAGE_PRICES = frozenset({"microprice", "vwap", "avg_price"})
COUNT_COLUMNS = frozenset({"trades", "orders"})


def _price_extra(name: str) -> int | None:
    """The extra decimals (beyond the tick's) of a price column; None for a column that is not a price."""
    from sq.core import formatting as F

    if name in _GRID_PRICES or re.fullmatch(r"(bid|ask)_px_\d+", name):
        return 0
    if name == "mid":
        return F.MID_EXTRA
    if name in _AVERAGE_PRICES:
        return F.AVERAGE_EXTRA
    return None


# ----------------------------------------------------------------------------------------------
# readers


@dataclass
class StreamSource:
    """An opened input: its kind, schema, instruments, and a batch iterator (conformed)."""

    kind: str
    schema: pa.Schema
    instruments: dict[str, S.Instrument]
    _iter: Iterator[pa.RecordBatch]
    names: list[str] = field(default_factory=list)
    from_sq: bool = True
    total_rows: int | None = None  # rows in the input files (from their footers); None when unknown (stdin)
    # every batch ends at the end of a venue message: one Arrow stream on stdin whose writer says
    # so (schemas.META_WHOLE_MESSAGES), read whole (no --start/--end or spans cutting rows out)
    whole_messages: bool = False

    def batches(self) -> Iterator[pa.RecordBatch]:
        return self._iter

    def counted(self, advance) -> "StreamSource":
        """The same source calling `advance(rows)` after each batch is consumed (a progress bar)."""
        def gen() -> Iterator[pa.RecordBatch]:
            for batch in self._iter:
                yield batch
                advance(batch.num_rows)

        return StreamSource(self.kind, self.schema, self.instruments, gen(), self.names, self.from_sq, self.total_rows,
                            self.whole_messages)


def open_input(env: Environment, inputs: list[str] | tuple[str, ...] | None, want: str | tuple[str, ...],
               columns: tuple[str, ...] | None = None, *, start: dt.date | None = None, end: dt.date | None = None,
               spans: tuple[tuple[int, int], ...] | None = None) -> StreamSource:
    """Open the command's INPUT arguments (or stdin) as one source of stream kind `want`.

    `columns`: the consumer reads only these; Parquet files then decode only them, and batches
    (and the source's schema) carry only them. Every file's schema is still checked whole: a
    missing required column, or one of a type that cannot be cast, is the same error as without
    `columns` (only the values of columns not read go unchecked).

    `start`, `end` (`--start/--end`, both days included, UTC): files of a dataset whose `date=`
    partition lies outside the window are never opened, and rows outside [start 00:00, end+1
    00:00) are dropped. A window that holds no rows is a DataError ("no market events between …").

    `spans` (research windows, sq.runs.research): exact [lo, hi) ns ranges; only rows inside one
    of them are kept (a union of several ranges reads as one stream with gaps), and files of
    days no span touches are never opened. Applies on top of `start`/`end`.
    """
    wants = (want,) if isinstance(want, str) else tuple(want)
    inputs = list(inputs or [])
    if not inputs:
        if env.stdin_isatty:
            raise UsageError("no input: give a file or dataset, or pipe a stream into stdin (e.g. sq subscribe SIM:DEMO | …)")
        inputs = ["-"]
    check_window(start, end)
    parts: list[_Part] = []
    for item in inputs:
        parts.extend(_expand(env, item))
    if not parts:
        raise NoInputError(f"no Parquet or Arrow files found in {', '.join(inputs)}")
    windowed = start is not None or end is not None
    if spans is not None:
        spans = check_spans(spans)
        days = spans_dates(spans)
        kept = set(in_window([p.path for p in parts if p.path is not None], *days))
        parts = [p for p in parts if p.path is None or p.path in kept]
        if not parts:
            raise DataError(_empty_spans(wants, spans))
    if windowed:
        kept = set(in_window([p.path for p in parts if p.path is not None], start, end))
        parts = [p for p in parts if p.path is None or p.path in kept]
        if not parts:
            raise DataError(_empty_window(wants, start, end))
    first = parts[0].open(columns)
    kind, from_sq = _check_kind(first.schema, first.name, wants)
    instruments = S.schema_instruments(first.schema)
    total_rows: int | None = _file_rows(parts[0].path)
    for part in parts[1:]:  # a dataset's files may each know other symbols: learn them all up front
        footer_instruments, rows = _file_footer(part.path)
        instruments.update(footer_instruments)
        total_rows = None if total_rows is None or rows is None else total_rows + rows
    full_target = _target_schema(kind, first.schema)
    target = full_target
    if columns is not None:
        target = pa.schema([f for f in full_target if f.name in columns], metadata=full_target.metadata)

    def lane(lane_parts: list[_Part]) -> Iterator[pa.RecordBatch]:
        """The conformed batches of some parts, one after the other."""
        for part in lane_parts:
            opened = first if part is parts[0] else part.open(columns)
            if opened is not first:
                k, _ = _check_kind(opened.schema, opened.name, wants)
                if k != kind:
                    raise DataError(f"{opened.name}: a {k} stream mixed into {kind} input")
                instruments.update(S.schema_instruments(opened.schema))
            if columns is not None:  # the whole stream's columns are checked, read or not
                _conform(opened.name, _empty_batch(opened.schema), kind, full_target)
            for batch in opened.batches:
                if batch.num_rows == 0:
                    continue
                if columns is not None and batch.num_columns != len(target):  # inputs read whole (Arrow, stdin)
                    have = set(batch.schema.names)  # first the columns read, in order: an sq stream is then canonical as is
                    batch = batch.select([n for n in target.names if n in have])
                b = _conform(opened.name, batch, kind, target)
                if columns is not None and b.num_columns != len(target):
                    b = b.select(target.names)
                yield b

    lo, hi = window_ns(start, end)

    def read(lane_parts: list[_Part]) -> Iterator[pa.RecordBatch]:
        """A lane's batches, only the rows inside the window when there is one."""
        return _rows_in_window(lane(lane_parts), lo, hi) if windowed else lane(lane_parts)

    lanes = _lanes(parts)
    if kind == "market" and len(lanes) > 1:
        batches: Iterator[pa.RecordBatch] = merge_by_time([read(p) for p in lanes], target)
    else:
        batches = read(parts)
    if windowed:
        batches = _first_rows(batches, _empty_window(wants, start, end))
    if spans is not None:
        batches = _first_rows(rows_in_spans(batches, spans), _empty_spans(wants, spans))

    whole = len(parts) == 1 and first.whole_messages and not windowed and spans is None
    return StreamSource(kind, target, instruments, batches, [p.name for p in parts], from_sq, total_rows, whole)


def _rows_in_window(batches: Iterator[pa.RecordBatch], lo: int | None, hi: int | None) -> Iterator[pa.RecordBatch]:
    """The rows of `batches` whose `ts` lies in [lo, hi) (None: unbounded)."""
    for batch in batches:
        ts = int64_view(batch.column("ts"))
        inside = np.ones(len(ts), dtype=np.bool_)
        if lo is not None:
            inside &= ts >= lo
        if hi is not None:
            inside &= ts < hi
        if inside.all():
            yield batch
        elif inside.any():
            yield batch.filter(pa.array(inside))


def rows_in_spans(batches: Iterator[pa.RecordBatch], spans) -> Iterator[pa.RecordBatch]:
    """The rows of `batches` whose `ts` lies in one of the [lo, hi) ns spans."""
    for batch in batches:
        inside = in_spans(int64_view(batch.column("ts")), spans)
        if inside.all():
            yield batch
        elif inside.any():
            yield batch.filter(pa.array(inside))


def _empty_spans(wants: tuple[str, ...], spans) -> str:
    return f"no {' or '.join(wants)} events in {spans_text(spans)}"


def _first_rows(batches: Iterator[pa.RecordBatch], message: str) -> Iterator[pa.RecordBatch]:
    """Read `batches` up to their first row now, so that a window without rows is a
    DataError(message) when the input is opened, before a command writes or journals anything."""
    for batch in batches:
        if batch.num_rows:
            return itertools.chain([batch], batches)
    raise DataError(message)


def _empty_window(wants: tuple[str, ...], start: dt.date | None, end: dt.date | None) -> str:
    return f"no {' or '.join(wants)} events between {start or 'the beginning'} and {end or 'the end'} (--start/--end, UTC days)"


def _conform(name: str, batch: pa.RecordBatch, kind: str, target: pa.Schema) -> pa.RecordBatch:
    """`S.conform` with its errors as DataError naming the input."""
    try:
        return S.conform(batch, kind, target)
    except KeyError as e:
        raise DataError(f"{name}: {kind} stream lacks required column {e.args[0]!r}") from None
    except pa.ArrowException as e:  # invalid, type or unsupported cast
        raise DataError(f"{name}: column types do not fit the {kind} schema: {_first_line(e)}") from None


def _lanes(parts: list["_Part"]) -> list[list["_Part"]]:
    """Files of one hive `symbol=` partition and one series form a lane read in name (= time)
    order; a dataset of several symbols or series has several lanes, merged by time so that
    multi-symbol consumers (the engine) see one clock. A file's series is its name less a
    trailing run of `-<number>` (`part-<start>-<n>` of `sq record`, each `import-<format>` of
    `sq import`: a day's trades and book updates imported apart are merged, not read one after
    the other). Inputs without symbol partitions form one lane, read as given."""
    lanes: dict[str, list[_Part]] = {}
    for part in parts:
        key = ""
        if part.path is not None:
            for comp in Path(_bare(part.path)).parts:
                if comp.startswith("symbol="):
                    key = comp
            if key:
                key += "/" + _SERIES_TAIL.sub("", Path(_bare(part.path)).stem)
        lanes.setdefault(key, []).append(part)
    return list(lanes.values()) if "" not in lanes else [parts]


_SERIES_TAIL = re.compile(r"(-\d+)+$")


MERGE_CHUNK_ROWS = 262_144


def merge_by_time(lanes: list[Iterator[pa.RecordBatch]], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Merge market streams by time, keeping every venue message (same symbol and seq) whole.

    Rows are ordered by (time of their message's first row, lane, position in lane), a stable
    and deterministic order; only rows whose message time is below every open lane's last
    buffered message time are emitted, so nothing later can sort before them.
    """
    n = len(lanes)
    pend: list[pa.Table | None] = [None] * n
    mts: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n
    done = [False] * n
    string_schema = pa.schema([pa.field(f.name, pa.string()) if f.name == "symbol" else f for f in schema], metadata=schema.metadata)

    def pull(i: int) -> None:
        """Read lane i until it holds a chunk and its last message time moved, or it ends."""
        have = pend[i].num_rows if pend[i] is not None else 0
        last0 = int(mts[i][-1]) if len(mts[i]) else None
        got = []
        while not done[i]:
            try:
                b = next(lanes[i])
            except StopIteration:
                done[i] = True
                break
            got.append(pa.Table.from_batches([b]).cast(string_schema))
            have += b.num_rows
            if have >= MERGE_CHUNK_ROWS:
                break
        if got:
            parts = ([pend[i]] if pend[i] is not None else []) + got
            pend[i] = pa.concat_tables(parts)
            mts[i] = _message_times(pend[i])
            if last0 is not None and not done[i] and len(mts[i]) and int(mts[i][-1]) == last0:
                pull(i)  # a long run at one timestamp: read on until time moves

    for i in range(n):
        pull(i)
    while True:
        open_lanes = [i for i in range(n) if not done[i]]
        horizon = min((int(mts[i][-1]) for i in open_lanes if len(mts[i])), default=None)
        taken = []
        for i in range(n):
            t = pend[i]
            if t is None or t.num_rows == 0:
                continue
            k = t.num_rows if horizon is None else int(np.searchsorted(mts[i], horizon, side="left"))
            if k:
                taken.append((i, t.slice(0, k), mts[i][:k]))
                pend[i], mts[i] = t.slice(k), mts[i][k:]
        if taken:
            table = pa.concat_tables([t for _, t, _ in taken])
            keys = np.concatenate([m for _, _, m in taken])
            lane_ix = np.concatenate([np.full(len(m), i, dtype=np.int64) for i, _, m in taken])
            order = np.lexsort((np.arange(len(keys)), lane_ix, keys))
            out = table.take(pa.array(order)).combine_chunks()
            sym = out.column("symbol").dictionary_encode().combine_chunks().cast(S.SYMBOL)
            out = out.set_column(out.schema.get_field_index("symbol"), pa.field("symbol", S.SYMBOL), sym)
            for b in out.to_batches(max_chunksize=MERGE_CHUNK_ROWS):
                yield pa.RecordBatch.from_arrays(b.columns, schema=schema)
        if all(done) and all(p is None or p.num_rows == 0 for p in pend):
            return
        for i in open_lanes:
            if pend[i] is None or pend[i].num_rows == 0 or (horizon is not None and len(mts[i]) and int(mts[i][-1]) <= horizon):
                pull(i)


def _message_times(t: pa.Table) -> np.ndarray:
    """Per row, the timestamp of the first row of its message (consecutive rows, same seq).

    Made monotone within the lane (a running maximum), so a lane whose clock steps back still
    merges in its own order; the book reports such steps as warnings."""
    ts = int64_view(t.column("ts"))
    seq = t.column("seq").to_numpy()
    if len(ts) == 0:
        return ts
    start = np.ones(len(ts), dtype=bool)
    start[1:] = seq[1:] != seq[:-1]
    first_ix = np.maximum.accumulate(np.where(start, np.arange(len(ts)), 0))
    return np.maximum.accumulate(ts[first_ix])


def _target_schema(kind: str, schema: pa.Schema) -> pa.Schema:
    fields = S.canonical_fields(kind)
    if fields is None:  # book streams: columns vary with depth; keep as is, canonical types for ts/symbol
        fields = [pa.field(f.name, S.TS) if f.name == "ts" else pa.field(f.name, S.SYMBOL) if f.name == "symbol" else f for f in schema]
    md = dict(schema.metadata or {})
    md.pop(S.META_WHOLE_MESSAGES, None)  # a property of how one pipe cuts its batches: StreamSource.whole_messages
    md[S.META_STREAM] = kind.encode()
    md.setdefault(S.META_VERSION, S.SCHEMA_VERSION.encode())
    return pa.schema(fields, metadata=md)


def _check_kind(schema: pa.Schema, name: str, wants: tuple[str, ...]) -> tuple[str, bool]:
    kind = S.stream_kind(schema)
    from_sq = kind is not None
    if kind is None:
        kind = S.guess_kind(schema)
        if kind is None:
            raise DataError(f"{name}: not an sq stream and its columns match no stream kind (columns: {', '.join(schema.names[:8])})")
    if kind not in wants:
        raise DataError(f"{name}: got a {kind} stream, but this command reads {' or '.join(wants)} streams")
    return kind, from_sq


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


@dataclass
class _Opened:
    name: str
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    whole_messages: bool = False  # an Arrow stream whose writer says its batches end at message ends


@dataclass
class _Part:
    name: str
    path: str | None  # None = stdin
    env: Environment

    def open(self, columns: tuple[str, ...] | None = None) -> _Opened:
        if self.path is None:
            return _open_ipc_stream(_stdin_reader(self.env), "stdin", self.env)
        return _open_file(self.path, self.env, columns)


def _bare(path: str) -> str:
    """A path, or an object-store URI without its query (the options part of it)."""
    return path.partition("?")[0] if objstore.is_uri(path) else path


def _expand(env: Environment, item: str) -> list[_Part]:
    if item == "-":
        return [_Part("stdin", None, env)]
    if objstore.is_uri(item):  # s3://bucket/prefix (a dataset, a file, or a glob over its keys)
        return [_Part(objstore.display(u), u, env) for u in objstore.list_files(item, (".parquet", ".arrow", ".ipc"), (FUNDING_FILE,))]
    p = Path(item)
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix in (".parquet", ".arrow", ".ipc") and not f.name.startswith(".")
                       and f.name != FUNDING_FILE)
        return [_Part(f, f, env) for f in files]
    if any(ch in item for ch in "*?["):
        files = sorted(f for f in glob.glob(item, recursive=True) if os.path.isfile(f))
        if not files:
            raise NoInputError(f"no files match {item!r}")
        return [_Part(f, f, env) for f in files]
    if not p.exists():
        raise NoInputError(f"input file not found: {item}")
    return [_Part(item, item, env)]


def _file_footer(path: str | None) -> tuple[dict[str, S.Instrument], int | None]:
    """The `sq.instruments` and the row count of a file from its footer (cheap: no data is read);
    ({}, None) when there is none (stdin, a stream file) or it cannot be read yet."""
    if path is None or not _bare(path).endswith(".parquet"):
        return {}, _file_rows(path)
    try:
        md = pq.read_metadata(objstore.open_file(path) if objstore.is_uri(path) else path)
        return S.schema_instruments(md.schema.to_arrow_schema()), md.num_rows
    except (pa.ArrowInvalid, OSError, ValueError, KeyError):
        return {}, None  # a bad file is reported when its turn to be read comes


def _file_rows(path: str | None) -> int | None:
    """The rows of a Parquet or Arrow file from its metadata (no data decoded); None for stdin,
    an Arrow stream or an unreadable file (the progress of such an input has no total)."""
    if path is None:
        return None
    try:
        if objstore.is_uri(path):
            f = objstore.open_file(path)
            head = f.read(8)
            f.seek(0)
            if head[:4] == PARQUET_MAGIC:
                return pq.read_metadata(f).num_rows
            if head[:6] == ARROW_FILE_MAGIC:
                reader = ipc.open_file(f)
                return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
            return None
        with open(path, "rb") as f:
            head = f.read(8)
        if head[:4] == PARQUET_MAGIC:
            return pq.read_metadata(path).num_rows
        if head[:6] == ARROW_FILE_MAGIC:
            with pa.memory_map(path) as m:
                reader = ipc.open_file(m)
                return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    except (pa.ArrowInvalid, OSError, ValueError, NoInputError):
        return None
    return None


def _stdin_reader(env: Environment) -> IO[bytes]:
    return env.stdin


def _open_file(path: str, env: Environment, columns: tuple[str, ...] | None = None) -> _Opened:
    """Open a Parquet or Arrow file (a local path or an object-store URI: only the ranges read are
    fetched); a Parquet file decodes only `columns` (all when None)."""
    source = path
    if objstore.is_uri(path):
        source = objstore.open_file(path)
        try:
            head = source.read(8)
            source.seek(0)
        except OSError as e:
            raise objstore.fail(e, path) from None
        path = objstore.display(path)  # what messages name (no secrets)
    else:
        try:
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError as e:
            raise NoInputError(f"cannot read {path}: {e.strerror}") from None
    if head[:4] == PARQUET_MAGIC:
        try:
            pf = pq.ParquetFile(source)
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"{path}: corrupt Parquet file: {_first_line(e)}") from None
        schema = pf.schema_arrow  # a readable footer means the file was finished (written last)
        read = None if columns is None else [n for n in schema.names if n in columns]

        def gen() -> Iterator[pa.RecordBatch]:
            try:
                for b in pf.iter_batches(batch_size=PARQUET_READ_BATCH, columns=read):
                    yield b
            except (pa.ArrowInvalid, OSError) as e:
                raise DataError(f"{path}: corrupt Parquet data: {_first_line(e)}") from None

        return _Opened(path, schema, gen())
    if head[:6] == ARROW_FILE_MAGIC:
        try:
            reader = ipc.open_file(source)
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"{path}: corrupt or truncated Arrow file: {_first_line(e)}") from None
        schema = reader.schema

        def gen_file() -> Iterator[pa.RecordBatch]:
            try:
                for i in range(reader.num_record_batches):
                    yield reader.get_batch(i)
            except (pa.ArrowInvalid, OSError) as e:
                raise DataError(f"{path}: corrupt Arrow file: {_first_line(e)}") from None

        return _Opened(path, schema, gen_file())
    return _open_ipc_stream(open(source, "rb") if isinstance(source, str) else source, path, env)


def _describe_garbage(head: bytes) -> str:
    if not head:
        return "it is empty"
    try:
        text = head.decode("utf-8")
        if any(ord(c) < 32 and c not in "\t\r\n" for c in text):
            raise UnicodeDecodeError("utf-8", head, 0, 1, "control bytes")
    except UnicodeDecodeError:
        return f"it starts with bytes {head[:8].hex(' ')}"
    first = text.splitlines()[0][:40] if text.strip() else ""
    kind = "CSV text" if "," in first else "text"
    return f"it looks like {kind} ({first!r})"


def _open_ipc_stream(src: IO[bytes], name: str, env: Environment) -> _Opened:
    head = b""
    peek = getattr(src, "peek", None)
    if peek is not None:
        try:
            head = peek(8)[:8]
        except (OSError, ValueError):
            head = b""
    if peek is not None and (not head or (head[:4] != IPC_CONTINUATION and head[:4] not in (PARQUET_MAGIC,))):
        raise DataError(f"{name} is not an Arrow IPC stream: {_describe_garbage(head)}")
    if head[:4] == PARQUET_MAGIC:
        if name == "stdin":
            data = src.read()
            return _open_buffer_parquet(data, name)
    try:
        reader = ipc.open_stream(src)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{name} is not an Arrow IPC stream: {_first_line(e)}") from None
    schema = reader.schema
    is_sq = S.stream_kind(schema) is not None

    def gen() -> Iterator[pa.RecordBatch]:
        ended = False
        while True:
            try:
                batch, md = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError) as e:
                raise DataError(f"{name}: corrupt or truncated Arrow stream: {_first_line(e)}") from None
            if md is not None and md.get(S.META_END) == b"ok":
                ended = True
                continue
            if ended and batch.num_rows:
                raise DataError(f"{name}: data after the end-of-stream trailer")
            yield batch
        if is_sq and not ended:
            raise DataError(f"{name}: stream truncated (the writer stopped before its sq.end trailer)")
        if not is_sq:
            env.warn(f"{name}: stream not written by sq; its end could not be verified")

    return _Opened(name, schema, gen(), (schema.metadata or {}).get(S.META_WHOLE_MESSAGES) == b"1")


def _open_buffer_parquet(data: bytes, name: str) -> _Opened:
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{name}: corrupt Parquet data: {_first_line(e)}") from None
    return _Opened(name, pf.schema_arrow, iter(pf.iter_batches(batch_size=PARQUET_READ_BATCH)))


# ----------------------------------------------------------------------------------------------
# symbol codes shared by consumers


class SymbolRegistry:
    """Maps symbol strings to dense int32 ids across batches whose dictionaries differ."""

    def __init__(self, symbols: list[str] | None = None):
        self.symbols: list[str] = []
        self._ids: dict[str, int] = {}
        self._cache_dict: pa.Array | None = None
        self._cache_map: np.ndarray | None = None
        self._cache_identity = False  # the cached dictionary's ids are the registry's own
        for s in symbols or []:
            self.id(s)

    def find(self, symbol: str) -> int | None:
        """The id of a known symbol, None for one never seen (nothing is registered)."""
        return self._ids.get(symbol)

    def id(self, symbol: str) -> int:
        i = self._ids.get(symbol)
        if i is None:
            i = len(self.symbols)
            self._ids[symbol] = i
            self.symbols.append(symbol)
        return i

    def codes(self, column: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Global int32 ids for a dictionary (or string) column, without per-row Python work."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if not pa.types.is_dictionary(column.type):
            column = column.cast(pa.string()).dictionary_encode()
        dictionary = column.dictionary
        if self._cache_dict is None or not dictionary.equals(self._cache_dict):
            self._cache_map = np.array([self.id(s) for s in dictionary.to_pylist()], dtype=np.int32)
            self._cache_dict = dictionary
            self._cache_identity = bool(np.array_equal(self._cache_map, np.arange(len(self._cache_map))))
        indices = column.indices
        if self._cache_identity and indices.type == pa.int32() and not indices.null_count:
            ids = indices.to_numpy()  # the stream's ids are the registry's (one file, one writer): no remapping, no copy
            if not len(ids) or (int(ids.min()) >= 0 and int(ids.max()) < len(self._cache_map)):
                return ids
        idx = indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        return self._cache_map[idx] if len(idx) else np.zeros(0, dtype=np.int32)

    def dictionary(self) -> pa.Array:
        return S.symbol_dictionary(self.symbols)


MARKET_DTYPES = {"kind": np.uint8, "side": np.int8, "price": np.float64, "qty": np.float64, "seq": np.int64}


def market_arrays(batch: pa.RecordBatch, registry: SymbolRegistry, row0: int, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The columns a kernel reads from a conformed market batch, as contiguous NumPy arrays of the
    kernel's types: `ts` as int64 ns, `symbol` as the registry's int32 codes, the rest by
    MARKET_DTYPES. A null in any of them is a DataError naming the rows (`row0` = the batch's
    first row in the stream)."""
    for name in columns:
        if batch.column(name).null_count:
            raise DataError(f"market column {name!r} has null values (rows {row0}..{row0 + batch.num_rows - 1})")
    out = {}
    for name in columns:
        if name == "symbol":
            a = registry.codes(batch.column(name)).astype(np.int32, copy=False)
        elif name == "ts":
            a = int64_view(batch.column(name))
        else:
            a = batch.column(name).to_numpy(zero_copy_only=False).astype(MARKET_DTYPES[name], copy=False)
        out[name] = np.ascontiguousarray(a)
    return out
