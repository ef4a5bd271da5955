"""NSE and BSE trading holidays (docs/market-rules.md): the list shipped with sq (`holidays.csv`
in this package), and a user's file (`[zerodha] holidays_file`) whose years replace the shipped ones.

The format, one holiday a row (a weekday on which the segments named are closed; lines starting
with `#` are comments):

    date,exchanges,description
    2026-01-26,NSE BSE NFO BFO,Republic Day

`exchanges` are Kite exchange segments separated by spaces. A file that cannot be read or has a
bad row is a configuration error (exit 78) naming the file and the line.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from sq.core.exits import ConfigError

SHIPPED = "holidays.csv"
HEADER = ("date", "exchanges", "description")
SEGMENTS = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX")


@dataclass(frozen=True)
class Holiday:
    date: dt.date
    exchanges: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Holidays:
    """The holidays in force: per exchange segment, and the years the list covers."""

    rows: tuple[Holiday, ...]
    years: frozenset

    def of(self, exchange: str) -> frozenset:
        """The closed dates of one exchange segment."""
        ex = exchange.upper()
        return frozenset(h.date for h in self.rows if ex in h.exchanges)


def parse(text: str, where: str) -> list[Holiday]:
    """The rows of a holidays file (`where` names it in errors)."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ConfigError(f"{where}: no holidays: the file needs the header {','.join(HEADER)}")
    first, header = lines[0]
    if tuple(c.strip().lower() for c in next(csv.reader([header]))) != HEADER:
        raise ConfigError(f"{where}: line {first}: the header must be {','.join(HEADER)}")
    out = []
    for n, line in lines[1:]:
        cells = next(csv.reader(io.StringIO(line)))
        if len(cells) != len(HEADER):
            raise ConfigError(f"{where}: line {n}: expected {len(HEADER)} columns ({','.join(HEADER)}), got {len(cells)}")
        try:
            date = dt.date.fromisoformat(cells[0].strip())
        except ValueError:
            raise ConfigError(f"{where}: line {n}: {cells[0].strip()!r} is not a date (YYYY-MM-DD)") from None
        exchanges = tuple(x.upper() for x in cells[1].split())
        unknown = [x for x in exchanges if x not in SEGMENTS]
        if not exchanges or unknown:
            raise ConfigError(f"{where}: line {n}: exchanges must name segments among {' '.join(SEGMENTS)}, "
                              f"separated by spaces; got {cells[1].strip()!r}")
        out.append(Holiday(date, exchanges, cells[2].strip()))
    return out


def shipped() -> list[Holiday]:
    return parse(resources.files(__package__).joinpath(SHIPPED).read_text(encoding="utf-8"), f"sq's {SHIPPED}")


def load(path: str | None = None) -> Holidays:
    """The shipped holidays, with the years of the file at `path` (if any) replaced by its rows."""
    if not path:
        return _load(None, 0.0)
    p = Path(path).expanduser()
    try:
        mtime = p.stat().st_mtime
    except OSError:
        raise ConfigError(f"{path}: holidays file not found (named by [zerodha] holidays_file)") from None
    return _load(str(p), mtime)


@lru_cache(maxsize=8)
def _load(path: str | None, mtime: float) -> Holidays:
    rows = shipped()
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the holidays file ({getattr(e, 'strerror', None) or e})") from None
        mine = parse(text, path)
        theirs = {h.date.year for h in mine}
        rows = [h for h in rows if h.date.year not in theirs] + mine
    rows.sort(key=lambda h: h.date)
    return Holidays(tuple(rows), frozenset(h.date.year for h in rows))
