"""`sq status`: every running record, paper and live process and whether it is healthy (README: CLI reference)."""


from typing import Annotated

import typer

from sq.commands._options import JsonOption, env_of

SUMMARY = "Show every running record, paper and live run and its health."

HELP = """Show every running sq record, paper and live process: strategy, symbols, uptime, age
of the last market event, position, PnL (gross, costs, net), working orders, circuit breaker,
and each venue's stored credentials with their expiry.

Reads the runtime registry and the heartbeat each run rewrites about once a second; it never
talks to a running process, so it cannot block one. A run is unhealthy when its market data or
its heartbeat is older than --stale-after (a stalled feed, a hung loop), its feed is down, its
circuit breaker is open, its strategy is halted (a loss limit), or its venue's token expired.

A table on a terminal, one JSON document otherwise (or with --json). Exit 0 when every run is
healthy (or none runs), 1 when any is not — for cron and monitoring."""

EPILOG = """Examples:

  sq status

  sq status --json

  sq status --stale-after 2m

  */5 9-15 * * 1-5  sq status --json >> ~/sq-status.log || notify-send 'sq: a run is unhealthy'   # cron"""


def status(
    ctx: typer.Context,
    stale_after: Annotated[str, typer.Option("--stale-after", metavar="DURATION", help="A run whose market data or heartbeat is older than this is unhealthy (30s, 2m).")] = "30s",
    json_: JsonOption = False,
) -> None:
    from sq.core.durations import parse_duration_ns
    from sq.core.exits import UsageError
    from sq.runs.status import as_json, collect

    env = env_of(ctx)
    stale_ns = parse_duration_ns(stale_after, option="--stale-after")
    if stale_ns <= 0:
        raise UsageError("--stale-after must be longer than zero (e.g. 30s)")
    doc = collect(env, stale_after_s=stale_ns / 1e9)
    if json_ or not env.stdout_isatty:
        env.write_json(as_json(doc))
    else:
        _table(env, doc)
    for r in doc["runs"]:
        if not r.healthy:
            env.warn(f"pid {r.pid} ({r.mode} {r.strategy or ''} {' '.join(r.symbols)}): {r.health}".replace("  ", " "))
    if not doc["healthy"]:
        raise typer.Exit(1)


def _age(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.1f}s"
    return f"{s / 60:.0f}m" if s < 7200 else f"{s / 3600:.1f}h"


def _table(env, doc) -> None:
    from rich.table import Table

    console = env.console()
    if not doc["runs"]:
        console.print("no running sq record, paper or live processes")
    else:
        t = Table(title=f"sq status {doc['ts']}", show_edge=False)
        for col in ("pid", "mode", "strategy", "symbols", "up", "last event", "position", "net PnL", "costs", "orders", "breaker", "health"):
            t.add_column(col, justify="right" if col in ("pid", "up", "last event", "net PnL", "costs", "orders") else "left",
                         no_wrap=col in ("net PnL", "health"))
        for r in doc["runs"]:
            pos = ", ".join(f"{s} {q:g}" for s, q in r.position.items() if q) or "flat" if r.mode != "record" else "-"
            pnl = r.pnl or {}
            style = "green" if r.healthy else "red"
            t.add_row(str(r.pid), r.mode, r.strategy or "-", " ".join(r.symbols), _age(r.uptime_s), _age(r.last_event_age_s), pos,
                      f"{pnl['net']:,.2f}" if pnl else "-", f"{pnl['costs']:,.2f}" if pnl else "-",
                      "-" if r.working_orders is None else str(r.working_orders), r.breaker or "-", f"[{style}]{r.health}[/]")
        console.print(t)
    vt = Table(title="venues", show_edge=False)
    for col in ("venue", "state", "expires"):
        vt.add_column(col)
    for venue, info in doc["venues"].items():
        vt.add_row(venue, str(info.get("state", "")), str(info.get("expires", "-")))
    console.print(vt)


def register(app: typer.Typer) -> None:
    app.command(name="status", help=HELP, epilog=EPILOG, short_help=SUMMARY)(status)
