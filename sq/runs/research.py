"""`sq backtest --wfo …` and `--cv …`: out-of-sample validation of a parameter search.

Walk-forward: each fold searches the `--sweep` space (`--search`, `--objective`, `--require`)
on its train window and runs the winner on its test window (sq.runs.folds defines the windows).
Purged CV: each split searches on its training union and runs the winner on its test groups;
with a grid or random search every candidate also runs on the test groups, so the rank of the
in-sample winner among them out of sample gives the probability of backtest overfitting.

Every train search of every fold goes through one `executors.run_tasks` call (one per batch for
Optuna), and every test run through one more: the folds share one pool, whose workers keep one
data partition per job (a job is the input restricted to one fold's window, `Job.spans`).

A training union of several windows (CV) is read as one stream with gaps (`Job.spans`): rows
outside every window are dropped and the engine runs straight through — positions, resting
orders and strategy state are NOT reset at a gap, so an order resting when one window ends
meets the first prices after the gap. Test groups are therefore never run as a union: each
contiguous block of test groups runs on its own (from flat), and a split's OOS objective
combines the blocks (`combine`: the sum for an objective that grows with time, else the mean
weighted by block length; OOS PnL and fills are sums).

Definitions (docs/research.md):
- IS objective of a fold: the winner's objective on its train window; OOS: on its test window.
- Walk-forward efficiency: for an objective that grows with time (pnl, fills, … objectives.ADDITIVE)
  (Σ OOS / Σ test length) / (Σ IS / Σ train length) — the ratio of the annualised rates, the
  year cancelling; for any other objective (ratios such as sharpe, expressions) mean(OOS) / mean(IS).
  Folds without both values are left out; null when the denominator is ≤ 0 or no fold counts.
- Parameter stability, per searched parameter over the folds that chose a winner: a numeric
  (range) parameter's coefficient of variation, population std / |mean| (0 = the same value every
  fold; null when the mean is 0); a categorical (v1,v2,…) one's fraction of folds choosing the
  modal value (1 = the same every fold).
- Stitched out-of-sample equity: the winners' test-run equity curves in time order, each shifted
  by the stitched curve's last value so far (each test run starts flat at 0).
- PBO (CV with grid/random search): for each split, ω = rank of the IS winner's OOS objective
  among every candidate's OOS objective / (candidates + 1) (a candidate without a value ranks
  lowest); PBO = the fraction of splits with ω ≤ 1/2, i.e. logit(ω) ≤ 0 (Bailey, Borwein, López
  de Prado and Zhu, "The probability of backtest overfitting").
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import tempfile
import time
from typing import Any, Callable, Iterable

import numpy as np

from sq.core.exits import DataError, ExitStatus, SqError, UsageError
from sq.runs import folds as FO
from sq.runs import search as SE


def no_feasible(objective: str, requires: list[str], points: int) -> SqError:
    """Exit 1: the search ran, but no point has a value of the objective and meets every --require."""
    need = f" and meets {' and '.join(requires)}" if requires else ""
    return SqError(f"no feasible point: none of the {points:,} points has a value of {objective}{need}", status=ExitStatus.DIFFERENCES)


def _ts_of(batches) -> np.ndarray:
    from sq.core.schemas import int64_view

    parts = [int64_view(b.column("ts")) for b in batches if b.num_rows]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def _rows_between(ts: np.ndarray, spans) -> int:
    return int(sum(np.searchsorted(ts, hi) - np.searchsorted(ts, lo) for lo, hi in spans))


def run_research(env, inputs: list[str] | None, strategy: str, *, mode: str, spec: str, params: Iterable[str] = (),
                 sweeps: Iterable[str] = (), fill: dict[str, Any] | None = None, seed: int = 0, jobs: int | None = None,
                 search: str | None = None, objective: str | None = None, requires: Iterable[str] = (), study: str | None = None,
                 clean: bool | None = None, adjust: str | None = None, window: tuple = (None, None), executor=None,
                 progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run a walk-forward (`mode` wfo) or a purged CV (`mode` cv) of `spec`; returns the document
    (`--json`), with `folds` one row per fold/split. Every usage error is raised before any run."""
    from sq.core import summary as RS
    from sq.core.streams import open_input, rows_in_spans
    from sq.runs import warmup
    from sq.runs.backtest import input_kinds
    from sq.runs.sweep import Job, Loaded, default_jobs, point_params, setup_search

    parsed = FO.parse_wfo(spec) if mode == "wfo" else FO.parse_cv(spec)
    option = "--wfo" if mode == "wfo" else "--cv"
    sweeps = list(sweeps or ())
    if not sweeps:
        raise UsageError(f"{option} searches a parameter space: give it with --sweep (e.g. --sweep clip=1:5:1)")
    su = setup_search(env, inputs, strategy, params=params, sweeps=sweeps, fill=fill, seed=seed, jobs=jobs, search=search,
                      objective=objective, requires=requires, study=study, clean=clean, adjust=adjust, window=window)
    strategy, params, config, how, goal, axes = su.strategy, su.params, su.config, su.spec, su.goal, su.axes
    source, prepared, instruments, actions = su.source, su.prepared, su.instruments, su.actions
    n_tasks = su.n_points
    workers = max(1, min(jobs or default_jobs(), max(n_tasks, 2)))
    spool = not inputs or "-" in inputs or prepared.cleaner is not None or actions is not None
    if spool or workers == 1:  # the data of an in-process or spooled run, held here
        batches = list(prepared.batches)
        ts = _ts_of(batches)
    else:  # the workers read their own windows: only the timestamps here (the span, each window's rows)
        batches = None
        ts = _ts_of(open_input(env, inputs, input_kinds(strategy), ("ts", "seq", "symbol"), start=window[0], end=window[1]).batches())
    if not len(ts):
        raise DataError("the input holds no market events")
    t0, t1 = int(ts[0]), int(ts[-1]) + 1
    splits = FO.wfo_splits(parsed, t0, t1) if mode == "wfo" else FO.cv_splits(parsed, t0, t1)

    from sq.core.datasets import spans_text

    kept = []
    skipped = []
    for sp in splits:  # a window without events cannot be searched or tested
        empty = "test" if _rows_between(ts, sp.test) == 0 else "train" if _rows_between(ts, sp.train) == 0 else None
        if empty:
            env.warn(f"{'fold' if mode == 'wfo' else 'split'} {sp.number} skipped: its {empty} window {spans_text(getattr(sp, empty))} holds no events")
            skipped.append({"fold": sp.number, "reason": f"no events in its {empty} window"})
        else:
            kept.append(sp)
    if not kept:
        raise DataError(f"every {'fold' if mode == 'wfo' else 'split'} has a window without events (the input's span is {FO.span_text(t0, t1)})")

    calendar = warmup.calendars_needed(instruments, config)
    warmup.warm_up(env, config, strategy, calendar=calendar)
    base = Job(tuple(os.path.abspath(i) for i in (inputs or ())), strategy.spec, dict(fill or {}), int(seed), env.config_path,
               dict(os.environ), os.getcwd(), False, window=tuple(window), calendar=calendar)
    stitched = mode == "wfo" or parsed.kind == "kfold"  # test windows that tile time: their equity curves stitch
    every_candidate = mode == "cv" and how.kind != "optuna"  # for PBO: every candidate runs out of sample too
    total = len(kept) * n_tasks + len(kept) * (n_tasks if every_candidate else 1)
    if progress is not None and hasattr(progress, "set_total"):
        progress.set_total(total)
    t_start = time.perf_counter()
    started_ns = time.time_ns()
    with tempfile.TemporaryDirectory(prefix="sq-research-") as tmp:
        if spool and workers > 1:
            import pyarrow as pa

            path = os.path.join(tmp, "input.arrow")
            with pa.OSFile(path, "wb") as f, pa.ipc.new_file(f, source.schema) as w:
                for b in batches:
                    w.write_batch(b.replace_schema_metadata(source.schema.metadata))
            base = dataclasses.replace(base, inputs=(path,), instruments=instruments, window=(None, None))
        jobs_list, train_job, test_jobs = [], [], []
        for sp in kept:  # a job per train window (a union for CV) and one per contiguous test block
            train_job.append(len(jobs_list))
            jobs_list.append(dataclasses.replace(base, spans=sp.train))
            blocks = [b for b in sp.test if _rows_between(ts, (b,))]
            test_jobs.append(list(range(len(jobs_list), len(jobs_list) + len(blocks))))
            jobs_list += [dataclasses.replace(base, spans=(b,), report=stitched) for b in blocks]
        data = None
        if workers == 1:
            data = {j: Loaded(instruments, list(rows_in_spans(iter(batches), job.spans)), list(source.names)) for j, job in enumerate(jobs_list)}
        batches = None  # the workers read their own windows
        found = SE.search_jobs(jobs_list, train_job, how, axes, params, goal, seed=int(seed), workers=workers,
                               executor=executor, data=data, progress=progress, study_path=study,
                               study_names=[f"{mode}-{sp.train[0][0]}-{sp.train[-1][1]}-{i}" for i, sp in enumerate(kept)])
        from sq.runs.executors import Task, run_tasks

        tasks, keys = [], []
        candidates = SE.candidates(how, axes, int(seed)) if every_candidate else []
        for i, fs in enumerate(found):
            chosen = list(enumerate(candidates)) if every_candidate else ([(0, fs.best_point)] if fs.best_point is not None else [])
            for c, p in chosen:
                for b, j in enumerate(test_jobs[i]):
                    tasks.append(Task(j, len(keys), tuple(point_params(params, p))))
                    keys.append((i, c, b))
        got = {keys[r["index"]]: r["summary"] for r in run_tasks(jobs_list, tasks, executor=executor, workers=workers, data=data,
                                                                 progress=progress)}
    wall = time.perf_counter() - t_start

    rows, curves, pbo_ranks, warned = [], [], [], set()
    for i, (sp, fs) in enumerate(zip(kept, found)):
        point = fs.best_point
        is_v = None
        if point is not None:
            is_v = fs.study["best_objective"] if fs.study is not None else fs.tried[fs.best].objective
        lengths = [jobs_list[j].spans[0][1] - jobs_list[j].spans[0][0] for j in test_jobs[i]]

        def oos_of(c: int) -> tuple[float | None, list[dict]]:
            runs = [got[(i, c, b)] for b in range(len(test_jobs[i]))]
            return combine([goal.score(r)[0] for r in runs], lengths, goal.additive), runs

        test_runs: list[dict] = []
        oos_v = None
        if every_candidate:
            if fs.best is not None:
                vals = [oos_of(c)[0] for c in range(len(candidates))]
                oos_v, test_runs = oos_of(fs.best)
                mine = vals[fs.best]
                rank = 0.0 if mine is None else 1 + sum(1 for v in vals if v is not None and v < mine) + 0.5 * (sum(1 for v in vals if v == mine) - 1)
                pbo_ranks.append(rank / (len(candidates) + 1))
        elif point is not None:
            oos_v, test_runs = oos_of(0)
        if point is None:
            env.warn(f"{'fold' if mode == 'wfo' else 'split'} {sp.number}: no feasible point on its train window; not tested")
        for s in test_runs:
            for w in s.get("warnings", ()):
                if w not in warned:
                    warned.add(w)
                    env.warn(w)
        row = {"fold": sp.number, "train_start": sp.train[0][0], "train_end": sp.train[-1][1], "test_start": sp.test[0][0],
               "test_end": sp.test[-1][1], "params": point, "is_objective": is_v, "oos_objective": oos_v,
               "oos_pnl_total": round(sum(r["pnl"]["total"] for r in test_runs), 9) if test_runs else None,
               "oos_fills": sum(r["fills"] for r in test_runs) if test_runs else None,
               "train_ns": sp.train_ns, "test_ns": sum(lengths), "train_windows": len(sp.train), "test_windows": len(test_runs)}
        if mode == "cv":
            row["test_groups"] = ",".join(str(g) for g in sp.test_groups)
        rows.append(row)
        if stitched:
            curves += [r.get("curve") or {"ts": [], "equity": []} for r in test_runs]
    winners = [r for r in rows if r["params"] is not None]
    if not winners:
        raise_later = no_feasible(goal.objective.text, [c.text for c in goal.constraints], su.n_points)
    else:
        raise_later = None
    doc: dict[str, Any] = {
        "mode": mode, "spec": spec, "strategy": strategy.name, "inputs": list(source.names), "params": params,
        "sweep": {a.key: ([a.low, a.high] if a.continuous else list(a.values)) for a in axes},
        "search": how.text, "seed": int(seed), "objective": goal.objective.text, "require": [c.text for c in goal.constraints],
        "span": {"start": RS.now_iso(t0), "end": RS.now_iso(t1), "start_ns": t0, "end_ns": t1},
        "folds": rows, "skipped": skipped,
        "efficiency": efficiency(rows, goal.additive), "stability": stability(axes, winners),
        "oos_equity": stitch(curves) if stitched else {"ts": [], "equity": []},
        "jobs": workers, "wall_s": wall, "started": RS.now_iso(started_ns), "ended": RS.now_iso(time.time_ns()),
    }
    if mode == "cv":
        values = [r["oos_objective"] for r in rows if r["oos_objective"] is not None]
        doc["oos_distribution"] = distribution(values)
        doc["pbo"] = (sum(1 for w in pbo_ranks if w <= 0.5) / len(pbo_ranks)) if pbo_ranks else None
        doc["groups"] = [list(g) for g in FO.groups(parsed.groups, t0, t1)]
    if study is not None:
        doc["study"] = {"file": study, "trials_before": sum(f.study["trials_before"] for f in found),
                        "trials": sum(f.study["trials"] for f in found)}
    doc["_error"] = raise_later
    return doc


def combine(values: list[float | None], lengths: list[int], additive: bool) -> float | None:
    """The objective over several test blocks, each run on its own: the sum for an objective that
    grows with time, else the mean weighted by each block's length (None if a block has none)."""
    if not values or any(v is None for v in values):
        return None
    if additive:
        return sum(values)
    return sum(v * n for v, n in zip(values, lengths)) / sum(lengths)


def efficiency(rows: list[dict], additive: bool) -> float | None:
    """Walk-forward efficiency (module docstring): OOS over IS, per unit time when `additive`."""
    both = [r for r in rows if r["is_objective"] is not None and r["oos_objective"] is not None]
    if not both:
        return None
    if additive:
        num = sum(r["oos_objective"] for r in both) / sum(r["test_ns"] for r in both)
        den = sum(r["is_objective"] for r in both) / sum(r["train_ns"] for r in both)
    else:
        num = statistics.fmean(r["oos_objective"] for r in both)
        den = statistics.fmean(r["is_objective"] for r in both)
    return None if den <= 0 else num / den


def stability(axes, winners: list[dict]) -> dict[str, float | None]:
    """Per parameter: coefficient of variation (ranges) or the modal value's share (categorical)."""
    out: dict[str, float | None] = {}
    for a in axes:
        vals = [w["params"][a.key] for w in winners]
        if not vals:
            out[a.key] = None
        elif a.kind == "categorical":
            out[a.key] = max(vals.count(v) for v in set(vals)) / len(vals)
        else:
            mean = statistics.fmean(vals)
            out[a.key] = None if mean == 0 else statistics.pstdev(vals) / abs(mean)
    return out


def stitch(curves: list[dict]) -> dict[str, list]:
    """The test runs' equity curves in time order, each shifted by the stitched curve's end."""
    ts: list[int] = []
    eq: list[float] = []
    offset = 0.0
    for c in curves:
        ts.extend(int(t) for t in c["ts"])
        eq.extend(round(float(e) + offset, 9) for e in c["equity"])
        if eq:
            offset = eq[-1]
    return {"ts": ts, "equity": eq}


def distribution(values: list[float]) -> dict[str, float | None]:
    """Summary statistics of the splits' OOS objectives."""
    if not values:
        return {"count": 0, "mean": None, "std": None, "min": None, "q25": None, "median": None, "q75": None, "max": None,
                "negative_fraction": None}
    a = np.asarray(values, dtype=float)
    return {"count": len(a), "mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "q25": float(np.quantile(a, 0.25)),
            "median": float(np.median(a)), "q75": float(np.quantile(a, 0.75)), "max": float(a.max()),
            "negative_fraction": float((a <= 0).mean())}


def results_table(doc: dict[str, Any]):
    """The folds as an Arrow table (the `sq report` contract, docs/research.md): schema metadata
    `sq.results` = wfo|cv and `sq.wfo` = {objective, spec, efficiency, stability, oos_equity}."""
    import pyarrow as pa

    keys = list(doc["sweep"])
    rows = doc["folds"]
    ts = pa.timestamp("ns", tz="UTC")
    f64, i64 = pa.float64(), pa.int64()
    cols = [("fold", i64, lambda r: r["fold"]), ("train_start", ts, lambda r: r["train_start"]), ("train_end", ts, lambda r: r["train_end"]),
            ("test_start", ts, lambda r: r["test_start"]), ("test_end", ts, lambda r: r["test_end"])]
    cols += [(f"param.{k}", f64, (lambda r, k=k: None if r["params"] is None else r["params"][k])) for k in keys]
    cols += [("is_objective", f64, lambda r: r["is_objective"]), ("oos_objective", f64, lambda r: r["oos_objective"]),
             ("oos_pnl_total", f64, lambda r: r["oos_pnl_total"]), ("oos_fills", i64, lambda r: r["oos_fills"]),
             ("train_windows", i64, lambda r: r["train_windows"]), ("test_windows", i64, lambda r: r["test_windows"])]
    if doc["mode"] == "cv":
        cols.append(("test_groups", pa.string(), lambda r: r["test_groups"]))
    meta = {"objective": doc["objective"], "spec": doc["spec"], "efficiency": doc["efficiency"], "stability": doc["stability"],
            "oos_equity": doc["oos_equity"]}
    md = {b"sq.results": doc["mode"].encode(), b"sq.wfo": json.dumps(meta).encode()}
    if doc["mode"] == "cv":
        md[b"sq.cv"] = json.dumps({"pbo": doc["pbo"], "oos_distribution": doc["oos_distribution"]}).encode()
    schema = pa.schema([pa.field(n, t) for n, t, _ in cols], metadata=md)
    return pa.Table.from_arrays([pa.array([fn(r) for r in rows], t) for _, t, fn in cols], schema=schema)
