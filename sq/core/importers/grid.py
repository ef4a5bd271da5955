"""Price and size grids of imported data: is every value a multiple of the tick, and which grid
the values lie on when nobody says (`sq.core.bookstream.infer_tick_size`, sampled)."""

from __future__ import annotations

import numpy as np
from numba import njit

from sq.core.bookstream import infer_tick_size

INFER_SAMPLE = 200_000  # values the grid is first inferred from (all of them if that grid does not fit)


@njit(cache=True, nogil=True)
def first_off_grid(values, step):
    """Index of the first finite value that is not a multiple of `step` (within the rounding of
    decimal prices, as `infer_tick_size` allows), or −1; one pass, stops at the first."""
    for i in range(len(values)):
        v = values[i]
        if not np.isfinite(v):
            continue
        x = v / step
        if abs(x - np.rint(x)) > 1e-9 * abs(x) + 1e-7:
            return i
    return -1


def infer_grid(values: np.ndarray) -> float:
    """`infer_tick_size` over a sample of `values`, and over all of them when the sample's grid
    does not fit every value (np.unique over millions of prices is the slow part)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if len(values) <= INFER_SAMPLE:
        return infer_tick_size(values)
    guess = infer_tick_size(values[:: max(1, len(values) // INFER_SAMPLE)])
    return guess if first_off_grid(values, guess) < 0 else infer_tick_size(values)
