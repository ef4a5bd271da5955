"""`sq backtest`: run `mm` or `lt` over recorded market data (ARCHITECTURE §4, §5)."""


from typing import Annotated, List, Optional

import typer

from sq.commands._options import JsonOption, env_of

HELP = """Backtest a strategy over recorded market data with the engine `sq paper` uses: the same
strategies, order manager, risk checks, position keeper and simulated fills (order latency,
feed latency, queue position, partial fills, maker/taker fees), so a paper replay of a file and
a backtest of it produce identical orders and fills.

Strategies: mm (market maker: joins or backs off the touch by the fair price vs `threshold`
ticks) and lt (liquidity taker: follows an aggressive trade whose qty / opposite top qty ≥
`threshold`, IOC by default). Parameters per symbol: clip, threshold, max_order_size,
max_position, max_loss, ioc — from the config's instruments, `--param k=v` (every symbol) or
`--param SYMBOL.k=v` (one symbol).

On a terminal: a summary table. Otherwise, or with --json: one JSON document (strategy, symbols,
events, orders, fills, position, pnl, max_drawdown, sharpe, fill_ratio, rejections, elapsed_s,
events_per_s, …). --journal DIR writes orders.parquet, fills.parquet and pnl.parquet."""

EPILOG = """Examples:

  sq record SIM:DEMO --out data --for 1m; sq backtest --strategy mm data --param clip=2

  sq subscribe SIM:DEMO --limit 200000 -o demo.parquet
  sq backtest --strategy lt demo.parquet --param threshold=0.5 --param ioc=0 --json

  sq backtest -s mm demo.parquet --param SIM:DEMO.threshold=0.4 --latency 5ms --queue-model prob --journal out/
  polars: pl.read_parquet("out/fills.parquet")"""


def backtest(
    ctx: typer.Context,
    inputs: Annotated[Optional[List[str]], typer.Argument(help="Market data: Parquet files, recorded dataset dirs/globs, Arrow files, or - for stdin.", show_default=False)] = None,
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="mm (market maker) or lt (liquidity taker).")] = "mm",
    param: Annotated[Optional[List[str]], typer.Option("--param", "-p", help="k=v for every symbol or SYMBOL.k=v for one (clip, threshold, max_order_size, max_position, max_loss, ioc); repeatable.", show_default=False)] = None,
    journal: Annotated[Optional[str], typer.Option("--journal", help="Write orders.parquet, fills.parquet, pnl.parquet into DIR.", show_default=False)] = None,
    latency: Annotated[Optional[str], typer.Option("--latency", help="Order latency each way (e.g. 20ms, 500us); default the config's paper_trading.order_latency_ms (20ms).", show_default=False)] = None,
    latency_dist: Annotated[str, typer.Option("--latency-dist", help="constant, exponential or uniform (adds a seeded jitter of --latency-jitter).")] = "constant",
    latency_jitter: Annotated[str, typer.Option("--latency-jitter", help="Scale of the latency jitter (e.g. 2ms).")] = "0",
    feed_latency: Annotated[str, typer.Option("--feed-latency", help="'data' (each event's recv_ts − ts) or a duration.")] = "data",
    queue_model: Annotated[str, typer.Option("--queue-model", help="risk-averse (cancels at our price mostly behind us) or prob (power-probability).")] = "risk-averse",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the latency distribution.")] = 0,
    json_out: JsonOption = False,
) -> None:
    from sq.core.backtest import run_backtest
    from sq.core.durations import parse_duration_ns

    env = env_of(ctx)
    fill = {
        "order_latency_ns": parse_duration_ns(latency, option="--latency") if latency else None,
        "latency_dist": latency_dist,
        "latency_jitter_ns": parse_duration_ns(latency_jitter, option="--latency-jitter"),
        "feed_latency_ns": None if feed_latency.strip().lower() == "data" else parse_duration_ns(feed_latency, option="--feed-latency"),
        "queue_model": queue_model,
    }
    with _Progress(env) as progress:
        summary = run_backtest(env, inputs, strategy, params=param or (), journal=journal, fill=fill, seed=seed, progress=progress)
    if json_out or not env.stdout_isatty:
        env.write_json(summary)
    else:
        _table(env, summary)


class _Progress:
    """Events processed, on stderr, only when stderr is a terminal (rich, redirect_stdout=False)."""

    def __init__(self, env):
        self.env = env
        self.bar = None

    def __enter__(self):
        if self.env.stderr_isatty and not self.env.quiet:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(SpinnerColumn(), TextColumn("backtest {task.completed:,.0f} events"), TimeElapsedColumn(),
                                console=self.env.console(stderr=True), redirect_stdout=False, redirect_stderr=False, transient=True)
            self.bar.__enter__()
            self.task = self.bar.add_task("backtest", total=None)
        return self

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _table(env, s: dict) -> None:
    from rich.table import Table

    t = Table(title=f"sq backtest — {s['strategy']} on {', '.join(s['symbols'])}", show_header=False)
    t.add_column("metric")
    t.add_column("value", justify="right")
    pnl = s["pnl"]
    sharpe = "—" if s["sharpe"] is None else f"{s['sharpe']:.3f}"
    rows = [
        ("PnL total", f"{pnl['total']:,.4f}"), ("  realized (net of fees)", f"{pnl['realized']:,.4f}"),
        ("  unrealized", f"{pnl['unrealized']:,.4f}"), ("  fees", f"{pnl['fees']:,.4f}"),
        ("position", ", ".join(f"{k} {v:g}" for k, v in s["position"].items())),
        ("orders", f"{s['orders']:,}"), ("cancels", f"{s['cancels']:,}"), ("fills", f"{s['fills']:,}"),
        ("fill ratio (qty)", f"{s['fill_ratio']:.3f}"), ("max drawdown", f"{s['max_drawdown']:,.4f}"),
        ("Sharpe (per-minute PnL)", sharpe), ("turnover", f"{s['turnover']:,.2f}"),
        ("risk rejections", ", ".join(f"{k} {v:,}" for k, v in s["rejections"].items()) or "none"),
        ("halted", s["halted"] or "no"),
        ("events", f"{s['events']:,}"), ("events/s", f"{s['events_per_s']:,.0f}"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    env.console().print(t)


def register(app: typer.Typer) -> None:
    app.command(name="backtest", help=HELP, epilog=EPILOG)(backtest)
