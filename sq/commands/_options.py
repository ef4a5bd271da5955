"""Options shared by every command that writes data (the sqlite-utils habit: one definition,
the same flags everywhere)."""


from typing import Annotated, List, Optional

import typer

OutputOption = Annotated[
    Optional[str],
    typer.Option("--output", "-o", help="Write to FILE (.parquet, .arrow or .jsonl) atomically instead of stdout.", show_default=False),
]
FormatOption = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        help="auto (Arrow on a pipe, a live view on a terminal, by -o suffix), arrow, parquet, jsonl or table.",
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the simulated exchange (SIM: symbols); same seed, same market.")]
ForOption = Annotated[Optional[str], typer.Option("--for", help="Stop after this long in real time (30s, 5m, 1h).", show_default=False)]
LimitOption = Annotated[Optional[int], typer.Option("--limit", "-n", help="Stop after N events (SIM runs in simulated time, as fast as possible).", show_default=False, min=1)]


def env_of(ctx: typer.Context):
    """The injected Environment (set by the root callback)."""
    from sq.core.environment import Environment

    obj = ctx.find_root().obj
    return obj if isinstance(obj, Environment) else Environment()

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]

ModeOption = Annotated[str, typer.Option("--mode", help="Zerodha ticker mode: ltp, quote or full (5-level depth); quote and full also give trades derived from the day volume. Binance and SIM always stream full depth.")]
ExpiryOption = Annotated[
    Optional[str],
    typer.Option("--expiry", help="Which contract a continuous futures name (NFO:NIFTY-FUT) stands for: near (the nearest listed expiry), next or far (config: [zerodha] expiry, default near).", show_default=False),
]
ReplayOption = Annotated[
    Optional[str],
    typer.Option("--replay", help="Run the venue parser and book sync over a raw capture (JSON Lines from --raw) instead of the network.", show_default=False),
]

StartOption = Annotated[
    Optional[str],
    typer.Option("--start", help="Read from this UTC day on (YYYY-MM-DD): a dataset's files of earlier date= partitions are not opened.", show_default=False),
]
EndOption = Annotated[
    Optional[str],
    typer.Option("--end", help="Read up to and including this UTC day (YYYY-MM-DD): later date= partitions are not opened.", show_default=False),
]
InputsArgument = Annotated[
    Optional[List[str]],
    typer.Argument(help="Parquet files, recorded dataset dirs/globs, Arrow files, or - for stdin (the default when piped).", show_default=False),
]

MetricsOption = Annotated[
    Optional[str],
    typer.Option("--metrics", help="Serve Prometheus metrics on HOST:PORT (127.0.0.1:9108): events, orders, fills and rejections, position, PnL, tick→order and journal latency, breaker, feed (config: [monitoring] metrics).", show_default=False),
]
MetricsFileOption = Annotated[
    Optional[str],
    typer.Option("--metrics-file", help="Also write the metrics to PATH (a .prom file for node_exporter's textfile collector; rewritten every few seconds and at the end).", show_default=False),
]
AlertOption = Annotated[
    Optional[List[str]],
    typer.Option("--alert", help="Send alerts (halts, loss limits, breaker, feed, kill, errors, the end-of-run summary) to this apprise URL (tgram://, slack://, discord://, mailto://, json://…); repeatable, added to [monitoring] alerts; shown masked.", show_default=False),
]


def monitor_options(metrics, metrics_file, alerts):
    """The flags as `sq.runs.monitor.MonitorOptions`."""
    from sq.runs.monitor import MonitorOptions

    return MonitorOptions(metrics=metrics, metrics_file=metrics_file, alerts=list(alerts or []))
