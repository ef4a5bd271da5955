"""`sq backtest`: run a strategy over recorded market data (README: CLI reference)."""


from typing import Annotated, List, Optional

import typer

from sq.commands._options import (FEED_LATENCY_DEFAULT, QUEUE_MODEL_DEFAULT, SEED_DEFAULT, EndOption, FeedLatencyOption, FormatOption, JsonOption,
                                  LatencyDistOption, LatencyJitterOption, LatencyOption, OutputOption, QueueModelOption, SeedOption, StartOption,
                                  StrategyOption, complete_files, env_of, fill_overrides, require_strategy)

SUMMARY = "Backtest a strategy over recorded market data."

HELP = """Backtest a strategy over recorded market data with the engine `sq paper` uses: the same
strategies, order manager, risk checks, position keeper and simulated fills (order latency,
feed latency, queue position, partial fills, maker/taker fees), so a paper replay of a file and
a backtest of it produce identical orders and fills.

Strategies: the built-ins (mm: market maker, lt: liquidity taker, avellaneda: inventory-skewed
market maker; bar strategies ma_cross, rsi_macd, orb, supertrend, donchian) or your own file on
the strategy SDK (docs/strategies.md; `sq strategies` lists them with their parameters). A bar
strategy reads bars (sq fetch candles, sq bars output) of its interval, or market events turned
into its bars as they close; its signals execute at each bar's close (next bar's open,
marketable or passive limit, stop-loss and take-profit) under the same risk checks and fees.
The exchange's rules apply as in live (docs/market-rules.md): NSE/BSE/NFO/BFO orders only in the
session and never on holidays, the MIS square-off at the broker's cut-off (reason square_off),
circuit limits from the data's metadata. Parameters per symbol are the strategy's declared ones plus the
risk limits max_order_size, max_position, max_loss — from the config's instruments,
`--param k=v` (every symbol) or `--param SYMBOL.k=v` (one symbol).

On a terminal: a summary table. Otherwise, or with --json: one JSON document (strategy, symbols,
events, orders, fills, position, pnl, max_drawdown, sharpe (annualised), fill_ratio, rejections,
metrics — returns on capital, Sortino, Calmar, VaR, round trips, markouts, docs/metrics.md —,
elapsed_s, events_per_s, …). --journal DIR writes orders.parquet, fills.parquet, pnl.parquet and
summary.json (for sq report).

--sweep k=a:b:step (b included; or k=v1,v2,…; SYMBOL.k=… for one symbol; repeatable: the
cartesian grid, at most 10,000 points) runs one backtest per grid point over the same input,
on a process pool of --jobs workers (default: every CPU; 1 runs in this process), each loading
the input once, or with --executor ray[:HOST:PORT] on a Ray cluster (README: Research on a
cluster; the same results). Inputs may be s3:// or gs:// URIs. A point gives exactly what `--param k=v` gives. On a terminal: a table sorted by
total PnL; --json: one document with a `runs` list (grid order) and the best point; otherwise
one row per point (swept values, pnl_total, pnl_realized, fees, max_drawdown, sharpe, orders,
fills, fill_ratio, …, position.SYMBOL) as Arrow on a pipe, or -o FILE.parquet|.arrow|.jsonl,
--format jsonl|table.

--search grid (default) | random:N | optuna:N chooses the points of the --sweep space: k=a:b:step
is discrete, k=v1,v2 categorical, k=a:b continuous (random and optuna only). random:N draws
N points seeded by --seed; optuna:N runs Optuna's TPE sampler (seeded) in batches of --jobs
trials, and --study FILE (an Optuna journal file) keeps the study so a second run continues it.
--objective names what "best" maximises: a metric (pnl, sharpe, sortino, calmar, pnl_per_trade,
fills, max_drawdown, …) or an expression over them ("pnl_total / max(1, max_drawdown)";
arithmetic, comparisons, and/or/not, abs min max log sqrt); --require EXPR (repeatable, e.g.
fills>=50) keeps a point that fails it from being best (column `feasible`); when no point is
feasible the results are still written and the exit status is 1. docs/research.md.

--wfo train=30d,test=7d[,step=7d][,anchored] walks forward over the input's time range: each
fold searches the space on its train window and runs the winner on the test window after it.
--cv cpcv:groups=6,test=2[,embargo=1h][,purge=DUR] (combinatorial purged cross-validation) or
kfold:k=5[,embargo=1h] searches on each split's training groups and tests on the rest. Output:
one row per fold/split (windows, chosen param.KEY values, is_objective, oos_objective,
oos_pnl_total, oos_fills), the stitched out-of-sample equity, walk-forward efficiency and
parameter stability (and for --cv the OOS distribution and the probability of backtest
overfitting) — a table on a terminal, --json, or -o FILE.parquet for `sq report`.

--clean drops bad ticks before the engine sees them (non-positive prices, negative quantities,
timestamps going backwards, trades jumping more than [clean] max_jump_pct % or sigma_k σ from
the last good one; locked/crossed books are counted, and dropped with drop_crossed); the summary's
`cleaned` counts every dropped row by reason. --adjust FILE back-adjusts NSE/BSE equities for the
splits, bonuses and dividends listed in a CSV (symbol,ex_date,kind,ratio_from,ratio_to,amount
[,prev_close]; docs/corporate-actions.md): earlier prices × the factor, volumes ÷ it. A bad
file is exit 65 (66 when it does not exist), before any data is read.

--report FILE.html writes one self-contained HTML file (plotly.js embedded, nothing fetched;
the renderer of sq report, docs/reports.md): run metadata, metrics, interactive equity,
drawdown, position, price-with-fills and markout charts, per-symbol table, the first fills and
rejections by reason; for a sweep the grid results, total PnL over the grid (a heatmap for two
swept parameters), and the best point's curves."""

EPILOG = """Examples:

  sq record SIM:DEMO -o data --limit 20000; sq backtest --strategy mm data --param clip=2

  sq subscribe SIM:DEMO --limit 200000 -o demo.parquet
  sq backtest --strategy lt demo.parquet --param threshold=0.5 --param ioc=0 --json

  sq backtest -s mm demo.parquet --param SIM:DEMO.threshold=0.4 --latency 5ms --queue-model prob --journal out/
  polars: pl.read_parquet("out/fills.parquet")

  sq backtest -s mm fixtures/sim-demo --report run.html

  sq backtest -s mm fixtures/sim-demo --clean --json | jq .cleaned

  sq backtest -s lt nse-ticks/ --adjust corporate-actions.csv --clean

  sq backtest -s mm data --start 2024-01-08 --end 2024-01-08 --json

  sq backtest -s mm demo.parquet --sweep clip=1:4:1 --sweep threshold=0.2,0.4,0.8 --report sweep.html

  sq backtest -s mm demo.parquet --sweep SIM:DEMO.max_position=5:50:5 --jobs 2 -o grid.parquet

  sq backtest -s lt demo.parquet --sweep threshold=0.3:1.5:0.1 --json | jq '.runs[] | [.params.threshold, .pnl.total]'

  sq backtest -s mm demo.parquet --sweep clip=1:3 --sweep threshold=0.2,0.4,0.8 --search random:12 --seed 7 --require "fills>=5"

  sq backtest -s mm demo.parquet --sweep clip=1:4:1 --sweep threshold=0.2:1.0 --search optuna:6 --study mm-study.jsonl -j 1 --objective "pnl_total / max(1, max_drawdown)"

  sq backtest -s mm data --sweep clip=1:3:1 --sweep threshold=0.3,0.6 --wfo train=4s,test=2s -o wfo.parquet   # train=30d,test=7d on a month

  sq backtest -s mm data --sweep clip=1,2 --cv cpcv:groups=5,test=2,embargo=200ms --json | jq '{pbo, oos_distribution}'"""


def backtest(
    ctx: typer.Context,
    inputs: Annotated[Optional[List[str]], typer.Argument(help="Market data: Parquet files, recorded dataset dirs/globs, Arrow files, or - for stdin.", show_default=False, autocompletion=complete_files)] = None,
    strategy: StrategyOption = None,
    param: Annotated[Optional[List[str]], typer.Option("--param", "-p", help="k=v for every symbol or SYMBOL.k=v for one (clip, threshold, max_order_size, max_position, max_loss, ioc); repeatable.", show_default=False)] = None,
    journal: Annotated[Optional[str], typer.Option("--journal", help="Write orders.parquet, fills.parquet, pnl.parquet and summary.json into DIR.", show_default=False)] = None,
    latency: LatencyOption = None,
    latency_dist: LatencyDistOption = None,
    latency_jitter: LatencyJitterOption = None,
    feed_latency: FeedLatencyOption = FEED_LATENCY_DEFAULT,
    queue_model: QueueModelOption = QUEUE_MODEL_DEFAULT,
    seed: SeedOption = SEED_DEFAULT,
    sweep: Annotated[Optional[List[str]], typer.Option("--sweep", help="k=a:b:step (b included), k=v1,v2,… or SYMBOL.k=…: one backtest per value; repeatable (the cartesian grid, ≤ 10,000 points).", show_default=False)] = None,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", help="Worker processes of a --sweep (default: every CPU; 1 runs in this process).", show_default=False)] = None,
    executor: Annotated[Optional[str], typer.Option("--executor", help="Where --sweep points run: local (a process pool of --jobs), ray (a local Ray runtime) or ray:HOST:PORT (a running Ray cluster; exit 69 when it does not answer).", metavar="local|ray[:ADDRESS]", show_default=False)] = None,
    report: Annotated[Optional[str], typer.Option("--report", help="Write a self-contained HTML report (charts, metrics, fills; the grid for --sweep) to FILE.html.", show_default=False)] = None,
    clean: Annotated[Optional[bool], typer.Option("--clean/--no-clean", help="Drop bad ticks first (the config's [clean] rules; default: its `enabled`, off); the summary counts every dropped row.", show_default=False)] = None,
    adjust: Annotated[Optional[str], typer.Option("--adjust", help="Back-adjust NSE/BSE equities for the splits, bonuses and dividends in this CSV (docs/corporate-actions.md).", metavar="FILE", show_default=False)] = None,
    funding: Annotated[Optional[str], typer.Option("--funding", help="Perpetuals' funding rates (a funding.parquet, or a directory of them; default: those in or beside the inputs; docs/funding.md).", metavar="FILE|DIR", show_default=False)] = None,
    search: Annotated[Optional[str], typer.Option("--search", help="How a --sweep's space is searched: grid (default), random:N (seeded by --seed) or optuna:N (TPE, seeded).", show_default=False)] = None,
    objective: Annotated[Optional[str], typer.Option("--objective", help="What the best point maximises: a metric (pnl, sharpe, sortino, calmar, pnl_per_trade, …) or an expression over them (docs/research.md); default pnl.", show_default=False)] = None,
    require: Annotated[Optional[List[str]], typer.Option("--require", help="A constraint every candidate must meet, e.g. fills>=50; repeatable.", show_default=False)] = None,
    study: Annotated[Optional[str], typer.Option("--study", help="Keep the optuna:N study in this journal FILE; a second run continues it.", metavar="FILE", show_default=False)] = None,
    wfo: Annotated[Optional[str], typer.Option("--wfo", help="Walk-forward: train=30d,test=7d[,step=7d][,anchored] — search each fold's train window, run the winner on its test window.", show_default=False)] = None,
    cv: Annotated[Optional[str], typer.Option("--cv", help="Purged cross-validation: cpcv:groups=6,test=2[,embargo=1h][,purge=DUR] or kfold:k=5[,embargo=1h].", show_default=False)] = None,
    returns_basis: Annotated[Optional[str], typer.Option("--returns-basis", help="The period of the returns Sharpe, Sortino, Calmar and VaR are computed on (1d, 1h, 1m, 1s; default: the config's [research] returns_basis, 1d; docs/metrics.md).", metavar="DURATION", show_default=False)] = None,
    start: StartOption = None,
    end: EndOption = None,
    output: OutputOption = None,
    fmt: FormatOption = "auto",
    json_out: JsonOption = False,
) -> None:
    from sq.runs.backtest import run_backtest
    from sq.core.datasets import parse_window

    env = env_of(ctx)
    strategy = require_strategy(strategy)
    window = parse_window(start, end)
    if report:
        from sq.runs.report import check_target

        check_target(report)
    if jobs is not None and jobs < 1:
        from sq.core.exits import UsageError

        raise UsageError(f"--jobs must be ≥ 1, got {jobs}")
    from sq.runs.executors import parse_executor

    spec = parse_executor(executor)
    fill = fill_overrides(latency, latency_dist, latency_jitter, feed_latency, queue_model)
    rows_out = output is not None or fmt.lower() != "auto"
    if returns_basis is not None and (sweep or wfo or cv):
        from sq.core.exits import UsageError

        raise UsageError("--returns-basis is for one run; for a --sweep, --wfo or --cv set [research] returns_basis in the config "
                         "(docs/metrics.md)")
    if wfo or cv:
        from sq.commands._research import research

        research(env, inputs, strategy, param or (), sweep or (), fill, seed, jobs, output, fmt, json_out, rows_out, clean, adjust, window,
                 search=search, objective=objective, requires=require or (), study=study, wfo=wfo, cv=cv, journal=journal, report=report,
                 executor=spec)
        return
    if sweep:
        if journal:
            from sq.core.exits import UsageError

            raise UsageError("--journal writes one run's orders and fills; it does not combine with --sweep")
        _sweep(env, inputs, strategy, param or (), sweep, fill, seed, jobs, report, output, fmt, json_out, rows_out, clean, adjust, window,
               dict(search=search, objective=objective, requires=require or (), study=study, executor=spec))
        return
    if search or objective or require or study:
        from sq.core.exits import UsageError

        raise UsageError("--search, --objective, --require and --study choose among the points of a --sweep; give one (e.g. --sweep clip=1:5:1)")
    recorder = None
    if report:
        from sq.runs.report import RunRecorder

        recorder = RunRecorder()
    from sq.commands._progress import RowProgress

    with RowProgress(env, "backtest", unit="events") as progress:  # the bar's total: the input's rows (run_backtest)
        summary = run_backtest(env, inputs, strategy, params=param or (), journal=journal, fill=fill, seed=seed, progress=progress,
                               recorder=recorder, clean=clean, adjust=adjust, window=window, funding=funding, returns_basis=returns_basis)
    if report:
        from sq.runs import report as html_report
        meta = _meta(strategy, param or (), summary["inputs"], summary, fill, seed)
        meta.update(t_first=recorder.t_first, t_last=recorder.t_last)
        html_report.write_report(report, html_report.render_run(meta, summary, recorder))
        env.info(f"report written to {report}")
    if json_out:
        env.write_json(summary)
    elif rows_out:
        _rows(env, [dict(summary, params={})], [], output, fmt)
    elif not env.stdout_isatty:
        env.write_json(summary)
    else:
        _table(env, summary)


def _meta(strategy, params, inputs, doc, fill, seed) -> dict:
    from sq import __version__

    lat = "config default" if fill["order_latency_ns"] is None else f"{fill['order_latency_ns'] / 1e6:g} ms"
    feed = ("config default" if fill["feed_latency_ns"] is None else "data (recv_ts − ts)" if fill["feed_latency_ns"] == "data"
            else f"{fill['feed_latency_ns'] / 1e6:g} ms")
    return {"strategy": strategy, "params": list(params), "inputs": list(inputs), "symbols": doc["symbols"], "events": doc["events"],
            "version": __version__, "fill": f"order latency {lat} ({fill['latency_dist'] or 'config default'}), feed latency {feed}, "
                                            f"queue model {fill['queue_model']}, seed {seed}"}


def _sweep(env, inputs, strategy, params, sweep, fill, seed, jobs, report, output, fmt, json_out, rows_out, clean, adjust, window, how) -> None:
    from sq.runs.sweep import run_sweep

    from sq.commands._progress import RowProgress

    with RowProgress(env, "sweep", unit="points") as progress:  # the bar's total: the search's points (run_sweep)
        doc = run_sweep(env, inputs, strategy, params=params, sweeps=sweep, fill=fill, seed=seed, jobs=jobs, report=bool(report),
                        progress=progress, clean=clean, adjust=adjust, window=window, **how)
    curve = doc.pop("_best_curve", None)
    axes = doc.pop("_axes", None)
    if report:
        from sq.runs import report as html_report
        meta = _meta(strategy, params, doc["inputs"], doc, fill, seed)
        meta.update(jobs=doc["jobs"], wall_s=doc["wall_s"], t_first=(curve or {}).get("t_first"), t_last=(curve or {}).get("t_last"))
        html_report.write_report(report, html_report.render_sweep(meta, axes, doc["runs"], curve))
        env.info(f"report written to {report}")
    keys = list(doc["sweep"])
    if json_out:
        env.write_json(doc)
    elif rows_out or not env.stdout_isatty:
        _rows(env, doc["runs"], keys, output, fmt)
    else:
        _grid_table(env, doc, keys)
    if "study" in doc:
        st = doc["study"]
        env.info(f"study {st['file']}: {st['trials_before']:,} earlier trials found, {st['trials']:,} now")
    if doc["best"] is None:
        from sq.runs.research import no_feasible

        raise no_feasible(doc["objective"], doc["require"], doc["points"])


def _rows(env, runs, keys, output, fmt) -> None:
    from sq.core.streams import StreamWriter
    from sq.runs.sweep import results_table

    table = results_table(runs, keys)
    with StreamWriter(env, table.schema, output=output, fmt=fmt) as w:
        for b in table.to_batches():
            w.write(b)


GRID_SHOWN = 40


def _grid_table(env, doc: dict, keys: list) -> None:
    """The points sorted by the objective (default total PnL; infeasible points, marked ✗, last);
    on a narrow terminal the other metrics give way, never the swept values or the objective."""
    from rich import box

    from sq.commands._tables import Col, fitted_table
    from sq.core import formatting as F

    runs = sorted(doc["runs"], key=lambda r: (not (r["feasible"] and r["objective"] is not None), -(r["objective"] or 0.0)))
    objective = [] if doc["objective"] == "pnl" else [Col(doc["objective"][:24])]
    columns = [Col(k) for k in keys] + objective + [Col("PnL total"), Col("Sharpe", 60), Col("max DD", 55), Col("fees", 50), Col("fills", 40),
                                        Col("orders", 35), Col("fill ratio", 30), Col("position", 10)]
    rows = []
    for r in runs[:GRID_SHOWN]:
        pnl = r["pnl"]
        color = "green" if pnl["total"] > 0 else "red" if pnl["total"] < 0 else "default"
        mark = "" if r["feasible"] else " ✗"
        obj = [] if not objective else [("—" if r["objective"] is None else f"{r['objective']:.6g}") + mark]
        rows.append([*[f"{r['params'][k]:g}" for k in keys], *obj, f"[{color}]{F.format_pnl(pnl['total'])}[/]" + ("" if objective else mark),
                     F.UNKNOWN if r["sharpe"] is None else f"{r['sharpe']:.3f}", F.format_pnl(r["max_drawdown"]), F.format_pnl(pnl["fees"]),
                     F.format_count(r["fills"]), F.format_count(r["orders"]), f"{r['fill_ratio']:.2f}",
                     " ".join(f"{v:g}" for v in r["position"].values())])
    console = env.console()
    title = (f"sq backtest sweep — {doc['strategy']} on {', '.join(doc['symbols'])}: {F.format_count(doc['points'])} points, "
             f"{doc['jobs']} jobs, {doc['wall_s']:.1f}s, {F.format_count(float(doc['events_per_s']))} events/s")
    console.print(fitted_table(console, columns, rows, title=title, box=box.SIMPLE_HEAD, pad_edge=False))
    if len(runs) > GRID_SHOWN:
        console.print(f"the best {GRID_SHOWN} of {len(runs):,} points; every point with --json or -o FILE")
    if doc["require"]:
        console.print(f"{doc['feasible_points']:,} of {len(runs):,} points meet {' and '.join(doc['require'])} (✗: does not)")


def _table(env, s: dict) -> None:
    from rich.table import Table

    t = Table(title=f"sq backtest — {s['strategy']} on {', '.join(s['symbols'])}", show_header=False)
    t.add_column("metric")
    t.add_column("value", justify="right")
    from sq.core.summary import metrics_rows

    pnl = s["pnl"]
    rows = [
        ("PnL total", f"{pnl['total']:,.4f}"), ("  realized (net of fees)", f"{pnl['realized']:,.4f}"),
        ("  unrealized", f"{pnl['unrealized']:,.4f}"), ("  gross (before costs)", f"{pnl.get('gross', 0.0):,.4f}"),
        ("  fees", f"{pnl['fees']:,.4f}"), ("  funding", f"{pnl.get('funding', 0.0):,.4f}"),
        ("position", ", ".join(f"{k} {v:g}" for k, v in s["position"].items())),
        ("orders", f"{s['orders']:,}"), ("cancels", f"{s['cancels']:,}"), ("fills", f"{s['fills']:,}"),
        ("fill ratio (qty)", f"{s['fill_ratio']:.3f}"), ("max drawdown", f"{s['max_drawdown']:,.4f}"),
        *metrics_rows(s.get("metrics")), ("turnover", f"{s['turnover']:,.2f}"),
        ("risk rejections", ", ".join(f"{k} {v:,}" for k, v in s["rejections"].items()) or "none"),
        ("halted", s["halted"] or "no"),
        ("events", f"{s['events']:,}"), ("events/s", f"{s['events_per_s']:,.0f}"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    env.console().print(t)


def register(app: typer.Typer) -> None:
    app.command(name="backtest", help=HELP, epilog=EPILOG, short_help=SUMMARY)(backtest)
