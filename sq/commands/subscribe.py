"""`sq subscribe`: stream market events of symbols — an Arrow market stream on a pipe, a live
view on a terminal, or a file with -o, from any venue (SIM, Binance, Zerodha).
"""


import typer

from sq.commands._options import (SEED_DEFAULT, ExpiryOption, FormatOption, ForOption, JsonOption, LimitOption, ModeOption, OutputOption, RawOption,
                                  ReplayOption, SeedOption, SymbolsArgument, env_of)

SUMMARY = "Stream market events of symbols from any venue."

HELP = """Stream market events (L2 levels and trades) of one or more symbols.

On a pipe the output is an Arrow IPC market stream that ends with an sq trailer, also when
stopped by Ctrl-C (exit 130) or SIGTERM (exit 143). --limit runs the simulated exchange in
simulated time (as fast as possible); --for, or neither option, in real time. With -o FILE,
--json prints one summary document (events per symbol, file, bytes) on stdout."""
EPILOG = (
    "Examples:\n\n"
    "  sq subscribe SIM:DEMO --limit 20000 | sq book --depth 5\n\n"
    "  sq subscribe SIM:DEMO SIM:FOO --for 5s -o demo.parquet\n\n"
    "  sq subscribe SIM:DEMO --seed 7 --limit 1000 --format jsonl | head\n\n"
    "  sq subscribe SIM:DEMO --limit 5000 -o demo.parquet --json\n\n"
    "  sq subscribe SIM:DEMO            # live view on a terminal; Ctrl-C to stop\n\n"
    "  sq subscribe BINANCE:BTCUSDT --for 10s --raw btc.jsonl | sq book\n\n"
    "  sq subscribe NSE:RELIANCE --mode quote --for 5m -o reliance.parquet\n\n"
    "  sq subscribe NFO:NIFTY-FUT --expiry next | sq book --depth 5\n\n"
    "  sq subscribe BINANCE:BTCUSDT --replay btc.jsonl | sq book --depth 10"
)


def subscribe(
    ctx: typer.Context,
    symbols: SymbolsArgument,
    for_: ForOption = None,
    limit: LimitOption = None,
    seed: SeedOption = SEED_DEFAULT,
    output: OutputOption = None,
    fmt: FormatOption = "auto",
    mode: ModeOption = "full",
    raw: RawOption = None,
    replay: ReplayOption = None,
    expiry: ExpiryOption = None,
    json_: JsonOption = False,
) -> None:
    env = env_of(ctx)
    from sq.runs.lifecycle import StopOnSignals

    if json_ and output is None:
        from sq.core.exits import UsageError

        raise UsageError("--json prints a summary of what -o FILE received; without -o the events themselves go to stdout")
    counts: dict = {}
    with StopOnSignals() as stopper:
        _subscribe(env, stopper, symbols, for_, limit, seed, output, fmt, mode, raw, replay, expiry, counts=counts if json_ else None)
    if json_:
        import os

        env.write_json({"symbols": sorted(counts), "events": sum(counts.values()), "per_symbol": counts, "output": output,
                        "bytes": os.path.getsize(output) if os.path.exists(output) else 0})


def _subscribe(env, stopper, symbols, for_, limit, seed, output, fmt, mode="full", raw=None, replay=None, expiry=None, counts=None) -> None:
    from sq.core.durations import parse_duration_ns
    from sq.core.exits import UsageError
    from sq.core.streams import resolve_format
    from sq.venues.registry import parse_symbols

    parsed = parse_symbols(symbols)
    duration_ns = parse_duration_ns(for_, option="--for") if for_ is not None else None
    if duration_ns is not None and duration_ns <= 0:
        raise UsageError("--for must be longer than zero")
    fmt_resolved = resolve_format(env, fmt, output)

    from sq.core.config import load_config
    from sq.runs import contracts
    from sq.venues.registry import SourceOptions, open_market_source

    config = load_config(env)
    resolved = contracts.resolve(env, config, parsed, expiry=expiry, replay_path=replay)
    clock = "sim" if (limit is not None and duration_ns is None) else "real"
    options = SourceOptions(config=config, env=env, seed=seed, limit=limit, duration_ns=duration_ns, clock=clock,
                            mode=mode.lower(), raw_path=raw, replay_path=replay, contracts=resolved.contracts)
    source = open_market_source(resolved.symbols, options)
    live_view = output is None and env.stdout_isatty and fmt_resolved == "table" and (fmt or "auto").lower() in ("auto", "table")

    stopper.attach(lambda _signal: source.close())
    if live_view:
        _live_view(env, source)
    else:
        from sq.core.streams import StreamWriter

        with StreamWriter(env, source.schema, output=output, fmt=fmt) as writer:
            for batch in source.batches():
                writer.write(batch)
                if counts is not None:
                    _count(counts, batch)


def _count(counts: dict, batch) -> None:
    """Events per symbol of one market batch (--json)."""
    import numpy as np

    col = batch.column("symbol")
    names = col.dictionary.to_pylist()
    codes, n = np.unique(col.indices.to_numpy(zero_copy_only=False), return_counts=True)
    for c, k in zip(codes.tolist(), n.tolist()):
        counts[names[c]] = counts.get(names[c], 0) + int(k)


def _live_view(env, source) -> None:
    """A rich Live view on stdout: per symbol best bid/ask, spread, sizes, event rate, last trades."""
    import time

    from rich.live import Live

    console = env.console()
    view = _BookView(list(source.instruments), source.instruments, console)
    with Live(view.render(), console=console, redirect_stdout=False, redirect_stderr=False, refresh_per_second=4, transient=False) as live:
        last = 0.0
        for batch in source.batches():
            view.update(batch)
            now = time.monotonic()
            if now - last >= 0.25:
                live.update(view.render())
                last = now
        live.update(view.render())


# the view's columns, most important first in place and in what stays on a narrow terminal:
# best bid/ask and spread always; sizes, counts, the rate and the trade tape give way in turn
def _columns():
    from sq.commands._tables import Col

    return [Col("symbol", justify="left"), Col("bid"), Col("ask"), Col("spread"), Col("bid qty", 60), Col("ask qty", 60),
            Col("events/s", 30), Col("events", 40), Col("last trades", 10, justify="left")]


class _BookView:
    """Plain-Python per-symbol book and trade tape fed from market batches (display only)."""

    def __init__(self, symbols, instruments, console=None):
        import collections

        from sq.core.formatting import PriceFormats

        self.symbols = list(symbols)
        self.instruments = instruments
        self.console = console
        self.prices = PriceFormats(instruments)
        self.bids = {s: {} for s in symbols}
        self.asks = {s: {} for s in symbols}
        self.trades = {s: collections.deque(maxlen=3) for s in symbols}
        self.counts = {s: collections.deque() for s in symbols}  # (monotonic time, rows)
        self.total = {s: 0 for s in symbols}

    def update(self, batch) -> None:
        import time

        import numpy as np

        sym_col = batch.column("symbol")
        names = sym_col.dictionary.to_pylist()
        codes = sym_col.indices.to_numpy(zero_copy_only=False)
        kinds = batch.column("kind").to_numpy()
        sides = batch.column("side").to_numpy()
        prices = batch.column("price").to_numpy()
        qtys = batch.column("qty").to_numpy()
        now = time.monotonic()
        for code in np.unique(codes):
            s = names[code]
            if s not in self.bids:
                continue
            m = codes == code
            self.counts[s].append((now, int(m.sum())))
            self.total[s] += int(m.sum())
            bids, asks, tape = self.bids[s], self.asks[s], self.trades[s]
            for k, sd, p, q in zip(kinds[m].tolist(), sides[m].tolist(), prices[m].tolist(), qtys[m].tolist()):
                if k == 1:
                    book = bids if sd > 0 else asks
                    if q > 0:
                        book[p] = q
                    else:
                        book.pop(p, None)
                elif k == 2:
                    tape.append((sd, p, q))
                elif k == 3:
                    bids.clear()
                    asks.clear()

    def rate(self, s: str) -> float:
        import time

        now = time.monotonic()
        dq = self.counts[s]
        while dq and now - dq[0][0] > 2.0:
            dq.popleft()
        if not dq:
            return 0.0
        span = max(now - dq[0][0], 0.25)
        return sum(n for _, n in dq) / span

    def render(self):
        from rich.console import Console

        from sq.commands._tables import fitted_table
        from sq.core import formatting as F

        rows = []
        for s in self.symbols:
            bids, asks = self.bids[s], self.asks[s]
            bb = max(bids) if bids else None
            ba = min(asks) if asks else None
            px = lambda v: self.prices.price(s, v, missing="-")
            spread = px(ba - bb) if bb is not None and ba is not None else "-"
            tape = " ".join(f"{'+' if sd > 0 else '-'}{F.format_qty(q)}@{px(p)}" for sd, p, q in reversed(self.trades[s])) or "-"
            rows.append([s, px(bb), px(ba), spread, F.format_qty(bids[bb]) if bb is not None else "-",
                         F.format_qty(asks[ba]) if ba is not None else "-", F.format_count(self.rate(s)), F.format_count(self.total[s]), tape])
        return fitted_table(self.console or Console(), _columns(), rows, title="sq subscribe — Ctrl-C to stop", expand=False)


def register(app: typer.Typer) -> None:
    app.command(name="subscribe", help=HELP, epilog=EPILOG, short_help=SUMMARY)(subscribe)
