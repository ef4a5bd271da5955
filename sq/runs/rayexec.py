"""`--executor ray[:ADDRESS]`: research tasks on a Ray cluster (sq.runs.executors' Ray side).

Points run as Ray tasks, at most `--jobs` at a time, on the runtime's pooled worker processes:
each imports sq and loads the numba kernels from the on-disk cache as it starts, and keeps one
`sweep.Worker` per job of the run, so a job's data is read once per worker process (from its
input paths or object-store URIs); results stream back as they finish. A task is the same pure function of (job, params) as on the
local pool, so the results are identical whatever the executor.

`ray` alone starts a local Ray runtime with `num_cpus = workers` and shuts it down afterwards;
`ray:HOST:PORT` (or `ray:auto`, `ray:ray://HOST:PORT`) joins a running cluster (`ray start
--head` elsewhere) and leaves it running. Ray is an optional extra (`pip install 'sq[ray]'`),
imported only here, only when `--executor ray` is asked for.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from sq.core.exits import ConfigError, UsageError, VenueUnavailable

CONNECT_TIMEOUT_S = 5.0


def check_address(address: str) -> tuple[str, int] | None:
    """`HOST:PORT` or `ray://HOST:PORT` → (host, port); `auto` → None; else a usage error."""
    if address == "auto":
        return None
    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    host, colon, port = hostport.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--executor ray:{address}: expected ray:HOST:PORT (e.g. ray:10.0.0.5:6379), ray:ray://HOST:10001 or ray:auto")
    return host, int(port)


def _import_ray():
    import os

    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # Ray's C++ core warns on stderr while it retries: sq says it once
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray, an optional extra: pip install 'sq[ray]'") from None
    return ray, None


def _reachable(address: str) -> None:
    """A cluster address that does not answer is a one-line error (exit 69) before Ray's own,
    much longer, retries."""
    import socket

    hp = check_address(address)
    if hp is None:
        return
    try:
        socket.create_connection(hp, timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise VenueUnavailable(f"--executor ray:{address}: no Ray cluster answers at {hp[0]}:{hp[1]} ({e.strerror or e})") from None


_CACHE: dict[str, Any] = {"run": None, "workers": {}}  # in a Ray worker process: the current run's Worker per job


def run_task(run: str, jobs: Sequence[Any], data: list, job: int, index: int, params: tuple[str, ...]) -> dict[str, Any]:
    """One task in a Ray worker process. The process keeps one `sweep.Worker` per job of the
    current run (`run`: a new run forgets the last one's), so a job's data is read once per
    worker process however many of its points the process runs."""
    from sq.runs.sweep import Worker

    if _CACHE["run"] != run:
        _CACHE["run"], _CACHE["workers"] = run, {}
    workers = _CACHE["workers"]
    w = workers.get(job)
    if w is None:
        loaded = data[0] if data else None
        if loaded is not None:
            import ray

            loaded = ray.get(loaded)
        w = workers[job] = Worker(jobs[job], loaded)
    r = w.run(index, list(params))
    r["job"] = job
    return r


def prepare_worker_process() -> None:
    """Ray's `worker_process_setup_hook`: a Ray worker process imports sq and loads the engine's
    kernels (numba's on-disk cache) as it starts — while the driver still prepares the run, or
    when the runtime starts — rather than when an actor's first task arrives."""
    from sq.core.config import Config
    from sq.core.engine.runner import warm_up

    import sq.runs.sweep  # noqa: F401

    try:
        warm_up(Config())
    except Exception:  # noqa: BLE001 - only a head start: the actor warms up (and reports) on its own
        pass


def start(address: str | None = None, workers: int | None = None) -> bool:
    """Connect to the Ray cluster at `address` (None: start a local runtime of `workers` CPUs);
    True when this call did it (and the caller shuts it down), False when Ray was already up."""
    ray, _ = _import_ray()
    started = _start(ray, address, workers)
    n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    ray.get([ray.remote(num_cpus=1)(_prepare_and_hold).remote() for _ in range(n)])
    return started


def _prepare_and_hold() -> int:
    import os
    import time

    prepare_worker_process()
    time.sleep(0.5)  # held a moment, so that each of the n tasks lands in a process of its own
    return os.getpid()


def _start(ray, address: str | None, workers: int | None) -> bool:
    """Connect to (or start) the Ray runtime; True when this call started it."""
    import logging
    import os

    if ray.is_initialized():
        return False
    opts = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    if address:
        _reachable(address)
        try:
            ray.init(address=address, **opts)
        except (ConnectionError, RuntimeError, TimeoutError) as e:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            hint = "" if os.environ.get("RAY_AUTH_MODE") else "; a cluster with token authentication needs RAY_AUTH_MODE=token and its token here too"
            raise VenueUnavailable(f"--executor ray:{address}: cannot join the Ray cluster ({why}){hint}") from None
    else:
        from sq.runs.executors import default_workers

        ray.init(address="local", num_cpus=workers or default_workers(), **opts)  # a runtime of its own, even beside a running cluster
    return True


def run_ray(jobs: Sequence[Any], tasks: Sequence[Any], address: str | None, workers: int | None,
            data: dict[int, Any] | None, progress: Callable[[int], None] | None) -> Iterator[dict[str, Any]]:
    """Run every task as a Ray task on `workers` CPUs (default: every CPU of the cluster; each
    task asks for one, and at most two per worker are submitted at a time); yields results as
    they finish.

    Ray tasks rather than one actor per worker: Ray gives every actor a fresh process, which pays
    the imports, the kernels' cache load and the data read before its first point, while tasks
    run on the runtime's pooled worker processes — started with the runtime, sq imported and its
    kernels loaded as they start (`prepare_worker_process`) — and a process keeps each job's data
    between tasks (`run_task`), which is all an actor would have kept."""
    import uuid

    if address:
        check_address(address)
    ray, _ = _import_ray()
    started = _start(ray, address, workers)
    pending: dict = {}
    try:
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = max(1, min(n, len(tasks) or 1))
        run = uuid.uuid4().hex
        job_refs = ray.put(tuple(jobs))
        data_refs = {j: ray.put(d) for j, d in (data or {}).items()}  # the driver's data (a local runtime, a spooled input): zero-copy reads
        remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
        queue = list(tasks)[::-1]

        def submit() -> None:
            t = queue.pop()
            ref = remote.remote(run, job_refs, [data_refs[t.job]] if t.job in data_refs else [], t.job, t.index, tuple(t.params))
            pending[ref] = t

        while queue and len(pending) < 2 * n:  # one queued behind each running task: a worker never waits on a round trip
            submit()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                pending.pop(ref)
                r = ray.get(ref)
                if queue:
                    submit()
                if progress is not None:
                    progress(1)
                yield r
    finally:
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - a task already finished
                pass
        if started:
            ray.shutdown()
