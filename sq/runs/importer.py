"""`sq import`: files a user already has → the dataset layout every sq command reads.

    report = run_import(env, ImportOptions(files=("trades.csv.gz",), symbol="BINANCE:BTCUSDT", out_dir="data"))

Each file is read by its format (`--format`, else told from its content: `sq.core.importers`;
venue archive formats go to the venue's `archive.read_archive` through the registry), the symbol's
tick and lot size are settled, and the rows go to one file per UTC day and format under
`DIR/venue=…/symbol=…/date=…/` (`sq.core.importers.store`), replacing what an earlier import of
the same data left there. Tick and lot size come from `--tick-size`/`--lot-size` when given, else
from the venue's instrument data (exchangeInfo, the Kite dump, SIM's grid), else — when the venue
cannot be asked — from the config's `[[instruments]]` entry, else they are inferred from the data
with a warning. Prices off the chosen tick grid are a data error: the book would be wrong.

Nothing is written until every file has been read and every day file built in memory, so bad
input (exit 2, 65, 66) leaves the dataset exactly as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sq.core import schemas as S
from sq.core.environment import Environment
from sq.core.exits import AuthError, ConfigError, DataError, UsageError, VenueUnavailable
from sq.core.importers import FORMATS, ImportFormat, ParseOptions, detect, store
from sq.core.importers.files import head_bytes, read_bytes
from sq.core.importers.grid import first_off_grid, infer_grid
from sq.core.importers.mapped import infer_interval, parse_mapping
from sq.core.importers.rows import MARKET_COLUMNS, Parsed, fit_columns
from sq.core.importers.timestamps import UNITS
from sq.core.symbols import Symbol
from sq.venues import registry

INTERVAL_RE = re.compile(r"^[0-9]+[a-z]+$")


@dataclass(frozen=True)
class ImportOptions:
    """`sq import`'s flags: files, symbol, dataset directory, format, mapping, units and grids."""

    files: tuple[str, ...]
    symbol: str
    out_dir: str
    fmt: str = "auto"
    mapping: tuple[str, ...] = ()
    ts_unit: str | None = None
    interval: str | None = None
    tick_size: float | None = None
    lot_size: float | None = None


@dataclass
class ImportReport:
    """What an import did: per source file, per day file, the instrument and where its grids came from."""

    symbol: str
    venue: str
    out_dir: str
    instrument: dict[str, Any] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    days: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(d["new_rows"] for d in self.days)

    @property
    def replaced(self) -> int:
        return sum(d["replaced_rows"] for d in self.days)

    def line(self) -> str:
        dates = sorted({d["date"] for d in self.days})
        span = dates[0] if len(dates) == 1 else f"{dates[0]} … {dates[-1]}" if dates else "no days"
        formats = ", ".join(dict.fromkeys(f["format"] for f in self.files))
        replaced = f"; replaced {self.replaced:,} rows of earlier imports" if self.replaced else ""
        return (f"imported {self.rows:,} rows of {self.symbol} from {len(self.files)} file{'s' if len(self.files) != 1 else ''} "
                f"({formats}) into {len(self.days)} day file{'s' if len(self.days) != 1 else ''} ({span}) under {self.out_dir}{replaced}")

    def to_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "venue": self.venue, "out": self.out_dir, "rows": self.rows, "replaced_rows": self.replaced,
                "instrument": self.instrument, "files": self.files, "days": self.days}


def formats() -> dict[str, str]:
    """Every `--format` name and its one-line summary (file formats, then venue archives)."""
    out = {name: f.summary for name, f in FORMATS.items()}
    for name, (venue, kind) in registry.ARCHIVE_FORMATS.items():
        out[name] = f"{venue} archive file (daily/monthly zip or CSV) of {kind}"
    return out


def run_import(env: Environment, opts: ImportOptions) -> ImportReport:
    """Import `opts.files` for `opts.symbol` into `opts.out_dir`; return what was written."""
    symbol = registry.parse_symbol(opts.symbol)
    venue = registry.venue_of(symbol)
    fmt, parse_options = _check_options(opts, symbol)
    paths = [Path(f) for f in opts.files]
    for p in paths:
        head_bytes(p)  # 66 for a missing file before any file is read
    parsed = [_parse(p, fmt, symbol, parse_options) for p in paths]
    instrument, sources = _instrument(env, symbol, venue, opts, parsed)
    report = ImportReport(symbol.canonical, venue, opts.out_dir,
                          {**instrument.to_json(), "tick_size_from": sources[0], "lot_size_from": sources[1]})
    for p, item in zip(paths, parsed):
        report.files.append({"path": str(p), "format": item.label if item.stream == "market" else f"{item.label} {item.interval}",
                             "stream": item.stream, "source_rows": item.source_rows, "rows": item.table.num_rows})
    groups: dict[tuple[str, str | None], list[Parsed]] = {}
    for item in parsed:
        groups.setdefault((item.label, item.interval if item.stream == "bars" else None), []).append(item)
    planned: list[store.DayFile] = []
    for (label, interval), parts in groups.items():
        schema = store.file_schema(parts[0].stream, symbol.canonical, instrument, interval)
        planned += store.plan(opts.out_dir, venue, symbol.canonical, label, store.combine(parts, label), schema, interval)
    store.write(planned)
    for f in sorted(planned, key=lambda f: (f.day, f.path.name)):
        report.days.append({"date": f.day.isoformat(), "file": str(f.path), "rows": f.table.num_rows, "new_rows": f.new_rows,
                            "kept_rows": f.kept_rows, "replaced_rows": f.replaced_rows})
    return report


# ----------------------------------------------------------------------------------------------
# options and formats


def _check_options(opts: ImportOptions, symbol: Symbol) -> tuple[str, ParseOptions]:
    """Usage errors (2) before any file is opened; returns the format name and parse options."""
    if not opts.files:
        raise UsageError("give at least one FILE to import")
    fmt = (opts.fmt or "auto").strip().lower()
    known = {n.lower(): n for n in formats()}
    if fmt != "auto" and fmt not in known:
        raise UsageError(f"unknown --format {opts.fmt!r} (known: auto, {', '.join(formats())})")
    fmt = known.get(fmt, fmt)
    mapping = parse_mapping(opts.mapping)
    if mapping and fmt not in ("auto", "csv", "parquet"):
        raise UsageError(f"--map names the columns of csv and parquet files; --format {fmt} has fixed columns")
    unit = (opts.ts_unit or "auto").strip().lower().replace("µs", "us")
    if unit != "auto" and unit not in UNITS:
        raise UsageError(f"--ts-unit must be auto, {', '.join(UNITS)}; got {opts.ts_unit!r}")
    if opts.interval is not None and not INTERVAL_RE.match(opts.interval.strip()):
        raise UsageError(f"--interval must be a bar interval such as 1m, 1h or 1d; got {opts.interval!r}")
    for name, v in (("--tick-size", opts.tick_size), ("--lot-size", opts.lot_size)):
        if v is not None and not (v > 0 and np.isfinite(v)):
            raise UsageError(f"{name} must be a positive number; got {v!r}")
    out = Path(opts.out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {opts.out_dir}: not a directory")
    return fmt, ParseOptions(symbol.name, mapping, None if unit == "auto" else unit,
                             opts.interval.strip() if opts.interval else None)


def _parse(path: Path, fmt: str, symbol: Symbol, options: ParseOptions) -> Parsed:
    """One file → Parsed, by the given format, the venue archive format, or the detected one."""
    if fmt in registry.ARCHIVE_FORMATS:
        return _parse_archive(path, fmt, symbol, options)
    chosen: ImportFormat
    if fmt != "auto":
        chosen = FORMATS[fmt]
    elif options.mapping:
        chosen = FORMATS["parquet" if head_bytes(path, 4) == b"PAR1" else "csv"]
    else:
        chosen = detect(path)
    try:
        return chosen.parse(path, options)
    except DataError as e:
        if fmt == "auto" and chosen.name in ("csv", "parquet") and not options.mapping:
            raise DataError(f"{e.message} — or, for a Tardis or venue archive file, give --format "
                            f"(one of {', '.join(n for n in formats() if n not in ('csv', 'parquet'))})") from None
        raise


def _parse_archive(path: Path, fmt: str, symbol: Symbol, options: ParseOptions) -> Parsed:
    """A venue archive file through its venue's reader; its table (market or bars, with a symbol
    column) becomes a Parsed of the canonical columns."""
    table = registry.read_archive(fmt, read_bytes(path), name=path.name, symbol=symbol, interval=options.interval)
    kind = S.stream_kind(table.schema) or S.guess_kind(table.schema)
    if kind not in ("market", "bars"):
        raise DataError(f"{path}: the {fmt} reader gave a {kind or 'unknown'} table, not market rows or bars")
    columns = MARKET_COLUMNS if kind == "market" else [f for f in S.BARS_FIELDS if f.name != "symbol"]
    out = fit_columns(table, list(columns), f"{path}: the {fmt} rows do not fit the {kind} schema")
    interval = None
    if kind == "bars":
        interval = options.interval or S.bars_interval(table.schema) or infer_interval(S.int64_view(out.column("ts")), str(path))
    return Parsed(kind, out, table.num_rows, interval, fmt)


# ----------------------------------------------------------------------------------------------
# tick and lot size


def _instrument(env: Environment, symbol: Symbol, venue: str, opts: ImportOptions, parsed: list[Parsed]) -> tuple[S.Instrument, tuple[str, str]]:
    """The symbol's instrument and where its tick and lot size came from (flag, venue, config, inferred)."""
    from sq.core.config import load_config

    config = load_config(env)
    known: S.Instrument | None = None
    where = "venue"
    if opts.tick_size is None or opts.lot_size is None:
        try:
            known = registry.instrument_info([symbol], config).get(symbol.canonical)
        except (VenueUnavailable, AuthError, ConfigError) as e:
            env.warn(f"{symbol.canonical}: cannot ask {venue} for its tick and lot size ({e.message}); using the config or the data")
            entry = config.instrument(symbol.canonical)
            if entry is not None and (entry.tick_size or entry.lot_size):
                known = S.Instrument(symbol.canonical, venue, entry.tick_size or 0.0, entry.lot_size or 0.0)
                where = "config"
    prices, qtys = _grid_values(parsed)
    tick, tick_from = _pick(opts.tick_size, known.tick_size if known else None, where, prices)
    lot, lot_from = _pick(opts.lot_size, known.lot_size if known else None, where, qtys)
    for what, value, source, flag in (("tick", tick, tick_from, "--tick-size"), ("lot", lot, lot_from, "--lot-size")):
        if source == "inferred":
            env.warn(f"{symbol.canonical}: no {what} size from the venue, the config or {flag}; inferred {value:g} from the data")
    _check_grid(symbol, prices, tick, tick_from)
    extra = dict(known.extra) if known is not None else {}
    return S.Instrument(symbol.canonical, venue, tick, lot, extra), (tick_from, lot_from)


def _grid_values(parsed: list[Parsed]) -> tuple[np.ndarray, np.ndarray]:
    """Prices and quantities on the instrument's grids: level and trade rows (bars: OHLC, volume)."""
    prices, qtys = [], []
    for item in parsed:
        t = item.table
        if item.stream == "market":
            kind = t.column("kind").to_numpy()
            on_grid = (kind == S.LEVEL) | (kind == S.TRADE)
            every = bool(on_grid.all())
            price, qty = t.column("price").to_numpy(), t.column("qty").to_numpy()
            prices.append(price if every else price[on_grid])
            qtys.append(qty if every else qty[on_grid])
        else:
            prices += [t.column(c).to_numpy() for c in ("open", "high", "low", "close")]
            qtys.append(t.column("volume").to_numpy())
    prices_all = np.concatenate(prices) if len(prices) > 1 else prices[0] if prices else np.zeros(0)
    qtys_all = np.concatenate(qtys) if len(qtys) > 1 else qtys[0] if qtys else np.zeros(0)
    return prices_all, qtys_all[qtys_all > 0]


def _pick(flag: float | None, known: float | None, where: str, values: np.ndarray) -> tuple[float, str]:
    if flag is not None:
        return float(flag), "flag"
    if known:
        return float(known), where
    return infer_grid(values), "inferred"


def _check_grid(symbol: Symbol, prices: np.ndarray, tick: float, source: str) -> None:
    """Every level and trade price on the tick grid, else a DataError suggesting the data's grid."""
    i = first_off_grid(np.ascontiguousarray(prices, dtype=np.float64), float(tick))
    if i >= 0:
        origin = {"flag": "--tick-size", "venue": "the venue", "config": "the config", "inferred": "the data"}[source]
        raise DataError(f"{symbol.canonical}: price {float(prices[i])!r} is not a multiple of the tick size {tick:g} "
                        f"(from {origin}); the data's prices lie on a {infer_grid(prices):g} grid: "
                        "give --tick-size if that is the instrument's tick")
