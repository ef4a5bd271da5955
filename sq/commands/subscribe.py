"""`sq subscribe`: stream market events of symbols — an Arrow market stream on a pipe, a live
view on a terminal, or a file with -o. Only the simulated exchange (`SIM:`) is built in for now.
"""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from sq.commands._options import FormatOption, ForOption, LimitOption, OutputOption, SeedOption, env_of

HELP = "Stream market events (L2 levels and trades) of one or more symbols."
EPILOG = (
    "Examples:\n\n"
    "  sq subscribe SIM:DEMO --limit 20000 | sq book --depth 5\n\n"
    "  sq subscribe SIM:DEMO SIM:FOO --for 30s -o demo.parquet\n\n"
    "  sq subscribe SIM:DEMO --seed 7 --limit 1000 --format jsonl | head\n\n"
    "  sq subscribe SIM:DEMO            # live view on a terminal; Ctrl-C to stop\n\n"
    "On a pipe the output is an Arrow IPC market stream that ends with an sq trailer, also\n"
    "when stopped by Ctrl-C or SIGTERM. --limit runs the simulated exchange in simulated time\n"
    "(as fast as possible); --for, or neither option, in real time."
)


def subscribe(
    ctx: typer.Context,
    symbols: Annotated[List[str], typer.Argument(help="Symbols, e.g. SIM:DEMO (any SIM:<NAME> works).", show_default=False)],
    for_: ForOption = None,
    limit: LimitOption = None,
    seed: SeedOption = 0,
    output: OutputOption = None,
    fmt: FormatOption = "auto",
) -> None:
    env = env_of(ctx)
    from sq.core.durations import parse_duration_ns
    from sq.core.exits import UsageError
    from sq.core.streams import resolve_format
    from sq.core.symbols import parse_symbols

    parsed = parse_symbols(symbols)
    for s in parsed:
        if s.venue != "sim":
            raise UsageError(f"{s.canonical}: the {s.venue} venue adapter is not installed in this build; only SIM: symbols can be subscribed")
    duration_ns = parse_duration_ns(for_, option="--for") if for_ is not None else None
    if duration_ns is not None and duration_ns <= 0:
        raise UsageError("--for must be longer than zero")
    fmt_resolved = resolve_format(env, fmt, output)

    from sq.venues.sim import SimVenue

    clock = "sim" if (limit is not None and duration_ns is None) else "real"
    venue = SimVenue([s.canonical for s in parsed], seed=seed, clock=clock)
    live_view = output is None and env.stdout_isatty and fmt_resolved == "table" and (fmt or "auto").lower() in ("auto", "table")
    source = venue.market_source(limit=limit, duration_ns=duration_ns)

    from sq.venues.sim.run import run_live_view, run_to_writer, stop_on_signals

    with stop_on_signals(source.close):
        if live_view:
            run_live_view(env, venue, source)
        else:
            run_to_writer(env, source, output=output, fmt=fmt)


def register(app: typer.Typer) -> None:
    app.command(name="subscribe", help=HELP, epilog=EPILOG)(subscribe)
