"""The run journal (docs/streams.md): a write-ahead, hash-chained, append-only log per run.

A journal is a directory:

    DIR/journal.log       JSON Lines, one record a line, appended and fsync'd step by step
    DIR/orders.parquet    ┐ compacted from the log when the run ends (`seal`), in the canonical
    DIR/fills.parquet     │ orders / fills / pnl schemas of docs/streams.md; each written under a
    DIR/pnl.parquet       ┘ hidden temp name and renamed, so a file under its name is complete

Every record is one canonical JSON object (sorted keys, no spaces) with four keys:

    {"d": {...payload...}, "h": "<sha256 hex>", "k": "<kind>", "n": <record number from 1>}

where `h = sha256(h_prev + canonical({"d","k","n"}))` and `h_prev` of record 1 is 64 zeros. So
altering any byte of any record, removing or reordering records, or cutting the last record short
is detected when the journal is loaded: `load` raises `DataError` (exit 65) naming the file, the
line and what is wrong. (A crash can only lose whole records at the end — the journal of a run
that died is a prefix of what it would have been — and that is exactly what `--resume` expects.
Removing whole trailing records of an unsealed journal is indistinguishable from such a crash.)

Kinds: `start` (strategy, symbols, params, config summary — never secrets), `order` (one row of
the orders stream), `fill`, `pnl` (a mark), `reject` (an orders row with event `rejected`: a risk
or venue rejection and its reason), `halt`
(the strategy stopped: loss limit, signal, kill), `checkpoint` (engine counters and state needed
to resume), `resume` (a later process took the run over), `end` (the run was sealed), `audit`
(`sq reconcile --fix` or a resumed live run adopted the venue's truth: what changed and why),
`funding` (a perpetual's funding payment: ts, symbol, position, mark, rate, amount paid — negative
when received — and, in a live run, the venue's own figure; docs/funding.md).

Write-ahead and cheap: the records an engine step produced are written with one write and one
`fdatasync` (`write_step`) before the process acts on them (shows them, reports them, takes the
next market batch, sends an order). This module needs only the standard library until `compact`
(pyarrow).

A journal opened with `preallocate=BYTES` (`sq live`: a step sits between a tick and its order)
keeps that much room ahead of its records, written as zero bytes and synced once: a step then
overwrites zeros in place, the file's size and block map do not change, and its `fdatasync`
flushes the data alone — no file-system journal commit, which on a busy disk is most of a sync's
cost. The room is grown between steps (`reserve`) or, when a step does not fit, by that step;
growing is best effort (a disk too full for it only means plain appends). `close` and `seal` cut
the file back to its records; a process that dies leaves its journal followed by zero bytes,
which `load` reads as the end of the log (a record never holds a zero byte: JSON escapes it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from sq.core.exits import DataError, NoInputError, UsageError
from sq.core.paths import datasync as _datasync, fsync_dir

LOG_NAME = "journal.log"
GENESIS = "0" * 64
KINDS = ("start", "order", "fill", "pnl", "reject", "halt", "checkpoint", "resume", "end", "audit", "funding")
_KIND_TEXT = {k: f'"{k}"' for k in KINDS}  # each kind's canonical JSON (plain ASCII names)
COMPACTED = ("orders", "fills", "pnl")  # parquet files written by `compact`
_KINDS_OF_TABLE = {"orders": ("order", "reject"), "fills": ("fill",), "pnl": ("pnl",)}  # a reject is an orders row


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
# The same serialisation through one C encoder built once: `JSONEncoder.encode` builds a new one
# (and runs two Python frames) on every call, a third of a record's encoding cost. No circular
# check (`markers` None): a payload is plain data built here, never a cycle.
_C_ENCODE = (None if json.encoder.c_make_encoder is None else  # a Python without the _json accelerator
             json.encoder.c_make_encoder(None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, True))


def _dumps(obj: Any) -> str:
    return _ENCODER.encode(obj) if _C_ENCODE is None else "".join(_C_ENCODE(obj, 0))

_sha256 = hashlib.sha256


def canonical(obj: Any) -> str:
    """The one serialisation that is hashed and written: sorted keys, no whitespace, UTF-8 as is."""
    return _dumps(obj)


def chain_hash(prev: str, body: str) -> str:
    """sha256(prev_hash + canonical body) as hex."""
    return hashlib.sha256((prev + body).encode("utf-8")).hexdigest()


def encode_record(n: int, kind: str, data: Mapping[str, Any], prev: str) -> tuple[str, str]:
    """One record as its log line (with newline) and its hash.

    The payload is serialised once: the canonical forms of {"d","k","n"} and of {"d","h","k","n"}
    are that text spliced between fixed keys ("h" sorts after "d" and "k", before "n"), exactly
    what `canonical` gives for the whole objects (the record kinds are plain ASCII names)."""
    d = _dumps(data)
    k = _KIND_TEXT.get(kind) or _dumps(kind)
    n_text = str(n) if type(n) is int else _dumps(n)
    h = _sha256(f'{prev}{{"d":{d},"k":{k},"n":{n_text}}}'.encode("utf-8")).hexdigest()
    return f'{{"d":{d},"h":"{h}","k":{k},"n":{n_text}}}\n', h


@dataclass(frozen=True)
class Record:
    """One verified journal record: number (from 1), kind, payload and chain hash."""

    n: int
    kind: str
    data: dict[str, Any]
    hash: str


@dataclass
class Loaded:
    """A verified journal: its records in order, the chain head, and whether the run was sealed."""

    path: Path
    records: list[Record]
    last_hash: str
    sealed: bool
    size: int = 0  # bytes of the records (the file may hold zero bytes after them: a preallocated journal)

    @property
    def start(self) -> dict[str, Any]:
        """The payload of the run's first `start` record."""
        return self.records[0].data

    def of(self, *kinds: str) -> Iterator[Record]:
        """Records of the given kinds, in order."""
        return (r for r in self.records if r.kind in kinds)

    def last(self, kind: str) -> Record | None:
        """The last record of a kind, if any."""
        for r in reversed(self.records):
            if r.kind == kind:
                return r
        return None


def log_path(directory: str | os.PathLike) -> Path:
    return Path(directory) / LOG_NAME


def read_start(directory: str | os.PathLike) -> dict | None:
    """The run's start record alone (its first line), unverified: a cheap look at many runs
    (which venue, symbols, when). None when there is no readable start record."""
    try:
        with open(log_path(directory), "rb") as fh:
            rec = json.loads(fh.readline())
    except (OSError, ValueError):
        return None
    return rec.get("d") if isinstance(rec, dict) and rec.get("k") == "start" and isinstance(rec.get("d"), dict) else None


def load(directory: str | os.PathLike) -> Loaded:
    """Read and verify a journal; `DataError` (exit 65) names the first bad record.

    Checks, record by record: a complete line (newline-terminated), valid JSON in canonical form
    (so even a changed space or digit format is caught), the expected record number, a known
    kind, and the hash chain. The first record must be `start`. The log ends at its first zero
    byte (the unused room of a preallocated journal); anything but zero bytes after it is an error.
    """
    path = log_path(directory)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NoInputError(f"no journal in {directory}: {path} not found") from None
    except OSError as e:
        raise NoInputError(f"cannot read journal {path}: {e.strerror}") from None
    records: list[Record] = []
    prev = GENESIS
    sealed = False
    size = raw.find(b"\0")
    if size < 0:
        size = len(raw)
    elif raw.count(0, size) != len(raw) - size:
        whole = raw.count(b"\n", 0, size)
        raise DataError(f"journal {path} line {whole + 1} (record {whole + 1}): bytes after zero padding at byte {size} — "
                        "the journal was corrupted or a write was torn")
    else:
        raw = raw[:size]
    lines = raw.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if not lines and not tail:
        raise DataError(f"journal {path} is empty (no start record)")

    def bad(lineno: int, what: str) -> DataError:
        return DataError(f"journal {path} line {lineno} (record {lineno}): {what}")

    for i, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8")
            obj = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            raise bad(i, "not valid JSON — the record was altered or corrupted") from None
        if not isinstance(obj, dict) or set(obj) != {"d", "h", "k", "n"} or not isinstance(obj.get("d"), dict):
            raise bad(i, "not a journal record (expected keys d, h, k, n)")
        n, kind, h = obj["n"], obj["k"], obj["h"]
        if n != i or isinstance(n, bool):
            raise bad(i, f"record number {n!r} where {i} was expected — records were removed, added or reordered")
        if kind not in KINDS:
            raise bad(i, f"unknown record kind {kind!r}")
        if i == 1 and kind != "start":
            raise bad(i, f"the first record must be 'start', not {kind!r}")
        expect = chain_hash(prev, canonical({"d": obj["d"], "k": kind, "n": n}))
        if h != expect:
            raise bad(i, "hash mismatch — the record was altered (the records before it verify)")
        if canonical(obj) != text:
            raise bad(i, "not in canonical form — the record was altered")
        records.append(Record(n, kind, obj["d"], h))
        prev = h
        if kind == "end":
            sealed = True
        elif kind in ("resume", "start"):
            sealed = False
    if tail:
        raise bad(len(lines) + 1, f"truncated record ({len(tail)} bytes without a line end) — the journal was cut short")
    return Loaded(path, records, prev, sealed, size)


class Journal:
    """An open journal being appended to by one process (which holds an exclusive lock on it).

    Create a new run with `Journal.create(dir, start_payload)`, take a crashed run over with
    `Journal.reopen(dir)` (or append to any with `Journal.open_existing`); append the records of
    an engine step with `write_step`; end with `seal`, which writes the `end` record and compacts
    the log to Parquet. With `preallocate=BYTES` the log keeps that much zeroed room ahead of its
    records (see the module's docstring); `reserve()` tops it up between steps.
    """

    def __init__(self, directory: Path, fd: int, n: int, last_hash: str, *, end: int = 0, preallocate: int = 0):
        self.dir = directory
        self._fd = fd
        self.n = n
        self.last_hash = last_hash
        self.bytes_written = 0
        self.fsyncs = 0
        self.on_write: Any = None  # called with each write + fsync's seconds (a run's metrics), None: not timed
        self.last_sync_ns = 0  # the last step's write + fdatasync, ns (what a tick→order figure owes the disk)
        self.sealed = False
        self._end = end  # bytes of whole records: where the next step goes
        self._in_place = preallocate > 0  # steps overwrite zeroed room (pwrite; the fd has no O_APPEND)
        self._chunk = max(0, int(preallocate))  # room to add when growing; 0 once growing failed
        self._room = os.fstat(fd).st_size if self._in_place else end  # the file's size: records + zeroed room

    # -- opening
    @staticmethod
    def _flags(preallocate: int) -> int:
        return os.O_WRONLY if preallocate > 0 else os.O_WRONLY | os.O_APPEND

    @classmethod
    def create(cls, directory: str | os.PathLike, start: Mapping[str, Any], *, preallocate: int = 0) -> "Journal":
        """Start a journal in a new (or empty) directory with its `start` record."""
        d = Path(directory)
        if log_path(d).exists():
            raise UsageError(f"--journal {d}: a journal already exists there; continue it with --resume {d} or choose another directory")
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(log_path(d), cls._flags(preallocate) | os.O_CREAT | os.O_EXCL, 0o600)
        j = cls(d, fd, 0, GENESIS, preallocate=preallocate)
        j._lock()
        j.reserve()
        fsync_dir(d)
        j.write_step([("start", dict(start))])
        return j

    @classmethod
    def open_existing(cls, directory: str | os.PathLike, check: Any = None, *, preallocate: int = 0, what: str = "--resume") -> tuple["Journal", "Loaded"]:
        """Lock and verify an existing journal, ready to append to (nothing appended yet).

        `check(loaded)` runs under the lock before anything is changed (an exception leaves the
        journal untouched). Zero bytes a crashed preallocating writer left after the records are
        kept as room when preallocating, else cut off. Raises NoInputError when there is no
        journal, DataError when it does not verify, TempFailure when another process has it open.
        """
        d = Path(directory)
        try:
            fd = os.open(log_path(d), cls._flags(preallocate))
        except FileNotFoundError:
            raise NoInputError(f"{what} {d}: no journal there ({LOG_NAME} not found)") from None
        try:
            j = cls(d, fd, 0, GENESIS, preallocate=preallocate)
            j._lock()
            loaded = load(d)
            if check is not None:
                check(loaded)
            if not j._in_place and os.fstat(fd).st_size > loaded.size:
                os.ftruncate(fd, loaded.size)
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        j.n, j.last_hash, j._end = len(loaded.records), loaded.last_hash, loaded.size
        if not j._in_place:
            j._room = loaded.size
        j.reserve()
        return j, loaded

    @classmethod
    def reopen(cls, directory: str | os.PathLike, resume: Mapping[str, Any], check: Any = None, *,
               preallocate: int = 0) -> tuple["Journal", Loaded]:
        """Verify an existing journal, then continue it: append a `resume` record.

        `check(loaded)` runs before anything is appended (the caller restores its state there;
        an exception leaves the journal untouched). Raises DataError when it does not verify,
        TempFailure when another process has it open.
        """
        j, loaded = cls.open_existing(directory, check, preallocate=preallocate)
        j.write_step([("resume", dict(resume))])
        return j, loaded

    def _lock(self) -> None:
        import fcntl

        from sq.core.exits import TempFailure

        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TempFailure(f"journal {self.dir} is in use by another running sq process") from None

    # -- preallocated room
    @property
    def room(self) -> int:
        """Zeroed bytes ahead of the records (0 unless preallocating)."""
        return self._room - self._end if self._in_place else 0

    def reserve(self, need: int = 0) -> None:
        """Top the zeroed room up by a chunk when less than half a chunk (or `need` bytes) is
        left: between steps, so a step rarely grows the file itself. Best effort: a file system
        that refuses (full, no fallocate) ends preallocation — steps then extend the file."""
        if not self._in_place or not self._chunk or self._room - self._end >= max(need, self._chunk // 2):
            return
        fd, start = self._fd, self._room
        stop = max(start, self._end + need) + self._chunk
        try:
            fallocate = getattr(os, "posix_fallocate", None)
            if fallocate is not None:
                fallocate(fd, start, stop - start)  # the blocks, or ENOSPC before any is written
            zeros = bytes(min(stop - start, 1 << 20))
            at = start
            while at < stop:
                at += os.pwrite(fd, zeros[:stop - at], at)
            _datasync(fd)  # the new size and written blocks: later steps' syncs flush data alone
            self._room = stop
        except OSError:
            self._chunk = 0
            try:
                self._room = max(self._end, os.fstat(fd).st_size)
            except OSError:
                pass

    # -- appending
    def write_step(self, records: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Append records with one write and one fdatasync (write-ahead); return how many."""
        if self.sealed:
            raise RuntimeError("journal already sealed")
        parts = []
        n, h = self.n, self.last_hash
        for kind, data in records:
            if kind not in KINDS:
                raise ValueError(f"unknown journal record kind {kind!r}")
            n += 1
            line, h = encode_record(n, kind, data, h)
            parts.append(line)
        if not parts:
            return 0
        buf = "".join(parts).encode("utf-8")
        end = self._end
        if self._in_place and end + len(buf) > self._room:
            self.reserve(len(buf))
        t0 = time.perf_counter_ns()
        try:
            if self._in_place:
                view = memoryview(buf)
                at = end
                while view:
                    k = os.pwrite(self._fd, view, at)
                    view, at = view[k:], at + k
            else:
                view = memoryview(buf)
                while view:
                    view = view[os.write(self._fd, view):]
            _datasync(self._fd)
        except OSError as e:
            self._cut_back(end, e)
            raise
        self.last_sync_ns = took = time.perf_counter_ns() - t0
        if self.on_write is not None:  # the run's metrics: write + fdatasync seconds
            self.on_write(took / 1e9)
        self.fsyncs += 1
        self.bytes_written += len(buf)
        self.n, self.last_hash = n, h
        self._end = end + len(buf)
        if self._end > self._room:
            self._room = self._end
        return len(parts)

    def _cut_back(self, size: int, error: OSError) -> None:
        """A step's write failed (a full disk): truncate the log back to its last whole step, so
        the journal stays verified and resumable, and raise `IOFailure` saying what it keeps (an
        error that is not a write failure is left to the caller, after the same cut)."""
        from sq.core.exits import IOFailure, write_failure

        try:
            os.ftruncate(self._fd, size)
            os.fsync(self._fd)
            self._room = size
        except OSError:
            pass  # the torn tail stays; loading the journal reports it
        what = write_failure(error)
        if what:
            raise IOFailure(f"{what} writing the journal {log_path(self.dir)}: the run stopped; the journal is whole through "
                            f"record {self.n} — continue it with --resume {self.dir} once there is room") from error

    def seal(self, end: Mapping[str, Any], *, compact_to_parquet: bool = True) -> Loaded:
        """Write the `end` record, compact the log to Parquet, close; return the verified journal."""
        self.write_step([("end", dict(end))])
        self.sealed = True
        self.close()
        loaded = load(self.dir)
        if compact_to_parquet:
            compact(self.dir, loaded)
        return loaded

    def close(self) -> None:
        """Cut unused preallocated room off, release the lock and the file (records already
        written stay; nothing is sealed)."""
        if self._fd >= 0:
            if self._in_place and self._room > self._end:
                try:
                    os.ftruncate(self._fd, self._end)
                    _datasync(self._fd)
                except OSError:
                    pass  # zero bytes after the records are read as the end of the log
            os.close(self._fd)
            self._fd = -1


# ----------------------------------------------------------------------------------------------
# converting between engine Arrow rows and journal payloads


def rows_from_batch(batch: Any) -> list[dict[str, Any]]:
    """Rows of an Arrow batch/table as JSON-able dicts: timestamps as int ns, dictionaries as str."""
    import pyarrow as pa

    if batch is None or batch.num_rows == 0:
        return []
    cols: dict[str, list] = {}
    for name, col in zip(batch.schema.names, batch.columns):
        t = col.type
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        if pa.types.is_timestamp(t):
            cols[name] = col.view(pa.int64()).to_pylist()
        elif pa.types.is_dictionary(t):
            cols[name] = col.cast(pa.string()).to_pylist()
        else:
            cols[name] = col.to_pylist()
    names = list(cols)
    return [{k: cols[k][i] for k in names} for i in range(batch.num_rows)]


def table_of(loaded: Loaded, which: str) -> Any:
    """The `orders`, `fills` or `pnl` rows of a journal as an Arrow table in the canonical schema."""
    import numpy as np
    import pyarrow as pa

    from sq.core import schemas as S

    schema = {"orders": S.orders_schema, "fills": S.fills_schema, "pnl": S.pnl_schema}[which]()
    kinds = _KINDS_OF_TABLE[which]
    rows = [r.data for r in loaded.records if r.kind in kinds]
    arrays = []
    for f in schema:
        vals = [row.get(f.name) for row in rows]
        if pa.types.is_timestamp(f.type):
            arr = pa.array(np.array([0 if v is None else int(v) for v in vals], dtype=np.int64)).view(f.type)
        elif pa.types.is_dictionary(f.type):
            arr = pa.array([None if v is None else str(v) for v in vals], type=pa.string()).dictionary_encode().cast(f.type)
        elif pa.types.is_floating(f.type):
            arr = pa.array([math.nan if v is None else float(v) for v in vals], type=f.type)
        else:
            arr = pa.array(vals, type=f.type)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=schema)


def compact(directory: str | os.PathLike, loaded: Loaded | None = None) -> dict[str, Path]:
    """Write `orders.parquet`, `fills.parquet`, `pnl.parquet` from the log, each atomically."""
    import pyarrow.parquet as pq

    from sq.core import schemas as S

    d = Path(directory)
    loaded = loaded or load(d)
    out = {}
    for which in COMPACTED:
        table = table_of(loaded, which)
        md = dict(table.schema.metadata or {})
        md[S.META_END] = b"ok"
        md[b"sq.journal_head"] = loaded.last_hash.encode()
        table = table.replace_schema_metadata(md)
        target = d / f"{which}.parquet"
        tmp = d / f".{which}.parquet.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pq.write_table(table, f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        out[which] = target
    fsync_dir(d)
    return out


def new_run_id() -> str:
    """UTC timestamp plus a short random suffix: sortable and unique (`20260125T093000Z-3f9a`)."""
    import secrets
    import time

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def config_summary(config: Any) -> dict[str, Any]:
    """What a journal records about the config: mode, instruments, risk, fills — never credentials."""
    import dataclasses
    from collections.abc import Mapping

    def plain(obj: Any) -> Any:  # dataclasses and read-only mappings (an instrument's `params`) as JSON values
        if dataclasses.is_dataclass(obj):
            return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        if isinstance(obj, Mapping):
            return {str(k): plain(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [plain(v) for v in obj]
        return obj

    if config is None:
        return {}
    return {
        "source": getattr(config, "source", None),
        "trading_mode": getattr(config, "trading_mode", None),
        "instruments": [plain(i) for i in getattr(config, "instruments", ())],
        "risk": plain(getattr(config, "risk", None)),
        "paper_trading": plain(getattr(config, "paper_trading", None)),
    }
