"""`sq order` (place / modify / cancel / list one manual order), `sq orders` and `sq positions` (docs/orders.md)."""

from typing import Annotated, List, Optional

import typer

from sq.commands._options import JsonOption, env_of

HELP = """Place, modify, cancel and list an order by hand — for the trader who needs to flatten one
position while the engines run.

A manual order goes through everything an engine order goes through: the config must say
trading_mode = "live" (else exit 78) and you confirm with --confirm-live or SQ_CONFIRM_LIVE=1
(else exit 2); secret files must be 0600 (77). Then sq's own pre-trade risk check runs — the
engine's kernel, with the account's position and working orders: order size, position, max loss,
daily loss, notional, position value, open orders, trading hours, holidays, circuit limits, order
rate (not the price band: a one-off order reads no fair price). A rejected order exits 1 with one line naming the reason and NEVER reaches
the venue. Every request is journaled first (hash-chained, <data dir>/runs/manual-<id>), client
order ids are sq's own (sq<8 hex>-<n>), and `sq kill` cancels a manual order left open.

Order types (--type): limit, market, stop-limit, stop-market, take-profit-limit,
take-profit-market, trailing-stop, oco (a take-profit at --price and a stop at --trigger, one
cancelling the other: a Binance spot order list, a Kite two-leg GTT); docs/orders.md says which
venue offers which. A market
order needs --price as the reference price the risk check values it at.

Exit: 0 sent (or listed), 1 rejected (by the risk check or the venue), 2 bad usage, 69 venue
unreachable, 77 credentials, 78 config."""

EPILOG = """Examples:

  sq order place BINANCE-FUT:BTCUSDT sell 0.01 --price 65000 --config live.toml --confirm-live

  sq order place BINANCE-FUT:BTCUSDT sell 0.01 --type stop-market --trigger 60000 --price 60000 --reduce-only --config live.toml --confirm-live

  sq order place NSE:INFY sell 10 --type stop-market --trigger 1450 --price 1450 --config live.toml --confirm-live

  sq order place BINANCE:BTCUSDT sell 0.01 --type oco --price 70000 --trigger 60000 --config live.toml --confirm-live

  sq order modify sq1a2b3c4d-1 --price 65100 --config live.toml --confirm-live

  sq order cancel --all --symbol BINANCE:BTCUSDT --config live.toml --confirm-live

  sq order list --json"""

ORDERS_HELP = """The open orders at the venue account(s): of the symbols given, of the config's
instruments, or (--venue) every open order the account has there. A table on a terminal, JSON
otherwise (or --json); -f arrow writes an Arrow IPC stream in the canonical orders schema
(docs/streams.md; the order type in `reason`)."""

ORDERS_EPILOG = """Examples:

  sq orders --venue binance --config live.toml

  sq orders NSE:INFY --json

  sq orders --venue zerodha -f arrow | sq report -"""

POSITIONS_HELP = """Positions (futures, Zerodha) and balances (Binance spot) at the venue
account(s). A table on a terminal, JSON otherwise (or --json); -f arrow writes an Arrow IPC
stream (venue, symbol, qty, avg_price, realized)."""

POSITIONS_EPILOG = """Examples:

  sq positions --venue binance --config live.toml

  sq positions NSE:INFY --json"""

order_app = typer.Typer(help=HELP, epilog=EPILOG, no_args_is_help=True)

ConfigOpt = Annotated[Optional[str], typer.Option("--config", help="Config file with trading_mode = \"live\" (also: sq --config FILE order …, $SQ_CONFIG).", show_default=False)]
ConfirmOpt = Annotated[bool, typer.Option("--confirm-live", help="Confirm that a real order may be sent (or SQ_CONFIRM_LIVE=1).")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="auto (a table on a terminal, JSON otherwise), table, json or arrow.")]


def _config(ctx: typer.Context, path: Optional[str]):
    from sq.core.config import load_config

    env = env_of(ctx)
    if path:
        env.config_path = path
    return env, load_config(env)


def _nan(v: Optional[float]) -> float:
    return float("nan") if v is None else float(v)


@order_app.command("place", help="Risk-check, journal and send one order (see sq order --help).", epilog=EPILOG)
def place(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="The symbol (BINANCE:BTCUSDT, BINANCE-FUT:BTCUSDT, NSE:INFY).", show_default=False)],
    side: Annotated[str, typer.Argument(help="buy or sell.", show_default=False)],
    qty: Annotated[float, typer.Argument(help="Quantity (base units, shares).", show_default=False)],
    price: Annotated[Optional[float], typer.Option("--price", help="Limit price (for market orders: the reference price of the risk check).", show_default=False)] = None,
    market: Annotated[bool, typer.Option("--market", help="A market order (same as --type market).")] = False,
    order_type: Annotated[Optional[str], typer.Option("--type", help="limit, market, stop-limit, stop-market, take-profit-limit, take-profit-market, trailing-stop, oco.", show_default=False)] = None,
    trigger: Annotated[Optional[float], typer.Option("--trigger", help="Trigger price of a stop or take-profit.", show_default=False)] = None,
    reduce_only: Annotated[bool, typer.Option("--reduce-only", help="Only reduce a position (futures).")] = False,
    tif: Annotated[str, typer.Option("--tif", help="Time in force: gtc or ioc.")] = "gtc",
    trail: Annotated[Optional[float], typer.Option("--trail", help="trailing-stop callback rate, % (Binance futures).", show_default=False)] = None,
    activation: Annotated[Optional[float], typer.Option("--activation", help="trailing-stop activation price.", show_default=False)] = None,
    mark: Annotated[bool, typer.Option("--mark", help="Trigger on the mark price instead of the last trade (Binance futures).")] = False,
    journal: Annotated[Optional[str], typer.Option("--journal", help="Journal directory (default <data dir>/runs/manual-<id>).", show_default=False)] = None,
    config: ConfigOpt = None,
    confirm_live: ConfirmOpt = False,
    json_: JsonOption = False,
) -> None:
    from sq.core.exits import UsageError
    from sq.runs import order as R

    env, cfg = _config(ctx, config)
    kind = (order_type or ("market" if market else "limit")).strip().lower()
    if market and kind != "market":
        raise UsageError("--market and --type disagree; give one")
    if tif not in ("gtc", "ioc"):
        raise UsageError(f"--tif must be gtc or ioc; got {tif!r}")
    spec = R.OrderSpec(symbol, R.parse_side(side), qty, _nan(price), kind, _nan(trigger), reduce_only, tif, _nan(trail), _nan(activation),
                       "mark" if mark else "contract")
    doc = R.place(env, cfg, spec, confirm=confirm_live, journal_dir=journal)
    _report(env, doc, json_)


@order_app.command("modify", help="Change an open order's price and/or quantity (risk-checked again).", epilog=EPILOG)
def modify(
    ctx: typer.Context,
    order_id: Annotated[str, typer.Argument(help="The client order id sq order printed (or the venue's order id).", show_default=False)],
    price: Annotated[Optional[float], typer.Option("--price", help="New limit price.", show_default=False)] = None,
    qty: Annotated[Optional[float], typer.Option("--qty", help="New total quantity.", show_default=False)] = None,
    symbol: Annotated[Optional[str], typer.Option("--symbol", help="The symbol, for an order not placed by sq order.", show_default=False)] = None,
    config: ConfigOpt = None,
    confirm_live: ConfirmOpt = False,
    json_: JsonOption = False,
) -> None:
    from sq.runs import order as R

    env, cfg = _config(ctx, config)
    _report(env, R.modify(env, cfg, order_id, price=price, qty=qty, symbol=symbol, confirm=confirm_live), json_)


@order_app.command("cancel", help="Cancel one order, or --all that sq order placed (on --symbol only).", epilog=EPILOG)
def cancel(
    ctx: typer.Context,
    order_id: Annotated[Optional[str], typer.Argument(help="The client order id (or the venue's order id).", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every open order sq order placed.")] = False,
    symbol: Annotated[Optional[str], typer.Option("--symbol", help="Only this symbol (with --all), or the symbol of an order not placed by sq order.", show_default=False)] = None,
    config: ConfigOpt = None,
    confirm_live: ConfirmOpt = False,
    json_: JsonOption = False,
) -> None:
    from sq.runs import order as R

    env, cfg = _config(ctx, config)
    doc = R.cancel(env, cfg, order_id, all_=all_, symbol=symbol, confirm=confirm_live)
    if json_ or not env.stdout_isatty:
        env.write_json(doc)
    else:
        _rows_table(env, "sq order cancel", doc["orders"], ORDER_COLS)
    env.info(f"order: canceled {doc['canceled']} of {len(doc['orders'])} order(s)")


@order_app.command("list", help="The orders sq order placed, as their journals last saw them (no venue is asked).", epilog=EPILOG)
def list_(ctx: typer.Context, json_: JsonOption = False) -> None:
    from sq.runs import order as R

    env = env_of(ctx)
    rows = R.list_manual()
    if json_ or not env.stdout_isatty:
        env.write_json(rows)
    else:
        for r in rows:
            r["side"] = "buy" if r.get("side", 0) > 0 else "sell"
            r["status"] = r.get("event", "")
        _rows_table(env, "sq order list", rows, ORDER_COLS)


def _report(env, doc: dict, json_: bool) -> None:
    if json_ or not env.stdout_isatty:
        env.write_json(doc)
    else:
        _rows_table(env, f"sq order {doc['action']}", [doc], ORDER_COLS)
    env.info(f"order {doc['client_order_id']}: {doc['status']} ({doc['symbol']} {doc['side']} {doc['qty']:g}); journal {doc['journal']}")


ORDER_COLS = (("client_order_id", "id", 1000), ("symbol", "symbol", 1000), ("side", "side", 1000), ("qty", "qty", 1000),
              ("price", "price", 1000), ("filled_qty", "filled", 60), ("status", "status", 1000), ("type", "type", 50),
              ("trigger_price", "trigger", 40), ("venue", "venue", 30), ("venue_order_id", "venue id", 20), ("reason", "reason", 10))
POSITION_COLS = (("venue", "venue", 30), ("symbol", "symbol", 1000), ("qty", "qty", 1000), ("avg_price", "avg price", 1000),
                 ("realized", "realized", 40), ("unrealized", "unrealized", 50), ("mark_price", "mark", 45))


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if v != v else f"{v:g}"
    return str(v)


def _rows_table(env, title: str, rows: list[dict], cols) -> None:
    from sq.commands._tables import Col, fitted_table

    console = env.console()
    if not rows:
        console.print(f"{title}: nothing")
        return
    columns = [Col(header, keep, "right" if key in ("qty", "price", "filled_qty", "avg_price", "realized", "unrealized", "mark_price", "trigger_price") else "left")
               for key, header, keep in cols]
    console.print(fitted_table(console, columns, [[_cell(r.get(key)) for key, _, _ in cols] for r in rows], title=title, show_edge=False))
    console.file.flush()


def _venue_view(ctx, what: str, symbols, venue, config, fmt: str, json_: bool) -> None:
    from sq.core.exits import UsageError
    from sq.runs import order as R

    env, cfg = _config(ctx, config)
    if venue:
        from sq.venues.registry import check_venue

        venue = check_venue(venue)
    fmt = "json" if json_ else fmt.strip().lower()
    if fmt not in ("auto", "table", "json", "arrow"):
        raise UsageError(f"--format must be auto, table, json or arrow; got {fmt!r}")
    result = R.view(env, cfg, what, symbols=list(symbols or []), venue=venue)
    if fmt == "auto":
        fmt = "table" if env.stdout_isatty else "json"
    if fmt == "arrow":
        import pyarrow.ipc as ipc

        table = R.orders_table(result.rows) if what == "orders" else R.positions_table(result.rows)
        with ipc.new_stream(env.stdout, table.schema) as writer:
            writer.write_table(table)
        env.stdout.flush()
    elif fmt == "json":
        env.write_json({what: result.rows, "errors": result.errors})
    else:
        _rows_table(env, f"sq {what}", result.rows, ORDER_COLS if what == "orders" else POSITION_COLS)
    for v, message in result.errors.items():
        env.warn(f"{what}: {v}: {message}")
    if result.errors:
        raise typer.Exit(69 if not result.rows else 1)


def orders(
    ctx: typer.Context,
    symbols: Annotated[Optional[List[str]], typer.Argument(help="Symbols to ask about (default: the config's instruments).", show_default=False)] = None,
    venue: Annotated[Optional[str], typer.Option("--venue", help="Every open order at this venue account (binance, zerodha).", show_default=False)] = None,
    config: ConfigOpt = None,
    fmt: FormatOpt = "auto",
    json_: JsonOption = False,
) -> None:
    _venue_view(ctx, "orders", symbols, venue, config, fmt, json_)


def positions(
    ctx: typer.Context,
    symbols: Annotated[Optional[List[str]], typer.Argument(help="Symbols whose venue to ask (default: the config's instruments).", show_default=False)] = None,
    venue: Annotated[Optional[str], typer.Option("--venue", help="This venue account (binance, zerodha).", show_default=False)] = None,
    config: ConfigOpt = None,
    fmt: FormatOpt = "auto",
    json_: JsonOption = False,
) -> None:
    _venue_view(ctx, "positions", symbols, venue, config, fmt, json_)


def register(app: typer.Typer) -> None:
    app.add_typer(order_app, name="order")
    app.command(name="orders", help=ORDERS_HELP, epilog=ORDERS_EPILOG)(orders)
    app.command(name="positions", help=POSITIONS_HELP, epilog=POSITIONS_EPILOG)(positions)
