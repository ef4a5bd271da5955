"""`sq import FILE... --symbol SYMBOL -o DIR`: market data files a user already has → an sq dataset."""


from typing import Annotated, List, Optional

import typer

from sq.commands._options import JsonOption, complete_files, complete_import_formats, complete_symbols, dataset_output, env_of

SUMMARY = "Import market data files you have into a dataset."

HELP = """Import market data files you already have into a dataset every sq command reads.

Reads Tardis.dev CSV files (incremental_book_L2, trades, quotes, book_snapshot_25/5), Binance
archive files (--format binance-trades|binance-aggtrades|binance-bookticker|binance-klines) and
any CSV or Parquet file whose columns --map names (trades, quotes, or bars when it has
open/high/low/close). Without --format the format is told from the file's columns. Times may be
in s, ms, us or ns since the epoch (--ts-unit, else detected) or datetimes.

Rows land in DIR/venue=…/symbol=…/date=YYYY-MM-DD/import-<format>.parquet, one file per UTC day
and format, written atomically, with the instrument's tick and lot size in the metadata (from
--tick-size/--lot-size, else the venue, else the config's [[instruments]], else inferred from the
data with a warning). Importing the same data again replaces it: never duplicated rows. Bad input
changes nothing: exit 2 for a bad flag or unknown --format or symbol prefix, 65 for unreadable
data (a --map column the file lacks, times that are not epoch times), 66 for a missing file.
A summary line goes to stderr; --json prints the full report on stdout."""

EPILOG = """Examples:

  sq import binance_incremental_book_L2_2024-01-01_BTCUSDT.csv.gz --symbol BINANCE:BTCUSDT -o data

  sq import binance_trades_2024-01-0*.csv.gz --symbol BINANCE:BTCUSDT -o data --json

  sq import BTCUSDT-aggTrades-2024-01-01.zip --format binance-aggtrades --symbol BINANCE:BTCUSDT -o data

  sq import ticks.csv --symbol SIM:DEMO --map ts=time,price=px,qty=size,side=aggressor --ts-unit ms -o data

  sq import candles.parquet --symbol NSE:INFY --map ts=date --interval 1d --tick-size 0.05 -o daily

  sq backtest --strategy mm data
"""


def import_(
    ctx: typer.Context,
    files: Annotated[List[str], typer.Argument(help="Files to import (CSV: plain, .gz, .zst, .bz2 or a one-file .zip; Parquet).", metavar="FILE...", show_default=False, autocompletion=complete_files)],
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="The sq symbol the rows belong to, e.g. BINANCE:BTCUSDT.", show_default=False, autocompletion=complete_symbols)],
    out: Annotated[str, dataset_output("Dataset directory (created when missing).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="auto (told from the file), tardis-incremental_book_L2, tardis-trades, tardis-quotes, tardis-book_snapshot_25, tardis-book_snapshot_5, csv, parquet, binance-trades, binance-aggtrades, binance-bookticker or binance-klines.", autocompletion=complete_import_formats)] = "auto",
    mapping: Annotated[Optional[List[str]], typer.Option("--map", help="FIELD=COLUMN[,…]: the column holding each field of a csv/parquet file (ts, recv_ts, price, qty, side, buyer_maker; bid_price, bid_qty, ask_price, ask_qty; open, high, low, close, volume, trades, vwap, oi). Unnamed fields are looked for under their own name.", show_default=False)] = None,
    ts_unit: Annotated[str, typer.Option("--ts-unit", help="Unit of numeric times: s, ms, us, ns, or auto (the one unit that makes every time fall in 1980–2100).")] = "auto",
    interval: Annotated[Optional[str], typer.Option("--interval", help="Bar interval of a bars file (1m, 1h, 1d); default: the commonest step between bars.", show_default=False)] = None,
    tick_size: Annotated[Optional[float], typer.Option("--tick-size", help="The instrument's tick size (overrides the venue's).", show_default=False)] = None,
    lot_size: Annotated[Optional[float], typer.Option("--lot-size", help="The instrument's lot size (overrides the venue's).", show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    from sq.runs.importer import ImportOptions, run_import

    env = env_of(ctx)
    opts = ImportOptions(files=tuple(files), symbol=symbol, out_dir=out, fmt=fmt, mapping=tuple(mapping or ()),
                         ts_unit=ts_unit, interval=interval, tick_size=tick_size, lot_size=lot_size)
    report = run_import(env, opts)
    env.info(report.line())
    if as_json:
        env.write_json(report.to_json())


def register(app: typer.Typer) -> None:
    app.command(name="import", help=HELP, epilog=EPILOG, short_help=SUMMARY)(import_)
