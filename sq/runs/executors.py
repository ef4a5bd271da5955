"""Where research tasks run: the executors behind `--jobs` / `--executor`.

A research run (a sweep, a random or Optuna search, the folds of a walk-forward, the groups of
a purged cross-validation) is a list of `Task`s. Each task names one `Job` (a data partition
— input paths plus a time window — and how to run a point on it) by its number in the run's
job list, and one point's `--param` strings. A task is a pure function of (job, params) →
summary, so it gives the same answer wherever it runs; the result comes back as
`{"job": j, "index": i, "summary": {...}}`.

`run_tasks` is the one entry point. The local executor runs in this process (`workers == 1`,
optionally on data already in memory) or on a process pool (forked where the platform can, see `pool_context`); a worker keeps one
`sweep.Worker` per job it has seen, so each job's data is loaded once per worker process and
the numba kernels are loaded from the on-disk cache once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from sq.core.exits import UsageError


@dataclass(frozen=True)
class Task:
    """One point of one job: `job` indexes the run's job list; `index` is the caller's own key."""

    job: int
    index: int
    params: tuple[str, ...]


@dataclass(frozen=True)
class ExecutorSpec:
    """A parsed `--executor`: `local`, or `ray` with an optional cluster address."""

    kind: str
    address: str | None = None


def parse_executor(text: str | None) -> ExecutorSpec:
    """`local` (the default) → ExecutorSpec('local'); `ray` → a local Ray runtime; `ray:ADDRESS`
    (`HOST:PORT`, `ray://HOST:PORT`, `auto`) → a running Ray cluster. Ray is not imported here."""
    t = (text or "local").strip()
    kind, _, address = t.partition(":")
    kind = kind.lower()
    if kind == "local" and not address:
        return ExecutorSpec("local")
    if kind == "ray":
        if not address:
            return ExecutorSpec("ray")
        from sq.runs.rayexec import check_address

        check_address(address.strip())
        return ExecutorSpec("ray", address.strip())
    raise UsageError(f"--executor {t!r}: expected local, ray or ray:HOST:PORT")


def default_workers() -> int:
    """Every CPU this process may run on."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# ----------------------------------------------------------------------------------------------
# the local process pool's worker side

_JOBS: Sequence[Any] = ()
_DATA: dict[int, Any] = {}
_WORKERS: dict[int, Any] = {}


def _init(jobs: Sequence[Any], data: dict[int, Any] | None = None) -> None:
    import signal

    global _JOBS, _DATA
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent ends the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker must not run the parent's handler: terminate() ends it
    _JOBS = tuple(jobs)
    _DATA = dict(data or {})
    _WORKERS.clear()


def _worker(job_no: int, jobs: Sequence[Any], data: dict[int, Any] | None = None):
    from sq.runs.sweep import Worker

    w = _WORKERS.get(job_no)
    if w is None:
        w = _WORKERS[job_no] = Worker(jobs[job_no], (data or {}).get(job_no))
    return w


def run_one(task: Task) -> dict[str, Any]:
    """Run one task in a pool worker (its jobs, and with fork their loaded data, came with the
    pool's initializer)."""
    r = _worker(task.job, _JOBS, _DATA).run(task.index, list(task.params))
    r["job"] = task.job
    return r


def pool_context():
    """`fork` where the platform has it, else `spawn`.

    A forked worker starts with everything the parent has already paid for: the imports, the
    numba kernels loaded from the on-disk cache (the parent warmed them up), and the data in
    memory (shared copy-on-write). A spawned worker pays ~1 s of CPU for the imports and the
    cache load before its first point: on two cores, with points of a fifth of a second, that
    alone capped a 16-point sweep at ~1.2× one process. Fork is safe here: the only threads
    the parent holds are Arrow's pools (Arrow re-creates them in a forked child, and its
    allocator registers fork handlers) and a progress bar's refresh (the children never write
    to the terminal); numba runs no threads of its own (no `parallel=True` kernels).

    Not so once polars has run a query here (a bar strategy's signals): its worker pool
    (threads `polars-N`, and tokio's) is not re-created in a forked child, whose first polars
    query then waits forever. Such a parent spawns its workers."""
    import multiprocessing as mp

    fork = "fork" in mp.get_all_start_methods() and not _holds_unforkable_threads()
    return mp.get_context("fork" if fork else "spawn")


def _holds_unforkable_threads() -> bool:
    """True when this process runs threads a forked child cannot do without (polars' pool), or
    when its threads cannot be listed."""
    import os
    import re

    try:
        names = []
        for t in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{t}/comm") as f:
                names.append(f.read().strip())
    except OSError:
        return True
    return any(re.fullmatch(r"polars-\d+", n) or n.startswith("tokio-rt") for n in names)


def _run_here(jobs, tasks, data, progress) -> Iterator[dict[str, Any]]:
    _WORKERS.clear()
    try:
        for t in tasks:
            r = _worker(t.job, jobs, data).run(t.index, list(t.params))
            r["job"] = t.job
            if progress is not None:
                progress(1)
            yield r
    finally:
        _WORKERS.clear()


def _run_pool(jobs, tasks, n, data, progress) -> Iterator[dict[str, Any]]:
    import warnings

    ctx = pool_context()
    forked = ctx.get_start_method() == "fork"
    with warnings.catch_warnings():  # Python ≥ 3.12 warns about fork beside threads: see pool_context
        warnings.simplefilter("ignore", DeprecationWarning)
        # with fork the initargs are inherited, not pickled: the data costs nothing to hand over
        pool = ctx.Pool(processes=n, initializer=_init, initargs=(tuple(jobs), data if forked else None))
    try:
        for r in pool.imap_unordered(run_one, list(tasks), chunksize=1):
            if progress is not None:
                progress(1)
            yield r
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def run_tasks(jobs: Sequence[Any], tasks: Sequence[Task], *, executor: ExecutorSpec | None = None, workers: int | None = None,
              data: dict[int, Any] | None = None, progress: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Run every task; yields results as they finish (in any order). `workers == 1` runs here,
    on `data[job]` (a `sweep.Loaded`) when given; more runs a process pool (forked workers
    share `data`; spawned ones read each job's inputs themselves)."""
    spec = executor or ExecutorSpec("local")
    if spec.kind == "ray":
        from sq.runs.rayexec import run_ray

        yield from run_ray(jobs, tasks, spec.address, workers, data, progress)
        return
    n = max(1, min(workers or default_workers(), len(tasks) or 1))
    if n == 1:
        yield from _run_here(jobs, tasks, data, progress)
    else:
        yield from _run_pool(jobs, tasks, n, data, progress)
