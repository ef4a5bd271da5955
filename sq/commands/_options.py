"""Options shared by the commands (the sqlite-utils habit: one definition, the same flag means the
same thing everywhere), the metavars help shows, and the shell-completion callbacks of values.

Everything here is cheap to import (`sq --help` and `sq kill` load it): completion callbacks
import what they read only when the shell asks.
"""


import os
from typing import Annotated, List, Optional

import typer

# ----------------------------------------------------------------------------------------------
# shell completion of values (an empty list lets every shell complete file names instead)

SEED_DEFAULT = 1  # the one --seed default of subscribe, record, paper and backtest
STRATEGY_REQUIRED = "--strategy is required: {names}, a file (./mine.py) or package.module:NAME"
FILL_QUEUE_MODELS = ("risk-averse", "prob")  # sq.core.engine.layout.QUEUE_MODELS (tests check they agree)
FILL_LATENCY_DISTS = ("constant", "exponential", "uniform")  # sq.core.engine.layout.LATENCY_DISTS
STREAM_FORMATS = ("auto", "arrow", "parquet", "jsonl", "table")  # sq.core.streams.FORMATS
RECORD_FORMATS = ("auto", "arrow", "jsonl", "table", "none")
ZERODHA_MODES = ("ltp", "quote", "full")
EXPIRIES = ("near", "next", "far")  # sq.venues.base.EXPIRY_RULES


def _matching(values, incomplete: str) -> list[str]:
    return [v for v in values if v.lower().startswith((incomplete or "").lower())]


def complete_files(incomplete: str) -> list[str]:
    """Files and directories: no words of our own, so the shell completes paths."""
    return []


def complete_formats(incomplete: str) -> list[str]:
    return _matching(STREAM_FORMATS, incomplete)


def complete_record_formats(incomplete: str) -> list[str]:
    return _matching(RECORD_FORMATS, incomplete)


def complete_import_formats(incomplete: str) -> list[str]:
    from sq.venues.registry import ARCHIVE_FORMATS

    tardis = ("tardis-incremental_book_L2", "tardis-trades", "tardis-quotes", "tardis-book_snapshot_25", "tardis-book_snapshot_5")
    return _matching(("auto", *tardis, "csv", "parquet", *ARCHIVE_FORMATS), incomplete)


def complete_modes(incomplete: str) -> list[str]:
    return _matching(ZERODHA_MODES, incomplete)


def complete_expiries(incomplete: str) -> list[str]:
    return _matching(EXPIRIES, incomplete)


def complete_queue_models(incomplete: str) -> list[str]:
    return _matching(FILL_QUEUE_MODELS, incomplete)


def complete_latency_dists(incomplete: str) -> list[str]:
    return _matching(FILL_LATENCY_DISTS, incomplete)


def complete_venues(incomplete: str) -> list[str]:
    from sq.venues.registry import VENUES

    return _matching(VENUES, incomplete)


def complete_strategies(incomplete: str) -> list[str]:
    """Built-in names and installed strategies' entry-point names (nothing is imported or
    compiled); a path-like word completes as a file."""
    if incomplete.startswith((".", "/", "~")):
        return []
    from sq.core.strategy import loader

    names = list(loader.BUILTINS)
    try:
        names += sorted(n for n in loader.entry_points() if n not in names)
    except Exception:  # a broken installed package must not break the shell
        pass
    return _matching(names, incomplete)


def complete_symbols(incomplete: str) -> list[str]:
    """SIM:DEMO, the symbol prefixes, and the symbols in the instrument lists venues cached
    (`sq.venues.registry.cached_symbols`: read from the cache dir, never downloaded).

    bash splits a word at ':' (COMP_WORDBREAKS): `NSE:RE` arrives as `NSE`, `:`, `RE`, and only
    the last piece is replaced, so the part after the prefix is what is offered then."""
    from sq.venues.registry import cached_symbols

    if incomplete.startswith("-"):
        return []
    prefix = _bash_prefix(incomplete)
    if prefix is not None:
        word = f"{prefix}:{incomplete.lstrip(':')}"
        tails = [s[len(prefix) + 1:] for s in _matching(cached_symbols(word), word)]
        return [":" + t for t in tails] if incomplete == ":" else tails
    return _matching(cached_symbols(incomplete), incomplete)


def _bash_prefix(incomplete: str) -> Optional[str]:
    """The symbol prefix bash split off before the word being completed (None: not bash, or no
    split)."""
    words, cword = os.environ.get("COMP_WORDS"), os.environ.get("COMP_CWORD")
    if words is None or cword is None or not cword.isdigit():
        return None
    parts = words.split()
    i = int(cword)
    if incomplete == ":" and 1 <= i - 1 < len(parts):
        return parts[i - 1]
    if 2 <= i and i - 1 < len(parts) and parts[i - 1] == ":":
        return parts[i - 2]
    return None


# ----------------------------------------------------------------------------------------------
# the shared options

OutputOption = Annotated[
    Optional[str],
    typer.Option("--output", "-o", metavar="FILE", help="Write to FILE (.parquet, .arrow or .jsonl) atomically instead of stdout.", show_default=False,
                 autocompletion=complete_files),
]
# a command that writes a dataset directory: -o/--output DIR (--out stays as a hidden alias: scripts use it)
OUT_ALIAS = "--out"


def dataset_output(help: str):
    """-o/--output DIR of a command that writes a dataset directory (record, fetch, import)."""
    return typer.Option("--output", "-o", OUT_ALIAS, metavar="DIR", help=help, show_default=False, autocompletion=complete_files)


FormatOption = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        help="auto (Arrow on a pipe, a live view on a terminal, by -o suffix), arrow, parquet, jsonl or table.",
        autocompletion=complete_formats,
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the simulated exchange (SIM: symbols) and of the simulated fills' random draws (latency jitter, fill probability); same seed, same market, same fills.")]
ForOption = Annotated[Optional[str], typer.Option("--for", help="Stop after this long in real time (30s, 5m, 1h).", show_default=False)]
LimitOption = Annotated[Optional[int], typer.Option("--limit", "-n", help="Stop after N events (SIM runs in simulated time, as fast as possible).", show_default=False, min=1)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
SymbolsArgument = Annotated[
    List[str],
    typer.Argument(metavar="SYMBOL...", help="Symbols, e.g. SIM:DEMO (any SIM:<NAME> works), BINANCE:BTCUSDT, NSE:INFY, NFO:NIFTY-FUT (the current month's contract).",
                   show_default=False, autocompletion=complete_symbols),
]
StrategyOption = Annotated[
    Optional[str],
    typer.Option("--strategy", "-s", help="A built-in (mm, lt, avellaneda; bar strategies ma_cross, rsi_macd, orb, supertrend, donchian), a file (./mine.py or ./mine.py:NAME), package.module:NAME or an installed strategy's name; see sq strategies. Required (paper and live: unless --resume).",
                 show_default=False, autocompletion=complete_strategies),
]
VenueOption = Annotated[Optional[str], typer.Option("--venue", help="Only this venue (sim, binance, zerodha).", show_default=False, autocompletion=complete_venues)]


def env_of(ctx: typer.Context):
    """The injected Environment (set by the root callback)."""
    from sq.core.environment import Environment

    obj = ctx.find_root().obj
    return obj if isinstance(obj, Environment) else Environment()


def require_strategy(strategy: Optional[str]) -> str:
    """--strategy is required the same way by backtest, paper and live (paper and live: unless --resume)."""
    if not strategy:
        from sq.core.exits import UsageError
        from sq.core.strategy.loader import BUILTINS

        raise UsageError(STRATEGY_REQUIRED.format(names="one of " + ", ".join(BUILTINS)))
    return strategy


ModeOption = Annotated[str, typer.Option("--mode", help="Zerodha ticker mode: ltp, quote or full (5-level depth); quote and full also give trades derived from the day volume. Binance and SIM always stream full depth.",
                                         autocompletion=complete_modes)]
ExpiryOption = Annotated[
    Optional[str],
    typer.Option("--expiry", help="Which contract a continuous futures name (NFO:NIFTY-FUT) stands for: near (the nearest listed expiry), next or far (config: [zerodha] expiry, default near).", show_default=False,
                 autocompletion=complete_expiries),
]
RawOption = Annotated[
    Optional[str],
    typer.Option("--raw", metavar="FILE", help="Also keep the venue's raw frames and REST answers in FILE (JSON Lines) for --replay.", show_default=False,
                 autocompletion=complete_files),
]
ReplayOption = Annotated[
    Optional[str],
    typer.Option("--replay", metavar="FILE", help="Run the venue parser and book sync over a raw capture (JSON Lines from --raw) instead of the network.", show_default=False,
                 autocompletion=complete_files),
]

StartOption = Annotated[
    Optional[str],
    typer.Option("--start", help="Read from this UTC day on (YYYY-MM-DD): a dataset's files of earlier date= partitions are not opened.", show_default=False),
]
EndOption = Annotated[
    Optional[str],
    typer.Option("--end", help="Read up to and including this UTC day (YYYY-MM-DD): later date= partitions are not opened.", show_default=False),
]
InputsArgument = Annotated[
    Optional[List[str]],
    typer.Argument(help="Parquet files, recorded dataset dirs/globs, Arrow files, or - for stdin (the default when piped).", show_default=False,
                   autocompletion=complete_files),
]

MetricsOption = Annotated[
    Optional[str],
    typer.Option("--metrics", help="Serve Prometheus metrics on HOST:PORT (127.0.0.1:9108): events, orders, fills and rejections, position, PnL, tick→order and journal latency, breaker, feed (config: [monitoring] metrics).", show_default=False),
]
MetricsFileOption = Annotated[
    Optional[str],
    typer.Option("--metrics-file", help="Also write the metrics to PATH (a .prom file for node_exporter's textfile collector; rewritten every few seconds and at the end).", show_default=False),
]
AlertOption = Annotated[
    Optional[List[str]],
    typer.Option("--alert", help="Send alerts (halts, loss limits, breaker, feed, kill, errors, the end-of-run summary) to this apprise URL (tgram://, slack://, discord://, mailto://, json://…); repeatable, added to [monitoring] alerts; shown masked.", show_default=False),
]


def monitor_options(metrics, metrics_file, alerts):
    """The flags as `sq.runs.monitor.MonitorOptions`."""
    from sq.runs.monitor import MonitorOptions

    return MonitorOptions(metrics=metrics, metrics_file=metrics_file, alerts=list(alerts or []))


# ----------------------------------------------------------------------------------------------
# the simulated fills: backtest and paper take the same flags and give them to the same fill model

LatencyOption = Annotated[Optional[str], typer.Option("--latency", help="Order latency each way (e.g. 20ms, 500us); default the config's paper_trading.order_latency_ms (20ms).", show_default=False)]
LatencyDistOption = Annotated[Optional[str], typer.Option("--latency-dist", help="constant, exponential or uniform (adds a seeded jitter of --latency-jitter); default the config's paper_trading.latency_dist (constant).",
                                                          show_default=False, autocompletion=complete_latency_dists)]
LatencyJitterOption = Annotated[Optional[str], typer.Option("--latency-jitter", help="Scale of the latency jitter (e.g. 2ms); default the config's paper_trading.latency_jitter_ms (0).", show_default=False)]
FeedLatencyOption = Annotated[Optional[str], typer.Option("--feed-latency", metavar="data|DURATION", help="Market data delay: 'data' (each event's recv_ts − ts) or a duration; default the config's paper_trading.feed_latency_ms, unset: data.", show_default=False)]
QueueModelOption = Annotated[str, typer.Option("--queue-model", help="risk-averse (cancels at our price mostly behind us) or prob (power-probability).", autocompletion=complete_queue_models)]
FEED_LATENCY_DEFAULT = None  # not given: the config's feed_latency_ms, else the data's recv_ts − ts
QUEUE_MODEL_DEFAULT = "risk-averse"


def fill_overrides(latency: Optional[str], latency_dist: Optional[str], latency_jitter: Optional[str], feed_latency: Optional[str], queue_model: str) -> dict:
    """The fill flags as `FillModelConfig` overrides (None: the config's value; `feed_latency_ns`
    "data": each event's recv_ts − ts, whatever the config says)."""
    from sq.core.durations import parse_duration_ns

    return {
        "order_latency_ns": parse_duration_ns(latency, option="--latency") if latency else None,
        "latency_dist": latency_dist,
        "latency_jitter_ns": parse_duration_ns(latency_jitter, option="--latency-jitter") if latency_jitter else None,
        "feed_latency_ns": None if feed_latency is None else "data" if feed_latency.strip().lower() == "data" else parse_duration_ns(feed_latency, option="--feed-latency"),
        "queue_model": queue_model,
    }


# ----------------------------------------------------------------------------------------------
# metavars: what help shows after an option that takes a value (an option's own metavar wins)

METAVARS = {
    "--config": "FILE", "--for": "DURATION", "--limit": "N", "--seed": "N", "--output": "FILE", "--format": "FORMAT",
    "--mode": "MODE", "--raw": "FILE", "--replay": "FILE", "--expiry": "near|next|far", "--rotate": "DURATION",
    "--kind": "KIND", "--start": "DATE", "--end": "DATE", "--interval": "INTERVAL", "--symbol": "SYMBOL",
    "--map": "FIELD=COLUMN", "--ts-unit": "UNIT", "--tick-size": "PRICE", "--lot-size": "QTY", "--depth": "N",
    "--every": "N", "--stale-max-age": "DURATION", "--view-depth": "N", "--vwap-window": "DURATION",
    "--vol-halflife": "N", "--strategy": "STRATEGY", "--from": "INPUT", "--journal": "DIR", "--param": "K=V",
    "--resume": "DIR", "--latency": "DURATION", "--latency-dist": "DIST", "--latency-jitter": "DURATION",
    "--queue-model": "MODEL", "--sweep": "K=RANGE", "--jobs": "N", "--report": "FILE", "--adjust": "FILE",
    "--order-timeout": "SECONDS", "--breaker-failures": "N", "--breaker-cooldown": "SECONDS", "--venue": "VENUE",
    "--tolerance": "X", "--since": "DURATION", "--timeout": "SECONDS", "--ed25519-key": "FILE",
    "--request-token": "TOKEN", "--metrics": "HOST:PORT", "--metrics-file": "FILE", "--alert": "URL",
    "--stale-after": "DURATION", "--shadow": "STRATEGY[:K=V,...]",
    "--search": "grid|random:N|optuna:N", "--objective": "NAME|EXPR", "--require": "EXPR", "--study": "FILE",
    "--wfo": "train=D,test=D[,step=D][,anchored]", "--cv": "cpcv:…|kfold:…", "--returns-basis": "DURATION",
}
ARGUMENT_METAVARS = {"inputs": "INPUT...", "symbols": "SYMBOL...", "files": "FILE...", "command": "COMMAND", "interval": "INTERVAL"}


def metavar_of(param) -> Optional[str]:
    """The metavar help shows for `param` (a click Option or Argument) when it declares none."""
    if getattr(param, "param_type_name", "") == "argument":
        return ARGUMENT_METAVARS.get(param.name or "")
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    for opt in param.opts:
        if opt in METAVARS:
            return METAVARS[opt]
    return None
