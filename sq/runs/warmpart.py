"""A cold compile on two cores: the engine's kernels here, the rest in a second process.

A first run compiles three independent sets of numba code: the engine's kernels (the event loop
and everything it calls; the same for every strategy, which reaches them as handler addresses),
the strategy's own handlers with the `ctx` methods they call, and a venue's own code (the
simulated exchange's order flow). Compiled one after the other they take ~30 s on this kind of
machine; `parallel_cold_compile` starts a second Python process that compiles the handlers and
the venue code into the shared disk cache while this process compiles the engine's kernels with
a strategy that has no handlers of its own. The run's ordinary warm-up afterwards only loads
from the cache. A second process that fails or is not there (no spec to load the strategy by)
costs nothing but time: the ordinary warm-up compiles whatever is missing.

`python -m sq.runs.warmpart SPEC [VENUE…]` is that second process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

HELPER_TIMEOUT_S = 600.0


def start_helper(strategy: Any, venues: tuple[str, ...]) -> subprocess.Popen | None:
    """The second process compiling `strategy`'s handlers (by its spec) and `venues`' code."""
    spec = getattr(strategy, "spec", None)
    if not spec and not venues:
        return None
    try:
        return subprocess.Popen([sys.executable, "-m", "sq.runs.warmpart", spec or "", *venues], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    except OSError:
        return None


def warm_engine_kernels(config: Any) -> None:
    """Compile (or load) the engine's kernels with a strategy without handlers of its own (sq's
    cached no-op handlers stand in): what every event strategy's run shares."""
    from sq.core.engine.runner import warm_up
    from sq.strategy import Strategy

    warm_up(config, Strategy("kernel_warm_up", "no handlers: compiles the engine's kernels only"), calendar=False)


def parallel_cold_compile(config: Any, strategy: Any, venues: tuple[str, ...]) -> None:
    """Compile the engine here while a second process compiles the strategy and the venues."""
    helper = start_helper(strategy, venues)
    try:
        warm_engine_kernels(config)
    finally:
        if helper is not None:
            try:
                helper.wait(HELPER_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()


def main(argv: list[str]) -> int:
    from sq.core.strategy import loader
    from sq.venues import registry

    spec, venues = (argv[0] if argv else ""), argv[1:]
    if spec:
        loader.compiled(loader.load(spec))
    for venue in venues:
        registry.warm_up(venue)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
