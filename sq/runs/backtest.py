"""`sq backtest`: a strategy over recorded market data through the one engine (README: Exit codes).

A backtest is a pure function of (data, strategy, parameters, fill model, seed) → journal rows
and a summary, with no hidden global state, so a process pool (or Ray) can run partitions and
parameter sets side by side. The same `Engine` drives `sq paper`, so a paper replay of a
file and a backtest of it produce identical orders and fills.

Parameters are checked before any data is read (unknown name → exit 2, out of range → 78); an
input that is not a market stream is exit 65; a liquidity-taker run over data without trades
warns. `--journal DIR` writes orders.parquet, fills.parquet and pnl.parquet (canonical schemas,
each written to a temp file and renamed on success).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Iterable

from sq.core import schemas as S
from sq.core import summary as RS
from sq.core.engine import params as strategy_params
from sq.core.engine.runner import Engine, FillModelConfig
from sq.core.exits import DataError, UsageError
from sq.core.streams import StreamWriter, open_input
from sq.core.strategy.declaration import Strategy

JOURNAL_FILES = ("orders.parquet", "fills.parquet", "pnl.parquet")


def resolve_params(strategy: Strategy, symbols: Iterable[str], config, overrides: Iterable[str]) -> dict[str, dict[str, float]]:
    """Per-symbol parameters for the known symbols plus `*` for symbols first seen in the data."""
    overrides = list(overrides or ())
    known = sorted(set(symbols) | set(config.symbols) | {s for s, _, _ in strategy_params.parse_overrides(overrides, strategy) if s})
    params = strategy_params.resolve(strategy, known, config, overrides)
    generic = [o for o in overrides if "." not in o.partition("=")[0]]
    params[strategy_params.ALL] = strategy_params.resolve(strategy, [strategy_params.ALL], None, generic)[strategy_params.ALL]
    return params


def run_engine(strategy: Strategy, instruments, batches: Iterable, params: Iterable[str], *, config, fill, seed: int = 0,
               emit: Callable | None = None, progress: Callable[[int], None] | None = None, recorder=None,
               funding: Iterable = ()) -> Engine:
    """One backtest: a fresh Engine over `batches` with the `--param` strings `params`; returns
    the finished engine (its `summary()`). Shared by a single run and every sweep point, so a
    sweep point and `sq backtest --param k=v` run exactly the same code."""
    from sq.core.engine import make_engine
    from sq.core.prefetch import prefetched
    from sq.runs import marketrules
    from sq.venues.registry import trading_session

    engine = make_engine(strategy, instruments, resolve_params(strategy, instruments, config, params), config=config, fill=fill,
                         seed=seed, **({"session_of": trading_session} if strategy.kind == "bar" else {}))
    marketrules.apply(engine, instruments, config)
    from sq.runs import funding as FU

    FU.apply(engine, instruments, config, funding)
    if strategy.kind == "bar":
        batches = whole(batches)
    elif not isinstance(batches, (list, tuple)):  # a file being read: decode the next batch while this one runs
        batches = prefetched(batches)
    for batch in batches:
        out = engine.process(batch)
        if emit is not None:
            emit(out)
        if recorder is not None:
            recorder.market(batch)
            recorder.output(out)
        if progress is not None:
            progress(batch.num_rows)
    out = engine.finish()
    if emit is not None:
        emit(out)
    if recorder is not None:
        recorder.output(out)
    return engine


def input_kinds(strategy: Strategy) -> tuple[str, ...]:
    """The stream kinds a strategy runs on: market events, and bars too for a bar strategy."""
    return ("market", "bars") if strategy.kind == "bar" else ("market",)


def whole(batches: Iterable) -> list:
    """A bar strategy's bars as one table (the batches' buffers, not copied): its signals are
    computed over every bar at once (one vectorised call per symbol), exactly what a paper run
    computes bar by bar."""
    import pyarrow as pa

    from sq.core import schemas as S

    batches = [b for b in batches if b.num_rows]
    if len(batches) <= 1 or S.stream_kind(batches[0].schema) != "bars":
        return batches  # market events: turned into bars batch by batch, as they close
    return [pa.Table.from_batches(batches)]


def check_result(env, engine: Engine) -> None:
    """The run's warnings on stderr; no events at all is a data error."""
    for w in engine.warnings:
        env.warn(w)
    handlers = engine.declaration.handlers
    if engine.declaration.kind == "bar":
        if engine.counters()["events"] == 0:
            raise DataError(f"the input made no {engine.spec.label} bars")
        return
    counts = engine.counters()
    if "on_trade" in handlers and "on_book" not in handlers and engine.trades_seen == 0 and counts["events"] > 0:
        env.warn(no_trades(engine.strategy))
    if "on_book" in handlers and not ({"on_trade", "on_timer"} & set(handlers)) and counts["messages"] == 0 and counts["events"] > 0:
        env.warn(no_book(engine.strategy))
    if counts["events"] == 0:
        raise DataError("the input holds no market events")


def no_trades(name: str) -> str:
    """The warning for a strategy that acts only on trades, run over data without any."""
    return f"the input has no trades: strategy {name} acts only on trades (on_trade), so it sent no orders"


def no_book(name: str) -> str:
    """The warning for a strategy that acts only on book updates, run over data without a book."""
    return f"the input has no order book (trades or ticks only): strategy {name} acts only on book updates (on_book), so it sent no orders"


def check_param_symbols(params: Iterable[str], strategy: Strategy, instruments) -> None:
    """`--param SYMBOL.k=v` for a symbol the input does not hold would change nothing: exit 2."""
    known = set(instruments)
    if not known:
        return  # a foreign stream without instrument metadata: its symbols show only as it is read
    for sym, name, _ in strategy_params.parse_overrides(params, strategy):
        if sym and sym not in known:
            raise UsageError(f"--param {sym}.{name}: {sym} is not in the input (its symbols: {', '.join(sorted(known))})")


def config_symbols_missing(config, instruments) -> list[str]:
    """The config's instruments that the input does not hold (their settings do nothing in this run)."""
    known = set(instruments)
    return [s for s in config.symbols if known and s not in known]


def run_backtest(
    env,
    inputs: list[str] | None,
    strategy: str | Strategy,
    *,
    params: Iterable[str] = (),
    journal: str | None = None,
    fill: dict[str, Any] | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    recorder=None,
    clean: bool | None = None,
    adjust: str | None = None,
    window: tuple = (None, None),
    funding: str | None = None,
    returns_basis: str | None = None,
) -> dict[str, Any]:
    """Run the backtest; returns the summary document (the `--json` output: with `params`, each
    symbol's parameters as run, `started`/`ended` ISO-8601 UTC, numbers at the instruments'
    precision by `sq.core.summary.present`). A `recorder`
    (`sq.runs.report.RunRecorder`) sees every market batch and every output, for `--report`.
    `adjust` (a corporate-actions file) and `clean` (None: the config's `clean.enabled`) prepare
    the market data first (`sq.runs.marketprep`); `window`: (start, end) dates of `--start/--end`
    (None: unbounded), see `open_input`. `funding`: `--funding FILE|DIR` (else a `funding.parquet`
    in or beside the inputs: `sq.runs.funding`)."""
    from sq.core.config import load_config

    from sq.core.strategy import loader
    from sq.runs import marketprep

    strategy = loader.load(strategy)
    config = load_config(env)
    if returns_basis is not None:
        import dataclasses

        from sq.core.analytics import parse_basis

        parse_basis(returns_basis, calendar=False, option="--returns-basis")  # exit 2 when unreadable
        config = dataclasses.replace(config, research=dataclasses.replace(config.research, returns_basis=returns_basis))
    strategy_params.parse_overrides(params, strategy)
    loader.compiled(strategy)  # a handler that does not compile: exit 2 before any data is read
    fill_cfg = FillModelConfig.from_config(config, **(fill or {}))
    fill_cfg.validate()
    actions = marketprep.load_adjustments(adjust)
    from sq.runs import funding as FU

    funding_events = FU.read(FU.funding_files(funding, inputs))
    source = open_input(env, inputs, input_kinds(strategy), start=window[0], end=window[1])
    if progress is not None and hasattr(progress, "set_total"):  # a progress bar's 100%: the input's rows
        progress.set_total(source.total_rows)
    check_param_symbols(params, strategy, source.instruments)
    missing = config_symbols_missing(config, source.instruments)
    if missing:
        env.warn(f"config instruments not in the input (their settings do nothing in this run): {', '.join(missing)}")
    if source.kind == "bars" and (actions is not None or clean):
        raise UsageError("--adjust and --clean apply to market events; these are bars (adjust them with sq bars --adjust)")
    data = marketprep.prepare(source.instruments, source.batches(),
                              settings=marketprep.clean_settings(config, clean) if source.kind == "market" else None, actions=actions)
    from sq.runs import warmup

    warmup.warm_up(env, config, strategy, calendar=warmup.calendars_needed(data.instruments, config))
    t0 = time.perf_counter()
    started_ns = time.time_ns()
    with ExitStack() as stack:
        writers = None
        if journal:
            d = Path(journal)
            d.mkdir(parents=True, exist_ok=True)
            schemas = (S.orders_schema(), S.fills_schema(), S.pnl_schema())
            writers = [stack.enter_context(StreamWriter(env, sch, output=str(d / name), fmt="parquet"))
                       for sch, name in zip(schemas, JOURNAL_FILES)]

        funding_rows: list[dict] = []

        def emit(out) -> None:
            for w, b in zip(writers, out):
                if b.num_rows:
                    w.write(b)
            funding_rows.extend(out.funding)

        engine = run_engine(strategy, data.instruments, data.batches, params, config=config, fill=fill_cfg, seed=seed,
                            emit=emit if writers is not None else None, progress=progress, recorder=recorder,
                            funding=funding_events)
        if writers is not None:
            if funding_rows:
                import pyarrow.parquet as pq

                pq.write_table(FU.records_table(funding_rows), Path(journal) / "funding.parquet")
    check_result(env, engine)
    summary = engine.summary()
    data.report(env, summary)
    summary["wall_s"] = time.perf_counter() - t0
    summary["inputs"] = source.names
    if journal:
        summary["journal"] = str(Path(journal))
    summary["params"] = RS.params_used(engine.params, summary["symbols"])
    summary["started"], summary["ended"] = RS.now_iso(started_ns), RS.now_iso(time.time_ns())
    summary = RS.present(summary, engine.instruments)
    if journal:  # the run's own summary beside its orders and fills, so `sq report DIR` shows its metrics
        _write_summary(Path(journal) / "summary.json", summary)
    return summary


def _write_summary(path: Path, summary: dict) -> None:
    """`summary.json` written to a temporary name and renamed: a reader never sees half of it."""
    import json
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    os.replace(tmp, path)
