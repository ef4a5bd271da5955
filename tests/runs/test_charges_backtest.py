"""Zerodha's charges in a backtest (docs/costs.md), on a hand-made NIFTY futures recording across
the F&O STT rise of 2026-04-01:

* Monday 30 Mar 2026 and Wednesday 1 Apr 2026 (31 Mar is a holiday), 15:15–15:29 IST: a book of
  24,000.00 / 24,000.50 every minute. The buyer takes one lot (75) at the ask at 15:15 and 15:16
  (position limit 150); the broker's F&O square-off (15:25) sells the 150 at the bid.

Hand-computed charges (futures: brokerage 0.03% or ₹20 per order, STT on sells 0.02% before
2026-04-01 and 0.05% from it, NSE transaction 0.00173%, SEBI 0.0001%, stamp 0.002% on buys,
GST 18% of brokerage + transaction + SEBI):

* each buy, 75 @ 24,000.50 = 18,00,037.50: brokerage 20 (0.03% = 540, capped); txn 31.14064875;
  SEBI 1.8000375; stamp 36.00075; GST 18% × 52.94068625 = 9.529323525; total 98.470759775.
* each square-off, 150 @ 24,000 = 36,00,000: brokerage 20; txn 62.28; SEBI 3.6; GST 18% × 85.88 =
  15.4584; STT 720 on 30 Mar → 821.3384, 1,800 on 1 Apr → 1,901.3384.

So the run's costs are 4 × 98.470759775 + 821.3384 + 1,901.3384 = 3,116.5598391, of which STT
2,520; the summary shows gross, each component and net, and each fill's `fee` is its charges.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from tests.support.marketdata import BUYER_STRATEGY, market_table, pylist, quoted_minutes, write_market_file

SYM = "NFO:NIFTY26APRFUT"
MON, WED = "2026-03-30", "2026-04-01"
BUY_FEE = 98.470759775
SELL_FEE = {MON: 821.3384, WED: 1901.3384}
TOTAL = 4 * BUY_FEE + SELL_FEE[MON] + SELL_FEE[WED]
assert abs(TOTAL - 3116.5598391) < 1e-6


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("charges")
    (d / "buyer.py").write_text(BUYER_STRATEGY)
    inst = {SYM: S.Instrument(SYM, "zerodha", 0.05, 75.0, {"instrument_type": "FUT"})}
    rows = (quoted_minutes(SYM, MON, "15:15", 15, bid=24000.0, ask=24000.5, qty=1000.0, seq0=1, trades=False)
            + quoted_minutes(SYM, WED, "15:15", 15, bid=24000.0, ask=24000.5, qty=1000.0, seq0=100, trades=False))
    return {"data": write_market_file(market_table(rows, inst), d / "nifty.parquet"), "buyer": str(d / "buyer.py")}


def test_a_backtest_pays_zerodhas_charges_by_trade_date(sq, files, tmp_path):
    jdir = tmp_path / "bt"
    r = sq(["backtest", "-s", files["buyer"], files["data"], "--param", "max_position=150", "--param", "max_order_size=150", "--param",
            "max_loss=1000000", "--journal", str(jdir), "--report", str(tmp_path / "r.html"), "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    fills = pylist(pq.read_table(jdir / "fills.parquet"))
    buys = [f for f in fills if f["side"] == 1]
    sells = [f for f in fills if f["side"] == -1]
    assert [(f["price"], f["qty"]) for f in buys] == [(24000.5, 75.0)] * 4
    assert [(f["price"], f["qty"]) for f in sells] == [(24000.0, 150.0)] * 2
    assert [f["fee"] for f in buys] == pytest.approx([BUY_FEE] * 4, abs=1e-6)
    assert [f["fee"] for f in sells] == pytest.approx([SELL_FEE[MON], SELL_FEE[WED]], abs=1e-6)
    pnl, costs = doc["pnl"], doc["charges"]
    assert costs["total"] == pytest.approx(TOTAL, abs=0.01) and pnl["fees"] == pytest.approx(TOTAL, abs=0.01)
    assert costs["tax"] == pytest.approx(720.0 + 1800.0, abs=0.01)
    assert costs["brokerage"] == pytest.approx(6 * 20.0, abs=0.01)
    assert costs["stamp"] == pytest.approx(4 * 36.00075, abs=0.01)
    assert sum(costs[k] for k in ("brokerage", "tax", "txn", "regulatory", "stamp", "gst")) == pytest.approx(TOTAL, abs=0.02)
    assert costs["by_symbol"][SYM]["total"] == pytest.approx(TOTAL, abs=0.01)
    # gross: 2 days × 150 bought at 24,000.50 and sold at 24,000 = −150; net = gross − costs
    assert pnl["gross"] == pytest.approx(-150.0, abs=0.01)
    assert pnl["net"] == pytest.approx(-150.0 - TOTAL, abs=0.01) == pnl["total"]
    html = (tmp_path / "r.html").read_text()
    assert "<h2>Costs</h2>" in html and "STT / CTT" in html and "2,520.00" in html


def test_carried_futures_pay_buy_side_charges_only(sq, files, tmp_path):
    """Under NRML nothing is squared off: the two Monday buys (the limit holds 150 after them) pay
    brokerage and stamp duty, and no STT (a sell-side tax)."""
    cfg = tmp_path / "sq.toml"
    cfg.write_text('[zerodha]\nproduct = "NRML"\n')
    r = sq(["--config", str(cfg), "backtest", "-s", files["buyer"], files["data"], "--param", "max_position=150", "--param", "max_order_size=150", "--param", "max_loss=1000000", "--json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["fills"] == 2 and doc["charges"]["tax"] == 0.0
    assert doc["charges"]["total"] == pytest.approx(2 * BUY_FEE, abs=0.01)
