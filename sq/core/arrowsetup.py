"""pyarrow set up for a command-line process: no pandas import behind sq's back.

pyarrow looks for pandas the first time `pa.array()` (or `pa.table()`) sees any input, and
imports it when it is installed — 0.2 s of a process's start-up spent on a library sq never
hands to pyarrow. `keep_pandas_unloaded` lets that first, optional look find nothing, so the
check is settled without the import. Anything that really asks pyarrow for pandas
(`Table.to_pandas()`) still imports it then: pyarrow retries the import for every call that
requires pandas. A process that has already imported pandas is left as it is.
"""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa


class _NoPandas:
    """A meta-path finder that refuses `pandas` (installed only for pyarrow's one look)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "pandas":
            raise ModuleNotFoundError("pandas is not imported by sq", name="pandas")
        return None


def keep_pandas_unloaded() -> None:
    """Settle pyarrow's optional pandas check without importing pandas (see the module doc)."""
    if "pandas" in sys.modules:
        return
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array(np.zeros(0, np.int8))  # the Python-side check (pyarrow.lib._pandas_api)
        pa.array([None, "x"])  # the C++ one: what a Python sequence's conversion looks up
    finally:
        sys.meta_path.remove(finder)
