"""Instruments of the simulated exchange: tick size, lot size and starting price per `SIM:` name.

Any name is a valid simulated symbol. Its defaults are derived deterministically from the name
(a hash), so `SIM:FOO` looks the same on every machine and every run; `SIM:DEMO` is pinned to
tick 0.01, price 100.0, lot 1. The config can override each value.
"""

from __future__ import annotations

import hashlib
import math

from sq.core.schemas import Instrument

_PRICES = (12.5, 25.0, 40.0, 75.0, 150.0, 300.0, 600.0, 1200.0, 2500.0, 5000.0)
_TICKS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)


def sim_name(symbol: str) -> str:
    """`SIM:demo` or `demo` → `DEMO`."""
    s = symbol.strip()
    if ":" in s:
        prefix, s = s.split(":", 1)
        if prefix.strip().upper() != "SIM":
            raise ValueError(f"{symbol!r} is not a SIM: symbol")
    return s.strip().upper()


def name_hash(name: str) -> int:
    """A stable 64-bit hash of a symbol name (independent of PYTHONHASHSEED)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def sim_instrument(name: str, tick_size: float | None = None, price: float | None = None, lot_size: float | None = None) -> Instrument:
    """The instrument of `SIM:<name>`: defaults from the name, overridden by the arguments.

    The default tick is a round number about 1/10,000 of the price, so the price lives at
    roughly 10^4 ticks and moves by whole ticks. `extra` carries the starting price.
    """
    n = sim_name(name)
    if n == "DEMO":
        d_tick, d_price, d_lot = 0.01, 100.0, 1.0
    else:
        h = name_hash(n)
        base = _PRICES[h % len(_PRICES)]
        d_price = round(base * (1.0 + ((h >> 8) % 1000) / 1000.0), 2)
        target = d_price / 10_000.0
        d_tick = min(_TICKS, key=lambda t: abs(math.log(t / target)))
        d_price = round(round(d_price / d_tick) * d_tick, 10)
        d_lot = 1.0
    tick = float(tick_size) if tick_size is not None else d_tick
    px = float(price) if price is not None else d_price
    lot = float(lot_size) if lot_size is not None else d_lot
    if not (tick > 0 and math.isfinite(tick)):
        raise ValueError(f"SIM:{n}: tick_size must be positive, got {tick_size!r}")
    if not (px > 0 and math.isfinite(px)):
        raise ValueError(f"SIM:{n}: price must be positive, got {price!r}")
    if not (lot > 0 and math.isfinite(lot)):
        raise ValueError(f"SIM:{n}: lot_size must be positive, got {lot_size!r}")
    return Instrument(f"SIM:{n}", "sim", tick, lot, {"start_price": px})


def decimals(step: float) -> int:
    """Decimal places needed to print multiples of `step` exactly (0.01 → 2, 0.5 → 1, 5 → 0)."""
    for d in range(0, 12):
        if abs(round(step, d) - step) < 1e-12 * max(1.0, abs(step)):
            return d
    return 12
