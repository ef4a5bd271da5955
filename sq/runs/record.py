"""`sq record`'s engine: market batches → a hive-partitioned Parquet dataset, plus a pipe pass-through.

Layout (docs/streams.md): `DIR/venue=<venue>/symbol=<SYMBOL, url-encoded>/date=YYYY-MM-DD/part-<start-ns>-<n>.parquet`,
with the date of the event `ts` in UTC. polars (`pl.read_parquet(DIR)`, `pl.scan_parquet(DIR/**/*.parquet)`),
pyarrow datasets, DuckDB and Spark read it directly, and so does `sq.core.streams.open_input`.

Files and their life:
  * A file is written under a hidden temp name (`.part-….parquet.inprogress`) and *sealed* — footer
    written, fsync'ed, renamed to its final name — on rotation, on SIGINT/SIGTERM (`stop()`), or at
    the end. A sealed file is always a complete Parquet file; a killed recorder leaves at most
    hidden temp files, never a corrupt file under a final name.
  * Rotation is by data time: rows go to the file of the `--rotate` window (aligned to the epoch)
    of their message's first `ts`; a message (same symbol and seq) never straddles two files.
    Files of other symbols whose window has passed are sealed too, so a quiet symbol's data
    reaches disk as soon as the clock moves on.
  * Each file carries the market schema's metadata (`sq.stream`, `sq.schema_version`,
    `sq.instruments` of its symbol) and `sq.end = ok`, which `open_input` checks. The `symbol`
    column is stored as plain string (Parquet dictionary-encodes it anyway): the stream's
    dictionary type clashes with the hive `symbol=` partition column in pyarrow datasets.

Pass-through (README: Design): when given a sink, every batch is also handed to a writer thread
through a bounded queue and written as the Arrow market stream. When downstream closes the pipe
or falls so far behind that the queue overflows, the pass-through is closed with a warning
(without the end-of-stream trailer, so downstream knows it is short) — recording to disk goes on,
never silently thinned.
"""

from __future__ import annotations

import errno
import os
import queue
import select
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sq.core import objstore
from sq.core import schemas as S
from sq.core.exits import IOFailure, write_failure
from sq.core.datasets import partition_dir
from sq.core.paths import fsync_dir

NS_PER_DAY = 86_400_000_000_000
DEFAULT_ROTATE_NS = 3_600_000_000_000
ROW_GROUP_ROWS = 262_144
TEMP_SUFFIX = ".inprogress"


class _Source(Protocol):
    schema: pa.Schema
    instruments: Mapping[str, S.Instrument]

    def batches(self) -> Iterator[pa.RecordBatch]: ...

    def close(self) -> None: ...


@dataclass
class RecordSummary:
    """What a recording produced: counts per symbol, sealed files, bytes, pass-through outcome."""

    events: int = 0
    per_symbol: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    bytes_written: int = 0  # for progress: sealed files plus what the open ones hold so far
    elapsed_s: float = 0.0
    passthrough: str = "off"  # off | ok | closed: <reason>
    stopped_by: str | None = None  # the signal/reason given to stop(), None when the source ended
    out_dir: str = ""  # the dataset directory
    contracts: dict[str, str] = field(default_factory=dict)  # contract symbol → the continuous name it was recorded for

    def line(self, out_dir: str | None = None) -> str:
        out_dir = self.out_dir if out_dir is None else out_dir
        syms = ", ".join(f"{s}{f' [{self.contracts[s]}]' if s in self.contracts else ''} {n}" for s, n in self.per_symbol.items())
        pt = "" if self.passthrough in ("off", "ok") else f"; pass-through {self.passthrough}"
        return (
            f"recorded {self.events} events ({syms or 'no symbols'}) into {len(self.files)} "
            f"file{'s' if len(self.files) != 1 else ''}, {human_bytes(self.bytes)} under {out_dir} "
            f"in {self.elapsed_s:.1f}s{pt}"
        )


class _PartFile:
    """One open Parquet file of one partition and rotation window, written under a temp name."""

    def __init__(self, directory: Path, start_ns: int, window: int, schema: pa.Schema, n: int,
                 taken: Callable[[Path], bool] | None = None):
        directory.mkdir(parents=True, exist_ok=True)
        while True:
            name = f"part-{start_ns}-{n}.parquet"
            if (not (directory / name).exists() and not (directory / f".{name}{TEMP_SUFFIX}").exists()
                    and not (taken is not None and taken(directory / name))):
                break
            n += 1
        self.final = directory / name
        self.tmp = directory / f".{name}{TEMP_SUFFIX}"
        self.window = window
        self.schema = schema
        self.rows = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._sink = open(self.tmp, "wb")
        self._writer = pq.ParquetWriter(self._sink, schema, compression="zstd")

    def write(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending, schema=self.schema), row_group_size=ROW_GROUP_ROWS)
            self._pending = []
            self._pending_rows = 0

    def written(self) -> int:
        """Bytes written to the temp file so far (row groups flushed; the footer comes at seal)."""
        return self._sink.tell()

    def seal(self) -> int:
        """Write the footer, fsync, rename to the final name; return the file size."""
        self.flush()
        self._writer.close()
        self._sink.flush()
        os.fsync(self._sink.fileno())
        self._sink.close()
        os.replace(self.tmp, self.final)
        fsync_dir(self.final.parent)
        return self.final.stat().st_size

    def abort(self) -> None:
        try:
            self._sink.close()
        except Exception:
            pass
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


class Recorder:
    """Record a market source into a hive-partitioned Parquet dataset, optionally passing it through.

    `source` is a MarketSource (`schema`, `instruments`, `batches()`, `close()`); `passthrough` a
    binary sink for the pass-through stream (None: none) in `passthrough_format` (arrow, jsonl or
    table). `stop()` may be called from a signal
    handler: it closes the source and makes `run()` seal everything after the current batch.
    """

    def __init__(
        self,
        source: _Source,
        out_dir: str | os.PathLike,
        *,
        rotate_ns: int = DEFAULT_ROTATE_NS,
        passthrough: IO[bytes] | None = None,
        passthrough_format: str = "arrow",
        queue_size: int = 4096,
        warn: Callable[[str], None] | None = None,
        progress: Callable[[RecordSummary], None] | None = None,
    ):
        if rotate_ns <= 0:
            raise ValueError("rotate_ns must be positive")
        self.source = source
        self.remote: str | None = None  # an object-store dataset (s3://bucket/prefix): files staged here, uploaded when sealed
        if objstore.is_uri(out_dir):
            import tempfile

            objstore.check_writable(str(out_dir))
            self.remote = str(out_dir)
            out_dir = tempfile.mkdtemp(prefix="sq-record-")
        self.out_dir = Path(out_dir)
        self.rotate_ns = int(rotate_ns)
        self.warn = warn or (lambda msg: None)
        self.progress = progress
        self.summary = RecordSummary()
        self._files: dict[tuple[str, str, int], _PartFile] = {}
        self._seq_n = 0
        self._stop_reason: str | None = None
        self._schemas: dict[str, pa.Schema] = {}
        self._pt = _PassThrough(passthrough, source.schema, queue_size, self.warn, passthrough_format) if passthrough is not None else None

    # -- control
    def stop(self, reason: str = "stopped") -> None:
        """Ask the recording to end cleanly (safe from a signal handler or another thread)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        try:
            self.source.close()
        except Exception:
            pass

    # -- main loop
    def run(self) -> RecordSummary:
        """Record until the source ends or `stop()` is called; seal every file; return the summary."""
        t0 = time.monotonic()
        last_progress = 0.0
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self._pt is not None:
            self._pt.start()
        ok = False
        full: OSError | None = None  # the disk filled up (sq.core.exits.write_failure)
        try:
            try:
                for batch in self.source.batches():
                    if batch.num_rows:
                        if self._pt is not None:
                            self._pt.put(batch)
                        self._record(batch)
                    if self.progress is not None and time.monotonic() - last_progress >= 0.25:
                        last_progress = time.monotonic()
                        self.summary.elapsed_s = last_progress - t0
                        self.summary.bytes_written = self.summary.bytes + sum(f.written() for f in self._files.values())
                        self.progress(self.summary)
                    if self._stop_reason is not None:
                        break
                ok = True
            except OSError as e:
                if not write_failure(e):
                    raise
                full = e
                self._stop_reason = self._stop_reason or "disk full"
        finally:
            try:
                try:
                    self._seal_all()  # a file that cannot be sealed is discarded (its temp file removed)
                except OSError as e:
                    if not write_failure(e):
                        raise
                    full = full or e
            finally:
                if self._pt is not None:
                    self.summary.passthrough = self._pt.finish(ok)
                try:
                    self.source.close()
                except Exception:
                    pass
        if self.remote is not None:
            self._clear_staging()
        self.summary.stopped_by = self._stop_reason
        self.summary.elapsed_s = time.monotonic() - t0
        if full is not None:
            s = self.summary
            raise IOFailure(f"{write_failure(full)} under {self.out_dir}: recording stopped; kept {len(s.files)} sealed "
                            f"file{'s' if len(s.files) != 1 else ''} ({human_bytes(s.bytes)}); the data of files still open "
                            "when the disk filled was discarded") from full
        return self.summary

    # -- disk
    def _file_schema(self, symbol: str) -> pa.Schema:
        sch = self._schemas.get(symbol)
        if sch is None:
            base = self.source.schema
            md = dict(base.metadata or {})
            md[S.META_STREAM] = b"market"
            md.setdefault(S.META_VERSION, S.SCHEMA_VERSION.encode())
            inst = self.source.instruments.get(symbol)
            if inst is not None:
                md[S.META_INSTRUMENTS] = S.instruments_to_json({symbol: inst}).encode()
            md[S.META_END] = b"ok"
            fields = [pa.field("symbol", pa.string(), nullable=False) if f.name == "symbol" else f for f in base]
            sch = pa.schema(fields, metadata=md)
            self._schemas[symbol] = sch
        return sch

    def _venue(self, symbol: str) -> str:
        inst = self.source.instruments.get(symbol)
        if inst is not None and inst.venue:
            return inst.venue
        from sq.venues.registry import PREFIX_VENUE

        prefix = symbol.split(":", 1)[0].upper()
        return PREFIX_VENUE.get(prefix, prefix.lower() or "unknown")

    def _record(self, batch: pa.RecordBatch) -> None:
        sym_col = batch.column("symbol")
        if pa.types.is_dictionary(sym_col.type):
            codes = sym_col.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            names = sym_col.dictionary.to_pylist()
        else:
            enc = sym_col.cast(pa.string()).dictionary_encode()
            codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            names = enc.dictionary.to_pylist()
        ts = S.int64_view(batch.column("ts"))
        seq = batch.column("seq").to_numpy(zero_copy_only=False)
        n = batch.num_rows
        # the first row of each message decides its window and date (a message never splits)
        idx = np.arange(n)
        starts = np.ones(n, dtype=bool)
        starts[1:] = (codes[1:] != codes[:-1]) | (seq[1:] != seq[:-1])
        first = np.maximum.accumulate(np.where(starts, idx, 0))
        mts = ts[first]
        window = mts // self.rotate_ns
        day = (mts // NS_PER_DAY) * NS_PER_DAY
        # group rows by (symbol, day), keeping order; a window change inside a group rotates
        key = codes * (1 << 40) + (day // NS_PER_DAY)
        str_symbol = sym_col.cast(pa.string())
        plain = pa.RecordBatch.from_arrays(
            [str_symbol if name == "symbol" else batch.column(name) for name in batch.schema.names],
            names=batch.schema.names,
        )
        for k in _unique_in_order(key):
            rows = np.flatnonzero(key == k)
            code = int(codes[rows[0]])
            symbol = names[code]
            self.summary.per_symbol[symbol] = self.summary.per_symbol.get(symbol, 0) + len(rows)
            w = window[rows]
            # split where the window moves forward past the open file's window
            bounds = np.flatnonzero(np.diff(w) > 0) + 1 if len(rows) > 1 else np.array([], dtype=np.int64)
            for seg in np.split(rows, bounds):
                self._write_segment(plain, seg, symbol, int(day[seg[0]]), int(window[seg[0]]), int(ts[seg[0]]))
        self.summary.events += n
        # seal files of every partition whose window the data clock has left behind
        now_window = int(window.max())
        for pkey, part in list(self._files.items()):
            if part.window < now_window:
                self._seal(pkey)

    def _write_segment(self, plain: pa.RecordBatch, rows: np.ndarray, symbol: str, day_ns: int, window: int, start_ns: int) -> None:
        venue = self._venue(symbol)
        pkey = (venue, symbol, day_ns)
        part = self._files.get(pkey)
        if part is not None and window > part.window:
            self._seal(pkey)
            part = None
        if part is None:
            part = _PartFile(partition_dir(self.out_dir, venue, symbol, day_ns), start_ns, window, self._file_schema(symbol), self._seq_n,
                             taken=self._remote_taken if self.remote else None)
            self._seq_n += 1
            self._files[pkey] = part
        sub = plain.take(pa.array(rows)) if len(rows) != plain.num_rows else plain
        part.write(pa.RecordBatch.from_arrays(sub.columns, schema=part.schema))

    def _seal(self, pkey: tuple[str, str, int]) -> None:
        part = self._files.pop(pkey)
        try:
            size = part.seal()
        except BaseException:
            part.abort()
            raise
        if self.remote is not None:
            uri = self._remote_uri(part.final)
            try:
                objstore.upload(str(part.final), uri)
            except IOFailure as e:
                raise IOFailure(f"{e.message}; the sealed file is kept at {part.final}") from None
            part.final.unlink()
            self.summary.files.append(objstore.display(uri))
        else:
            self.summary.files.append(str(part.final))
        self.summary.bytes += size

    def _remote_uri(self, local: Path) -> str:
        return objstore.join(self.remote, local.relative_to(self.out_dir).as_posix())

    def _remote_taken(self, local: Path) -> bool:
        """Whether the object a staged file would become exists already (an earlier recording)."""
        import pyarrow.fs as pafs

        fs, path = objstore.filesystem(self._remote_uri(local))
        try:
            return fs.get_file_info(path).type != pafs.FileType.NotFound
        except OSError as e:
            raise objstore.fail(e, self.remote, writing=True) from None

    def _clear_staging(self) -> None:
        """Remove the staging directory of an object-store recording once everything is uploaded
        (a file whose upload failed stays, and the error said where)."""
        for d in sorted((p for p in self.out_dir.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass
        try:
            self.out_dir.rmdir()
        except OSError:
            pass

    def _seal_all(self) -> None:
        err: BaseException | None = None
        for pkey in list(self._files):
            try:
                self._seal(pkey)
            except BaseException as e:  # seal the others anyway, report the first failure
                err = err or e
        if err is not None:
            raise err


def _unique_in_order(a: np.ndarray) -> list[int]:
    _, first = np.unique(a, return_index=True)
    return [int(a[i]) for i in sorted(first)]


def human_bytes(n: int) -> str:
    x = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if x < 1024 or unit == "GB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{n} B"  # pragma: no cover


# ----------------------------------------------------------------------------------------------
# pass-through


class _Abandoned(Exception):
    """The pass-through was given up (overflow or shutdown) while a write was waiting."""


class PipeSink:
    """A binary sink on a pipe whose writes can be abandoned, so a stuck downstream never blocks us.

    Writes go to a dup of the fd in chunks of at most PIPE_BUF bytes, each only after `poll` says
    the pipe has room (so the write cannot block), waiting in short slices and giving up once
    `abandon()` has been called. The fd stays in blocking mode: O_NONBLOCK would be shared with
    every other process holding the pipe. `close()` closes the dup and calls `on_close` (the
    command uses it to point stdout at /dev/null so downstream sees end-of-file at once).
    """

    def __init__(self, fd: int, on_close: Callable[[], None] | None = None):
        self.fd = os.dup(fd)
        self._abandon = threading.Event()
        self._on_close = on_close
        self._chunk = getattr(select, "PIPE_BUF", 512)
        self.closed = False

    def abandon(self) -> None:
        self._abandon.set()

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        poller = select.poll()
        poller.register(self.fd, select.POLLOUT)
        while view:
            if self._abandon.is_set():
                raise _Abandoned()
            events = poller.poll(100)
            if not events:
                continue
            if events[0][1] & (select.POLLERR | select.POLLHUP):
                raise BrokenPipeError(errno.EPIPE, "downstream closed the pipe")
            n = os.write(self.fd, view[: self._chunk])
            view = view[n:]
        return total

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                os.close(self.fd)
            except OSError:
                pass
            if self._on_close is not None:
                self._on_close()

    def writable(self) -> bool:
        return True


_END = object()


class _PassThrough:
    """The writer thread: batches from a bounded queue → a StreamWriter (Arrow with its sq trailer, jsonl, table)."""

    def __init__(self, sink: IO[bytes], schema: pa.Schema, size: int, warn: Callable[[str], None], fmt: str = "arrow"):
        self.sink = sink
        self.fmt = fmt
        self.schema = schema
        self.q: queue.Queue = queue.Queue(maxsize=max(1, size))
        self.size = size
        self.warn = warn
        self.closed_reason: str | None = None
        self._thread = threading.Thread(target=self._run, name="sq-record-passthrough", daemon=True)
        self._written_ok = False

    def start(self) -> None:
        self._thread.start()

    def put(self, batch: pa.RecordBatch) -> None:
        if self.closed_reason is not None:
            return
        try:
            self.q.put_nowait(batch)
        except queue.Full:
            self._close(f"downstream fell behind ({self.size} batches queued)")

    def _close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self.warn(f"pass-through closed: {reason}; recording to disk continues")
            if hasattr(self.sink, "abandon"):
                self.sink.abandon()
            _drain(self.q)
            try:
                self.q.put_nowait(_END)
            except queue.Full:  # pragma: no cover - just drained
                pass

    def _run(self) -> None:
        from sq.core.environment import Environment
        from sq.core.streams import StreamWriter

        writer = None
        try:
            env = Environment(stdout=self.sink, stdout_isatty=False, stderr_isatty=False, quiet=True)
            writer = StreamWriter(env, self.schema, fmt=self.fmt)
            while True:
                item = self.q.get()
                if item is _END:
                    break
                if self.closed_reason is not None:
                    continue
                writer.write(item)
            if self.closed_reason is None:
                writer.close(ok=True)  # the sq.end trailer: downstream knows the stream is whole
                self._written_ok = True
        except BaseException as e:  # EPIPE, abandoned, or anything else: recording goes on
            if self.closed_reason is None:
                self._close("downstream closed the pipe" if _is_pipe_gone(e) else f"write failed: {e}")
        finally:
            if hasattr(self.sink, "abandon") and hasattr(self.sink, "close"):
                self.sink.close()

    def finish(self, ok: bool, timeout: float = 30.0) -> str:
        """End the stream (trailer only when `ok` and nothing failed); return the outcome."""
        if not ok and self.closed_reason is None:
            self.closed_reason = "recording failed"
            if hasattr(self.sink, "abandon"):
                self.sink.abandon()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.q.put(_END, timeout=0.1)
                break
            except queue.Full:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._close("downstream did not drain the stream in time")
            self._thread.join(1.0)
        return "ok" if self._written_ok else f"closed: {self.closed_reason}"


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def _is_pipe_gone(e: BaseException) -> bool:
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, (BrokenPipeError, ConnectionResetError)) or (isinstance(seen, OSError) and seen.errno in (errno.EPIPE, errno.ECONNRESET)):
            return True
        seen = seen.__cause__ or seen.__context__
    return "Broken pipe" in str(e)


# ----------------------------------------------------------------------------------------------
# the `sq record` command body


def run_record(
    env: Any,
    symbols: list[str],
    *,
    out: str | None = None,
    rotate: str = "1h",
    for_: str | None = None,
    limit: int | None = None,
    seed: int = 1,
    fmt: str = "auto",
    pass_through: bool | None = None,
    queue_size: int = 4096,
    mode: str = "full",
    raw: str | bool | None = None,
    replay: str | None = None,
    expiry: str | None = None,
    progress: Callable[[RecordSummary], None] | None = None,
    monitor: Any = None,
) -> RecordSummary:
    """Open the venue's market source and record it until it ends or a signal stops it (cleanly:
    every file sealed); return the summary. Continuous futures names (`NFO:NIFTY-FUT`) record the
    contract they stand for (`expiry`: near, next, far; sq.runs.contracts). `progress(summary)` is
    called a few times a second. `monitor` (sq.runs.monitor.MonitorOptions, None: the config's)
    asks for metrics (events by symbol, files sealed, bytes) and alerts (an unexpected exit, the
    end-of-run summary)."""
    from sq.core import paths
    from sq.core.config import load_config
    from sq.core.durations import parse_duration_ns
    from sq.core.exits import UsageError
    from sq.runs import contracts
    from sq.venues import registry

    from_stdin = list(symbols) == ["-"] or (not symbols and not env.stdin_isatty)
    parsed = [] if from_stdin else registry.parse_symbols(symbols)
    if not parsed and not from_stdin:
        raise UsageError("give at least one symbol to record (e.g. sq record SIM:DEMO --out data), or - to record a market stream from stdin")
    rotate_ns = parse_duration_ns(rotate, option="--rotate")
    if rotate_ns <= 0:
        raise UsageError("--rotate must be longer than zero")
    duration_ns = parse_duration_ns(for_, option="--for") if for_ else None
    fmt = (fmt or "auto").lower()
    if fmt not in ("auto", "arrow", "jsonl", "table", "none"):
        raise UsageError(f"--format must be auto, arrow, jsonl, table or none for sq record (it always writes Parquet to --out); got {fmt!r}")
    if fmt == "arrow" and env.stdout_isatty:
        raise UsageError("refusing to write binary arrow data to a terminal; pipe it, or drop --format")
    if pass_through is None:  # default: an explicit --format, or a reader downstream — never a cron log
        pass_through = fmt != "auto" or (env.stdout_ispipe and not env.stdout_isatty)
    if pass_through and env.stdout_isatty and fmt in ("auto", "arrow"):
        raise UsageError("refusing to write binary arrow data to a terminal; pipe it, or use --format jsonl|table")
    pt_format = None if fmt == "none" or not pass_through else ("arrow" if fmt == "auto" else fmt)

    venue = "stdin" if from_stdin else registry.one_venue(parsed, "run one sq record per venue")
    config = load_config(env)
    if from_stdin and expiry is not None:
        raise UsageError("--expiry picks the contract of a continuous futures name; a stream from stdin names its symbols itself")
    resolved = contracts.resolve(env, config, parsed, expiry=expiry, replay_path=replay)
    out_dir = out or str(paths.data_dir() / "recordings")
    clock = "sim" if (limit and not duration_ns) else "real"
    raw_path = None
    if isinstance(raw, str) and raw:  # --raw FILE
        Path(raw).parent.mkdir(parents=True, exist_ok=True)
        raw_path = raw
    elif raw and objstore.is_uri(out_dir):
        raise UsageError("--raw with an object-store --out: give the capture a local file (--raw FILE)")
    elif raw:  # a capture of its own under the dataset's raw/
        raw_dir = Path(out_dir) / "raw"
        raw_dir.mkdir(parents=True, exist_ok=True)
        raw_path = str(raw_dir / f"{venue}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.jsonl")
    options = registry.SourceOptions(config=config, env=env, seed=seed, limit=limit, duration_ns=duration_ns, clock=clock,
                                     mode=mode, raw_path=raw_path, replay_path=replay, contracts=resolved.contracts)
    source = StdinMarketSource(env) if from_stdin else registry.open_market_source(resolved.symbols, options)

    sink = None
    if pt_format is not None:
        sink = env.stdout
        fileno = getattr(env.stdout, "fileno", None)
        try:
            fd = fileno() if fileno is not None else None
        except (OSError, ValueError):
            fd = None
        if fd is not None and _is_pipe(fd):
            sink = PipeSink(fd, on_close=lambda: _point_at_devnull(fd))

    from sq.runs.heartbeat import Heartbeat
    from sq.runs.monitor import open_monitor

    mon = open_monitor(env, config, monitor, mode="record", run=f"record-{os.getpid()}", venue=venue)
    beat = Heartbeat("record")
    seen = [0]

    def report(s: RecordSummary) -> None:
        """The view's progress and the heartbeat `sq status` reads (a few times a second)."""
        if s.events != seen[0]:
            seen[0] = s.events
            beat.market(0)
        beat.beat(lambda: {"events": s.events, "per_symbol": dict(s.per_symbol), "files": len(s.files), "bytes": s.bytes})
        mon.record_progress(s)
        if progress is not None:
            progress(s)

    recorder = Recorder(
        source,
        out_dir,
        rotate_ns=rotate_ns,
        passthrough=sink,
        passthrough_format=pt_format or "arrow",
        queue_size=queue_size,
        warn=env.warn,
        progress=report,
    )

    from sq.runs.lifecycle import StopOnSignals, registered

    symbols_recorded = [str(s) for s in resolved.symbols] if not from_stdin else ["-"]
    try:
        with StopOnSignals(recorder.stop), registered("", venue, symbols_recorded, mode="record", journal=str(out_dir)):
            summary = recorder.run()
    except BaseException as e:
        mon.close(error=None if isinstance(e, (KeyboardInterrupt, SystemExit)) else e)
        raise
    mon.record_progress(summary, final=True)
    mon.close({"run_id": f"record {venue}", "stopped_by": summary.stopped_by or "end",
               "events": summary.events, "files": summary.files, "bytes": summary.bytes})
    summary.out_dir = out_dir
    summary.contracts = {s: c.continuous for s, c in resolved.contracts.items()}
    return summary


def _point_at_devnull(fd: int) -> None:
    """After the pass-through ends, let downstream see end-of-file: stdout becomes /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:
        pass


class StdinMarketSource:
    """A market stream read from stdin (`sq subscribe … | sq record - --out DIR`), shaped like a venue source."""

    def __init__(self, env: Any):
        from sq.core.streams import open_input

        self._src = open_input(env, ["-"], "market")
        self.schema = self._src.schema
        self.instruments = self._src.instruments
        self._stop = threading.Event()

    def batches(self):
        for batch in self._src.batches():
            yield batch
            if self._stop.is_set():
                return

    def close(self) -> None:
        self._stop.set()


def _is_pipe(fd: int) -> bool:
    import stat as stat_mod

    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat_mod.S_ISFIFO(mode) or stat_mod.S_ISSOCK(mode)
