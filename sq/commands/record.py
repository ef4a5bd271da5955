"""`sq record SYMBOL... -o DIR`: persist market data as a hive-partitioned Parquet dataset and,
when stdout is a pipe, pass the events through as the market stream (README: CLI reference)."""


from typing import Annotated, List, Optional

import typer

from sq.commands._options import (SEED_DEFAULT, AlertOption, ExpiryOption, ForOption, JsonOption, LimitOption, MetricsFileOption, MetricsOption,
                                  ModeOption, RawOption, ReplayOption, SeedOption, complete_record_formats, complete_symbols, dataset_output,
                                  env_of, monitor_options)

SUMMARY = "Record market data to a Parquet dataset."

HELP = """Record market data to a Parquet dataset; pass it through when stdout is a pipe.

Files land in DIR/venue=…/symbol=…/date=YYYY-MM-DD/part-….parquet (readable by polars, DuckDB,
Spark and every sq command). Each file is written under a hidden temp name and sealed on
rotation (--rotate, by data time), at the end, on Ctrl-C or SIGTERM, so a file under its final
name is always complete (then exit 130 after Ctrl-C, 143 after SIGTERM). When stdout is a pipe
(not a terminal, not a regular file: `> log` from cron gets no binary data; --pass-through /
--no-pass-through decide otherwise) the events also flow on as the Arrow market stream; if downstream closes or falls behind, the pass-through stops with a warning and the
recording to disk goes on. A summary of events, files and bytes goes to stderr (with --json,
the summary as one JSON document on stdout instead of the stream).

A continuous futures name (NFO:NIFTY-FUT, MCX:CRUDEOIL-FUT) records the contract it stands for
today (--expiry), under that contract's symbol; stderr and the files' instrument metadata
(continuous, expiry) say which one.
"""

EPILOG = """Examples:

  sq record SIM:DEMO -o data --for 10s

  sq record SIM:DEMO SIM:ALT -o data --limit 100000 --rotate 10m

  sq record SIM:DEMO -o data --limit 50000 | sq book --depth 5

  sq record BINANCE:BTCUSDT -o data --for 10s --raw btc-raw.jsonl

  sq record NSE:RELIANCE NSE:INFY --mode full -o data --for 6h15m

  sq record NFO:NIFTY-FUT MCX:CRUDEOIL-FUT --expiry next -o data --for 6h

  sq subscribe SIM:DEMO --limit 20000 | sq record - -o data --json

  sq book data/venue=sim --format jsonl | head
"""


def record(
    ctx: typer.Context,
    symbols: Annotated[Optional[List[str]], typer.Argument(help="Symbols to record, e.g. SIM:DEMO, NSE:INFY, NFO:NIFTY-FUT (the current month's contract); - (or none, on a pipe) records the market stream on stdin.", metavar="SYMBOL...", show_default=False, autocompletion=complete_symbols)] = None,
    out: Annotated[Optional[str], dataset_output("Dataset directory (default: <data dir>/recordings).")] = None,
    rotate: Annotated[str, typer.Option("--rotate", help="Start a new file per symbol every so much data time (10m, 1h).")] = "1h",
    for_: ForOption = None,
    limit: LimitOption = None,
    seed: SeedOption = SEED_DEFAULT,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Pass-through format on stdout: auto (Arrow), arrow, jsonl, table or none.", autocompletion=complete_record_formats)] = "auto",
    pass_through: Annotated[Optional[bool], typer.Option("--pass-through/--no-pass-through", help="Pass the events on through stdout (default: only when stdout is a pipe — never into a regular file such as a cron log).", show_default=False)] = None,
    mode: ModeOption = "full",
    raw: RawOption = None,
    replay: ReplayOption = None,
    expiry: ExpiryOption = None,
    metrics: MetricsOption = None,
    metrics_file: MetricsFileOption = None,
    alert: AlertOption = None,
    json_: JsonOption = False,
) -> None:
    from sq.runs.record import run_record

    env = env_of(ctx)
    if json_:  # stdout carries the summary, not the stream
        from sq.core.exits import UsageError

        if pass_through or fmt.lower() not in ("auto", "none"):
            raise UsageError("--json prints the summary on stdout; it does not combine with --pass-through or a pass-through --format")
        pass_through = False
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
    if json_:
        write_summary_json(env, summary)


def write_summary_json(env, summary) -> None:
    """--json: the summary as one JSON document on stdout (nothing is passed through then)."""
    import dataclasses

    env.write_json(dataclasses.asdict(summary))


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
    app.command(name="record", help=HELP, epilog=EPILOG, short_help=SUMMARY)(record)
