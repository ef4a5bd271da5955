"""`sq reconcile`: journal versus venue — orders, fills, positions (README: CLI reference)."""


from typing import Annotated, Optional

import typer

from sq.commands._options import JsonOption, complete_files, complete_venues, env_of

SUMMARY = "Check a run's journal against the venue."

HELP = """Check that a run's journal agrees with the venue: missing orders and fills, and quantity,
price and side differences within --tolerance.

Without --journal every run under <data dir>/runs whose journal changed within --since is
checked; --journal DIR checks one run (or every run under DIR). Runs on a real venue (binance,
zerodha) are compared with the venue's open orders, order states (by client order id) and the
account's trades, asking only the markets the journal names (a BINANCE: spot run needs no
access to Binance's futures API); paper runs on SIM: are checked against themselves (fills vs
orders vs PnL marks), since their simulated venue lived and died inside the paper process.

--fix adopts the venue's truth into the journal (order states, missing fills) and appends an audit
record naming every change; the journal stays hash-chained. A table on a terminal, one JSON
document otherwise (or with --json). Never prompts. Exit 0 when everything agrees, 1 on any
difference, 69 when a venue cannot be reached, 77 without credentials."""

EPILOG = """Examples:

  sq reconcile

  sq reconcile --journal ~/.local/share/sq/runs/20260125T093000Z-3f9a00 --json

  sq reconcile --venue binance --tolerance 1e-8

  sq reconcile --journal runs/crashed --fix

  30 23 * * 1-5  sq reconcile --json > ~/sq-reconcile.json || mail -s 'sq: books differ' ops@example.com < ~/sq-reconcile.json"""


def reconcile(
    ctx: typer.Context,
    venue: Annotated[Optional[str], typer.Option("--venue", help="Only runs on this venue (sim, binance, zerodha).", show_default=False, autocompletion=complete_venues)] = None,
    journal: Annotated[Optional[str], typer.Option("--journal", help="A run's journal directory, or a directory of runs (default: recent runs in <data dir>/runs).", show_default=False, autocompletion=complete_files)] = None,
    fix: Annotated[bool, typer.Option("--fix", help="Adopt the venue's truth into the journal, with an audit record.")] = False,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest absolute quantity/price difference that still agrees.")] = 1e-9,
    since: Annotated[str, typer.Option("--since", help="Without --journal: runs whose journal changed within this long (24h, 7d).")] = "24h",
    json_: JsonOption = False,
) -> None:
    from sq.core.durations import parse_duration_ns
    from sq.runs.reconcile import ReconcileOptions, run_reconcile

    from sq.venues.registry import check_venue

    env = env_of(ctx)
    opts = ReconcileOptions(venue=check_venue(venue), journal=journal, fix=fix, tolerance=tolerance,
                            since_s=parse_duration_ns(since, option="--since") / 1e9)
    report = run_reconcile(env, opts)
    if json_ or not env.stdout_isatty:
        env.write_json(report.to_json())
    else:
        _table(env, report)
    n = len(report.differences)
    fixed = sum(r.fixed for r in report.runs)
    env.info(f"reconcile: {len(report.runs)} run(s), {n} difference(s)" + (f", {fixed} adopted from the venue" if fix else "")
             + f" in {report.elapsed_s:.2f}s")
    for r in report.runs:
        if r.error:
            env.warn(f"run {r.run}: {r.error}")
    if not report.ok:
        raise typer.Exit(1)


def _table(env, report) -> None:
    from rich.table import Table

    console = env.console()
    t = Table(title="sq reconcile", show_edge=False)
    for col in ("run", "venue", "orders", "fills", "checked", "differences"):
        t.add_column(col, justify="right" if col in ("orders", "fills", "differences") else "left")
    for r in report.runs:
        n = len(r.differences)
        t.add_row(r.run, r.venue, str(r.orders), str(r.fills), r.checked, f"[{'green' if not n and not r.error else 'red'}]{n}[/]")
    console.print(t if report.runs else "no runs to reconcile")
    if report.differences:
        d = Table(title="differences", show_edge=False)
        for col in ("run", "kind", "symbol", "client id", "trade", "journal", "venue", "detail"):
            d.add_column(col)
        for x in report.differences:
            d.add_row(x.run, x.kind, x.symbol, x.client_order_id, x.trade_id, str(x.journal), str(x.venue), x.detail)
        console.print(d)
    console.file.flush()


def register(app: typer.Typer) -> None:
    app.command(name="reconcile", help=HELP, epilog=EPILOG, short_help=SUMMARY)(reconcile)
