"""What the Binance account pays to trade (docs/funding.md): its commission rates per symbol and
the funding of USD-M perpetuals.

* spot: `GET /api/v3/account/commission?symbol=` (signed) → standardCommission, taxCommission
  and `discount` {enabledForAccount, enabledForSymbol, discountAsset "BNB", discount "0.75"}:
  the standard rates are multiplied by `discount` when fees are paid in BNB;
* USD-M futures: `GET /fapi/v1/commissionRate?symbol=` (signed) → makerCommissionRate,
  takerCommissionRate; `GET /fapi/v1/feeBurn` (signed) says whether fees are paid in BNB (10 % off);
* funding: `GET /fapi/v1/premiumIndex?symbol=` → markPrice, lastFundingRate, nextFundingTime;
  `GET /fapi/v1/fundingRate` the settled history; `GET /fapi/v1/income?incomeType=FUNDING_FEE`
  (signed) what the account actually paid or received (income < 0: paid).
"""

from __future__ import annotations

from typing import Any

from sq.core.exits import SqError
from sq.venues.binance.endpoints import FUTURES, SPOT

FUTURES_BNB_DISCOUNT = 0.9  # USD-M fees paid in BNB: 10 % off


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0


def commission_bps(rest: Any, market: str, venue_symbol: str) -> tuple[float, float, dict]:
    """(maker bps, taker bps, what the venue said) of the account on one symbol, BNB discount
    applied when the account pays its fees in BNB."""
    if market == SPOT:
        doc = rest.call(SPOT, "get", "account/commission", signed=True, weight=20, what="commission rates", symbol=venue_symbol)
        std, tax = doc.get("standardCommission") or {}, doc.get("taxCommission") or {}
        disc = doc.get("discount") or {}
        k = _f(disc.get("discount")) if disc.get("enabledForAccount") and disc.get("enabledForSymbol") and _f(disc.get("discount")) > 0 else 1.0
        maker = _f(std.get("maker")) * k + _f(tax.get("maker"))
        taker = _f(std.get("taker")) * k + _f(tax.get("taker"))
        return maker * 1e4, taker * 1e4, {"bnb_discount": k if k != 1.0 else None}
    doc = rest.call(FUTURES, "get", "commissionRate", signed=True, weight=20, what="commission rates", symbol=venue_symbol)
    k = 1.0
    try:
        if rest.call(FUTURES, "get", "feeBurn", signed=True, weight=30, what="BNB fee burn").get("feeBurn"):
            k = FUTURES_BNB_DISCOUNT
    except SqError:
        pass  # not every account (or testnet) answers: the plain rates
    return _f(doc.get("makerCommissionRate")) * k * 1e4, _f(doc.get("takerCommissionRate")) * k * 1e4, {"bnb_discount": k if k != 1.0 else None}


def funding_state(rest: Any, venue_symbol: str) -> tuple[int, float, float]:
    """(next funding time ns, its rate as known now, mark price) of a USD-M perpetual."""
    doc = rest.call(FUTURES, "get", "premiumIndex", signed=False, weight=1, what="funding rate", symbol=venue_symbol)
    return int(doc["nextFundingTime"]) * 1_000_000, _f(doc.get("lastFundingRate")), _f(doc.get("markPrice"))


def funding_income(rest: Any, venue_symbol: str, start_ns: int, end_ns: int) -> list[dict]:
    """The account's FUNDING_FEE income rows between two times: {ts, paid (> 0: paid), asset, tran_id}."""
    rows = rest.call(FUTURES, "get", "income", signed=True, weight=30, what="funding income", symbol=venue_symbol,
                     incomeType="FUNDING_FEE", startTime=int(start_ns // 1_000_000), endTime=int(end_ns // 1_000_000), limit=1000)
    return [{"ts": int(r["time"]) * 1_000_000, "paid": -_f(r.get("income")), "asset": r.get("asset", ""), "tran_id": str(r.get("tranId", ""))}
            for r in rows or []]
