"""`--executor ray[:ADDRESS]`: research tasks on a Ray cluster (sq.runs.executors' Ray side).

One Ray actor per worker, each keeping one `sweep.Worker` per job (so a job's data is read once
per actor, from its input paths or object-store URIs, and the numba kernels are loaded from the
on-disk cache once per actor process); tasks reach the actors through an `ActorPool` and their
results stream back as they finish. A task is the same pure function of (job, params) as on the
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
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise ConfigError("--executor ray needs Ray, an optional extra: pip install 'sq[ray]'") from None
    return ray, ActorPool


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


class RayWorker:
    """The actor: the run's jobs, the data the caller already had (object refs), and one
    `sweep.Worker` per job seen."""

    def __init__(self, jobs: Sequence[Any], data: dict[int, Any]):
        self.jobs = tuple(jobs)
        self.data = dict(data)
        self.workers: dict[int, Any] = {}

    def run(self, job: int, index: int, params: tuple[str, ...]) -> dict[str, Any]:
        from sq.runs.sweep import Worker

        w = self.workers.get(job)
        if w is None:
            loaded = self.data.get(job)
            if loaded is not None:
                import ray

                loaded = ray.get(loaded)
            w = self.workers[job] = Worker(self.jobs[job], loaded)
        r = w.run(index, list(params))
        r["job"] = job
        return r


def _start(ray, address: str | None, workers: int | None) -> bool:
    """Connect to (or start) the Ray runtime; True when this call started it."""
    import logging

    if ray.is_initialized():
        return False
    opts = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    if address:
        _reachable(address)
        try:
            ray.init(address=address, **opts)
        except (ConnectionError, RuntimeError, TimeoutError) as e:
            raise VenueUnavailable(f"--executor ray:{address}: cannot join the Ray cluster ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    else:
        from sq.runs.executors import default_workers

        ray.init(num_cpus=workers or default_workers(), **opts)
    return True


def run_ray(jobs: Sequence[Any], tasks: Sequence[Any], address: str | None, workers: int | None,
            data: dict[int, Any] | None, progress: Callable[[int], None] | None) -> Iterator[dict[str, Any]]:
    """Run every task on Ray actors; yields results as they finish. `workers` actors (default:
    every CPU of the cluster), never more than there are tasks."""
    if address:
        check_address(address)
    ray, ActorPool = _import_ray()
    started = _start(ray, address, workers)
    actors: list = []
    try:
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = max(1, min(n, len(tasks) or 1))
        refs = {j: ray.put(d) for j, d in (data or {}).items()}  # a spooled input travels through the object store
        Actor = ray.remote(num_cpus=1)(RayWorker)
        actors = [Actor.remote(tuple(jobs), refs) for _ in range(n)]
        pool = ActorPool(actors)
        for r in pool.map_unordered(lambda a, t: a.run.remote(t.job, t.index, tuple(t.params)), list(tasks)):
            if progress is not None:
                progress(1)
            yield r
    finally:
        for a in actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001 - an actor already gone
                pass
        if started:
            ray.shutdown()
