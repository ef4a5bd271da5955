"""Trading costs a simulated run takes from its venue (docs/funding.md): each symbol's commission
rates and, for perpetual futures, the funding events of a funding file.

A funding file is Parquet with one row per funding time: `ts` (timestamp, UTC), `symbol`
(canonical, `BINANCE-FUT:BTCUSDT`), `rate` (the funding rate, 0.0001 = 0.01 %), `mark` (the
mark price at that time; NaN: the engine's last mid) and, optionally, `interval_h` (the symbol's
hours between funding times, as the venue said when it was fetched). `sq fetch BINANCE-FUT:BTCUSDT --kind
funding` writes one per day as `funding.parquet` beside the day's market data. Where the funding
comes from (`funding_files`):

* `--funding FILE|DIR`: that file, or every `funding.parquet` under DIR;
* otherwise every `funding.parquet` inside an input directory, or beside an input file.

A perpetual with no funding data in a run whose clock crosses its funding times gets one warning
(the engine's `FundingSchedule.expect`), never a silent zero.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa

from sq.core.exits import DataError, NoInputError

FILE_NAME = "funding.parquet"
STREAM = "funding"


def schema() -> pa.Schema:
    """The funding file's schema (stream kind `funding`)."""
    return pa.schema([pa.field("ts", pa.timestamp("ns", tz="UTC")), pa.field("symbol", pa.string()),
                      pa.field("rate", pa.float64()), pa.field("mark", pa.float64()), pa.field("interval_h", pa.float64())],
                     metadata={b"sq.stream": STREAM.encode()})


def funding_files(option: str | None, inputs: Iterable[str] | None) -> list[Path]:
    """The funding files of a run: `--funding` (a file or a directory), else those that sit in
    or beside the market inputs."""
    if option:
        p = Path(option)
        if p.is_dir():
            return sorted(p.rglob(FILE_NAME))
        if not p.is_file():
            raise NoInputError(f"funding file not found: {option}")
        return [p]
    found: list[Path] = []
    for item in inputs or ():
        p = Path(item)
        if p.is_dir():
            found.extend(sorted(p.rglob(FILE_NAME)))
        elif p.is_file() and (p.parent / FILE_NAME).is_file() and p.name != FILE_NAME:
            found.append(p.parent / FILE_NAME)
    return sorted(set(found))


def read(files: Iterable[Path]) -> list[tuple[str, int, float, float]]:
    """(symbol, ts ns, rate, mark) of every row of the funding files, in time order."""
    import pyarrow.parquet as pq

    out: list[tuple[str, int, float, float]] = []
    for f in files:
        try:
            t = pq.read_table(f)
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"{f}: not a funding file ({str(e).splitlines()[0]})") from None
        missing = [c for c in ("ts", "symbol", "rate") if c not in t.column_names]
        if missing:
            raise DataError(f"{f}: not a funding file (no column {', '.join(missing)}; want ts, symbol, rate, mark)")
        ts = t.column("ts").cast(pa.int64()) if not pa.types.is_timestamp(t.column("ts").type) else \
            t.column("ts").cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
        marks = t.column("mark").to_pylist() if "mark" in t.column_names else [None] * t.num_rows
        for sym, when, rate, mark in zip(t.column("symbol").to_pylist(), ts.to_pylist(), t.column("rate").to_pylist(), marks):
            if sym is None or when is None or rate is None or not math.isfinite(float(rate)):
                raise DataError(f"{f}: a funding row without symbol, ts or a finite rate")
            out.append((str(sym).upper(), int(when), float(rate), math.nan if mark is None else float(mark)))
    out.sort(key=lambda r: (r[1], r[0]))
    return out


def intervals(files: Iterable[Path]) -> dict[str, float]:
    """Each symbol's hours between funding times as its funding files recorded them (`interval_h`)."""
    import pyarrow.parquet as pq

    out: dict[str, float] = {}
    for f in files:
        try:
            t = pq.read_table(f, columns=["symbol", "interval_h"])
        except (pa.ArrowInvalid, OSError, KeyError):
            continue  # an older file without the column
        for sym, h in zip(t.column("symbol").to_pylist(), t.column("interval_h").to_pylist()):
            if sym is not None and h is not None and h > 0:
                out[str(sym).upper()] = float(h)
    return out


def write(path: str | Path, rows: Iterable[tuple], interval_h: float = math.nan) -> Path:
    """A funding file of (symbol, ts ns, rate, mark) rows (and the symbols' funding interval)."""
    import pyarrow.parquet as pq

    rows = list(rows)
    t = pa.table({"ts": pa.array([r[1] for r in rows], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
                  "symbol": pa.array([r[0] for r in rows], pa.string()), "rate": pa.array([r[2] for r in rows], pa.float64()),
                  "mark": pa.array([r[3] for r in rows], pa.float64()),
                  "interval_h": pa.array([float(r[4]) if len(r) > 4 else interval_h for r in rows], pa.float64())}, schema=schema())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, path)
    return path


def apply(engine: Any, instruments: Mapping[str, Any], config: Any, events: Iterable[tuple[str, int, float, float]] = (), *,
          fees: bool = True, hours: Mapping[str, float] | None = None) -> int:
    """Give a simulated run's engine the venue's fee rates per symbol (`fees`: the venue's config
    section, e.g. `[binance] maker_fee_bps`), the funding `events` of its symbols, and the
    perpetuals without any to warn about — on the symbol's own schedule: `hours` (its funding
    files' `interval_h`), else its instrument's `funding_interval_h` (the venue's fundingInfo, kept
    in the market data's metadata), else the venue's default. Returns the number of events taken."""
    from sq.venues.registry import fee_rates_bps

    names = {n.upper() for n in instruments}
    n = 0
    have = set()
    for sym, ts, rate, mark in events:
        if names and sym not in names:
            continue
        engine.set_funding(sym, ts, rate, mark)
        have.add(sym)
        n += 1
    for name in sorted(names):
        if fees:
            rates = fee_rates_bps(name, config)
            if rates is not None:
                engine.set_fees(name, *rates)
        every = interval_h(name, instruments, hours)
        if every > 0 and name not in have:
            engine.funding.expect(name, int(every * 3_600_000_000_000))
    return n


def interval_h(name: str, instruments: Mapping[str, Any], hours: Mapping[str, float] | None = None) -> float:
    """A perpetual's hours between funding times (0: never funded): its funding files' record,
    its instrument's `funding_interval_h`, else the venue's default (Binance 8 h)."""
    from sq.venues.registry import funding_interval_h

    default = funding_interval_h(name)
    if default <= 0:
        return 0.0
    if hours and hours.get(name.upper()):
        return float(hours[name.upper()])
    inst = instruments.get(name) or next((v for k, v in instruments.items() if k.upper() == name.upper()), None)
    got = float((getattr(inst, "extra", None) or {}).get("funding_interval_h") or 0.0)
    return got if got > 0 else default


def records_table(records: list[dict]) -> pa.Table:
    """`funding` journal records as a table (a backtest's journal `funding.parquet`)."""
    cols = ("ts", "symbol", "position", "mark", "rate", "amount", "ccy")
    t = pa.table({c: [r.get(c) for r in records] for c in cols})
    return t.set_column(0, "ts", t.column("ts").cast(pa.int64()).cast(pa.timestamp("ns", tz="UTC")))


class FundingPoller:
    """A paper run on a live feed: each perpetual's next funding time and rate from the venue's
    public data, asked every `every_s` by a thread of its own (off the tick path); the run hands
    what arrived to its engine between batches (`drain`)."""

    def __init__(self, symbols: Iterable[str], config: Any, every_s: float, warn: Any) -> None:
        import queue
        import threading

        from sq.venues.registry import funding_interval_h

        self.symbols = [s for s in symbols if funding_interval_h(s) > 0]
        self.config, self.every_s, self.warn = config, float(every_s), warn
        self.q: Any = queue.SimpleQueue()
        self.seen: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sq-funding", daemon=True) if self.symbols else None
        self.failed = False

    def start(self) -> "FundingPoller":
        if self._thread is not None:
            self._thread.start()
        return self

    def _run(self) -> None:
        from sq.core.exits import SqError
        from sq.venues.registry import funding_state

        while not self._stop.is_set():
            for sym in self.symbols:
                try:
                    st = funding_state(sym, self.config)
                except (SqError, OSError, KeyError, ValueError) as e:
                    if not self.failed:
                        self.failed = True
                        self.q.put(("warn", f"paper: {sym}: the funding rate is unavailable ({e}); retrying"))
                    continue
                if st is not None:
                    self.q.put((sym, st))
            self._stop.wait(self.every_s)

    def drain(self, engine: Any) -> None:
        """Give the engine the funding times that arrived (each once, none already passed)."""
        while True:
            try:
                item = self.q.get_nowait()
            except Exception:
                return
            if item[0] == "warn":
                self.warn(item[1])
                continue
            sym, (when, rate, mark) = item
            if (sym, when) not in self.seen and when > engine.now_ns:
                self.seen.add((sym, when))
                engine.set_funding(sym, when, rate, mark)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(5)
