"""The on-disk dataset layout every writer shares, and time windows over it.

A dataset is a hive-partitioned directory of Parquet files:

    DIR/venue=<venue>/symbol=<url-quoted symbol>/date=YYYY-MM-DD/<name>.parquet

written by `sq record` (rotating part files), `sq fetch` (one file per symbol and day, named after
what it holds: `aggTrades.parquet`, `klines-1m.parquet` …) and `sq import` (one file per symbol,
day and imported shape: `import-trades.parquet`, `import-bars-1m.parquet` …). Every file carries
its stream kind and instruments in the Parquet schema metadata, so a reader never guesses. A
file is written under a hidden temporary name, fsync'd and renamed: a killed writer never leaves
a partial file under a final name, and a day that exists is a day that is complete.

`--start/--end` windows select files by their `date=` partition (no file outside the window is
opened) and then rows by `ts`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import urllib.parse
from pathlib import Path
from typing import Iterable

import numpy as np

from sq.core.exits import UsageError
from sq.core.paths import fsync_dir

DATE_RE = re.compile(r"(?:^|/)date=(\d{4}-\d{2}-\d{2})(?:/|$)")
NS_PER_DAY = 86_400_000_000_000


def partition_dir(out_dir: str | os.PathLike, venue: str, symbol: str, day: dt.date | int) -> Path:
    """`DIR/venue=…/symbol=…/date=YYYY-MM-DD` for `day` (a date, or ns of any time in that UTC day)."""
    if not isinstance(day, dt.date):
        day = dt.date.fromisoformat(str(np.datetime64(int(day), "ns").astype("datetime64[D]")))
    return Path(out_dir) / f"venue={venue}" / f"symbol={urllib.parse.quote(symbol, safe='')}" / f"date={day.isoformat()}"


def write_partition_file(directory: Path, name: str, table, *, compression: str = "zstd", **write_options) -> Path:
    """Write `table` (a pyarrow Table with its schema metadata) as `directory/name` atomically:
    a hidden temp file, fsync, rename, fsync of the directory. Returns the final path.
    `write_options` go to `pyarrow.parquet.write_table` (encodings, row groups)."""
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    tmp = directory / f".{name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as sink:
            pq.write_table(table, sink, compression=compression, **write_options)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(directory)
    return final


def partition_table(table, kind: str, instruments, interval: str | None = None):
    """`table` (canonical columns of stream `kind`) as a dataset file stores it: the `symbol`
    column as plain string (a dictionary type clashes with the hive `symbol=` partition column in
    pyarrow datasets; Parquet dictionary-encodes it anyway) and the schema metadata a reader needs
    (`sq.stream`, `sq.instruments` of `instruments`, `sq.interval` for bars, `sq.end`)."""
    import pyarrow as pa

    from sq.core import schemas

    extra = {schemas.META_END.decode(): "ok"}
    if interval is not None:
        extra[schemas.META_INTERVAL.decode()] = interval
    fields = [pa.field("symbol", pa.string(), nullable=False) if f.name == "symbol" else f for f in table.schema]
    schema = schemas.make_schema(kind, fields, instruments, extra)
    return table.cast(schema)


def parse_date(text: str, option: str) -> dt.date:
    """`YYYY-MM-DD` → date; anything else is a usage error naming the option."""
    try:
        return dt.date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise UsageError(f"{option} must be a date YYYY-MM-DD, got {text!r}") from None


def check_window(start: dt.date | None, end: dt.date | None) -> None:
    """A window whose start is after its end is a usage error."""
    if start is not None and end is not None and start > end:
        raise UsageError(f"--start {start} is after --end {end}")


def parse_window(start: str | None, end: str | None) -> tuple[dt.date | None, dt.date | None]:
    """`--start/--end` texts → dates (None where not given), checked: bad dates and a start after
    the end are usage errors."""
    window = (parse_date(start, "--start") if start else None, parse_date(end, "--end") if end else None)
    check_window(*window)
    return window


def date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every calendar day from `start` to `end`, both included; start after end is a usage error."""
    check_window(start, end)
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def partition_date(path: str | os.PathLike) -> dt.date | None:
    """The `date=` partition a file lies in, or None outside a partitioned dataset."""
    m = DATE_RE.search(Path(path).as_posix())
    return dt.date.fromisoformat(m.group(1)) if m else None


def in_window(paths: Iterable[str], start: dt.date | None, end: dt.date | None) -> list[str]:
    """The files whose `date=` partition lies in [start, end]; files outside partitions are kept
    (their rows are filtered by time when read)."""
    out = []
    for p in paths:
        d = partition_date(p)
        if d is None or ((start is None or d >= start) and (end is None or d <= end)):
            out.append(p)
    return out


def window_ns(start: dt.date | None, end: dt.date | None) -> tuple[int | None, int | None]:
    """[start 00:00 UTC, end+1 00:00 UTC) in ns since the epoch (None: unbounded)."""
    lo = None if start is None else int(np.datetime64(start.isoformat(), "D").astype("datetime64[ns]").astype(np.int64))
    hi = None if end is None else int(np.datetime64(end.isoformat(), "D").astype("datetime64[ns]").astype(np.int64)) + NS_PER_DAY
    return lo, hi


Spans = tuple  # ((lo_ns, hi_ns), …): half-open [lo, hi) ranges in ns since the epoch, in time order


def check_spans(spans) -> tuple[tuple[int, int], ...]:
    """Exact research windows (a walk-forward's train or test window, a purged CV's training
    union) as sorted, non-overlapping [lo, hi) ns ranges; an empty or reversed range is an error."""
    out = sorted((int(lo), int(hi)) for lo, hi in spans)
    for (lo, hi), nxt in zip(out, out[1:] + [None]):
        if hi <= lo:
            raise ValueError(f"window [{lo}, {hi}) is empty")
        if nxt is not None and nxt[0] < hi:
            raise ValueError("windows overlap")
    if not out:
        raise ValueError("no window")
    return tuple(out)


def spans_dates(spans) -> tuple[dt.date, dt.date]:
    """The UTC days the spans touch, first and last (for pruning a dataset's `date=` files)."""
    lo = min(s[0] for s in spans)
    hi = max(s[1] for s in spans) - 1
    return (dt.date(1970, 1, 1) + dt.timedelta(days=lo // NS_PER_DAY), dt.date(1970, 1, 1) + dt.timedelta(days=hi // NS_PER_DAY))


def in_spans(ts: np.ndarray, spans) -> np.ndarray:
    """A mask of the timestamps lying in any of the spans."""
    inside = np.zeros(len(ts), dtype=np.bool_)
    for lo, hi in spans:
        inside |= (ts >= lo) & (ts < hi)
    return inside


def spans_text(spans) -> str:
    """`2024-01-08T08:00:00.000000000Z … 2024-01-08T08:00:04.000000000Z` (+ more ranges)."""
    def iso(ns: int) -> str:
        return str(np.datetime64(int(ns), "ns")) + "Z"

    return ", ".join(f"[{iso(lo)}, {iso(hi)})" for lo, hi in spans)

