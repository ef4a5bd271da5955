"""The engine's pre-trade risk check for one order outside a running engine (`sq order`).

A hand-placed order must pass exactly the checks an engine order passes (`risk.check`: order
size, position with the working order on that side, max loss, daily loss, notional, position
value, open orders, price band, trading hours / holidays, circuit limits, order rate). Instead of
a copy of those rules, `check_order` fills a one-symbol slice of the engine's state arrays (the
same layout, the same `[risk]` mapping as `Engine._alloc`) and calls the same numba kernel, so the
two can never disagree. Returns the reason name (`layout.REASONS`), "ok" when it may be sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sq.core.engine import layout as L


@dataclass(frozen=True)
class SymbolLimits:
    """A symbol's risk parameters: the config's `[[instruments]]` entry, else the strategy defaults."""

    max_order_size: float
    max_position: float
    max_loss: float

    @classmethod
    def of(cls, config: Any, symbol: str) -> "SymbolLimits":
        from sq.core.strategy.declaration import RISK_PARAMS

        values = {p.name: float(p.default) for p in RISK_PARAMS}
        inst = config.instrument(symbol) if config is not None else None
        for name in values:
            v = getattr(inst, name, None) if inst is not None else None
            if v is not None:
                values[name] = abs(float(v)) if name == "max_loss" else float(v)
        return cls(**values)


@dataclass(frozen=True)
class MarketState:
    """What the account and the market say about the symbol right now."""

    tick_size: float
    position: float = 0.0  # net position (base quantity), + long
    avg_price: float = 0.0
    working_buy: float = 0.0  # leaves of open orders on each side
    working_sell: float = 0.0
    open_orders: int = 0  # working orders on the account (the max_open_orders count)
    fair: float = math.nan  # a fair price for the band (NaN: the order's own price)
    calendar: Any = None  # sq.core.sessions.MarketCalendar or None (around the clock)
    circuit: tuple[float, float] | None = None


def check_order(config: Any, symbol: str, side: int, qty: float, price: float, market: MarketState, now_ns: int) -> str:
    """The first failing risk reason of an order (`price` in quote currency, the reference price
    of a market order), or "ok"."""
    from sq.core.engine import calendars, risk

    risk_cfg = config.risk
    limits = SymbolLimits.of(config, symbol)
    tick = float(market.tick_size) if market.tick_size and market.tick_size > 0 else 1e-8
    si = np.zeros((1, L.NSI), np.int64)
    sf = np.zeros((1, L.NSF), np.float64)
    oi = np.zeros((2, L.NOI), np.int64)
    of = np.zeros((2, L.NOF), np.float64)
    g = np.zeros(L.NG, np.int64)
    gf = np.zeros(L.NGF, np.float64)
    si[0, L.SI_CONF] = 1
    si[0, L.SI_SLOT] = -1
    si[0, L.SI_SLOT + 1] = -1
    si[0, L.SI_PSLOT] = -1
    si[0, L.SI_PSLOT + 1] = -1
    for row, (slot, leaves) in enumerate(((0, market.working_buy), (1, market.working_sell))):
        if leaves > 0:  # the working orders on each side count toward the position limit, as in the engine
            si[0, L.SI_SLOT + slot] = row
            oi[row, L.OI_STATE] = L.LIVE
            of[row, L.OF_LEAVES] = leaves
    si[0, L.SI_HOURS_OPEN] = L.HOURS_NONE
    si[0, L.SI_HOURS_CLOSE] = L.HOURS_NONE
    if market.calendar is not None and (risk_cfg.enforce_trading_hours or market.calendar.square_off is not None):
        lo, hi = calendars.window(market.calendar, bool(risk_cfg.enforce_trading_hours), market.calendar.local_day(now_ns))
        si[0, L.SI_HOURS_OPEN], si[0, L.SI_HOURS_CLOSE] = lo, hi
    if risk_cfg.enforce_circuit_limits and market.circuit is not None:
        low, high = market.circuit
        si[0, L.SI_CIRC_LO] = int(math.ceil(low / tick - 1e-9))
        si[0, L.SI_CIRC_HI] = int(math.floor(high / tick + 1e-9))
        si[0, L.SI_HAS_CIRC] = 1
    sf[0, L.SF_MAXORD] = limits.max_order_size
    sf[0, L.SF_MAXPOS] = limits.max_position
    sf[0, L.SF_MAXLOSS] = limits.max_loss
    sf[0, L.SF_TICK] = tick
    sf[0, L.SF_INV] = 1.0 / tick
    sf[0, L.SF_LOT] = 1.0
    sf[0, L.SF_MARK] = math.nan
    if market.position:
        from sq.core.engine import positions

        positions.add_fill(sf, 0, 1 if market.position > 0 else -1, float(market.avg_price or price), abs(float(market.position)), 0.0)
    g[L.G_DAY] = -1
    g[L.G_MAX_OPEN] = -1 if risk_cfg.max_open_orders is None else int(risk_cfg.max_open_orders)
    g[L.G_OPEN] = int(market.open_orders)
    g[L.G_TOKEN_TS] = np.iinfo(np.int64).min // 2
    rate = float(risk_cfg.max_order_rate or 0.0)
    gf[L.GF_RATE] = rate
    gf[L.GF_BURST] = max(1.0, rate)
    gf[L.GF_TOKENS] = max(1.0, rate)
    gf[L.GF_DAILY] = abs(float(risk_cfg.max_daily_loss or 0.0))
    gf[L.GF_BAND] = float(risk_cfg.price_band_pct or 0.0)
    gf[L.GF_NOTIONAL] = float(risk_cfg.max_notional or 0.0)
    gf[L.GF_POS_VALUE] = float(risk_cfg.max_position_value or 0.0)
    px_ticks = float(price) / tick
    fair = market.fair if math.isfinite(market.fair) else float(price)
    code = risk.check(si, sf, oi, of, g, gf, 0, 1 if side > 0 else -1, px_ticks, float(qty), fair / tick, int(now_ns), 1)
    return L.REASONS[int(code)]
