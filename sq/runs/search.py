"""How a research run picks the points it tries: `--search grid | random:N | optuna:N`.

The space is the `--sweep` axes (sq.runs.sweep.Axis): discrete ranges (a:b:step), categorical
lists (v1,v2,…) and continuous ranges (a:b; random and Optuna only).

- grid: every point of the cartesian grid, first axis slowest.
- random:N: N points drawn independently, with replacement, from a NumPy generator seeded by
  `--seed`: a continuous axis uniform on [a, b], a discrete or categorical one uniformly among its
  values. The same seed and space give the same points.
- optuna:N: N trials of Optuna's TPE sampler (seeded by `--seed`), asked and told in batches of
  `workers` trials that run together. A discrete axis is searched as the index of its value (so
  TPE sees its order and every value is exactly one of the grid's), a categorical one as a
  categorical, a continuous one as a float range. `--study FILE` keeps the study in an Optuna
  journal file (JournalStorage on a file, no database server): a second run with the same FILE
  continues the study (TPE sees every earlier trial) and the best is over all of them.

`search_jobs` runs a search on several jobs at once (the train windows of a walk-forward's
folds, the training unions of a cross-validation): every task goes through one
`executors.run_tasks` call (grid, random) or one call per batch (Optuna), never a pool per job.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from sq.core.exits import UsageError
from sq.runs.objectives import Goal
from sq.runs.sweep import Axis, grid, point_params

KINDS = ("grid", "random", "optuna")


@dataclass(frozen=True)
class SearchSpec:
    """A parsed `--search`: its kind and, for random/optuna, the number of points."""

    kind: str = "grid"
    n: int | None = None

    @property
    def text(self) -> str:
        return self.kind if self.n is None else f"{self.kind}:{self.n}"


def parse_search(text: str | None) -> SearchSpec:
    """`grid`, `random:N`, `optuna:N` (N ≥ 1) → a SearchSpec; else a one-line usage error."""
    t = (text or "grid").strip().lower()
    kind, colon, n = t.partition(":")
    if kind == "grid" and not colon:
        return SearchSpec("grid")
    if kind in ("random", "optuna"):
        try:
            count = int(n)
        except ValueError:
            raise UsageError(f"--search {text!r}: {kind}:N needs a whole number of points, e.g. {kind}:200") from None
        if count < 1:
            raise UsageError(f"--search {text!r}: N must be ≥ 1")
        from sq.runs.sweep import MAX_POINTS

        if count > MAX_POINTS:
            raise UsageError(f"--search {text!r}: at most {MAX_POINTS:,} points")
        return SearchSpec(kind, count)
    raise UsageError(f"--search {text!r}: expected grid, random:N or optuna:N")


def random_points(axes: list[Axis], n: int, seed: int) -> list[dict[str, float]]:
    """`n` points drawn from the space with a generator seeded by `seed` (reproducible)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        pt = {}
        for a in axes:
            if a.continuous:
                pt[a.key] = float(rng.uniform(a.low, a.high))
            else:
                pt[a.key] = float(a.values[int(rng.integers(len(a.values)))])
        out.append(pt)
    return out


def candidates(spec: SearchSpec, axes: list[Axis], seed: int) -> list[dict[str, float]]:
    """The points of a grid or random search (Optuna picks its points as it goes)."""
    return grid(axes) if spec.kind == "grid" else random_points(axes, spec.n or 0, seed)


# ----------------------------------------------------------------------------------------------
# Optuna


def check_study(path: str | None) -> None:
    """`--study FILE`: a file that exists must be an Optuna journal (JSON lines with `op_code`);
    its directory must exist. Checked before any run."""
    if path is None:
        return
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"--study {path}: directory {parent!r} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"--study {path}: is a directory; give a file such as study.jsonl")
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    try:
        with open(path, "rb") as f:
            line = f.readline(1 << 20)
        ok = isinstance(json.loads(line), dict) and "op_code" in json.loads(line)
    except (ValueError, UnicodeDecodeError, OSError):
        ok = False
    if not ok:
        raise UsageError(f"--study {path}: not an Optuna journal file (JSON lines written by Optuna's JournalFileBackend)")


def _distributions(axes: list[Axis]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for a in axes:
        if a.continuous:
            out[a.key] = FloatDistribution(a.low, a.high)
        elif a.kind == "discrete":
            out[a.key] = IntDistribution(0, len(a.values) - 1)
        else:
            out[a.key] = CategoricalDistribution(list(a.values))
    return out


def _point(axes: list[Axis], params: dict[str, Any]) -> dict[str, float]:
    """An Optuna trial's params → a point (a discrete axis' index → its value)."""
    return {a.key: float(a.values[int(params[a.key])] if a.kind == "discrete" else params[a.key]) for a in axes}


def open_studies(names: list[str], path: str | None, seed: int):
    """One maximising study per name, TPE-sampled with `seed`; in the journal file `path` when
    given (continued when it holds the study already), else in memory."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = None
    if path is not None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        try:
            storage = JournalStorage(JournalFileBackend(os.path.abspath(path)))
        except Exception as e:  # a journal Optuna cannot replay
            raise UsageError(f"--study {path}: not an Optuna journal file ({type(e).__name__})") from None
    return [optuna.create_study(study_name=n, storage=storage, direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=seed)) for n in names]


# ----------------------------------------------------------------------------------------------
# a search over several jobs


@dataclass
class Evaluated:
    """One point tried on one job: its parameters, its summary, objective and feasibility."""

    point: dict[str, float]
    summary: dict[str, Any]
    objective: float | None
    feasible: bool


@dataclass
class JobSearch:
    """What a search found on one job: every point tried (in the order tried) and the best."""

    tried: list[Evaluated] = field(default_factory=list)
    best: int | None = None  # index into `tried`
    study: dict[str, Any] | None = None  # Optuna: {"name", "trials_before", "trials", "best_point", "best_objective"}

    @property
    def best_point(self) -> dict[str, float] | None:
        if self.study is not None and self.study.get("best_point") is not None:
            return self.study["best_point"]
        return None if self.best is None else self.tried[self.best].point


def search_jobs(jobs: list, job_numbers: list[int], spec: SearchSpec, axes: list[Axis], base: list[str], goal: Goal, *,
                seed: int, workers: int, executor=None, data: dict | None = None, progress: Callable[[int], None] | None = None,
                study_path: str | None = None, study_names: list[str] | None = None,
                on_result: Callable[[int, dict], None] | None = None) -> list[JobSearch]:
    """Search the space on each of `job_numbers` (indices into `jobs`); one JobSearch per job."""
    from sq.runs.executors import Task, run_tasks

    found = [JobSearch() for _ in job_numbers]
    if spec.kind != "optuna":
        points = candidates(spec, axes, seed)
        tasks = [Task(j, f * len(points) + i, tuple(point_params(base, p))) for f, j in enumerate(job_numbers) for i, p in enumerate(points)]
        results: dict[int, dict] = {}
        for r in run_tasks(jobs, tasks, executor=executor, workers=workers, data=data, progress=progress):
            results[r["index"]] = r["summary"]
            if on_result is not None:
                on_result(r["index"], r["summary"])
        for f in range(len(job_numbers)):
            for i, p in enumerate(points):
                s = results[f * len(points) + i]
                v, ok = goal.score(s)
                found[f].tried.append(Evaluated(p, s, v, ok))
            found[f].best = _best(found[f].tried)
        return found

    studies = open_studies(study_names or [f"sq-{j}" for j in job_numbers], study_path, seed)
    dists = _distributions(axes)
    before = [len(s.get_trials(deepcopy=False)) for s in studies]
    remaining = [spec.n or 0] * len(studies)
    batch = max(1, workers)
    serial = 0
    while any(remaining):
        asked: dict[int, tuple[int, Any, dict]] = {}
        tasks = []
        for f, study in enumerate(studies):
            for _ in range(min(batch, remaining[f])):
                trial = study.ask(dists)
                p = _point(axes, trial.params)
                asked[serial] = (f, trial, p)
                tasks.append(Task(job_numbers[f], serial, tuple(point_params(base, p))))
                serial += 1
            remaining[f] -= min(batch, remaining[f])
        got = {r["index"]: r["summary"] for r in run_tasks(jobs, tasks, executor=executor, workers=workers, data=data, progress=progress)}
        for k in sorted(got):  # told in the order asked: the study (and `tried`) the same whatever finished first
            f, trial, p = asked[k]
            s = got[k]
            v, ok = goal.score(s)
            found[f].tried.append(Evaluated(p, s, v, ok))
            trial.set_user_attr("feasible", ok)
            trial.set_user_attr("point", p)
            if v is None:
                studies[f].tell(trial, state=_failed())
            else:
                studies[f].tell(trial, v)
    for f, study in enumerate(studies):
        found[f].best = _best(found[f].tried)
        best_v, best_p = None, None
        for t in study.get_trials(deepcopy=False):  # every trial of the study, earlier runs' included
            if t.value is not None and t.user_attrs.get("feasible") and (best_v is None or t.value > best_v):
                best_v, best_p = t.value, t.user_attrs.get("point")
        found[f].study = {"name": study.study_name, "trials_before": before[f], "trials": len(study.get_trials(deepcopy=False)),
                          "best_point": best_p, "best_objective": best_v}
    return found


def _failed():
    import optuna

    return optuna.trial.TrialState.FAIL


def _best(tried: list[Evaluated]) -> int | None:
    from sq.runs.objectives import best_index

    return best_index([(e.objective, e.feasible) for e in tried])
