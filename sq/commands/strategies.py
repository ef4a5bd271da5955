"""`sq strategies`: list every strategy sq can find, or start a new one from a template."""

from typing import Annotated, Optional

import typer

from sq.commands._options import JsonOption, complete_files, complete_strategies, env_of

SUMMARY = "List the strategies, or start a new one from a template."


def complete_what(incomplete: str) -> list[str]:
    return ([] if incomplete.startswith((".", "/")) else [w for w in ("new",) if w.startswith(incomplete)]) + complete_strategies(incomplete)


HELP = """List the strategies sq can run, or write a new strategy file that trades out of the box.

`sq strategies` lists the built-in strategies and those installed packages register (entry-point
group sq.strategies): name, kind, where it comes from, its parameters with defaults, ranges and
docs. A file strategy is listed with `sq strategies ./mine.py`. On a terminal: a table; otherwise,
or with --json: a JSON list of objects with name, kind, source, doc, events and params.

`sq strategies new NAME` writes NAME.py (or -o PATH): an event strategy on the public SDK that
quotes around the microprice and leans away from its inventory; with --kind bar, a bar strategy
(polars signals over bars) that holds a long position above its moving average. Either is ready
for `sq backtest --strategy ./NAME.py DATA`. It never overwrites a file.

Any strategy runs with --strategy on backtest, paper and live: a built-in name, a file
(./mine.py or ./mine.py:NAME), package.module:NAME, or an entry-point name. Its parameters are
set with --param (and --sweep on backtest), validated against its declaration."""

EPILOG = """Examples:

  sq strategies

  sq strategies --json | jq '.[].name'

  sq strategies new mine && sq backtest --strategy ./mine.py fixtures/sim-demo

  sq strategies ./mine.py

  sq strategies new trend --kind bar"""


def strategies(
    ctx: typer.Context,
    what: Annotated[Optional[str], typer.Argument(help="Nothing (list), a strategy to describe (a file, package.module:NAME, a name), or `new`.", metavar="[STRATEGY|new]", show_default=False, autocompletion=complete_what)] = None,
    name: Annotated[Optional[str], typer.Argument(help="With `new`: the new strategy's name (lower-case letters, digits, _).", metavar="[NAME]", show_default=False)] = None,
    kind: Annotated[str, typer.Option("--kind", help="With `new`: the kind of strategy file: event (numba handlers on book, trade, fill and timer events) or bar (polars signals over bars).", autocompletion=lambda incomplete: [k for k in ("event", "bar") if k.startswith(incomplete)])] = "event",
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="With `new`: write here instead of ./NAME.py.", show_default=False, metavar="FILE", autocompletion=complete_files)] = None,
    json_: JsonOption = False,
) -> None:
    from sq.core.exits import UsageError

    env = env_of(ctx)
    if what == "new":
        from sq.core.strategy.template import new_strategy

        if not name:
            raise UsageError("sq strategies new needs a NAME (e.g. sq strategies new mine)")
        path = new_strategy(name, kind=kind, path=output)
        shown = str(path) if path.is_absolute() or str(path).startswith(("./", "../")) else f"./{path}"
        env.info(f"wrote {path}; try: sq backtest --strategy {shown} DATA")
        return
    if name:
        raise UsageError(f"unexpected argument {name!r}: sq strategies [STRATEGY] or sq strategies new NAME")
    from sq.core.strategy import loader

    found = [loader.load(what)] if what else loader.available()
    docs = [s.describe() for s in found]
    if json_ or not env.stdout_isatty:
        env.write_json(docs, indent=2)
    else:
        _table(env, docs)


def _table(env, docs: list[dict]) -> None:
    from rich.table import Table

    t = Table(title="sq strategies", show_lines=True)
    for col in ("name", "kind", "source", "parameters"):
        t.add_column(col, overflow="fold")
    for d in docs:
        params = "\n".join(f"{p['name']}={p['default']:g} ({p['range']}) {p['doc']}" for p in d["params"])
        kind = d["kind"] if d["kind"] != "bar" else f"bar\n{d['interval']}\n{d['execution']}"
        t.add_row(f"{d['name']}\n{d['doc']}", kind, d["source"], params)
    env.console().print(t)


def register(app: typer.Typer) -> None:
    app.command(name="strategies", help=HELP, epilog=EPILOG, short_help=SUMMARY)(strategies)
