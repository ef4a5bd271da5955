"""`sq report`: what a run did, or two runs side by side (README: CLI reference)."""


from typing import Annotated, List, Optional

import typer

from sq.commands._options import JsonOption, env_of

SUMMARY = "Show what a run did, or compare two (live vs its shadow)."

HELP = """Show what a paper, live or shadow run did, from its journal directory — orders, fills,
volume, rejections, fill ratio, PnL gross / costs / net, and markouts (how far the mid moved for
or against each fill 1 s, 10 s and 60 s later, in basis points) — or compare two runs side by
side with their difference (B − A).

Given a live run started with --shadow, sq report LIVE_DIR compares it with its shadow (the paper
twin that ran on the same feed). Markouts need the mids a shadow run keeps (marks.parquet); runs
without one show them as unavailable.

A table on a terminal, one JSON document otherwise (or with --json); -o FILE.html also writes a
self-contained HTML page (no network) with the table and both net PnL curves."""

EPILOG = """Examples:

  sq report ~/.local/share/sq/runs/20261207T034500Z-1a2b3c

  sq report runs/live-today runs/paper-today --json

  sq report runs/live-today -o live-vs-shadow.html"""


def report(
    ctx: typer.Context,
    runs: Annotated[List[str], typer.Argument(help="One run's journal directory, or two to compare.", metavar="RUN [RUN]")],
    output: Annotated[Optional[str], typer.Option("--output", "-o", metavar="FILE.html", help="Also write a self-contained HTML report.", show_default=False)] = None,
    json_: JsonOption = False,
) -> None:
    from sq.runs import report as R
    from sq.runs.compare import as_json, compare, render_html

    env = env_of(ctx)
    if output:
        R.check_target(output)
    doc = compare(list(runs))
    if output:
        R.write_report(output, render_html(doc))
        env.info(f"report: wrote {output}")
    if json_ or not env.stdout_isatty:
        env.write_json(as_json(doc))
    else:
        _table(env, doc)


def _fmt(v, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.{digits}f}"


def _table(env, doc) -> None:
    from rich.table import Table

    runs = doc["runs"]
    diff = doc.get("difference")
    t = Table(title="sq report", show_edge=False)
    t.add_column("")
    for r in runs:
        t.add_column(f"{r.mode} {r.strategy}", justify="right", no_wrap=True)
    if diff is not None:
        t.add_column("B − A", justify="right", no_wrap=True)

    def add(label, vals, d=None, digits=2):
        t.add_row(label, *[_fmt(v, digits) for v in vals], *([_fmt(d, digits)] if diff is not None else []))

    add("orders", [r.orders for r in runs], diff and diff["orders"])
    add("fills", [r.fills for r in runs], diff and diff["fills"])
    add("volume", [r.volume for r in runs], diff and diff["volume"], 4)
    for k in ("gross", "costs", "net"):
        add(f"PnL {k}", [r.pnl[k] for r in runs], diff and diff["pnl"][k], 4)
    for h in runs[0].markouts:
        add(f"markout {h} (bps)", [r.markouts[h]["bps"] for r in runs], diff and diff["markouts"][h]["bps"])
    for r in runs:
        if r.rejections:
            t.caption = (t.caption + "; " if t.caption else "") + f"{r.mode} rejections: " + ", ".join(f"{k} {v}" for k, v in r.rejections.items())
    env.console().print(t)


def register(app: typer.Typer) -> None:
    app.command(name="report", help=HELP, epilog=EPILOG, short_help=SUMMARY)(report)
