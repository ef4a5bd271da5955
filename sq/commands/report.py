"""`sq report`: what a run did, or two runs side by side (README: CLI reference)."""


from typing import Annotated, List, Optional

import typer

from sq.commands._options import JsonOption, env_of

SUMMARY = "Report a run, compare two, or a sweep or walk-forward."

HELP = """Report what a run did: a paper, live or shadow run's journal directory, or a backtest's
--journal DIR — orders, fills, volume, rejections, fill ratio, PnL gross / costs / net, the run
summary's metrics when it has them, and markouts (how far the mid moved for or against each fill
1 s, 10 s and 60 s later, in basis points). Two runs compare side by side with their difference
(B − A); sq report LIVE_DIR compares a live run started with --shadow with its shadow (the paper
twin that ran on the same feed).

Also a results file: a sweep's grid (sq backtest --sweep … -o FILE.parquet) or a walk-forward's
folds (Arrow or Parquet whose schema metadata sq.results says which).

Markouts need mids: a shadow run's marks.parquet, else the run's pnl rows (their mark, or avg
price + unrealized / position while the position is not flat); without either they show as
unavailable.

A table on a terminal, one JSON document otherwise (or with --json). -o FILE.html also writes one
self-contained HTML page (plotly.js embedded, nothing fetched; about 5 MB) with interactive
charts: price with fills and quotes, equity and drawdown, position per symbol, markout curves at
0.5 to 60 s; for a sweep the objective over the grid (heatmap, line or parallel coordinates); for
a walk-forward in-sample vs out-of-sample per fold, the stitched out-of-sample equity and the
parameters per fold (docs/reports.md).

Exit codes: 66 when a path does not exist, 65 when it is not an sq run or results file, 2 for more
than two inputs (or a results file with another), 77 when -o cannot be written there; an
existing -o file is replaced whole or left as it was."""

EPILOG = """Examples:

  sq report ~/.local/share/sq/runs/20261207T034500Z-1a2b3c

  sq report runs/live-today runs/paper-today --json

  sq report runs/live-today -o live-vs-shadow.html

  sq backtest -s mm demo.parquet --journal bt; sq report bt -o backtest.html

  sq backtest -s mm demo.parquet --sweep clip=1:3:1 --sweep threshold=0.2,0.6 -j 1 -o grid.parquet; sq report grid.parquet -o grid.html"""


def report(
    ctx: typer.Context,
    runs: Annotated[List[str], typer.Argument(help="A run's journal directory (two to compare), or a sweep's or walk-forward's results file.", metavar="RUN [RUN]")],
    output: Annotated[Optional[str], typer.Option("--output", "-o", metavar="FILE.html", help="Also write a self-contained HTML report with interactive charts.", show_default=False)] = None,
    json_: JsonOption = False,
) -> None:
    from sq.runs.compare import as_json
    from sq.runs.report import report as make_report

    env = env_of(ctx)
    doc = make_report(list(runs), output)
    if output:
        env.info(f"report: wrote {output}")
    if "runs" not in doc:
        if json_ or not env.stdout_isatty:
            env.write_json(doc)
        else:
            _results_table(env, doc)
    elif json_ or not env.stdout_isatty:
        env.write_json(as_json(doc))
    else:
        _table(env, doc)


def _results_table(env, doc) -> None:
    from rich.table import Table

    t = Table(title=f"sq report: {doc['kind']} {doc['file']}", show_edge=False, show_header=False)
    t.add_column("")
    t.add_column("", justify="right")
    for k, v in doc.items():
        if k not in ("kind", "file"):
            t.add_row(k.replace("_", " "), _fmt(v, 4) if isinstance(v, (int, float)) or v is None else str(v))
    env.console().print(t)


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
    keys = [k for r in runs for k, v in r.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for k in dict.fromkeys(keys):  # the summary's metrics, when the runs have them
        add(k.replace("_", " "), [r.metrics.get(k) for r in runs], diff and (diff.get("metrics") or {}).get(k), 4)
    for r in runs:
        if r.rejections:
            t.caption = (t.caption + "; " if t.caption else "") + f"{r.mode} rejections: " + ", ".join(f"{k} {v}" for k, v in r.rejections.items())
    env.console().print(t)


def register(app: typer.Typer) -> None:
    app.command(name="report", help=HELP, epilog=EPILOG, short_help=SUMMARY)(report)
