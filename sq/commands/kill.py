"""`sq kill`: halt every registered paper and live process, cancel at the venues, report (README: CLI reference)."""


from typing import Annotated, Optional

import typer

from sq.commands._options import JsonOption, complete_symbols, complete_venues, env_of

SUMMARY = "Halt every paper and live run; cancel at the venues."

HELP = """Halt every running sq paper and live process and cancel every open order at every
venue with stored credentials (optionally only one venue's or one symbol's).

Each process found in the runtime registry gets SIGTERM: it cancels all its orders, seals its
journal (orders/fills/pnl Parquet) and exits 0 (sq kill marks it in the registry first: any
other SIGTERM is exit 143). Anything still running after --timeout gets
SIGKILL and is reported as not halted (its journal can be continued with --resume DIR).

At the same time, and independently of those processes (a hung sq live cannot keep orders
alive), sq kill goes to each venue whose credentials it finds (Binance keys, a Zerodha session):
it cancels every open order (Binance: cancel-all per symbol with open orders, spot and USD-M
futures; Zerodha: each open order), with --flatten also closes positions with marketable orders
no larger than the configured risk limits, then asks the venue again what is left. Each venue
market is cleaned on its own: one that fails (e.g. a Binance futures API that cannot be reached
from here) is reported with the reason while the others are still cancelled; a Binance key
without futures permission has no futures orders, so that market is skipped.

Reports a table on a terminal, one JSON document otherwise (or with --json). Never prompts.
Exit 0 when every process halted cleanly and nothing is left open, 1 when anything remains or
a venue market could not be checked."""

EPILOG = """Examples:

  sq kill

  sq kill --venue sim --json

  sq kill --symbol BINANCE:BTCUSDT

  sq kill --venue zerodha --flatten --json

  55 15 * * 1-5  sq kill --venue zerodha --flatten --json >> ~/sq-kill.log   # cron: square off before the close"""


def kill(
    ctx: typer.Context,
    venue: Annotated[Optional[str], typer.Option("--venue", help="Only processes trading on this venue (sim, binance, zerodha).", show_default=False, autocompletion=complete_venues)] = None,
    symbol: Annotated[Optional[str], typer.Option("--symbol", help="Only processes trading this symbol (e.g. SIM:DEMO).", show_default=False, autocompletion=complete_symbols)] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.05, max=60.0, help="Seconds to wait for a clean halt before SIGKILL.")] = 1.0,
    flatten: Annotated[bool, typer.Option("--flatten", help="Also close open positions at the venues (marketable orders within the risk limits).")] = False,
    json_: JsonOption = False,
) -> None:
    import time

    t0 = time.perf_counter()
    from sq.core.exits import SqError
    from sq.runs.kill import run_kill

    env = env_of(ctx)
    if symbol or venue:  # a typo must not silently cancel nothing: exit 2 naming what sq knows
        from sq.venues.registry import check_venue, parse_symbol

        venue = check_venue(venue)
        symbol = parse_symbol(symbol).canonical if symbol else None
    config, config_error = None, ""
    try:
        from sq.core.config import load_config

        config = load_config(env)
    except SqError as e:  # still halt the processes; say the venues could not be checked
        config_error = e.message
    report = run_kill(venue=venue, symbol=symbol, timeout=timeout, config=config, flatten=flatten, t0=t0)
    if config_error:
        report.venues.append({"venue": "*", "market": "", "ok": False, "canceled": 0, "error": f"config: {config_error}"})
    if json_ or not env.stdout_isatty:
        env.write_json(report.to_json())
    else:
        _table(env, report)
    n_ok = sum(1 for p in report.processes if p.ok)
    if not report.processes:
        env.info("kill: no running sq paper or live processes" + _scope(venue, symbol))
    else:
        env.info(f"kill: halted {n_ok} of {len(report.processes)} process(es) in {report.elapsed_s:.2f}s")
    for p in report.processes:
        if not p.ok:
            env.warn(f"pid {p.pid} ({p.strategy} {' '.join(p.symbols)}): {p.outcome}: {p.detail}")
    for v in report.venues:
        where = f"{v['venue']} {v.get('market', '')}".strip()
        env.info(f"kill: {where}: canceled {v.get('canceled', 0)}" + (f", flattened {len(v.get('flattened') or [])}" if flatten else ""))
        if v.get("error"):
            error = str(v["error"])
            env.warn(error if error.startswith(f"{where}:") else f"{where}: {error}")  # rows name their market already
        for o in v.get("remaining_orders") or []:
            env.warn(f"{where}: still open: {o.get('symbol')} {o.get('client_order_id') or o.get('venue_order_id')}")
        for p in v.get("remaining_positions") or []:
            env.warn(f"{where}: position left: {p.get('symbol')} {p.get('qty')}")
    if config is not None:
        from sq.runs.kill import notify_kill

        notify_kill(env, config, report)  # the config's alert URLs, after the work is done
    if not report.ok:
        raise typer.Exit(1)


def _scope(venue: str | None, symbol: str | None) -> str:
    parts = [f"venue {venue}" if venue else "", f"symbol {symbol.upper()}" if symbol else ""]
    parts = [p for p in parts if p]
    return f" ({', '.join(parts)})" if parts else ""


def _table(env, report) -> None:
    from rich.table import Table

    t = Table(title="sq kill", show_edge=False)
    for col in ("pid", "mode", "strategy", "symbols", "outcome", "seconds", "journal"):
        t.add_column(col, justify="right" if col in ("pid", "seconds") else "left")
    for p in report.processes:
        style = "green" if p.ok else "red"
        t.add_row(str(p.pid), p.mode, p.strategy, " ".join(p.symbols), f"[{style}]{p.outcome}[/]", f"{p.seconds:.3f}", p.journal)
    console = env.console()
    console.print(t if report.processes else "nothing to halt")
    if report.venues:
        vt = Table(title="venues", show_edge=False)
        for col in ("venue", "market", "canceled", "flattened", "left open", "error"):
            vt.add_column(col)
        for v in report.venues:
            left = len(v.get("remaining_orders") or []) + len(v.get("remaining_positions") or [])
            vt.add_row(v["venue"], v.get("market", ""), str(v.get("canceled", 0)), str(len(v.get("flattened") or [])),
                       f"[{'green' if v.get('ok') else 'red'}]{left}[/]", v.get("error", ""))
        console.print(vt)
    console.file.flush()


def register(app: typer.Typer) -> None:
    app.command(name="kill", help=HELP, epilog=EPILOG, short_help=SUMMARY)(kill)
