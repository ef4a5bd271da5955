"""Source time columns → int64 nanoseconds since the epoch (UTC), with the unit told or detected.

Files people already have count time in seconds, milliseconds, microseconds or nanoseconds since
the epoch (sometimes as floats with a fraction), or hold datetimes. `--ts-unit s|ms|us|ns` says
which; otherwise the unit is the one under which every value is a time between 1980 and 2100.
Those four windows never overlap (each is 1000× the last), so a column fits one of them, none
(not an epoch time at all) or — when its values straddle two scales — is ambiguous; both of the
latter are data errors (65) naming the column, its range and the way out (`--ts-unit`).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from sq.core.exits import DataError

NS_PER = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
UNITS = tuple(NS_PER)
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
FIRST_NS = int(dt.datetime(1980, 1, 1, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000_000
LAST_NS = int(dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000_000
PLAUSIBLE = "1980–2100"


def epoch_ns(series: pl.Series, *, unit: str | None, column: str, where: str) -> np.ndarray:
    """`series` (integers, floats, datetimes or ISO-8601 text) as int64 ns since the epoch.

    `unit` is one of UNITS or None (detect); `where` names the file in messages. Nulls, values
    outside 1980–2100 under the given unit, and a unit that cannot be told are DataErrors.
    """
    if series.null_count():
        row = int(series.is_null().arg_max())
        raise DataError(f"{where}: column {column!r} has an empty time at data row {row + 1}")
    dtype = series.dtype
    if dtype == pl.String:
        try:
            series = series.str.to_datetime(time_zone="UTC")
        except pl.exceptions.PolarsError:
            raise DataError(f"{where}: column {column!r} holds text that is neither a number nor an ISO-8601 time "
                            f"(first value {series[0]!r})") from None
        dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            series = series.dt.replace_time_zone("UTC")
        ns = series.dt.cast_time_unit("ns").dt.epoch("ns").to_numpy()
        _check(ns, column, where, "datetimes")
        return ns
    if isinstance(dtype, pl.Date):
        ns = series.cast(pl.Datetime("ns")).dt.epoch("ns").to_numpy()
        _check(ns, column, where, "dates")
        return ns
    if not dtype.is_numeric():
        raise DataError(f"{where}: column {column!r} is {dtype}, not a time")
    values = series.to_numpy()
    if unit is None:
        unit = detect_unit(values, column, where)
    mult = NS_PER[unit]
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            row = int(np.argmin(np.isfinite(values)))
            raise DataError(f"{where}: column {column!r} has a non-finite time at data row {row + 1}")
        ns = np.rint(values * float(mult)).astype(np.int64)
    else:
        v = values.astype(np.int64, copy=False)
        lo_ok, hi_ok = FIRST_NS // mult, LAST_NS // mult
        bad = (v < lo_ok) | (v >= hi_ok)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{where}: column {column!r} read in {UNIT_NAMES[unit]} gives a time outside {PLAUSIBLE} "
                            f"({int(v[row])} at data row {row + 1}); check --ts-unit")
        return v * mult  # in range: checked before the multiplication (which could overflow)
    _check(ns, column, where, UNIT_NAMES[unit])
    return ns


def detect_unit(values: np.ndarray, column: str, where: str) -> str:
    """The one unit under which every value is a 1980–2100 time; DataError when none or several fit."""
    if len(values) == 0:
        return "ns"
    lo, hi = float(np.min(values)), float(np.max(values))
    fits = [u for u in UNITS if FIRST_NS <= lo * NS_PER[u] and hi * NS_PER[u] < LAST_NS]
    if len(fits) == 1:
        return fits[0]
    lo_fits = [u for u in UNITS if FIRST_NS <= lo * NS_PER[u] < LAST_NS]
    hi_fits = [u for u in UNITS if FIRST_NS <= hi * NS_PER[u] < LAST_NS]
    span = f"{_num(lo)} … {_num(hi)}"
    if lo_fits and hi_fits:
        raise DataError(f"{where}: column {column!r} is ambiguous: its values ({span}) read as {UNIT_NAMES[lo_fits[0]]} "
                        f"at one end and {UNIT_NAMES[hi_fits[0]]} at the other; give --ts-unit s|ms|us|ns")
    raise DataError(f"{where}: column {column!r} ({span}) is not a time since the epoch in seconds, milliseconds, "
                    f"microseconds or nanoseconds ({PLAUSIBLE}); map another column with --map ts=COLUMN or give --ts-unit")


def _check(ns: np.ndarray, column: str, where: str, what: str) -> None:
    bad = (ns < FIRST_NS) | (ns >= LAST_NS)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{where}: column {column!r} read as {what} gives a time outside {PLAUSIBLE} at data row {row + 1}; "
                        "check --ts-unit")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)
