"""The fake's virtual contract note (`POST /charges/orders`): Zerodha's charges of each order it
is asked about, from this module's own small rate table (written from Zerodha's published
charges, independently of sq's `charges.csv`, so a test compares two computations).

The answer has Kite's shape (fixtures/vectors/kite/virtual_contract_note.json): each order as
sent, plus `charges` {transaction_tax, transaction_tax_type, exchange_turnover_charge,
sebi_turnover_charge, brokerage, stamp_duty, gst {igst, cgst, sgst, total}, total}. A test skews
a rate through `KiteFake.charge_rates` (e.g. a wrong STT) to make the run flag the difference.
"""

from __future__ import annotations

import copy
import datetime as dt

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))

# percent of turnover; brokerage "pct" capped at "cap" rupees, or "flat" rupees per executed order
RATES = {
    "equity_intraday": {"pct": 0.03, "cap": 20.0, "flat": 0.0, "stt_buy": 0.0, "stt_sell": 0.025, "stamp": 0.003,
                        "txn": {"NSE": 0.00297, "BSE": 0.00375}},
    "equity_delivery": {"pct": 0.0, "cap": 0.0, "flat": 0.0, "stt_buy": 0.1, "stt_sell": 0.1, "stamp": 0.015,
                        "txn": {"NSE": 0.00297, "BSE": 0.00375}},
    "futures": {"pct": 0.03, "cap": 20.0, "flat": 0.0, "stt_buy": 0.0, "stt_sell": 0.05, "stamp": 0.002, "txn": {"NSE": 0.00173, "BSE": 0.0}},
    "options": {"pct": 0.0, "cap": 0.0, "flat": 20.0, "stt_buy": 0.0, "stt_sell": 0.15, "stamp": 0.003, "txn": {"NSE": 0.03503, "BSE": 0.0325}},
}
STT_BEFORE_2026_04_01 = {"futures": 0.02, "options": 0.1}  # sell side, percent
SEBI_PCT, GST_PCT = 0.0001, 18.0


def default_rates() -> dict:
    return copy.deepcopy(RATES)


def _segment(order: dict) -> tuple[str, str]:
    exchange = str(order.get("exchange") or "").upper()
    name = str(order.get("tradingsymbol") or "").upper()
    if exchange in ("NFO", "BFO"):
        return ("options" if name.endswith(("CE", "PE")) else "futures"), ("NSE" if exchange == "NFO" else "BSE")
    product = str(order.get("product") or "").upper()
    return ("equity_intraday" if product == "MIS" else "equity_delivery"), exchange


def charges_of(order: dict, rates: dict, today: dt.date) -> dict:
    """Kite's `charges` object for one order."""
    seg, exchange = _segment(order)
    r = rates[seg]
    turnover = float(order.get("quantity") or 0) * float(order.get("average_price") or order.get("price") or 0)
    buy = str(order.get("transaction_type")).upper() == "BUY"
    if r["flat"]:
        brokerage = r["flat"]
    else:
        brokerage = min(turnover * r["pct"] / 100, r["cap"]) if r["cap"] else turnover * r["pct"] / 100
    stt_sell = r["stt_sell"] if today >= dt.date(2026, 4, 1) or seg not in STT_BEFORE_2026_04_01 else STT_BEFORE_2026_04_01[seg]
    tax = turnover * (r["stt_buy"] if buy else stt_sell) / 100
    exch = turnover * r["txn"][exchange] / 100
    sebi = turnover * SEBI_PCT / 100
    stamp = turnover * r["stamp"] / 100 if buy else 0.0
    gst = (brokerage + exch + sebi) * GST_PCT / 100
    return {"transaction_tax": tax, "transaction_tax_type": "stt", "exchange_turnover_charge": exch, "sebi_turnover_charge": sebi,
            "brokerage": brokerage, "stamp_duty": stamp, "gst": {"igst": gst, "cgst": 0, "sgst": 0, "total": gst},
            "total": brokerage + tax + exch + sebi + stamp + gst}


def answer(orders: list, rates: dict, now_s: float) -> dict:
    """The `/charges/orders` answer for the orders of a request."""
    today = dt.datetime.fromtimestamp(now_s, IST).date()
    return {"status": "success", "data": [{**o, "charges": charges_of(o, rates, today)} for o in orders]}
