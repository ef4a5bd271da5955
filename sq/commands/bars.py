"""`sq bars INTERVAL`: OHLCV bars from a market stream or dataset (docs/streams.md "bars")."""


from typing import Annotated, Optional

import typer

from sq.commands._options import EndOption, FormatOption, InputsArgument, OutputOption, StartOption, complete_files, env_of

SUMMARY = "Make OHLCV bars from a market stream or dataset."
INTERVALS = ("1s", "5s", "1m", "5m", "15m", "1h", "4h", "1d", "session", "500t", "100v")

HELP = """Make bars from a market stream or recorded dataset and emit the bars stream: per symbol and
interval open, high, low, close, volume, trade count and VWAP.

INTERVAL: time bars 1s, 5s, 1m, 5m, 15m, 1h, 4h, 1d … (any N with s, m, h or d; aligned to the
epoch, UTC, each labelled by its open); session (one bar per day of the symbol's regular trading
session: NSE, BSE and NFO 09:15–15:30 IST; markets that trade around the clock, the UTC day);
500t (every N trades); 100v (every N units of volume: a trade that crosses the boundary is split,
the rest opens the next bar).

Prices come from a symbol's trades (Zerodha quote and full streams: trades derived from the day
volume); until its first trade a symbol uses its tick last prices (volume 0, no trades or VWAP:
Zerodha ltp streams, indices), and one with neither its book's mid price. Bars
cross batch boundaries; a time bar is written once the stream's clock passes its end, the last
ones at the end of the input. Other stream kinds than market are exit 65."""

EPILOG = """Examples:

  sq subscribe SIM:DEMO --limit 100000 | sq bars 1m --format table

  sq bars 5m data/venue=sim -o bars-5m.parquet

  sq bars session data/venue=zerodha --start 2024-06-03 --end 2024-06-07 --format jsonl

  sq bars 500t trades.parquet -o ticks.parquet

  sq bars 100v data --start 2024-01-08 -o volume.arrow

  sq bars 1d data/venue=zerodha --adjust corporate-actions.csv -o daily-adjusted.parquet"""

TABLE_COLUMNS = ["ts", "symbol", "open", "high", "low", "close", "volume", "trades", "vwap"]


def bars(
    ctx: typer.Context,
    interval: Annotated[str, typer.Argument(help="1s … 1d (N with s, m, h or d), session, 500t (trades) or 100v (volume).", metavar="INTERVAL", autocompletion=lambda incomplete: [i for i in INTERVALS if i.startswith(incomplete)])],
    inputs: InputsArgument = None,
    start: StartOption = None,
    end: EndOption = None,
    output: OutputOption = None,
    fmt: FormatOption = "auto",
    adjust: Annotated[Optional[str], typer.Option("--adjust", help="Back-adjust NSE/BSE equity bars for the splits, bonuses and dividends in this CSV (docs/corporate-actions.md).", metavar="FILE", show_default=False, autocompletion=complete_files)] = None,
) -> None:
    from sq.commands._progress import RowProgress
    from sq.core.bars import BAR_SESSION, parse_interval
    from sq.core.barstream import BARS_INPUT_COLUMNS, build_bars
    from sq.core.corporate import adjust_bars
    from sq.runs.marketprep import load_adjustments
    from sq.core.datasets import parse_window
    from sq.core.streams import StreamWriter, open_input

    env = env_of(ctx)
    spec = parse_interval(interval)
    first, last = parse_window(start, end)
    session_of = None
    if spec.mode == BAR_SESSION:
        from sq.venues.registry import trading_session

        session_of = trading_session
    actions = load_adjustments(adjust)  # a bad file fails before any data is read
    source = open_input(env, inputs, "market", columns=BARS_INPUT_COLUMNS, start=first, end=last)
    # a bar on a terminal stderr while the bars go to a file or a pipe (not over a terminal table)
    with RowProgress(env, "bars", source.total_rows, unit="events", enabled=not env.stdout_isatty) as progress:
        build_bars(env, source.counted(progress), lambda schema: StreamWriter(env, schema, output=output, fmt=fmt, table_columns=TABLE_COLUMNS,
                                                                              table_dates=True), spec,
                   session_of=session_of, adjust=(lambda table: adjust_bars(table, actions)) if actions is not None else None)


def register(app: typer.Typer) -> None:
    app.command(name="bars", help=HELP, epilog=EPILOG, short_help=SUMMARY)(bars)
