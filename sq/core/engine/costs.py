"""A fill's charges inside the kernels: the symbol's cost model (`SF_C_*`) or the fill model's
maker/taker bps, booked by component (`SF_K_*`) so summaries show each one.

The arithmetic is `sq.core.costs.fill_charges`'s (the reference, compared in tests): brokerage
(bps by liquidity, plus a percentage capped per order or a flat fee per order, less what the
order has paid so far), transaction tax by side, exchange and regulatory charges, stamp duty on
buys, GST over brokerage + exchange + regulatory charges. Without a cost model the fee is the
symbol's maker/taker bps (`SF_MAKER_BPS`/`SF_TAKER_BPS`: the fill model's, or the account's
commission), booked as brokerage (a SIM or crypto run's fees are unchanged).
"""

from __future__ import annotations

from sq.core.engine.layout import (
    SF_C_BROK_CAP,
    SF_C_BROK_FLAT,
    SF_C_BROK_PCT,
    SF_C_GST,
    SF_C_MAKER_BPS,
    SF_C_ON,
    SF_C_REG,
    SF_C_STAMP_BUY,
    SF_C_TAKER_BPS,
    SF_C_TAX_BUY,
    SF_C_TAX_SELL,
    SF_C_TXN,
    SF_K_BROK,
    SF_K_GST,
    SF_K_REG,
    SF_K_STAMP,
    SF_K_TAX,
    SF_K_TXN,
    SF_MAKER_BPS,
    SF_TAKER_BPS,
    inline_kernel,
)


@inline_kernel
def fill_cost(sf, gf, s, side, price, qty, maker, paid):
    """Charges of one fill of symbol `s` of an order that has paid `paid` brokerage so far:
    returns (total charges, this fill's brokerage) and adds each component to `SF_K_*`."""
    notional = price * qty
    if sf[s, SF_C_ON] == 0.0:
        fee = notional * (sf[s, SF_MAKER_BPS] if maker else sf[s, SF_TAKER_BPS]) * 1e-4
        sf[s, SF_K_BROK] += fee
        return fee, fee
    brok = notional * (sf[s, SF_C_MAKER_BPS] if maker else sf[s, SF_C_TAKER_BPS]) * 1e-4
    flat = sf[s, SF_C_BROK_FLAT]
    if flat > 0.0:
        brok += max(flat - paid, 0.0)
    elif sf[s, SF_C_BROK_PCT] > 0.0:
        x = notional * sf[s, SF_C_BROK_PCT]
        cap = sf[s, SF_C_BROK_CAP]
        if cap > 0.0:
            x = min(x, max(cap - paid, 0.0))
        brok += x
    tax = notional * (sf[s, SF_C_TAX_BUY] if side > 0 else sf[s, SF_C_TAX_SELL])
    txn = notional * sf[s, SF_C_TXN]
    reg = notional * sf[s, SF_C_REG]
    stamp = notional * sf[s, SF_C_STAMP_BUY] if side > 0 else 0.0
    gst = (brok + txn + reg) * sf[s, SF_C_GST]
    sf[s, SF_K_BROK] += brok
    sf[s, SF_K_TAX] += tax
    sf[s, SF_K_TXN] += txn
    sf[s, SF_K_REG] += reg
    sf[s, SF_K_STAMP] += stamp
    sf[s, SF_K_GST] += gst
    return brok + tax + txn + reg + stamp + gst, brok
