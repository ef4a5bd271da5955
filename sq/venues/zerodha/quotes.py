"""Today's circuit limits from Kite's `/quote` (full quotes carry `lower_circuit_limit` and
`upper_circuit_limit`, docs/market-rules.md).

A live market source asks once when it opens and puts the limits into its instruments' extras,
so a recording carries the day's limits in its metadata and a backtest or paper replay of it
enforces them (`sq.runs.marketrules`); a `--raw` capture keeps the answer for `--replay`.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from typing import Any, Iterable, Mapping

from sq.core.schemas import Instrument
from sq.venues.zerodha.endpoints import Endpoints, get_text

PATH = "/quote"
KEYS = ("lower_circuit_limit", "upper_circuit_limit")


def fetch(endpoints: Endpoints, api_key: str | None, token: str | None, symbols: Iterable[str], timeout: float = 10.0) -> str:
    """GET /quote for `symbols` (canonical `NSE:INFY`): the answer's JSON text."""
    query = urllib.parse.urlencode([("i", s) for s in symbols])
    return get_text(endpoints, f"{PATH}?{query}", api_key, token, what="get quotes", timeout=timeout)


def circuits(answer: str | Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Symbol → (lower, upper) circuit limits of a /quote answer (symbols without both left out)."""
    try:
        doc = json.loads(answer) if isinstance(answer, (str, bytes)) else answer
        data = doc.get("data") or {}
    except (ValueError, AttributeError):
        return {}
    out = {}
    for key, q in data.items() if isinstance(data, Mapping) else ():
        try:
            lo, hi = (float(q[k]) for k in KEYS)
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo < hi:
            out[str(key).upper()] = (lo, hi)
    return out


def with_circuits(instruments: Mapping[str, Instrument], limits: Mapping[str, tuple[float, float]]) -> dict[str, Instrument]:
    """The instruments with their circuit limits added to the extras."""
    out = {}
    for name, inst in instruments.items():
        if name in limits:
            lo, hi = limits[name]
            inst = Instrument(inst.symbol, inst.venue, inst.tick_size, inst.lot_size, {**inst.extra, KEYS[0]: lo, KEYS[1]: hi})
        out[name] = inst
    return out
