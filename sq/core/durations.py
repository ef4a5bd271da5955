"""Durations on the command line: `30s`, `100ms`, `1h30m`, `2d`, `500us`. A number needs its unit
(`--latency 20` could mean 20 ms or 20 s: it is a usage error naming both); only `0` stands alone."""

from __future__ import annotations

import re

from sq.core.exits import UsageError

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)")


def parse_duration_ns(text: str, *, option: str = "duration") -> int:
    """Parse a duration into integer nanoseconds; raise UsageError naming the option when bad."""
    raw = text.strip().lower()
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        if value < 0 or value != value:
            raise UsageError(f"{option}: duration must be positive, got {text!r}")
        if value == 0:
            return 0
        raise UsageError(f"{option}: {text!r} needs a unit — e.g. {raw}ms or {raw}s (units: ns, us, ms, s, m, h, d)")
    pos = 0
    total = 0.0
    for m in _PART.finditer(raw):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS_NS[m.group(2)]
        pos = m.end()
    if pos != len(raw) or not raw:
        raise UsageError(f"{option}: cannot read {text!r} as a duration (examples: 30s, 100ms, 1h30m)")
    return int(round(total))
