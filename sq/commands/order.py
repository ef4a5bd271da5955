"""`sq order place|modify|cancel|list`: one order by hand, through sq's risk checks and journal (docs/orders.md)."""

from typing import Annotated, List, Optional

import typer

from sq.commands._options import JsonOption, complete_symbols, env_of

SUMMARY = "Place, modify, cancel or list an order by hand."
HELP = """Place, modify, cancel and list an order by hand — for the trader who needs to flatten one
position while the engines run.

  sq order place SYMBOL buy|sell QTY [--price P | --market] [--type TYPE] [--trigger P] ...
  sq order modify ID [--price P] [--qty Q] [--trigger P]
  sq order cancel ID | --all [--symbol SYMBOL]
  sq order list

A manual order goes through everything an engine order goes through: the config must say
trading_mode = "live" (else exit 78) and you confirm with --confirm-live or SQ_CONFIRM_LIVE=1
(else exit 2); secret files must be 0600 (77). Then sq's own pre-trade risk check runs — the
engine's kernel, with the account's position and working orders: order size, position, max loss,
daily loss, notional, position value, open orders, trading hours, holidays, circuit limits, order
rate (not the price band: a one-off order reads no fair price). A rejected order exits 1 with one
line naming the reason and NEVER reaches the venue. Every request is journaled first
(hash-chained, <data dir>/runs/manual-<id>), client order ids are sq's own (sq<8 hex>-<n>), and
sq kill cancels a manual order left open.

Order types (--type): limit, market, stop-limit, stop-market, take-profit-limit,
take-profit-market, trailing-stop, oco (a take-profit at --price and a stop at --trigger, one
cancelling the other: a Binance spot order list, a Kite two-leg GTT); docs/orders.md says which
venue offers which. A market order needs --price as the reference price the risk check values
it at. list reads the journals only (no venue, no confirmation).

Exit: 0 sent (or listed), 1 rejected (by the risk check or the venue), 2 bad usage, 69 venue
unreachable, 77 credentials, 78 config."""

EPILOG = """Examples:

  sq order place BINANCE-FUT:BTCUSDT sell 0.01 --price 65000 --config live.toml --confirm-live

  sq order place BINANCE-FUT:BTCUSDT sell 0.01 --type stop-market --trigger 60000 --price 60000 --reduce-only --config live.toml --confirm-live

  sq order place BINANCE:BTCUSDT sell 0.01 --type oco --price 70000 --trigger 60000 --config live.toml --confirm-live

  sq order place NSE:INFY sell 10 --type stop-market --trigger 1450 --price 1450 --config live.toml --confirm-live

  sq order modify sq1a2b3c4d-1 --price 65100 --config live.toml --confirm-live

  sq order cancel --all --symbol BINANCE:BTCUSDT --config live.toml --confirm-live

  sq order list --json"""

ACTIONS = ("place", "modify", "cancel", "list")


def _nan(v: Optional[float]) -> float:
    return float("nan") if v is None else float(v)


def order(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help="place, modify, cancel or list.", metavar="place|modify|cancel|list", show_default=False,
                                          autocompletion=lambda incomplete: [a for a in ACTIONS if a.startswith(incomplete)])],
    args: Annotated[Optional[List[str]], typer.Argument(help="place: SYMBOL buy|sell QTY; modify: ID; cancel: ID (or --all).", metavar="[ARGS]...",
                                                        show_default=False, autocompletion=complete_symbols)] = None,
    price: Annotated[Optional[float], typer.Option("--price", metavar="P", help="Limit price (a take-profit's for oco; a market order's reference price for the risk check).", show_default=False)] = None,
    market: Annotated[bool, typer.Option("--market", help="A market order (same as --type market).")] = False,
    order_type: Annotated[Optional[str], typer.Option("--type", metavar="TYPE", help="limit, market, stop-limit, stop-market, take-profit-limit, take-profit-market, trailing-stop, oco.", show_default=False)] = None,
    trigger: Annotated[Optional[float], typer.Option("--trigger", metavar="P", help="Trigger price of a stop or take-profit (an oco's stop); modify: the new trigger.", show_default=False)] = None,
    reduce_only: Annotated[bool, typer.Option("--reduce-only", help="Only reduce a position (Binance futures).")] = False,
    tif: Annotated[str, typer.Option("--tif", metavar="gtc|ioc", help="Time in force.")] = "gtc",
    trail: Annotated[Optional[float], typer.Option("--trail", metavar="PCT", help="trailing-stop callback rate, % (Binance futures: 0.1–10).", show_default=False)] = None,
    activation: Annotated[Optional[float], typer.Option("--activation", metavar="P", help="trailing-stop activation price.", show_default=False)] = None,
    mark: Annotated[bool, typer.Option("--mark", help="Trigger on the mark price instead of the last trade (Binance futures).")] = False,
    qty: Annotated[Optional[float], typer.Option("--qty", metavar="Q", help="modify: the new total quantity.", show_default=False)] = None,
    symbol: Annotated[Optional[str], typer.Option("--symbol", metavar="SYMBOL", help="cancel --all: only this symbol; modify/cancel: the symbol of an order sq order did not place.", show_default=False, autocompletion=complete_symbols)] = None,
    all_: Annotated[bool, typer.Option("--all", help="cancel: every open order sq order placed.")] = False,
    journal: Annotated[Optional[str], typer.Option("--journal", metavar="DIR", help="place: the journal directory (default <data dir>/runs/manual-<id>).", show_default=False)] = None,
    confirm_live: Annotated[bool, typer.Option("--confirm-live", help="Confirm that a real order may be sent (or SQ_CONFIRM_LIVE=1).")] = False,
    json_: JsonOption = False,
) -> None:
    from sq.core.exits import UsageError
    from sq.runs import order as R

    env = env_of(ctx)
    words = list(args or [])
    if action not in ACTIONS:
        raise UsageError(f"sq order: the action is one of {', '.join(ACTIONS)}; got {action!r}")
    if action == "list":
        if words:
            raise UsageError("sq order list takes no arguments")
        return _list(env, R.list_manual(), json_)
    from sq.core.config import load_config

    config = load_config(env)
    if action == "place":
        if len(words) != 3:
            raise UsageError("sq order place takes SYMBOL buy|sell QTY (e.g. sq order place BINANCE:BTCUSDT sell 0.01 --price 65000)")
        try:
            quantity = float(words[2])
        except ValueError:
            raise UsageError(f"quantity must be a number; got {words[2]!r}") from None
        kind = (order_type or ("market" if market else "limit")).strip().lower()
        if market and kind != "market":
            raise UsageError("--market and --type disagree; give one")
        if tif not in ("gtc", "ioc"):
            raise UsageError(f"--tif must be gtc or ioc; got {tif!r}")
        spec = R.OrderSpec(words[0], R.parse_side(words[1]), quantity, _nan(price), kind, _nan(trigger), reduce_only, tif, _nan(trail),
                           _nan(activation), "mark" if mark else "contract")
        return _report(env, R.place(env, config, spec, confirm=confirm_live, journal_dir=journal), json_)
    if action == "modify":
        if len(words) != 1:
            raise UsageError("sq order modify takes one order id (what sq order place printed)")
        return _report(env, R.modify(env, config, words[0], price=price, qty=qty, trigger=trigger, symbol=symbol, confirm=confirm_live), json_)
    if len(words) > 1:
        raise UsageError("sq order cancel takes one order id, or --all")
    doc = R.cancel(env, config, words[0] if words else None, all_=all_, symbol=symbol, confirm=confirm_live)
    from sq.commands._venueviews import ORDER_COLS, rows_table

    if json_ or not env.stdout_isatty:
        env.write_json(doc)
    else:
        rows_table(env, "sq order cancel", doc["orders"], ORDER_COLS)
    env.info(f"order: canceled {doc['canceled']} of {len(doc['orders'])} order(s)")


def _list(env, rows: list[dict], json_: bool) -> None:
    from sq.commands._venueviews import ORDER_COLS, rows_table

    if json_ or not env.stdout_isatty:
        env.write_json(rows)
        return
    for r in rows:
        r["side"] = "buy" if r.get("side", 0) > 0 else "sell"
        r["status"] = r.get("event", "")
    rows_table(env, "sq order list", rows, ORDER_COLS)


def _report(env, doc: dict, json_: bool) -> None:
    from sq.commands._venueviews import ORDER_COLS, rows_table

    if json_ or not env.stdout_isatty:
        env.write_json(doc)
    else:
        rows_table(env, f"sq order {doc['action']}", [doc], ORDER_COLS)
    env.info(f"order {doc['client_order_id']}: {doc['status']} ({doc['symbol']} {doc['side']} {doc['qty']:g}); journal {doc['journal']}")


def register(app: typer.Typer) -> None:
    app.command(name="order", help=HELP, epilog=EPILOG, short_help=SUMMARY)(order)
