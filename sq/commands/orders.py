"""`sq orders`: the open orders at the venue account(s) (docs/orders.md)."""

from typing import Annotated, List, Optional

import typer

from sq.commands._options import JsonOption, complete_symbols, complete_venues, env_of

SUMMARY = "Show the open orders at the venue accounts."
HELP = """Show the open orders at the venue account(s): of the symbols given, of the config's
instruments, or (--venue) every open order the account has there, Kite GTTs included. A table on
a terminal, JSON otherwise (or --json); -f arrow writes an Arrow IPC stream in the canonical
orders schema (docs/streams.md; the order type in `reason`). A venue that cannot be asked is
named on stderr: exit 69 when nothing could be read, 1 when some could."""

EPILOG = """Examples:

  sq orders --venue binance --config live.toml

  sq orders NSE:INFY --json"""


def orders(
    ctx: typer.Context,
    symbols: Annotated[Optional[List[str]], typer.Argument(help="Symbols to ask about (default: the config's instruments).", metavar="[SYMBOL]...", show_default=False, autocompletion=complete_symbols)] = None,
    venue: Annotated[Optional[str], typer.Option("--venue", metavar="VENUE", help="Every open order at this venue account (binance, zerodha).", show_default=False, autocompletion=complete_venues)] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", metavar="FORMAT", help="auto (a table on a terminal, JSON otherwise), table, json or arrow.")] = "auto",
    json_: JsonOption = False,
) -> None:
    from sq.commands._venueviews import venue_view

    venue_view(env_of(ctx), "orders", symbols, venue, fmt, json_)


def register(app: typer.Typer) -> None:
    app.command(name="orders", help=HELP, epilog=EPILOG, short_help=SUMMARY)(orders)
