"""A live Zerodha run asks Kite what its filled orders were charged (the virtual contract note,
`POST /charges/orders` at the Kite fake, which computes Zerodha's rates from its own table) and
journals each answer next to the cost model's figures; a deliberately wrong rate at the fake is
flagged (an `audit` record marked `flagged`, a warning, `charges_differing` in the summary).

The contract-note client is also checked in-process against the official vector's shape.
"""

from __future__ import annotations

import json

import pytest

from sq.core import journal as J
from tests.support.kitelive import SYMBOL, start_live, store_session, venue_agrees


def _charges_audits(journal) -> list[dict]:
    return [r.data for r in J.load(journal).of("audit") if r.data.get("event") == "charges"]


def _run(fake, tmp_path, seconds="8s"):
    store_session(fake)
    journal = tmp_path / "run"
    p = start_live(tmp_path, journal, "--for", seconds)
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err
    return journal, json.loads(out), err


def _filled_orders(fake, prefix) -> dict[str, dict]:
    with fake.lock:
        return {o["tag"]: dict(o) for o in fake.orders.values()
                if (o.get("tag") or "").startswith(prefix) and float(o.get("filled_quantity") or 0) > 0}


def test_live_journals_kites_charges_of_each_filled_order(kite_env, tmp_path):
    fake = kite_env
    journal, summary, err = _run(fake, tmp_path)
    view = venue_agrees(fake, journal)
    filled = _filled_orders(fake, view.prefix)
    assert filled, "the run had no fill to ask about"
    audits = _charges_audits(journal)
    # every filled order of the run was asked about, each in Kite's request shape, and journaled
    asked = {q["order_id"] for q in fake.charge_requests}
    assert {o["order_id"] for o in filled.values()} <= asked
    for q in fake.charge_requests:
        assert set(q) == {"order_id", "exchange", "tradingsymbol", "transaction_type", "variety", "product", "order_type", "quantity",
                          "average_price"}
        assert q["exchange"] == "NSE" and q["product"] == "MIS" and q["variety"] == "regular"
    assert {a["client_order_id"] for a in audits} == set(filled)
    for a in audits:
        assert a["symbol"] == SYMBOL and not a["flagged"] and abs(a["difference"]) <= 0.01
        assert a["venue"]["total"] == pytest.approx(sum(a["venue"][k] for k in ("brokerage", "tax", "txn", "regulatory", "stamp", "gst")))
        # intraday equity: brokerage 0.03% (under the ₹20 cap at one share), STT on sells only, stamp on buys only
        notional = a["qty"] * a["avg_price"]
        assert a["model"]["brokerage"] == pytest.approx(min(0.0003 * notional, 20.0))
        assert (a["model"]["tax"] > 0) == (a["side"] < 0) and (a["model"]["stamp"] > 0) == (a["side"] > 0)
    assert summary["charges_checked"] == len(audits) and summary["charges_differing"] == 0
    # the journal's seal carries the summary's costs: gross, each component, net
    seal = J.load(journal).last("end").data["summary"]
    pnl, costs = seal["pnl"], seal["charges"]
    assert set(costs) == {"brokerage", "tax", "txn", "regulatory", "stamp", "gst", "total", "by_symbol"}
    assert costs["total"] == pytest.approx(pnl["fees"], abs=0.01) and costs["tax"] > 0 and costs["brokerage"] > 0
    assert pnl["net"] == pytest.approx(pnl["gross"] - pnl["fees"], abs=0.02)


def test_a_charge_that_differs_from_the_model_is_flagged(kite_env, tmp_path):
    fake = kite_env
    fake.charge_rates["equity_intraday"]["txn"]["NSE"] = 0.05  # Kite's NSE transaction charge, 17× the real one
    journal, summary, err = _run(fake, tmp_path)
    audits = _charges_audits(journal)
    assert audits and all(a["flagged"] for a in audits)
    for a in audits:
        notional = a["qty"] * a["avg_price"]
        # the venue's txn is 0.05% of notional, the model's 0.00297%: the difference is that plus its 18% GST
        assert a["venue"]["txn"] == pytest.approx(0.0005 * notional)
        assert a["model"]["txn"] == pytest.approx(0.0000297 * notional)
        assert a["difference"] == pytest.approx((0.0005 - 0.0000297) * notional * 1.18, rel=1e-6)
    assert summary["charges_differing"] == len(audits) >= 1
    assert "the cost model" in err and "most in txn" in err


def test_the_contract_note_client_reads_kites_answer_shape():
    """The official vector's `charges` (fixtures/vectors/kite/virtual_contract_note.json) as sq's components."""
    from sq.venues.zerodha.gateway import contract_note_charges
    from tests.support.process import VECTORS

    doc = json.loads((VECTORS / "kite" / "virtual_contract_note.json").read_text())
    c = contract_note_charges(doc["data"][0]["charges"])
    assert c == pytest.approx({"brokerage": 0.0, "tax": 0.56, "txn": 0.01876, "regulatory": 0.00056, "stamp": 0.0,
                               "gst": 0.0033767999999999997, "total": 0.5826968})
