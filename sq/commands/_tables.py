"""Tables that keep what matters on a narrow terminal: when every column does not fit the
console's width, the least important columns give way whole, instead of rich squeezing every
column until prices read `99.…`. Used by the live views and the sweep table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

ALWAYS = 1_000  # a column with this importance is never dropped


@dataclass(frozen=True)
class Col:
    """One column: its header, how important it is (higher stays longer) and its alignment."""

    header: str
    keep: int = ALWAYS
    justify: str = "right"


def fitted_table(console: Any, columns: Sequence[Col], rows: Iterable[Sequence[Any]], **table_options: Any):
    """A rich Table of `columns` and `rows` (one cell per column) that fits `console.width`:
    the columns of lowest `keep` are dropped first (the rightmost of equals first) until the
    table's natural width fits or only ALWAYS columns are left."""
    from rich.measure import Measurement
    from rich.table import Table

    rows = [list(r) for r in rows]
    unbounded = console.options.update(max_width=1_000_000)  # the table's natural width, not one clamped to the console
    shown = list(range(len(columns)))
    while True:
        table = Table(**table_options)
        for i in shown:
            c = columns[i]
            table.add_column(c.header, justify=c.justify, no_wrap=True, min_width=len(c.header))
        for r in rows:
            table.add_row(*(r[i] for i in shown))
        droppable = [i for i in shown if columns[i].keep < ALWAYS]
        if not droppable or Measurement.get(console, unbounded, table).maximum <= console.width:
            return table
        shown.remove(min(droppable, key=lambda i: (columns[i].keep, -i)))
