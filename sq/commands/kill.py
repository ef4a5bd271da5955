"""`sq kill`: halt every registered paper (and later live) process and report it (ARCHITECTURE §4, §8)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from sq.commands._options import JsonOption, env_of

HELP = """Halt every running sq paper process (optionally only one venue's or one symbol's).

Each process found in the runtime registry gets SIGTERM: it cancels all its orders, seals its
journal (orders/fills/pnl Parquet) and exits 0. Anything still running after --timeout gets
SIGKILL and is reported as not halted (its journal can be continued with sq paper --resume DIR).
Reports a table on a terminal, one JSON document otherwise (or with --json). Exit 0 when every
process halted cleanly (or none was running), 1 when anything did not."""

EPILOG = """Examples:

  sq kill

  sq kill --venue sim --json

  sq kill --symbol SIM:DEMO

  55 15 * * 1-5  sq kill --json >> ~/sq-kill.log   # cron: stop paper trading before the close"""


def kill(
    ctx: typer.Context,
    venue: Annotated[Optional[str], typer.Option("--venue", help="Only processes trading on this venue (sim, binance, zerodha).", show_default=False)] = None,
    symbol: Annotated[Optional[str], typer.Option("--symbol", help="Only processes trading this symbol (e.g. SIM:DEMO).", show_default=False)] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.05, max=60.0, help="Seconds to wait for a clean halt before SIGKILL.")] = 1.0,
    json_: JsonOption = False,
) -> None:
    import json

    from sq.core.kill import run_kill

    env = env_of(ctx)
    report = run_kill(venue=venue, symbol=symbol, timeout=timeout)
    if json_ or not env.stdout_isatty:
        env.stdout.write((json.dumps(report.to_json()) + "\n").encode())
        env.stdout.flush()
    else:
        _table(env, report)
    n_ok = sum(1 for p in report.processes if p.ok)
    if not report.processes:
        env.info("kill: no running sq paper processes" + _scope(venue, symbol))
    else:
        env.info(f"kill: halted {n_ok} of {len(report.processes)} process(es) in {report.elapsed_s:.2f}s")
    for p in report.processes:
        if not p.ok:
            env.warn(f"pid {p.pid} ({p.strategy} {' '.join(p.symbols)}): {p.outcome}: {p.detail}")
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
    f = console.file
    f.flush()
    if f is not env.stdout and hasattr(f, "detach"):  # our wrapper: leave the real stdout open
        f.detach()


def register(app: typer.Typer) -> None:
    app.command(name="kill", help=HELP, epilog=EPILOG)(kill)
