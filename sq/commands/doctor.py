"""`sq doctor`: the checks a desk runs before the open (README: CLI reference)."""


import typer

from sq.commands._options import JsonOption, env_of

SUMMARY = "Check clocks, tokens, disk and venues before the open."

HELP = """Check what a trading day needs, before the open: the config, credential file modes
(0600), free disk space for data and journals against the recent write rate, registry entries
of crashed runs, the numba cache of the engine kernels, whether each configured market trades
today (weekend, holiday), and for each venue: its REST endpoints reachable from here, this
machine's clock against the venue's (Binance refuses requests more than a second ahead), the
key or access token accepted, and the token's expiry.

Each finding is ok, warn or fail with the fix in one line. A table on a terminal, one JSON
document otherwise (or with --json). Exit 0 when nothing failed (warnings allowed), 1 when
anything did. Changes nothing."""

EPILOG = """Examples:

  sq doctor

  sq doctor --json > doctor.json

  45 8 * * 1-5  sq doctor --json > ~/sq-doctor.json || mail -s 'sq doctor failed' me < ~/sq-doctor.json   # cron, 08:45"""


def doctor(ctx: typer.Context, json_: JsonOption = False) -> None:
    from dataclasses import asdict

    from sq.runs.doctor import run_doctor

    env = env_of(ctx)
    found = run_doctor(env)
    failed = [c for c in found if c.status == "fail"]
    if json_ or not env.stdout_isatty:
        env.write_json({"ok": not failed, "checks": [asdict(c) for c in found]})
    else:
        _table(env, found)
    n_warn = sum(1 for c in found if c.status == "warn")
    env.info(f"doctor: {len(found)} checks, {len(failed)} failed, {n_warn} warning(s)")
    if failed:
        raise typer.Exit(1)


def _table(env, found) -> None:
    from rich.table import Table

    t = Table(title="sq doctor", show_edge=False)
    t.add_column("check", no_wrap=True)
    t.add_column("", no_wrap=True)
    t.add_column("finding")
    t.add_column("fix")
    colours = {"ok": "green", "warn": "yellow", "fail": "red"}
    for c in found:
        t.add_row(c.check, f"[{colours[c.status]}]{c.status}[/]", c.detail, c.fix)
    env.console().print(t)


def register(app: typer.Typer) -> None:
    app.command(name="doctor", help=HELP, epilog=EPILOG, short_help=SUMMARY)(doctor)
