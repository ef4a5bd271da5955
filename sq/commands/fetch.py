"""`sq fetch SYMBOL... --kind KIND --start DATE --end DATE`: download a venue's history into a
dataset, one complete file per symbol and day, resumably."""


from typing import Annotated, List, Optional

import typer

from sq.commands._options import ExpiryOption, JsonOption, complete_symbols, dataset_output, env_of

SUMMARY = "Download a venue's history into a Parquet dataset."

HELP = """Download history (trades, aggregate trades, top of book, candles) into a Parquet dataset.

Every day from --start to --end (both included; UTC days for Binance) lands in
DIR/venue=…/symbol=…/date=YYYY-MM-DD/KIND.parquet (klines: KIND-INTERVAL.parquet), written
whole and atomically: days already in DIR are skipped, so a re-run (or a run after Ctrl-C)
fetches only what is missing. Ctrl-C stops after the day in hand; a second Ctrl-C stops at once.

Binance (BINANCE:, BINANCE-FUT:) kinds: trades, aggTrades, bookTicker (futures only) and klines
with --interval 1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d, from Binance's public data archive
([binance] data_url, SQ_BINANCE_DATA_URL), every file checked against its published SHA-256. The
last days, not yet archived, come from the REST API for aggTrades and klines. trades and
aggTrades become market-stream trade rows, bookTicker top-of-book snapshots (sq book rebuilds
them), klines bars. Each kind has its own file per day: read one kind back with a glob, e.g.
sq book 'DIR/**/bookTicker.parquet'. --kind funding (USD-M perpetuals) writes the day's settled
funding rates from the REST API as funding.parquet, which backtest and paper replay book on
the positions held (docs/funding.md).

Zerodha (NSE:, NFO:, BSE:, MCX: …) kind candles with --interval minute|3minute|5minute|10minute|
15minute|30minute|60minute|day (or 1m … 1h, 1d), IST trading days, through Kite's historical API
(a stored `sq auth zerodha` session), split into Kite's per-request ranges at 3 requests a second;
--oi adds open interest, --continuous stitches NFO/MCX futures day candles across expiries.
Candles become bars, one file per symbol and day (candles-INTERVAL.parquet). A continuous
futures name (NFO:NIFTY-FUT) fetches the contract it stands for today (--expiry), stored under
that contract's symbol.

A day that cannot be had — not archived (e.g. before the symbol was listed), a download failing
its checksum twice, a day not over yet — is listed on stderr and left out. On a terminal a
progress bar shows days, bytes and the time left; the summary goes to stderr, and the JSON
report to stdout with --json or when stdout is not a terminal.

Exit status: 0 every day fetched or already present; 1 some days missing (listed); 2 bad usage
(unknown kind or interval for the venue, --start after --end); 69 venue unreachable; 130 Ctrl-C; 143 SIGTERM.
"""

EPILOG = """Examples:

  sq fetch BINANCE:BTCUSDT --kind aggTrades --start 2024-01-01 --end 2024-01-31 -o data

  sq fetch BINANCE:BTCUSDT BINANCE:ETHUSDT --kind klines --interval 1m --start 2024-01-01 --end 2024-01-07 -o data

  sq fetch BINANCE-FUT:BTCUSDT --kind bookTicker --start 2024-03-01 --end 2024-03-01 -o data

  sq fetch BINANCE:BTCUSDT --kind trades --start 2025-01-01 --end 2025-01-07 --json | jq .days

  sq fetch NSE:RELIANCE NSE:INFY --kind candles --interval 5minute --start 2026-01-01 --end 2026-03-31 -o data

  sq fetch NFO:NIFTY26JANFUT --kind candles --interval day --oi --start 2025-12-01 --end 2026-01-27 -o data

  sq fetch NFO:NIFTY-FUT --kind candles --interval day --continuous --start 2024-01-01 --end 2025-12-31 -o data

  sq book 'data/venue=binance/**/bookTicker.parquet' --depth 1 --format jsonl | head
"""


def fetch(
    ctx: typer.Context,
    symbols: Annotated[List[str], typer.Argument(help="Symbols of one venue, e.g. BINANCE:BTCUSDT, BINANCE-FUT:ETHUSDT, NSE:INFY or NFO:NIFTY-FUT (the current month's contract).", metavar="SYMBOL...", show_default=False, autocompletion=complete_symbols)],
    kind: Annotated[str, typer.Option("--kind", help="What to fetch: the venue's history kind (Binance: trades, aggTrades, bookTicker, klines, funding).", show_default=False)],
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD (included).", show_default=False)],
    end: Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD (included).", show_default=False)],
    interval: Annotated[Optional[str], typer.Option("--interval", help="Bar interval of a bar kind (Binance klines: 1m … 1d).", show_default=False)] = None,
    out: Annotated[Optional[str], dataset_output("Dataset directory (default: <data dir>/history).")] = None,
    oi: Annotated[bool, typer.Option("--oi", help="Zerodha candles: add open interest (futures and options).")] = False,
    continuous: Annotated[bool, typer.Option("--continuous", help="Zerodha day candles of NFO/MCX futures, stitched across expiries.")] = False,
    expiry: ExpiryOption = None,
    json_: JsonOption = False,
) -> None:
    from sq.core.datasets import parse_date
    from sq.runs.fetch import FetchOptions, run_fetch

    env = env_of(ctx)
    opts = FetchOptions(symbols=list(symbols), kind=kind, start=parse_date(start, "--start"), end=parse_date(end, "--end"),
                        interval=interval, out=out, oi=oi, continuous=continuous, expiry=expiry)
    with _Bar(env) as bar:
        report = run_fetch(env, opts, progress=bar)
    for line in report.missing_lines():
        env.warn(f"missing {line}")
    env.info(report.line())
    if json_ or not env.stdout_isatty:
        env.write_json(report.to_json())
    if report.stopped_by is not None:
        return  # stopped by a signal: sq.cli exits with its status (130 Ctrl-C, 143 SIGTERM)
    if not report.complete:
        raise typer.Exit(1)


class _Bar:
    """Days, bytes and the time left, on stderr, only when stderr is a terminal (rich)."""

    def __init__(self, env):
        self.env = env
        self.bar = None
        self.task = None

    def __enter__(self):
        if self.env.stderr_isatty and not self.env.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("sq fetch {task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("days {task.fields[size]}"),
                                TimeRemainingColumn(), console=self.env.console(stderr=True), redirect_stdout=False,
                                redirect_stderr=False, transient=True)
            self.bar.__enter__()
        return self

    def __call__(self, p) -> None:
        if self.bar is None:
            return
        from sq.runs.record import human_bytes

        if self.task is None:
            self.task = self.bar.add_task("", total=p.days_total, size="")
        self.bar.update(self.task, completed=p.days_done, description=f"{p.symbol} {p.day}".strip(), size=human_bytes(p.bytes))

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


def register(app: typer.Typer) -> None:
    app.command(name="fetch", help=HELP, epilog=EPILOG, short_help=SUMMARY)(fetch)
