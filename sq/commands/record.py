"""`sq record SYMBOL... --out DIR`: persist market data as a hive-partitioned Parquet dataset and,
when stdout is a pipe, pass the events through as the market stream (README: CLI reference)."""


from typing import Annotated, List, Optional

import typer

from sq.commands._options import (AlertOption, ExpiryOption, ForOption, LimitOption, MetricsFileOption, MetricsOption, ModeOption, ReplayOption,
                                  SeedOption, env_of, monitor_options)

HELP = """Record market data to a Parquet dataset; pass it through when stdout is a pipe.

Files land in DIR/venue=…/symbol=…/date=YYYY-MM-DD/part-….parquet (readable by polars, DuckDB,
Spark and every sq command). Each file is written under a hidden temp name and sealed on
rotation (--rotate, by data time), at the end, on Ctrl-C or SIGTERM, so a file under its final
name is always complete (then exit 130 after Ctrl-C, 143 after SIGTERM). When stdout is a pipe
(not a terminal, not a regular file: `> log` from cron gets no binary data; --pass-through /
--no-pass-through decide otherwise) the events also flow on as the Arrow market stream; if downstream closes or falls behind, the pass-through stops with a warning and the
recording to disk goes on. A summary of events, files and bytes goes to stderr.

A continuous futures name (NFO:NIFTY-FUT, MCX:CRUDEOIL-FUT) records the contract it stands for
today (--expiry), under that contract's symbol; stderr and the files' instrument metadata
(continuous, expiry) say which one.
"""

EPILOG = """Examples:

  sq record SIM:DEMO --out data --for 1m

  sq record SIM:DEMO SIM:ALT --out data --limit 100000 --rotate 10m

  sq record SIM:DEMO --out data --for 1h | sq book --depth 5

  sq record BINANCE:BTCUSDT --out data --raw --rotate 1h

  sq record NSE:RELIANCE NSE:INFY --mode full --out data --for 6h15m

  sq record NFO:NIFTY-FUT MCX:CRUDEOIL-FUT --expiry next --out data --for 6h

  sq subscribe SIM:DEMO --limit 20000 | sq record - --out data

  sq book data/venue=sim --format jsonl | head
"""


def record(
    ctx: typer.Context,
    symbols: Annotated[Optional[List[str]], typer.Argument(help="Symbols to record, e.g. SIM:DEMO, NSE:INFY, NFO:NIFTY-FUT (the current month's contract); - (or none, on a pipe) records the market stream on stdin.", metavar="SYMBOL", show_default=False)] = None,
    out: Annotated[Optional[str], typer.Option("--out", help="Dataset directory (default: <data dir>/recordings).", show_default=False)] = None,
    rotate: Annotated[str, typer.Option("--rotate", help="Start a new file per symbol every so much data time (10m, 1h).")] = "1h",
    for_: ForOption = None,
    limit: LimitOption = None,
    seed: SeedOption = 1,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Pass-through format on stdout: auto (Arrow), arrow, jsonl, table or none.")] = "auto",
    pass_through: Annotated[Optional[bool], typer.Option("--pass-through/--no-pass-through", help="Pass the events on through stdout (default: only when stdout is a pipe — never into a regular file such as a cron log).", show_default=False)] = None,
    mode: ModeOption = "full",
    raw: Annotated[bool, typer.Option("--raw", help="Also keep the venue's raw frames and REST answers as JSON Lines under DIR/raw/ (for sq subscribe --replay).")] = False,
    replay: ReplayOption = None,
    expiry: ExpiryOption = None,
    metrics: MetricsOption = None,
    metrics_file: MetricsFileOption = None,
    alert: AlertOption = None,
) -> None:
    from sq.runs.record import run_record

    env = env_of(ctx)
    progress = _progress_line(env) if env.stderr_isatty and not env.quiet else None
    try:
        summary = run_record(env, symbols or [], out=out, rotate=rotate, for_=for_, limit=limit, seed=seed, fmt=fmt, pass_through=pass_through, mode=mode,
                             raw=raw, replay=replay, expiry=expiry, progress=progress,
                             monitor=monitor_options(metrics, metrics_file, alert))
    finally:
        if progress is not None:
            env.stderr.write("\r\x1b[2K")
            env.stderr.flush()
    env.info(summary.line())  # the exit status of a stop by signal: sq.cli (README: Exit codes)


def _progress_line(env):
    """One self-overwriting status line on a terminal stderr (never stdout), redrawn by the
    recorder at most 4 times a second: events and their rate, files sealed, bytes written."""
    from sq.core.formatting import format_count
    from sq.runs.record import human_bytes

    def show(s) -> None:
        rate = s.events / s.elapsed_s if s.elapsed_s > 0 else 0.0
        sealed = len(s.files)
        env.stderr.write(f"\r\x1b[2Ksq record: {format_count(s.events)} events ({format_count(rate)}/s), "
                         f"{format_count(sealed)} file{'' if sealed == 1 else 's'} sealed, {human_bytes(max(s.bytes_written, s.bytes))} written")
        env.stderr.flush()

    return show


def register(app: typer.Typer) -> None:
    app.command(name="record", help=HELP, epilog=EPILOG)(record)
