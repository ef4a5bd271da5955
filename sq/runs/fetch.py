"""`sq fetch`: download a venue's history into the dataset layout, a day at a time, resumably.

For every symbol, the days of the venue's calendar in [start, end] whose file is not in the
dataset yet are asked of the venue's history client (`sq.venues.base`, reached through the
registry) and each complete day is written as

    OUT/venue=<venue>/symbol=<symbol>/date=YYYY-MM-DD/<kind>.parquet      (bars: <kind>-<interval>.parquet)

atomically (`sq.core.datasets.write_partition_file`), with the stream kind, the instruments and,
for bars, the interval in its schema metadata. A file under its final name is a whole day, so a
re-run fetches only the days still missing, and an interrupted run (Ctrl-C, SIGTERM: the run
stops after the day in hand; a second Ctrl-C aborts that day too) leaves nothing partial behind.

Days the venue cannot give (not archived, failed checksums, not over yet) are reported with the
reason and left out; the report says per symbol what was fetched, what was already present and
what is missing, with rows, bytes and time.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sq.core.datasets import date_range, partition_dir, partition_table, write_partition_file


@dataclass(frozen=True)
class FetchOptions:
    """What to fetch: symbols of one venue, a venue history kind (and bar interval), a date range."""

    symbols: list[str]
    kind: str
    start: dt.date
    end: dt.date
    interval: str | None = None
    out: str | None = None  # None: <data dir>/history
    oi: bool = False  # Zerodha candles: with open interest (futures and options)
    continuous: bool = False  # Zerodha day candles of NFO/MCX futures stitched across expiries
    expiry: str | None = None  # which contract a continuous futures name (NFO:NIFTY-FUT) stands for: near, next, far


@dataclass
class SymbolReport:
    """One symbol's days: fetched (with their source), already present, missing (with why)."""

    symbol: str
    continuous: str = ""  # the continuous futures name this contract was fetched for (sq.runs.contracts)
    fetched: dict[str, str] = field(default_factory=dict)  # date → source (archive, rest, …)
    present: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # date → reason
    rows: int = 0
    bytes: int = 0
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        doc = {"symbol": self.symbol, "fetched": sorted(self.fetched), "sources": self.fetched, "present": self.present,
               "missing": self.missing, "rows": self.rows, "bytes": self.bytes, "elapsed_s": round(self.elapsed_s, 3)}
        return {**doc, "continuous": self.continuous} if self.continuous else doc


@dataclass
class FetchReport:
    """What a fetch did; `complete` when every requested day is now in the dataset."""

    venue: str
    kind: str
    interval: str | None
    start: str
    end: str
    out_dir: str
    symbols: list[SymbolReport] = field(default_factory=list)
    elapsed_s: float = 0.0
    stopped_by: str | None = None  # the signal that stopped the run early

    @property
    def complete(self) -> bool:
        return self.stopped_by is None and not any(r.missing for r in self.symbols)

    def totals(self) -> tuple[int, int, int, int, int]:
        """(fetched, present, missing days, rows, bytes) over every symbol."""
        rs = self.symbols
        return (sum(len(r.fetched) for r in rs), sum(len(r.present) for r in rs), sum(len(r.missing) for r in rs),
                sum(r.rows for r in rs), sum(r.bytes for r in rs))

    def line(self) -> str:
        from sq.runs.record import human_bytes

        fetched, present, missing, rows, nbytes = self.totals()
        what = self.kind + (f" {self.interval}" if self.interval else "")
        text = (f"fetched {fetched} day{'s' * (fetched != 1)} of {what} ({rows:,} rows, {human_bytes(nbytes)} downloaded) into "
                f"{self.out_dir}; {present} already present, {missing} missing; {self.elapsed_s:.1f}s")
        return text + (f"; stopped by {self.stopped_by}" if self.stopped_by else "")

    def missing_lines(self) -> list[str]:
        return [f"{r.symbol} {day}: {why}" for r in self.symbols for day, why in sorted(r.missing.items())]

    def to_json(self) -> dict[str, Any]:
        fetched, present, missing, rows, nbytes = self.totals()
        return {"venue": self.venue, "kind": self.kind, "interval": self.interval, "start": self.start, "end": self.end,
                "out": self.out_dir, "complete": self.complete, "stopped_by": self.stopped_by, "elapsed_s": round(self.elapsed_s, 3),
                "days": {"fetched": fetched, "present": present, "missing": missing}, "rows": rows, "bytes": nbytes,
                "symbols": [r.to_json() for r in self.symbols]}


@dataclass(frozen=True)
class FetchProgress:
    """Where a fetch is: days done (fetched, present or missing) of all days, bytes so far."""

    days_done: int
    days_total: int
    bytes: int
    symbol: str
    day: str


def file_name(kind: str, stream_kind: str, interval: str | None) -> str:
    """`<kind>.parquet`, or `<kind>-<interval>.parquet` for bars."""
    return f"{kind}-{interval}.parquet" if stream_kind == "bars" else f"{kind}.parquet"


class _Stop:
    """SIGINT/SIGTERM: stop after the day in hand; a second signal aborts that day at once."""

    def __init__(self) -> None:
        self.by: str | None = None

    def __call__(self, name: str) -> None:
        if self.by is not None:
            raise KeyboardInterrupt
        self.by = name


def run_fetch(env: Any, opts: FetchOptions, progress: Callable[[FetchProgress], None] | None = None) -> FetchReport:
    """Fetch the days missing from the dataset (see the module docstring); `progress` is called
    before the first day and after every day."""
    from sq.core import paths
    from sq.core.config import load_config
    from sq.runs import contracts
    from sq.runs.lifecycle import StopOnSignals
    from sq.venues import registry

    t0 = time.monotonic()
    parsed = registry.parse_symbols(opts.symbols)
    if not parsed:
        from sq.core.exits import UsageError

        raise UsageError("give at least one symbol to fetch (e.g. sq fetch BINANCE:BTCUSDT --kind aggTrades --start … --end …)")
    venue = registry.one_venue(parsed, "run one sq fetch per venue")
    date_range(opts.start, opts.end)  # start after end: a usage error, whatever the venue
    history = registry.history_module(venue)
    config = load_config(env)
    resolved = contracts.resolve(env, config, parsed, expiry=opts.expiry)
    parsed = resolved.symbols
    stop = _Stop()
    with StopOnSignals(stop):
        flags = {name: True for name in ("oi", "continuous") if getattr(opts, name)}
        client = history.open_history(config, env, symbols=resolved.names, kind=opts.kind, interval=opts.interval, **flags)
        try:
            days = history.calendar(opts.start, opts.end)
            stream_kind = history.KINDS[opts.kind]
            name = file_name(opts.kind, stream_kind, opts.interval)
            out_dir = Path(opts.out) if opts.out else paths.data_dir() / "history"
            report = FetchReport(venue, opts.kind, opts.interval, opts.start.isoformat(), opts.end.isoformat(), str(out_dir))
            fetcher = _Fetcher(client, report, out_dir, venue, name, stream_kind, opts.interval, len(days) * len(parsed), progress, stop,
                               resolved.contracts)
            for s in parsed:
                fetcher.symbol(s.canonical, days)
                if stop.by:
                    break
        finally:
            client.close()
    report.stopped_by = stop.by
    report.elapsed_s = time.monotonic() - t0
    return report


class _Fetcher:
    """Writes one symbol's days after another and keeps the report and the progress current."""

    def __init__(self, client: Any, report: FetchReport, out_dir: Path, venue: str, name: str, stream_kind: str,
                 interval: str | None, total: int, progress: Callable[[FetchProgress], None] | None, stop: _Stop,
                 contracts: dict | None = None):
        self.client, self.report, self.out_dir, self.venue, self.name = client, report, out_dir, venue, name
        self.contracts = contracts or {}  # contract symbol → Contract of the continuous names fetched
        self.stream_kind, self.interval, self.total, self.progress, self.stop = stream_kind, interval, total, progress, stop
        self.done = 0
        self.bytes = 0

    def _tick(self, symbol: str, day: dt.date | None, n: int = 1, nbytes: int = 0) -> None:
        self.done += n
        self.bytes += nbytes
        if self.progress is not None:
            self.progress(FetchProgress(self.done, self.total, self.bytes, symbol, day.isoformat() if day else ""))

    def symbol(self, symbol: str, days: list[dt.date]) -> None:
        t0 = time.monotonic()
        contract = self.contracts.get(symbol)
        rep = SymbolReport(symbol, continuous=contract.continuous if contract else "")
        self.report.symbols.append(rep)
        todo = []
        for day in days:
            if (partition_dir(self.out_dir, self.venue, symbol, day) / self.name).exists():
                rep.present.append(day.isoformat())
            else:
                todo.append(day)
        self._tick(symbol, None, len(rep.present))
        if self.stop.by:  # stopped before this symbol's first day
            return
        instrument = self.client.instruments[symbol]
        instruments = {symbol: contract.annotate(instrument) if contract else instrument}
        results = self.client.fetch(symbol, todo)
        try:
            for result in results:
                rep.bytes += result.bytes
                if result.table is None:
                    rep.missing[result.day.isoformat()] = result.note or "not available"
                else:
                    table = partition_table(result.table, self.stream_kind, instruments, self.interval)
                    write_partition_file(partition_dir(self.out_dir, self.venue, symbol, result.day), self.name, table)
                    rep.fetched[result.day.isoformat()] = result.source
                    rep.rows += table.num_rows
                self._tick(symbol, result.day, 1, result.bytes)
                if self.stop.by:
                    break
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()
            rep.elapsed_s = time.monotonic() - t0
