"""Compile (or load) the numba kernels a run needs before its clock or market data starts — and
say so first when that takes a while.

A fresh install has no numba cache: the first run of the event engine compiles its kernels
(tens of seconds), later runs load them from the cache (under a second). `warm_up` runs before a
command opens its market source or starts its `--for` clock, so the compile never eats the run's
window; when the cache looks cold (numba's index of the event kernel is missing or stale) it
announces the compile on stderr before it starts — with a spinner on a terminal, one plain line
otherwise — and, should a cache that looked warm still compile (a changed strategy file, a newer
sq), it announces it once the warm-up has taken `LATE_S`.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

ESTIMATE_S = {"event": 20, "bar": 20}  # a cold compile on a quiet 2-core machine (two processes), rounded up
LATE_S = 1.5  # a warm-up taking longer than this is compiling: say so
SLOW_S = 2.0  # a warm-up taking longer than this compiled: say how long it took


def cache_is_cold(kind: str = "event") -> bool:
    """Whether numba's disk cache lacks the engine's main kernel (a first run on this install, or
    the first after an upgrade changed it). Reads one small index file; never compiles."""
    try:
        if kind == "bar":
            from sq.core.engine.barexec import run as dispatcher
        else:
            from sq.core.engine.kernel import run as dispatcher
        return not dispatcher._cache._cache_file._load_index()  # numba internals: guarded below
    except Exception:
        return False  # unknown: the late announcement covers it


def message(kind: str = "event") -> str:
    return f"compiling engine kernels, one time, ~{ESTIMATE_S.get(kind, 20)} s"


@contextmanager
def announced(env: Any, kind: str = "event", *, cold: bool | None = None) -> Iterator[dict]:
    """Around a warm-up: announce the compile on stderr at once when the cache is `cold` (default:
    `cache_is_cold`), else after `LATE_S` if it is still going; afterwards, when it took over
    `SLOW_S`, say how long. Yields a dict that gets `announced` (bool) and `seconds`."""
    state: dict = {"announced": False, "seconds": 0.0}
    lock = threading.Lock()
    status: list = []
    done = threading.Event()

    def announce() -> None:
        with lock:
            if done.is_set() or state["announced"]:
                return
            state["announced"] = True
            if env.quiet:
                return
            if env.stderr_isatty:
                s = env.console(stderr=True).status(f"sq: {message(kind)}", spinner="dots")
                s.start()
                status.append(s)
            else:
                env.info(message(kind))

    if cold is None:
        cold = cache_is_cold(kind)
    timer = None
    if cold:
        announce()
    else:
        timer = threading.Timer(LATE_S, announce)
        timer.daemon = True
        timer.start()
    t0 = time.monotonic()
    try:
        yield state
    finally:
        state["seconds"] = time.monotonic() - t0
        with lock:
            done.set()
            if timer is not None:
                timer.cancel()
            for s in status:
                s.stop()
        if state["seconds"] > SLOW_S and not env.quiet:
            env.info(f"engine kernels compiled in {state['seconds']:.0f}s (cached for later runs)")


def calendars_needed(symbols, config: Any) -> bool:
    """Whether a run over `symbols` gets a market calendar (a broker square-off path to warm up):
    a market that does not trade around the clock under `config`; True when that cannot be told."""
    from sq.venues import registry

    try:
        return any(registry.market_calendar(str(s), config) is not None for s in symbols)
    except Exception:
        return True


def warm_up(env: Any, config: Any, strategy: Any, *, calendar: bool = False, venues: tuple[str, ...] = (),
            engine_warm_up: Callable[..., None] | None = None, live: bool = False) -> dict:
    """Load (or compile) what a run of `strategy` (a `Strategy` declaration) needs before its clock
    starts: the engine's kernels for that strategy (`calendar`: also the square-off path), each of
    `venues`' own compiled code (the simulated exchange's order flow), with `live` the bridge to a
    real venue (its answers' kernels), and the journal's Parquet
    writer — `sq kill` expects a halt within a second, and a first-time compile of
    `cancel_all`/`finish` or a first import of the writer takes longer. Announced (`announced`).
    `engine_warm_up` replaces the engine's (tests inject a slow one). Returns `announced`'s state."""
    kind = "bar" if getattr(strategy, "kind", "event") == "bar" else "event"
    cold = cache_is_cold(kind)
    with announced(env, kind, cold=cold) as state:
        import pyarrow.parquet  # noqa: F401  (the journal compaction's writer)

        if cold and kind == "event" and engine_warm_up is None:
            # a first run: the engine's kernels here, the strategy's handlers and the venues' code
            # in a second process at the same time (sq.runs.warmpart); the warm-up below then loads
            from sq.runs.warmpart import parallel_cold_compile

            parallel_cold_compile(config, strategy, tuple(venues))
        if engine_warm_up is not None:
            engine_warm_up(config, strategy)
        elif kind == "bar":
            from sq.core.engine.barengine import warm_up as warm_up_bars

            warm_up_bars(config)
        else:
            from sq.core.engine.runner import warm_up as warm_up_events

            warm_up_events(config, strategy, calendar=calendar)
        if live:  # a real venue's answers (ack, fill, cancel) go through the bridge's own kernels
            from sq.core.engine.venue_bridge import warm_up as warm_up_bridge

            warm_up_bridge(config, strategy)
        if venues:
            from sq.venues import registry

            for venue in venues:
                registry.warm_up(venue)
    return state
