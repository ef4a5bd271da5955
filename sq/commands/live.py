"""`sq live`: trade real money with the paper engine through a venue gateway (README: CLI reference)."""


from typing import Annotated, List, Optional

import typer

from sq.commands._live import LiveView
from sq.commands._options import AlertOption, ExpiryOption, JsonOption, MetricsFileOption, MetricsOption, StrategyOption, complete_symbols, env_of, monitor_options

SUMMARY = "Trade a strategy with real orders at a venue."

HELP = """Trade a strategy (a built-in such as mm or lt, or your own file) with real orders at a venue
(BINANCE:, BINANCE-FUT:, Zerodha exchanges), running the same engine kernels as sq paper and
sq backtest.

It starts only when the config says trading_mode = "live" (else exit 78) AND you confirm with
--confirm-live or SQ_CONFIRM_LIVE=1 (else exit 2); it refuses when a secret file is readable by
others (77) and when another sq live trades any of the same symbols (75). Before its first order
it reconciles with the venue. Every order is journaled (hash-chained, fsync'd) before it is sent;
client order ids are deterministic (run id + counter), so a retried send can never double an
order and a send that timed out is resolved by asking the venue for its client id. Order updates
come from the venue's own stream (Binance user data, Kite postbacks), with a periodic check at
the venue as a safety net. A circuit breaker stops new orders after --breaker-failures venue
failures in a row and tries again after --breaker-cooldown seconds (both also in the config's
[live] table). Before the first order, the journals of earlier live runs on the same symbols are
reconciled and the orders they left open are cancelled. When market data is lost for longer
than the [live] table's feed_grace_s (2 s), working orders are cancelled and none are sent until
it is back. Ctrl-C, SIGTERM or sq kill cancel every order, reconcile and seal the
journal, print the summary and exit 130 (Ctrl-C), 143 (SIGTERM) or 0 (sq kill, the end); any other error cancels the run's orders at the venue before exiting
non-zero. A crashed run continues with --resume DIR (replay, reconcile, cancel what the dead
process left working, continue). A run reaches only the markets of its symbols: trading
BINANCE: spot needs no access to Binance's futures API. On a terminal a live dashboard is shown."""

EPILOG = """Examples:

  sq live --strategy mm BINANCE:BTCUSDT --config live.toml --confirm-live --param clip=0.001

  sq live --strategy lt NSE:INFY --config live.toml --confirm-live --for 6h --json

  sq live --strategy mm BINANCE:BTCUSDT --config live.toml --confirm-live --shadow mm:clip=0.002

  sq live --resume ~/.local/share/sq/runs/20260125T093000Z-3f9a00 --config live.toml --confirm-live

  # cron (weekdays 09:15 IST), one instance at a time:
  15 9 * * 1-5  SQ_CONFIRM_LIVE=1 flock -n /tmp/sq-live.lock sq live --strategy mm NSE:INFY --config ~/live.toml --for 6h --json >> ~/sq-live.log

  sq kill    # from anywhere: halt it and cancel at the venue"""


def live(
    ctx: typer.Context,
    symbols: Annotated[Optional[List[str]], typer.Argument(help="Symbols to trade, e.g. NSE:INFY, NFO:NIFTY-FUT (the current month's contract, fixed for the run; default: the config's instruments).", metavar="SYMBOL...", show_default=False, autocompletion=complete_symbols)] = None,
    strategy: StrategyOption = None,
    config: Annotated[Optional[str], typer.Option("--config", metavar="FILE", help="Config file with trading_mode = \"live\" (also: sq --config FILE live …, $SQ_CONFIG).", show_default=False)] = None,
    confirm_live: Annotated[bool, typer.Option("--confirm-live", help="Confirm that real orders may be sent (or SQ_CONFIRM_LIVE=1).")] = False,
    journal: Annotated[Optional[str], typer.Option("--journal", help="Journal directory (default: <data dir>/runs/<run id>).", show_default=False)] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue the crashed live run whose journal is in DIR.", show_default=False)] = None,
    params: Annotated[Optional[List[str]], typer.Option("--param", "-p", help="Strategy/risk parameter k=v (clip, threshold, max_order_size, max_position, max_loss); repeatable.", show_default=False)] = None,
    for_: Annotated[Optional[str], typer.Option("--for", help="Stop cleanly after this long (30s, 6h).", show_default=False)] = None,
    order_timeout: Annotated[Optional[float], typer.Option("--order-timeout", help="Seconds to wait for a venue answer before resolving the order by its client id (config: live.order_timeout_s, default 5).", show_default=False)] = None,
    breaker_failures: Annotated[Optional[int], typer.Option("--breaker-failures", help="Venue failures in a row that open the circuit breaker: no new orders (config: live.breaker_failures, default 5).", show_default=False)] = None,
    breaker_cooldown: Annotated[Optional[float], typer.Option("--breaker-cooldown", help="Seconds the breaker stays open before one trial order (config: live.breaker_cooldown_s, default 10).", show_default=False)] = None,
    expiry: ExpiryOption = None,
    shadow: Annotated[Optional[str], typer.Option("--shadow", metavar="STRATEGY[:K=V,…]", help="Also run a paper twin on the same feed in this process (its own journal in <journal>/shadow, no orders sent): the same strategy with other parameters (mm:clip=2) or another one; compare them with sq report.", show_default=False)] = None,
    metrics: MetricsOption = None,
    metrics_file: MetricsFileOption = None,
    alert: AlertOption = None,
    json_: JsonOption = False,
) -> None:
    from sq.runs.live import LiveOptions, run_live

    env = env_of(ctx)
    if config:
        env.config_path = config
    opts = LiveOptions(strategy=strategy, symbols=list(symbols or []), confirm=confirm_live, journal=journal, resume=resume,
                       params=list(params or []), duration=for_, order_timeout_s=order_timeout, breaker_failures=breaker_failures,
                       breaker_cooldown_s=breaker_cooldown, json=json_, expiry=expiry, shadow=shadow,
                       monitor=monitor_options(metrics, metrics_file, alert))
    view = env.stdout_isatty and not json_
    summary = run_live(env, opts, view_factory=(lambda plan, source, run: Dashboard(env, plan, getattr(source, "instruments", None))) if view else None)
    render_summary(env, summary, json_)


def render_summary(env, summary: dict, json_out: bool) -> None:
    """The run's summary: one JSON document, or a line on stderr (and the PnL line on a pipe)."""
    from sq.core.summary import metrics_rows, rejection_note

    if json_out:
        env.write_json(summary)
        return
    why = rejection_note(summary, fills_key="venue_fills", orders_key="orders_sent")  # a run that traded little says why
    env.info(f"live {summary.get('strategy')} {' '.join(summary.get('symbols') or [])}: {summary.get('orders_sent', 0)} orders sent, "
             f"{summary.get('venue_fills', 0)} fills, position {summary.get('position')}, {why + ', ' if why else ''}"
             f"stopped by {summary.get('stopped_by')}; journal {summary.get('journal')}")
    for label, value in metrics_rows(summary.get("metrics")):  # the trader metrics, docs/metrics.md
        env.info(f"  {label}: {value}")
    if not env.stdout_isatty:
        pnl = summary.get("pnl") or {}
        env.stdout.write(f"PnL total {pnl.get('total', 0.0):.4f} realized {pnl.get('realized', 0.0):.4f} gross {pnl.get('gross', 0.0):.4f} "
                         f"fees {pnl.get('fees', 0.0):.4f} funding {pnl.get('funding', 0.0):.4f}\n".encode())
        env.stdout.flush()


class Dashboard(LiveView):
    """The terminal view of a live run: per symbol position and PnL, working orders, fills,
    venue failures, the circuit breaker and tick-to-order latency; redrawn at most 5 times a
    second (rich Live on stdout, redirect_stdout=False)."""

    def __init__(self, env, plan, instruments=None, refresh_s: float = 0.2):
        import time

        from sq.core.formatting import PriceFormats

        super().__init__(env)
        self.plan, self.refresh_s = plan, refresh_s
        self.prices = PriceFormats(instruments)
        self.started = time.monotonic()
        self._last = 0.0
        self.run = None

    def draw(self) -> None:
        if self.run is not None:  # nothing to show before the first step
            super().draw()

    def update(self, batch, out, run) -> None:
        import time

        self.run = run
        now = time.monotonic()
        if now - self._last >= self.refresh_s:
            self._last = now
            self.draw()

    def _render(self):
        import time

        from rich.console import Group
        from rich.table import Table

        from sq.runs.live import percentile

        from sq.commands._tables import Col, fitted_table
        from sq.core import formatting as F

        run = self.run
        pos = run.engine.positions()
        title = (f"sq live {self.plan.strategy} on {self.plan.venue}  {time.monotonic() - self.started:,.0f}s  "
                 f"{F.format_count(run.sent)} sent  {F.format_count(run.fills)} fills  breaker {run.breaker.state}")
        # on a narrow terminal the PnL parts give way, never the total
        columns = [Col("symbol", justify="left"), Col("position", 70), Col("avg", 30), Col("realized", 50), Col("unrealized", 40), Col("total")]
        rows = [[sym, F.format_qty(p.get("position")), self.prices.price(sym, p.get("avg_price"), F.AVERAGE_EXTRA),
                 F.format_pnl(p.get("realized")), F.format_pnl(p.get("unrealized")), F.format_pnl(p.get("total"))]
                for sym in self.plan.symbols for p in [pos.get(sym, {})]]
        t = fitted_table(self.console, columns, rows, title=title, show_edge=False)
        w = Table(title="working orders", show_edge=False)
        for col in ("client id", "symbol", "leaves", "filled"):
            w.add_column(col)
        for coid, (sym, _state, leaves, filled) in list(run.bridge.working().items())[-8:]:
            w.add_row(run.cid(coid), sym, F.format_qty(leaves), F.format_qty(filled))
        p50, p99 = percentile(run.latencies_ns, 0.5), percentile(run.latencies_ns, 0.99)
        lat = "—" if p50 is None else f"{p50 / 1e3:.0f} µs p50, {p99 / 1e3:.0f} µs p99"
        halted = f"   [red]HALTED: {run.halted_reason}[/]" if run.halted_reason else ""
        stream = "up" if run.was_pushing else ("down" if run.followed else "none")
        return Group(t, w, f"venue failures {run.failures}   order stream {stream} ({run.updates} updates, {run.sweeps} checks)   "
                           f"tick→order {lat}{halted}")


def register(app: typer.Typer) -> None:
    app.command(name="live", help=HELP, epilog=EPILOG, short_help=SUMMARY)(live)
