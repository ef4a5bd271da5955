"""The trading engine shared by backtest, paper and live (docs/architecture.md).

Numba kernels over struct-of-arrays state: the order manager, pre-trade risk, the position
keeper, the simulated venue (latency, queue-aware fills) and the event loop, which calls the
strategy's compiled handlers with the strategy context (`context.py`); `Engine` (runner.py) is
the Python-facing API.
"""

from sq.core.engine.runner import Engine, EngineOutput, FillModelConfig

__all__ = ["Engine", "EngineOutput", "FillModelConfig"]
