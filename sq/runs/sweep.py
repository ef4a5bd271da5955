"""`sq backtest --sweep`: one backtest per point of a parameter grid, on a local process pool.

A grid point is a list of `--param` strings (the run's own `--param`s, then `k=v` for every
swept key), so a point runs exactly the code path of `sq backtest --param k=v` and gives the
same orders, fills and PnL. `run_point` is a pure function of (data partition, parameters) →
summary: the data partition is a list of input paths a worker opens itself (stdin is spooled
to a temporary Arrow file first), so the same function can later run under Ray.

Each worker loads the input once, in the pool initializer's first task, and keeps the conformed
batches for every point it runs; the numba kernels are loaded from numba's on-disk cache
(`cache=True`), so a worker pays the import and cache load once, never a compile per point.

Sweep syntax: `k=a:b:step` (discrete: a < b, step > 0, b included when the steps land on it;
values are computed in decimal so `0.1:0.3:0.1` gives 0.1, 0.2, 0.3 exactly as typed),
`k=v1,v2,v3` (categorical), `k=a:b` (continuous: every real in [a, b]; only a random or Optuna
search samples it, sq.runs.search), and `SYMBOL.k=…` for one symbol. Several `--sweep`s span the
cartesian grid, capped at MAX_POINTS.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Iterator

from sq.core import objstore
from sq.core import summary as RS
from sq.core.engine import params as engine_params
from sq.core.exits import UsageError
from sq.core.strategy.declaration import Strategy

MAX_POINTS = 10_000
CURVE_POINTS = 400  # points of the equity curve a worker returns for the report


@dataclass(frozen=True)
class Axis:
    """One swept parameter: its `--param` key (`clip` or `SIM:DEMO.clip`), its kind and values.

    kind: `discrete` (a:b:step; `values` every step), `categorical` (v1,v2,…; `values` as listed)
    or `continuous` (a:b; no `values`, the bounds in `low`/`high`)."""

    key: str
    values: tuple[float, ...]
    kind: str = "discrete"
    low: float | None = None
    high: float | None = None

    @property
    def continuous(self) -> bool:
        return self.kind == "continuous"


def _number(text: str, item: str) -> Decimal:
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        raise UsageError(f"--sweep {item!r}: {text.strip()!r} is not a number") from None
    if not d.is_finite():
        raise UsageError(f"--sweep {item!r}: {text.strip()!r} is not a finite number")
    return d


def parse_axis(item: str, strategy: Strategy) -> Axis:
    """`k=a:b:step`, `k=v1,v2,…` or `SYMBOL.k=…` → an Axis (usage errors name the item)."""
    key, eq, spec = item.partition("=")
    if not eq or not key.strip() or not spec.strip():
        raise UsageError(f"--sweep {item!r}: expected k=a:b:step or k=v1,v2,… (e.g. clip=1:5:1, threshold=0.2,0.4,0.8)")
    sym, dot, name = key.strip().rpartition(".")
    name = engine_params.check_name(strategy, name.strip().lower())
    key = f"{sym.strip().upper()}.{name}" if dot else name
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise UsageError(f"--sweep {item!r}: a range is a:b:step (discrete) or a:b (continuous), e.g. {name}=1:5:1")
        if len(parts) == 2:
            a, b = (_number(p, item) for p in parts)
            if b <= a:
                raise UsageError(f"--sweep {item!r}: the range end must be above its start ({'a single value is k=v' if a == b else 'a < b'})")
            prefix = f"{sym.strip().upper()}." if dot else ""
            engine_params.validate(strategy, name, float(a), prefix)
            engine_params.validate(strategy, name, float(b), prefix)
            return Axis(key, (), "continuous", float(a), float(b))
        a, b, step = (_number(p, item) for p in parts)
        if step <= 0:
            raise UsageError(f"--sweep {item!r}: the step must be > 0")
        if b <= a:
            raise UsageError(f"--sweep {item!r}: the range end must be above its start ({'a single value is k=v' if a == b else 'a < b'})")
        count = int((b - a) / step) + 1
        if count > MAX_POINTS:
            raise UsageError(f"--sweep {item!r}: {count:,} values; at most {MAX_POINTS:,} grid points per sweep")
        values = [a + step * i for i in range(count)]
        kind = "discrete"
    else:
        kind = "categorical"
        values = [_number(p, item) for p in spec.split(",") if p.strip()]
        if len(values) != len(spec.split(",")):
            raise UsageError(f"--sweep {item!r}: an empty value in the list")
        if len(set(values)) != len(values):
            raise UsageError(f"--sweep {item!r}: a value is listed twice")
    floats = tuple(float(v) for v in values)
    for v in floats:
        engine_params.validate(strategy, name, v, f"{sym.strip().upper()}." if dot else "")
    return Axis(key, floats, kind, min(floats), max(floats))


def parse_sweeps(items: Iterable[str], strategy: Strategy, fixed: Iterable[str] = (), *, grid: bool = True) -> list[Axis]:
    """Every `--sweep` as an Axis; a key swept twice or also fixed by `--param` is a usage error,
    and so is a continuous range when `grid` (a grid needs a step)."""
    axes = [parse_axis(i, strategy) for i in items]
    keys = [a.key for a in axes]
    for k in keys:
        if keys.count(k) > 1:
            raise UsageError(f"--sweep {k} is given twice; list every value in one --sweep (k=v1,v2,…)")
    fixed_keys = {f"{s}.{n}" if s else n for s, n, _ in engine_params.parse_overrides(fixed, strategy)}
    for k in keys:
        if k in fixed_keys:
            raise UsageError(f"{k} is both swept (--sweep) and fixed (--param); drop one")
    if not grid:
        return axes
    for a in axes:
        if a.continuous:
            raise UsageError(f"--sweep {a.key}={a.low:g}:{a.high:g} is a continuous range: a grid search needs a step "
                             f"(k=a:b:step), or search it with --search random:N or optuna:N")
    points = 1
    for a in axes:
        points *= len(a.values)
    if points > MAX_POINTS:
        raise UsageError(f"the sweep spans {points:,} grid points ({' × '.join(str(len(a.values)) for a in axes)}); "
                         f"at most {MAX_POINTS:,}: coarsen a step or split the sweep")
    return axes


def grid(axes: list[Axis]) -> list[dict[str, float]]:
    """The cartesian grid, first axis slowest: one {key: value} per point."""
    return [dict(zip([a.key for a in axes], combo)) for combo in itertools.product(*(a.values for a in axes))]


def point_params(base: Iterable[str], point: dict[str, float]) -> list[str]:
    """The `--param` strings of one grid point (repr round-trips floats exactly)."""
    return list(base or ()) + [f"{k}={v!r}" for k, v in point.items()]


# ----------------------------------------------------------------------------------------------
# the worker side: a data partition loaded once, then any number of points


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, picklable: where the data is and how to run a point."""

    inputs: tuple[str, ...]
    strategy: str  # the strategy's spec (`Strategy.spec`): each worker process loads it again
    fill: dict[str, Any]
    seed: int
    config_path: str | None
    environ: dict[str, str] = field(default_factory=dict)
    cwd: str = "."
    report: bool = False
    instruments: dict | None = None  # when the data's own (a spooled stdin) may know fewer
    window: tuple = (None, None)  # --start/--end dates over the inputs
    spans: tuple | None = None  # exact [lo, hi) ns research windows (a walk-forward fold, a CV training union), or None
    calendar: bool = True  # the data's markets have calendars (the square-off path is warmed up)


class _Quiet:
    """The Environment subset load_config and open_input use, with warnings dropped (the parent
    already printed them)."""

    stdin_isatty = True
    quiet = True

    def __init__(self, config_path):
        self.config_path = config_path

    def warn(self, message: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass


@dataclass
class Loaded:
    """A data partition in memory: conformed market batches and the instruments known up front."""

    instruments: dict
    batches: list
    names: list[str]

    @classmethod
    def read(cls, env, inputs, window: tuple = (None, None), spans: tuple | None = None) -> "Loaded":
        from sq.core.streams import open_input

        source = open_input(env, list(inputs), ("market", "bars"), start=window[0], end=window[1], spans=spans)  # the parent checked the kind
        instruments = dict(source.instruments)  # as a single run sees them when it builds its engine
        return cls(instruments, list(source.batches()), list(source.names))


class Worker:
    """Runs grid points of one Job; loads the config and the data on first use, keeps them."""

    def __init__(self, job: Job, data: Loaded | None = None):
        self.job = job
        self.data = data
        self.config = None
        self.fill = None
        self.load_s = 0.0
        self.warm_s = 0.0

    def _prepare(self) -> None:
        from sq.core.config import load_config
        from sq.core.engine.runner import FillModelConfig
        from sq.core.strategy import loader

        env = _Quiet(self.job.config_path)
        self.config = load_config(env, environ=self.job.environ or None, cwd=self.job.cwd)
        self.fill = FillModelConfig.from_config(self.config, **self.job.fill)
        t0 = time.perf_counter()
        strategy = loader.load(self.job.strategy)
        if strategy.kind == "bar":
            from sq.core.engine.barengine import warm_up as warm_up_bars

            warm_up_bars(self.config)
        else:
            from sq.core.engine.runner import warm_up

            warm_up(self.config, strategy, calendar=self.job.calendar)
        self.warm_s = time.perf_counter() - t0
        if self.data is None:
            t0 = time.perf_counter()
            self.data = Loaded.read(env, self.job.inputs, self.job.window, self.job.spans)
            if self.job.instruments is not None:
                self.data.instruments = dict(self.job.instruments)
            self.load_s = time.perf_counter() - t0

    def run(self, index: int, params: list[str]) -> dict[str, Any]:
        """One grid point → its summary (plus `curve` data when the job makes a report)."""
        from sq.core.strategy import loader
        from sq.runs.backtest import run_engine

        if self.config is None:
            self._prepare()
        rec = None
        if self.job.report:
            from sq.runs.report import RunRecorder

            rec = RunRecorder(max_fills=0, trades=False)
        if getattr(self, "funding", None) is None:  # a perpetual's funding files in or beside the inputs (sq.runs.funding)
            from sq.runs import funding as FU

            self.funding = FU.read(FU.funding_files(None, [i for i in self.job.inputs if i != "-"]))
        engine = run_engine(loader.load(self.job.strategy), self.data.instruments, self.data.batches, params, config=self.config,
                            fill=self.fill, seed=self.job.seed, recorder=rec, funding=self.funding)
        summary = RS.present(engine.summary(), engine.instruments)  # rounded as `sq backtest` rounds it
        summary["warnings"] = list(engine.warnings)
        summary["trades_seen"] = engine.trades_seen
        summary["worker"] = {"pid": os.getpid(), "load_s": self.load_s, "warm_s": self.warm_s}
        if rec is not None:
            summary["curve"] = dict(rec.curves(CURVE_POINTS), t_first=rec.t_first, t_last=rec.t_last)
        return {"index": index, "summary": summary}


def run_points(job: Job, tasks: list[tuple[int, list[str]]], jobs: int, *, data: Loaded | None = None,
               progress: Callable[[int], None] | None = None, executor=None) -> Iterator[dict[str, Any]]:
    """Run every (index, params) task of one job on `executor` (sq.runs.executors; local by
    default); yields results as they finish (any order). `jobs == 1` runs in this process (on
    `data` when given); else a spawn-started process pool."""
    from sq.runs.executors import Task, run_tasks

    yield from run_tasks([job], [Task(0, i, tuple(p)) for i, p in tasks], executor=executor, workers=jobs,
                         data=None if data is None else {0: data}, progress=progress)


def default_jobs() -> int:
    from sq.runs.executors import default_workers

    return default_workers()


# ----------------------------------------------------------------------------------------------
# the parent side


INTERNAL = ("warnings", "trades_seen", "worker", "curve")


@dataclass
class SearchSetup:
    """A search checked and its data read, before any point runs (`setup_search`)."""

    strategy: Strategy
    params: list[str]
    config: Any
    spec: Any  # sq.runs.search.SearchSpec
    goal: Any  # sq.runs.objectives.Goal
    axes: list[Axis]
    source: Any  # the opened input (sq.core.streams)
    prepared: Any  # its batches cleaned/adjusted (sq.runs.marketprep)
    instruments: dict
    actions: Any  # the --adjust actions, or None
    n_points: int  # the points the search will run (Optuna: its trials)


def setup_search(env, inputs: list[str] | None, strategy, *, params: Iterable[str] = (), sweeps: Iterable[str] = (),
                 fill: dict[str, Any] | None = None, seed: int = 0, jobs: int | None = None, search=None, objective=None,
                 requires: Iterable[str] = (), study: str | None = None, clean: bool | None = None, adjust: str | None = None,
                 window: tuple = (None, None)) -> SearchSetup:
    """What a sweep, a walk-forward and a cross-validation all do first: load and compile the
    strategy, parse the search, objective, constraints and space, read and prepare the input,
    and check every point's parameters — each usage error raised before any point runs."""
    from sq.core.config import load_config
    from sq.core.engine.runner import FillModelConfig
    from sq.core.strategy import loader
    from sq.core.streams import open_input
    from sq.runs import marketprep
    from sq.runs import objectives as OB
    from sq.runs import search as SE
    from sq.runs.backtest import input_kinds, resolve_params

    strategy = loader.load(strategy) if isinstance(strategy, str) else strategy
    params = list(params or ())
    config = load_config(env)
    engine_params.parse_overrides(params, strategy)
    loader.compiled(strategy)  # a handler that does not compile: exit 2 before any data is read
    spec = search if isinstance(search, SE.SearchSpec) else SE.parse_search(search)
    goal = objective if isinstance(objective, OB.Goal) else OB.parse_goal(objective, list(requires or ()))
    if study is not None and spec.kind != "optuna":
        raise UsageError("--study keeps an Optuna study: it needs --search optuna:N")
    SE.check_study(study)
    axes = parse_sweeps(sweeps, strategy, params, grid=spec.kind == "grid")
    FillModelConfig.from_config(config, **(fill or {})).validate()
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be ≥ 1, got {jobs}")
    actions = marketprep.load_adjustments(adjust)
    source = open_input(env, inputs, input_kinds(strategy), start=window[0], end=window[1])
    if source.kind == "bars" and (actions is not None or clean):
        raise UsageError("--adjust and --clean apply to market events; these are bars (adjust them with sq bars --adjust)")
    prepared = marketprep.prepare(source.instruments, source.batches(),
                                  settings=marketprep.clean_settings(config, clean) if source.kind == "market" else None, actions=actions)
    instruments = dict(prepared.instruments)
    if spec.kind == "optuna":  # every point lies in the space: the bounds and values stand for them
        checks = [{a.key: (a.low if a.continuous else a.values[0]) for a in axes}, {a.key: (a.high if a.continuous else a.values[-1]) for a in axes}]
        n_points = spec.n or 0
    else:
        checks = SE.candidates(spec, axes, int(seed))
        n_points = len(checks)
    for pt in checks:  # every point's parameters checked before any run
        resolve_params(strategy, instruments, config, point_params(params, pt))
    return SearchSetup(strategy, params, config, spec, goal, axes, source, prepared, instruments, actions, n_points)


def run_sweep(env, inputs: list[str] | None, strategy: str, *, params: Iterable[str] = (), sweeps: Iterable[str] = (),
              fill: dict[str, Any] | None = None, seed: int = 0, jobs: int | None = None, report: bool = False,
              progress: Callable[[int], None] | None = None, clean: bool | None = None, adjust: str | None = None,
              window: tuple = (None, None), search: str | None = None, objective: str | None = None,
              requires: Iterable[str] = (), study: str | None = None, executor=None) -> dict[str, Any]:
    """Run the search (the grid by default; sq.runs.search) on `executor` (sq.runs.executors
    .ExecutorSpec; local by default); returns the `--json` document
    (`runs` in the order tried: grid order for a grid) plus, under the key `_best_curve`, the best
    point's curves when `report` is set. "Best" is the feasible point of the highest objective
    (sq.runs.objectives; `best` is None when no point is feasible). Data that `adjust` or `clean`
    changes is prepared here once and handed to the workers like stdin (spooled)."""
    import tempfile

    from sq.runs import search as SE
    from sq.runs import warmup
    from sq.runs.backtest import no_trades
    from sq.core.exits import DataError

    su = setup_search(env, inputs, strategy, params=params, sweeps=sweeps, fill=fill, seed=seed, jobs=jobs, search=search,
                      objective=objective, requires=requires, study=study, clean=clean, adjust=adjust, window=window)
    strategy, params, config, spec, goal, axes = su.strategy, su.params, su.config, su.spec, su.goal, su.axes
    source, prepared, instruments, actions, n_points = su.source, su.prepared, su.instruments, su.actions, su.n_points
    jobs = max(1, min(jobs or default_jobs(), n_points))
    if progress is not None and hasattr(progress, "set_total"):  # a progress bar's 100%: every point
        progress.set_total(n_points)
    spool = not inputs or "-" in inputs or prepared.cleaner is not None or actions is not None
    calendar = warmup.calendars_needed(instruments, config)
    warmup.warm_up(env, config, strategy, calendar=calendar)  # compiled here once (announced), loaded by each worker
    job = Job(tuple(i if objstore.is_uri(i) else os.path.abspath(i) for i in (inputs or ())), strategy.spec, dict(fill or {}), int(seed), env.config_path,
              dict(os.environ), os.getcwd(), report, window=tuple(window), calendar=calendar)
    data = None
    t0 = time.perf_counter()
    started_ns = time.time_ns()
    with tempfile.TemporaryDirectory(prefix="sq-sweep-") as tmp:
        if jobs == 1 or spool or getattr(executor, "address", None) is None:  # in memory: here, forked workers, a local Ray's object store
            data = Loaded(instruments, list(prepared.batches), list(source.names))
        if spool and jobs > 1:  # workers cannot re-read stdin (nor redo the cleaning): spool it to an Arrow file they each map
            import pyarrow as pa

            path = os.path.join(tmp, "input.arrow")
            with pa.OSFile(path, "wb") as f, pa.ipc.new_file(f, source.schema) as w:
                for b in data.batches:
                    w.write_batch(b.replace_schema_metadata(source.schema.metadata))
            job = Job((path,), job.strategy, job.fill, job.seed, job.config_path, job.environ, job.cwd, report, instruments, calendar=job.calendar)
        found = SE.search_jobs([job], [0], spec, axes, params, goal, seed=int(seed), workers=jobs, executor=executor,
                               data=None if data is None else {0: data}, progress=progress, study_path=study, study_names=["sq"])[0]
    results = [e.summary for e in found.tried]
    points = [e.point for e in found.tried]
    wall = time.perf_counter() - t0
    prepared_doc: dict[str, Any] = {}
    prepared.report(env, prepared_doc)
    warned = set()
    for s in results:
        for w in s["warnings"]:
            if w not in warned:
                warned.add(w)
                env.warn(w)
    first = results[0]
    if first["events"] == 0:
        raise DataError("the input holds no market events")
    handlers = strategy.handlers
    if "on_trade" in handlers and "on_book" not in handlers and any(s["trades_seen"] == 0 for s in results):
        env.warn(no_trades(strategy.name))
    workers: dict[int, dict[str, Any]] = {}
    for s in results:
        w = s["worker"]
        workers.setdefault(w["pid"], dict(w, points=0))["points"] += 1
    runs = []
    for e in found.tried:
        runs.append({"params": e.point, "objective": e.objective, "feasible": e.feasible,
                     **{k: v for k, v in e.summary.items() if k not in INTERNAL}})
    best = found.best
    best_doc = None
    if best is not None:
        best_doc = {"index": best, "params": runs[best]["params"], "objective": runs[best]["objective"], "pnl_total": runs[best]["pnl"]["total"]}
    if found.study is not None:
        st = found.study
        if st["best_point"] is not None and (best is None or st["best_objective"] > runs[best]["objective"]):
            best, best_doc = None, {"index": None, "params": st["best_point"], "objective": st["best_objective"], "pnl_total": None,
                                    "earlier_trial": True}
    events = first["events"]
    doc = {
        "strategy": strategy.name, "symbols": first["symbols"], "events": events,
        "inputs": list(source.names), "params": params,
        "sweep": {a.key: ([a.low, a.high] if a.continuous else list(a.values)) for a in axes}, "points": len(runs), "jobs": jobs,
        "search": spec.text, "seed": int(seed), "objective": goal.objective.text, "require": [c.text for c in goal.constraints],
        "feasible_points": sum(1 for r in runs if r["feasible"] and r["objective"] is not None),
        "wall_s": wall, "points_per_s": len(runs) / wall if wall > 0 else 0.0,
        "events_per_s": events * len(runs) / wall if wall > 0 else 0.0,
        "workers": sorted(workers.values(), key=lambda w: w["pid"]),
        "best": best_doc,
        "runs": runs,
        "started": RS.now_iso(started_ns), "ended": RS.now_iso(time.time_ns()),
        **prepared_doc,
    }
    if found.study is not None:
        doc["study"] = {"file": study, "name": found.study["name"], "trials_before": found.study["trials_before"],
                        "trials": found.study["trials"]}
    doc = RS.present(doc, instruments)
    if report:
        doc["_best_curve"] = None if best is None else results[best].get("curve")
        doc["_axes"] = axes if spec.kind == "grid" else [Axis(a.key, tuple(sorted({p[a.key] for p in points})), a.kind) for a in axes]
    return doc


def results_table(runs: list[dict[str, Any]], keys: list[str]):
    """The runs as flat rows (one per grid point) for `-o`/`--format`: the swept values, the
    summary metrics, then `position.SYMBOL` per symbol."""
    import pyarrow as pa

    symbols = sorted({s for r in runs for s in r["position"]})
    f64, i64 = pa.float64(), pa.int64()
    cols: list[tuple[str, pa.DataType, Callable[[dict], Any]]] = [(k, f64, (lambda r, k=k: r["params"][k])) for k in keys]
    cols += [("pnl_total", f64, lambda r: r["pnl"]["total"])]  # the first column after the swept values (report.swept_columns)
    if keys:  # a search's rows: the objective each point scored and whether it met every --require
        cols += [("objective", f64, lambda r: r.get("objective")), ("feasible", pa.bool_(), lambda r: r.get("feasible", True))]
    cols += [("pnl_realized", f64, lambda r: r["pnl"]["realized"]),
             ("pnl_unrealized", f64, lambda r: r["pnl"]["unrealized"]), ("fees", f64, lambda r: r["pnl"]["fees"]),
             ("max_drawdown", f64, lambda r: r["max_drawdown"]), ("sharpe", f64, lambda r: r["sharpe"]),
             *[(k, i64 if k == "round_trips" else f64, (lambda r, k=k: (r.get("metrics") or {}).get(k)))
               for k in ("sortino", "calmar", "round_trips", "win_rate", "profit_factor", "markout_1s_bps")],  # docs/metrics.md
             ("orders", i64, lambda r: r["orders"]), ("cancels", i64, lambda r: r["cancels"]), ("fills", i64, lambda r: r["fills"]),
             ("fill_ratio", f64, lambda r: r["fill_ratio"]), ("turnover", f64, lambda r: r["turnover"]),
             ("rejections", i64, lambda r: sum(r["rejections"].values())), ("halted", pa.string(), lambda r: r["halted"]),
             ("events", i64, lambda r: r["events"]), ("elapsed_s", f64, lambda r: r["elapsed_s"]),
             ("events_per_s", f64, lambda r: r["events_per_s"])]
    cols += [(f"position.{s}", f64, (lambda r, s=s: r["position"].get(s, 0.0))) for s in symbols]
    schema = pa.schema([pa.field(n, t) for n, t, _ in cols], metadata={b"sq.results": b"backtest"})
    return pa.Table.from_arrays([pa.array([fn(r) for r in runs], t) for _, t, fn in cols], schema=schema)
