"""pyarrow set up for an `sq` process: no pandas import behind sq's back.

pyarrow looks for pandas the first time `pa.array()` (or `pa.table()`) sees any input, and
imports it when it is installed — 0.2 s of a command's start-up spent on a library sq never
hands to pyarrow. The `sq` console script asks for `keep_pandas_unloaded` (`enable`, before
anything imports pyarrow); then the first `sq.core.schemas` import lets that first, optional
look find nothing, so the check is settled without the import, and the process behaves like an
install without pandas (sq's dependencies do not include it). Anything that really asks pyarrow
for pandas (`Table.to_pandas()`) still imports it then: pyarrow retries the import for every call
that requires pandas. A process that has already imported pandas is left as it is, and so is a
program that imports sq as a library (tests, notebooks).
"""

from __future__ import annotations

import sys

_ENABLED = False


def enable() -> None:
    """Ask for `keep_pandas_unloaded` at the first `sq.core.schemas` import (the `sq` command)."""
    global _ENABLED
    _ENABLED = True


class _NoPandas:
    """A meta-path finder that refuses `pandas` (installed only for pyarrow's one look)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "pandas":
            raise ModuleNotFoundError("pandas is not imported by sq", name="pandas")
        return None


def keep_pandas_unloaded() -> None:
    """Settle pyarrow's optional pandas check without importing pandas, when `enable`d."""
    if not _ENABLED or "pandas" in sys.modules:
        return
    import numpy as np
    import pyarrow as pa

    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array(np.zeros(0, np.int8))  # the Python-side check (pyarrow.lib._pandas_api)
        pa.array([None, "x"])  # the C++ one: what a Python sequence's conversion looks up
    finally:
        sys.meta_path.remove(finder)
