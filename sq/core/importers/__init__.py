"""File formats `sq import` reads, by name, and how a file's format is told when none is given.

    fmt = FORMATS["tardis-trades"]            # or detect(path)
    parsed = fmt.parse(path, ParseOptions(symbol_name="BTCUSDT"))   # a Parsed market/bars table

One module per family: `tardis` (Tardis.dev CSV files) and `mapped` (any CSV or Parquet file with
a column mapping). Venue archive files (Binance's daily zips) are read by their venue package;
`sq.venues.registry.ARCHIVE_FORMATS` names those formats, and `sq.runs.importer` dispatches them.
A format's `header` is the set of columns that identifies its files when `--format` is not given
(most specific first); a file that matches none is read as a mapped table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from sq.core.exits import DataError
from sq.core.importers import mapped, tardis
from sq.core.importers.files import columns_of, is_parquet
from sq.core.importers.rows import Parsed


@dataclass(frozen=True)
class ParseOptions:
    """What a parser may need besides the file: the symbol's name without its prefix (to pick
    its rows from a many-symbol file), the column mapping, the time unit, the bar interval."""

    symbol_name: str = ""
    mapping: Mapping[str, str] = field(default_factory=dict)
    ts_unit: str | None = None
    interval: str | None = None


@dataclass(frozen=True)
class ImportFormat:
    """A readable file format: its name (`--format`), a one-line summary, its parser, and the
    columns that identify it (empty: told only by name, or the mapped fallback)."""

    name: str
    summary: str
    parse_file: Callable[[Path, ParseOptions], Parsed]
    header: tuple[str, ...] = ()

    def parse(self, path: Path, options: ParseOptions) -> Parsed:
        """Parse `path`; a file lacking this format's columns is a DataError listing them."""
        if self.header:
            have = columns_of(path)
            missing = [c for c in self.header if c not in have]
            if missing:
                raise DataError(f"{path}: not a {self.name} file: no column {', '.join(missing[:4])}"
                                f"{' …' if len(missing) > 4 else ''} (its columns: {', '.join(have[:12]) or 'none'})")
        parsed = self.parse_file(path, options)
        if not parsed.label:
            parsed.label = self.name
        return parsed


def _tardis(name: str, summary: str, parse: Callable[[Path, str], Parsed], header: tuple[str, ...]) -> ImportFormat:
    return ImportFormat(name, summary, lambda path, o: parse(path, o.symbol_name), header)


def _mapped(name: str, summary: str) -> ImportFormat:
    return ImportFormat(name, summary, lambda path, o: mapped.parse(path, o.mapping, ts_unit=o.ts_unit, interval=o.interval))


FORMATS: dict[str, ImportFormat] = {f.name: f for f in (
    _tardis("tardis-book_snapshot_25", "Tardis.dev book_snapshot_25 CSV: each row a 25-level snapshot",
            lambda path, s: tardis.parse_book_snapshot(path, s, 25), tardis.snapshot_columns(25)),
    _tardis("tardis-book_snapshot_5", "Tardis.dev book_snapshot_5 CSV: each row a 5-level snapshot",
            lambda path, s: tardis.parse_book_snapshot(path, s, 5), tardis.snapshot_columns(5)),
    _tardis("tardis-incremental_book_L2", "Tardis.dev incremental_book_L2 CSV: snapshots and level updates",
            tardis.parse_incremental_book_l2, tardis.L2_COLUMNS),
    _tardis("tardis-trades", "Tardis.dev trades CSV", tardis.parse_trades, tardis.TRADE_COLUMNS),
    _tardis("tardis-quotes", "Tardis.dev quotes CSV: each row a top-of-book snapshot", tardis.parse_quotes, tardis.QUOTE_COLUMNS),
    _mapped("csv", "any CSV file (plain, gz, zst, bz2, one-file zip) with --map FIELD=COLUMN: trades, quotes or bars"),
    _mapped("parquet", "any Parquet file with --map FIELD=COLUMN: trades, quotes or bars"),
)}


def detect(path: Path) -> ImportFormat:
    """The format of `path` by its content: Parquet → `parquet`; a CSV header carrying a Tardis
    format's columns → that format; any other CSV → `csv`."""
    if is_parquet(path):
        return FORMATS["parquet"]
    have = set(columns_of(path))
    for fmt in FORMATS.values():
        if fmt.header and set(fmt.header) <= have:
            return fmt
    return FORMATS["csv"]
