"""`sq paper`: run a strategy on a live or replayed market with simulated fills (README: CLI reference)."""


from typing import Annotated, List, Optional

import typer

from sq.commands._live import LiveView
from sq.commands._options import (FEED_LATENCY_DEFAULT, QUEUE_MODEL_DEFAULT, SEED_DEFAULT, AlertOption, EndOption, ExpiryOption, FeedLatencyOption,
                                  JsonOption, LatencyDistOption, LatencyJitterOption, LatencyOption, MetricsFileOption, MetricsOption,
                                  QueueModelOption, SeedOption, StartOption, StrategyOption, complete_files, complete_symbols, env_of,
                                  fill_overrides, monitor_options)

SUMMARY = "Paper-trade a strategy on a live or replayed market."

HELP = """Paper-trade a strategy (a built-in such as mm or lt, or your own file) with the backtest's engine and
fill simulation, on a live market (SIM: symbols, or the config's instruments; SIM:DEMO when there
are none) or on a recorded one replayed with --from (at the data's pace with --realtime, else as
fast as possible; a replay and `sq backtest` of the same file give identical orders and fills).

Every engine step's orders, fills, PnL marks and risk rejections are written to a hash-chained
journal and fsync'd before the run goes on; at the end it is compacted to orders.parquet,
fills.parquet and pnl.parquet in the journal directory. Ctrl-C, SIGTERM or `sq kill` cancel every
order and seal the journal; the summary is printed, then the exit status is 130 after Ctrl-C,
143 after SIGTERM, 0 after `sq kill` or the end of the run. A run that crashed continues with --resume DIR.

On a terminal a live dashboard (book top, our working orders, position, PnL, rejections) is
shown; with --json one summary document (the keys of `sq backtest --json`); otherwise a summary
on stderr and the final PnL on stdout.

The simulated fills take backtest's flags (--latency, --latency-dist, --latency-jitter,
--feed-latency, --queue-model, --seed), so a replay matches a backtest with the same flags.

--clean filters a replay's bad ticks as `sq backtest --clean` does (the config's [clean] table);
the summary's `cleaned` counts every dropped row by reason, and a resumed run cleans as it began."""

EPILOG = """Examples:

  sq paper --strategy mm SIM:DEMO --for 20s

  sq paper --strategy lt SIM:DEMO --param threshold=0.6 --param clip=2 --for 10s --json

  sq paper --strategy mm --from data/venue=sim --json

  sq paper --strategy mm --from data --start 2024-01-08 --end 2024-01-08 --json

  sq paper --strategy mm --from ticks.parquet --realtime --for 5s --journal runs/replay1

  sq paper -s mm --from fixtures/sim-demo --latency 5ms --queue-model prob --json

  sq paper --strategy lt --from fixtures/sim-demo --clean --json

  sq paper --resume ~/.local/share/sq/runs/20260125T093000Z-3f9a00

  sq kill   # from another terminal or cron: halt every paper run"""


def paper(
    ctx: typer.Context,
    symbols: Annotated[Optional[List[str]], typer.Argument(help="Symbols to trade live, e.g. SIM:DEMO, NSE:INFY, NFO:NIFTY-FUT (the current month's contract; default: the config's instruments, else SIM:DEMO).", metavar="SYMBOL...", show_default=False, autocompletion=complete_symbols)] = None,
    strategy: StrategyOption = None,
    from_: Annotated[Optional[List[str]], typer.Option("--from", help="Replay a recorded market stream (Parquet file, dataset dir/glob, Arrow, or - for stdin) instead of a live market.", show_default=False, autocompletion=complete_files)] = None,
    for_: Annotated[Optional[str], typer.Option("--for", help="Stop after this long: wall time live, data time on a replay (20s, 5m, 1h).", show_default=False)] = None,
    journal: Annotated[Optional[str], typer.Option("--journal", help="Journal directory (default: <data dir>/runs/<run id>).", show_default=False)] = None,
    realtime: Annotated[bool, typer.Option("--realtime", help="Pace a --from replay by its timestamps instead of as fast as possible.")] = False,
    params: Annotated[Optional[List[str]], typer.Option("--param", "-p", help="Strategy/risk parameter k=v (clip, threshold, max_order_size, max_position, max_loss, …); repeatable.", show_default=False)] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue the crashed run whose journal is in DIR (verified first).", show_default=False)] = None,
    start: StartOption = None,
    end: EndOption = None,
    seed: SeedOption = SEED_DEFAULT,
    latency: LatencyOption = None,
    latency_dist: LatencyDistOption = None,
    latency_jitter: LatencyJitterOption = None,
    feed_latency: FeedLatencyOption = FEED_LATENCY_DEFAULT,
    queue_model: QueueModelOption = QUEUE_MODEL_DEFAULT,
    clean: Annotated[Optional[bool], typer.Option("--clean/--no-clean", help="Drop bad ticks from a --from replay first (the config's [clean] rules; default: its `enabled`, off); the summary counts every dropped row.", show_default=False)] = None,
    expiry: ExpiryOption = None,
    funding: Annotated[Optional[str], typer.Option("--funding", help="A --from replay's perpetual funding rates (a funding.parquet or a directory of them; default: those in or beside the inputs; docs/funding.md).", metavar="FILE|DIR", show_default=False)] = None,
    metrics: MetricsOption = None,
    metrics_file: MetricsFileOption = None,
    alert: AlertOption = None,
    json_: JsonOption = False,
) -> None:
    from sq.runs.paper import PaperOptions, run_paper

    opts = PaperOptions(
        strategy=strategy,
        symbols=list(symbols or []),
        inputs=list(from_ or []),
        duration=for_,
        journal=journal,
        realtime=realtime,
        params=list(params or []),
        resume=resume,
        seed=seed,
        json=json_,
        clean=clean,
        start=start,
        end=end,
        expiry=expiry,
        funding=funding,
        monitor=monitor_options(metrics, metrics_file, alert),
        fill=fill_overrides(latency, latency_dist, latency_jitter, feed_latency, queue_model),
    )
    env = env_of(ctx)
    live_view = env.stdout_isatty and not json_

    def view_factory(plan, source):
        if live_view:
            return Dashboard(env, plan, source)
        if opts.inputs and env.stderr_isatty and not env.quiet:  # a replay: its data time and % on stderr
            return ReplayProgress(env, source)
        return None

    summary = run_paper(env, opts, view_factory=view_factory)
    render_summary(env, summary, json_)


def render_summary(env, summary: dict, json_out: bool) -> None:
    """The run's summary: one JSON document, or a line on stderr and the PnL line on stdout
    (after the dashboard's last frame on a terminal; the result line on a pipe)."""
    from sq.core.summary import metrics_rows, rejection_note

    if json_out:
        env.write_json(summary)
        return
    pnl = summary.get("pnl") or {}
    position = ", ".join(f"{s} {q:g}" for s, q in (summary.get("position") or {}).items()) or "flat"
    why = rejection_note(summary)  # a run that traded little says why
    env.info(
        f"paper {summary.get('strategy')} {' '.join(summary.get('symbols') or [])}: {summary.get('events', 0):,} events, "
        f"{summary.get('orders', 0)} orders, {summary.get('fills', 0)} fills, position {position}, "
        f"{why + ', ' if why else ''}stopped by {summary.get('stopped_by')}; journal {summary.get('journal')}"
    )
    for label, value in metrics_rows(summary.get("metrics")):  # the trader metrics, docs/metrics.md
        env.info(f"  {label}: {value}")
    line = (f"PnL total {pnl.get('total', 0.0):.4f} realized {pnl.get('realized', 0.0):.4f} "
            f"unrealized {pnl.get('unrealized', 0.0):.4f} gross {pnl.get('gross', 0.0):.4f} fees {pnl.get('fees', 0.0):.4f} "
            f"funding {pnl.get('funding', 0.0):.4f}\n")
    env.stdout.write(line.encode())
    env.stdout.flush()


class Dashboard(LiveView):
    """The terminal view of a paper run: per symbol the book top, our position and PnL; our
    working orders; fills, orders and risk rejections by reason. Redrawn at most 10 times a
    second from what the engine steps produced (rich Live on stdout, redirect_stdout=False)."""

    def __init__(self, env, plan, source, refresh_s: float = 0.1):
        import time

        from sq.core import book as B
        from sq.core.bookstream import BookStream

        super().__init__(env)
        from sq.core.formatting import PriceFormats

        self.plan = plan
        self.refresh_s = refresh_s
        self.prices = PriceFormats(source.instruments)
        self.total_rows = getattr(source, "total_rows", None)  # a replay's input rows (its %)
        self.book = BookStream(source.instruments, depth=1, mode=B.MODE_INTERVAL, interval_ns=100_000_000)
        self.top: dict[str, tuple] = {}
        self.working: dict[str, dict] = {}
        self.closed: set[str] = set()
        self.pnl: dict[str, dict] = {}
        self.rejections: dict[str, int] = {}
        self.n_orders = self.n_fills = 0
        self.run = None
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, batch, out, run) -> None:
        import time

        from sq.core.journal import rows_from_batch

        self.run = run
        if batch is not None:
            rows = self.book.process(batch)
            if rows is not None and rows.num_rows:
                for r in rows_from_batch(rows):
                    self.top[r["symbol"]] = (r.get("bid_qty_0"), r.get("bid_px_0"), r.get("ask_px_0"), r.get("ask_qty_0"))
        for r in rows_from_batch(getattr(out, "orders", None)):
            cid = r["client_order_id"]
            if r["event"] == "new":
                self.n_orders += 1
            if r["event"] == "rejected":
                key = r.get("reason") or "?"
                self.rejections[key] = self.rejections.get(key, 0) + 1
            if r["event"] in ("canceled", "filled", "rejected", "expired"):
                self.working.pop(cid, None)
                self.closed.add(cid)
            elif cid not in self.closed:  # a late cancel_rejected after the fill does not reopen it
                self.working[cid] = r
        self.n_fills += len(rows_from_batch(getattr(out, "fills", None)))
        for r in rows_from_batch(getattr(out, "pnl", None)):
            self.pnl[r["symbol"]] = r
        now = time.monotonic()
        if now - self._last >= self.refresh_s or batch is None:
            self._last = now
            self.draw()

    def _render(self):
        import time

        from rich.console import Group

        from sq.commands._tables import Col, fitted_table
        from sq.core import formatting as F

        c = F.format_count
        elapsed = time.monotonic() - self.started
        events = self.run.rows if self.run is not None else 0
        title = (f"sq paper {self.plan.strategy}  {elapsed:,.0f}s  {c(events)} events  {c(self.n_orders)} orders  {c(self.n_fills)} fills"
                 + replay_position(self.run, self.total_rows))
        # on a narrow terminal the book sizes and the PnL parts give way, never the total
        columns = [Col("symbol", justify="left"), Col("bid qty", 20), Col("bid", 60), Col("ask", 60), Col("ask qty", 20),
                   Col("position", 70), Col("avg", 30), Col("realized", 45), Col("unrealized", 40), Col("total")]
        rows = []
        for sym in sorted(set(self.top) | set(self.pnl) | set(self.plan.symbols)):
            bq, bp, ap, aq = self.top.get(sym, (None,) * 4)
            p = self.pnl.get(sym, {})
            total = p.get("total")
            colour = "green" if (total or 0) >= 0 else "red"
            px = lambda v, extra=0: self.prices.price(sym, v, extra)
            rows.append([sym, F.format_qty(bq), f"[green]{px(bp)}[/]", f"[red]{px(ap)}[/]", F.format_qty(aq), F.format_qty(p.get("position")),
                         px(p.get("avg_price"), F.AVERAGE_EXTRA), F.format_pnl(p.get("realized")), F.format_pnl(p.get("unrealized")),
                         f"[{colour}]{F.format_pnl(total)}[/]"])
        head = fitted_table(self.console, columns, rows, title=title, show_edge=False)
        order_columns = [Col("client id", 20, justify="left"), Col("symbol", justify="left"), Col("side", justify="left"), Col("price"),
                         Col("qty"), Col("filled", 40), Col("state", 50, justify="left")]
        order_rows = [[str(r["client_order_id"]), r["symbol"], F.side_name(r["side"]), self.prices.price(r["symbol"], r["price"]),
                       F.format_qty(r["qty"]), F.format_qty(r["filled_qty"]), r["event"]] for r in list(self.working.values())[-8:]]
        orders = fitted_table(self.console, order_columns, order_rows, title="working orders", show_edge=False)
        rej = "  ".join(f"{k} {c(v)}" for k, v in sorted(self.rejections.items())) or "none"
        halted = f"   [red]HALTED: {self.run.halted_reason}[/]" if self.run is not None and self.run.halted_reason else ""
        return Group(head, orders, f"risk rejections: {rej}{halted}")


def replay_position(run, total_rows) -> str:
    """`  data 2024-06-03 09:15:02 UTC  42%` of a replay: the data time reached and how far
    through the input it is (rows read of the files' rows); empty for a live market."""
    if run is None or not getattr(run, "inputs_replayed", False) or not run.last_ts:
        return ""
    import datetime as dt

    when = dt.datetime.fromtimestamp(run.last_ts / 1e9, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    share = f"  {min(100.0, 100.0 * run.rows / total_rows):.0f}%" if total_rows else ""
    return f"  data {when} UTC{share}"


class ReplayProgress:
    """A replay's progress on a terminal stderr when stdout is not the dashboard: a bar through
    the input's rows with the data time reached (`sq paper --from … --realtime > log`)."""

    def __init__(self, env, source):
        from sq.commands._progress import RowProgress

        self.total = getattr(source, "total_rows", None)
        self.progress = RowProgress(env, "replay", self.total, unit="events", full_at_end=False)

    def __enter__(self):
        self.progress.__enter__()
        return self

    def update(self, batch, out, run) -> None:
        if batch is None:
            return
        if self.progress.bar is None:
            self.progress(0)  # an input of unknown size (stdin): a count and the data time, no bar
        if self.progress.bar is not None:
            self.progress.bar.update(self.progress.task, completed=run.rows, description=f"replay{replay_position(run, None)}")

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)


def register(app: typer.Typer) -> None:
    app.command(name="paper", help=HELP, epilog=EPILOG, short_help=SUMMARY)(paper)
