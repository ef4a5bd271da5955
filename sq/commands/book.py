"""`sq book`: rebuild L2 books and features from a market stream (docs/streams.md)."""


from typing import Annotated, Optional

import typer

from sq.commands._live import LiveView
from sq.commands._options import EndOption, FormatOption, InputsArgument, OutputOption, StartOption, env_of

SUMMARY = "Rebuild L2 order books and features from a market stream."

HELP = """Rebuild per-symbol L2 order books from a market stream and emit the book stream: the top
--depth levels a side plus mid, spread, microprice, imbalance, last trade price, aggressive-trade
ratio, rolling VWAP and mid-return volatility.

Rows come only after complete venue messages and never inside a snapshot; by default one row per
message that changes the levels or the features. Locked/crossed books are counted on stderr, never
repaired. On a terminal a live ladder per symbol is shown; otherwise an Arrow stream (or -o FILE)."""

EPILOG = """Examples:

  sq subscribe SIM:DEMO --limit 10000 | sq book --depth 5 -o book.parquet

  sq book data/venue=sim --interval 1s --format table

  sq book data --start 2024-01-08 --end 2024-01-09 -o book.parquet

  sq book ticks.parquet --every 100 --format jsonl | head

  sq book zerodha.parquet --view-depth 5 --stale --stale-max-age 30s -o book.arrow"""

# the market columns the book reads (recv_ts and orders are not decoded from Parquet input)
BOOK_INPUT_COLUMNS = ("ts", "symbol", "kind", "side", "price", "qty", "seq")
TABLE_COLUMNS = ["ts", "symbol", "seq", "bid_qty_0", "bid_px_0", "ask_px_0", "ask_qty_0", "mid", "spread",
                 "microprice", "imbalance", "last_trade_px"]


def book(
    ctx: typer.Context,
    inputs: InputsArgument = None,
    depth: Annotated[int, typer.Option("--depth", "-d", min=1, max=64, help="Levels a side in each row.")] = 5,
    every: Annotated[Optional[int], typer.Option("--every", min=1, help="One row per symbol every N messages.", show_default=False)] = None,
    interval: Annotated[Optional[str], typer.Option("--interval", help="At most one row per symbol per interval of data time (100ms, 1s).", show_default=False)] = None,
    stale: Annotated[bool, typer.Option("--stale", help="Add stale-depth columns (count and qty of levels a top-N venue no longer shows).")] = False,
    stale_max_age: Annotated[str, typer.Option("--stale-max-age", help="Drop stale levels older than this.")] = "60s",
    view_depth: Annotated[Optional[int], typer.Option("--view-depth", min=1, max=64, help="Treat every symbol as a top-N venue showing N levels (default: the instrument's depth_view).", show_default=False)] = None,
    vwap_window: Annotated[str, typer.Option("--vwap-window", help="Rolling VWAP window in data time.")] = "60s",
    vol_halflife: Annotated[float, typer.Option("--vol-halflife", min=0.001, help="Half-life of the EWMA mid-return volatility, in mid changes.")] = 100.0,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip rows with NaN/inf/negative prices or quantities (counted on stderr) instead of failing with exit 65.")] = False,
    start: StartOption = None,
    end: EndOption = None,
    output: OutputOption = None,
    fmt: FormatOption = "auto",
) -> None:
    from sq.core import book as B
    from sq.core import schemas as S
    from sq.core.bookstream import build_book
    from sq.core.datasets import parse_window
    from sq.core.durations import parse_duration_ns
    from sq.core.exits import UsageError
    from sq.core.streams import StreamWriter, open_input

    env = env_of(ctx)
    if every is not None and interval is not None:
        raise UsageError("--every and --interval exclude each other; choose one")
    options = dict(
        depth=depth,
        mode=B.MODE_EVERY if every else B.MODE_INTERVAL if interval else B.MODE_CHANGE,
        every=every or 1,
        interval_ns=parse_duration_ns(interval, option="--interval") if interval else 0,
        vwap_window_ns=parse_duration_ns(vwap_window, option="--vwap-window"),
        vol_halflife=vol_halflife,
        view_depth=view_depth,
        stale=stale,
        stale_max_age_ns=parse_duration_ns(stale_max_age, option="--stale-max-age"),
        skip_bad=skip_bad,
    )
    first, last = parse_window(start, end)
    live = env.stdout_isatty and output is None and (fmt or "auto").lower() in ("auto", "table")
    source = open_input(env, inputs, "market", columns=BOOK_INPUT_COLUMNS, start=first, end=last)
    if live:
        build_book(env, source, lambda schema: LadderSink(env, depth, S.schema_instruments(schema)), **options)
    else:
        from sq.commands._progress import RowProgress

        # a bar on a terminal stderr while the rows go to a file or a pipe (not over a terminal table)
        with RowProgress(env, "book", source.total_rows, enabled=not env.stdout_isatty) as progress:
            build_book(env, source.counted(progress), lambda schema: StreamWriter(env, schema, output=output, fmt=fmt, table_columns=TABLE_COLUMNS),
                       **options)


class LadderSink(LiveView):
    """The terminal view: a rich Live ladder per symbol (depth bars, spread, microprice,
    imbalance, update rate), refreshed from the latest row of each symbol. Same interface as
    StreamWriter (context manager + write) so the core loop does not care where rows go."""

    def __init__(self, env, depth: int, instruments=None, max_symbols: int = 6):
        import time

        from sq.core.formatting import PriceFormats

        super().__init__(env)
        self.prices = PriceFormats(instruments)
        self.depth = depth
        self.max_symbols = max_symbols
        self.latest: dict[str, dict] = {}
        self.counts: dict[str, int] = {}
        self.started = time.monotonic()
        self._last_draw = 0.0

    def write(self, batch) -> None:
        import time

        import pyarrow.compute as pc

        from sq.core.journal import rows_from_batch

        syms = batch.column("symbol")
        for sym in syms.dictionary.to_pylist():
            mask = pc.equal(syms.cast("string"), sym)
            idx = pc.indices_nonzero(mask)
            if len(idx) == 0:
                continue
            self.counts[sym] = self.counts.get(sym, 0) + len(idx)
            self.latest[sym] = rows_from_batch(batch.slice(idx[-1].as_py(), 1))[0]
        now = time.monotonic()
        if now - self._last_draw >= 0.1:
            self._last_draw = now
            self.draw()

    def _render(self):
        import time

        from rich.columns import Columns
        from rich.table import Table

        from sq.core import formatting as F

        elapsed = max(time.monotonic() - self.started, 1e-9)
        tables = []
        for sym in list(self.latest)[: self.max_symbols]:
            row = self.latest[sym]
            px = lambda v, extra=0: self.prices.price(sym, v, extra)
            qtys = [row.get(f"{s}_qty_{i}") for s in ("bid", "ask") for i in range(self.depth)]
            top = max([q for q in qtys if q is not None and q == q] or [1.0])
            t = Table(title=f"{sym}  {F.format_count(self.counts[sym] / elapsed)} rows/s", show_edge=False)
            t.add_column("bid qty", justify="right")
            t.add_column("price", justify="right")
            t.add_column("ask qty", justify="left")
            for i in range(self.depth - 1, -1, -1):
                p, q = row.get(f"ask_px_{i}"), row.get(f"ask_qty_{i}")
                if p is not None and p == p:
                    t.add_row("", f"[red]{px(p)}[/]", f"[red]{'█' * max(1, int(12 * q / top))}[/] {F.format_qty(q)}")
            for i in range(self.depth):
                p, q = row.get(f"bid_px_{i}"), row.get(f"bid_qty_{i}")
                if p is not None and p == p:
                    t.add_row(f"{F.format_qty(q)} [green]{'█' * max(1, int(12 * q / top))}[/]", f"[green]{px(p)}[/]", "")
            t.caption = (f"spread {px(row.get('spread'))}  micro {px(row.get('microprice'), F.AVERAGE_EXTRA)}  "
                         f"imb {F.format_imbalance(row.get('imbalance'))}  last {px(row.get('last_trade_px'))}")
            tables.append(t)
        return Columns(tables) if tables else "waiting for data…"


def register(app: typer.Typer) -> None:
    app.command(name="book", help=HELP, epilog=EPILOG, short_help=SUMMARY)(book)
