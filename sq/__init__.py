"""sq — a command-line trading toolkit (record, book, paper, live, backtest, reconcile, kill).

Importing this package is cheap on purpose: heavy modules (numba, polars, pyarrow, venue SDKs)
are imported only by the commands that need them, so `sq --help` and `sq kill` start fast.
"""

__version__ = "0.1.0"
