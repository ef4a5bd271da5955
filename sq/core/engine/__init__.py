"""The trading engine shared by backtest, paper and live (docs/architecture.md).

Numba kernels over struct-of-arrays state: the order manager, pre-trade risk, the position
keeper, the simulated venue (latency, queue-aware fills) and the event loop, which calls the
strategy's compiled handlers with the strategy context (`context.py`); `Engine` (runner.py) is
the Python-facing API. Bar strategies run in `BarEngine` (barengine.py): the same state, risk
checks, position keeper and journal rows, with bars and signals in place of events and handlers;
on a real venue (`sim_venue=False`) they run in `LiveBarEngine` (livebarengine.py): the event
engine itself, trading the signals of each closed bar through an executor strategy.
`make_engine` picks the one a strategy needs.
"""

from sq.core.engine.runner import Engine, EngineOutput, FillModelConfig


def make_engine(strategy, instruments, params, **options) -> Engine:
    """The engine for `strategy` (a declaration or what `--strategy` takes): for a bar strategy
    (which also takes `session_of`) `BarEngine`, or `LiveBarEngine` with `sim_venue=False` (a
    real venue's orders come from the event engine); `Engine` otherwise."""
    from sq.core.strategy import loader

    declaration = loader.load(strategy) if isinstance(strategy, str) else strategy
    if declaration.kind == "bar":
        if not options.get("sim_venue", True):
            from sq.core.engine.livebarengine import LiveBarEngine

            return LiveBarEngine(declaration, instruments, params, **options)
        from sq.core.engine.barengine import BarEngine

        return BarEngine(declaration, instruments, params, **options)
    options.pop("session_of", None)
    return Engine(declaration, instruments, params, **options)


__all__ = ["Engine", "EngineOutput", "FillModelConfig", "make_engine"]
