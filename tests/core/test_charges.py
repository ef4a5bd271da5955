"""Zerodha's charges against hand-computed contract-note figures, per segment, on trade dates
before and after the F&O STT rise of 2026-04-01; brokerage paid once per order up to its cap; the
engine's kernel agreeing with the reference arithmetic (`sq.core.costs`).

Every expected figure is worked out in the comments from the published rates (docs/costs.md):
turnover = price × quantity (options: the premium); GST is 18% of brokerage + transaction
charges + SEBI fees; stamp duty on buys only; SEBI ₹10 per crore = 0.0001%.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from sq.core import costs
from sq.core.config import parse_config
from sq.core.exits import ConfigError
from sq.venues import registry
from sq.venues.zerodha import charge_table as Z

D_OLD, D_MAR31, D_APR1 = dt.date(2024, 9, 30), dt.date(2026, 3, 31), dt.date(2026, 4, 1)
BUY, SELL = 1, -1


def charged(symbol: str, date: dt.date, side: int, price: float, qty: float, config=None, instrument=None) -> dict:
    sched = registry.charges(symbol, instrument, config)
    assert sched is not None, symbol
    return costs.fill_charges(sched.on(date), side, price, qty).as_dict()


def close(got: dict, **want: float) -> None:
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-9), (k, got[k], v)


def test_equity_intraday_nse_buy_and_sell():
    # buy 100 @ 500: turnover 50,000; brokerage min(0.03% = 15, 20) = 15; no STT on the buy;
    # txn 0.00297% = 1.485; SEBI 0.05; stamp 0.003% = 1.5; GST 18% × (15 + 1.485 + 0.05) = 2.9763
    # total 15 + 1.485 + 0.05 + 1.5 + 2.9763 = 21.0113
    close(charged("NSE:INFY", D_APR1, BUY, 500.0, 100), brokerage=15.0, tax=0.0, txn=1.485, regulatory=0.05, stamp=1.5,
          gst=2.9763, total=21.0113)
    # sell 100 @ 510: turnover 51,000; brokerage 15.3; STT 0.025% = 12.75; txn 1.5147; SEBI 0.051;
    # GST 18% × (15.3 + 1.5147 + 0.051) = 3.035826; total 32.651526
    close(charged("NSE:INFY", D_MAR31, SELL, 510.0, 100), brokerage=15.3, tax=12.75, txn=1.5147, regulatory=0.051, stamp=0.0,
          gst=3.035826, total=32.651526)
    # a large order pays the ₹20 cap: sell 1000 @ 510 → 0.03% = 153 → 20
    assert charged("NSE:INFY", D_APR1, SELL, 510.0, 1000)["brokerage"] == 20.0


def test_equity_intraday_bse_has_bses_transaction_charge():
    # sell 100 @ 510 on BSE: txn 0.00375% of 51,000 = 1.9125; GST 18% × (15.3 + 1.9125 + 0.051) = 3.10743
    close(charged("BSE:INFY", D_APR1, SELL, 510.0, 100), txn=1.9125, gst=3.10743, total=15.3 + 12.75 + 1.9125 + 0.051 + 3.10743)


def test_equity_delivery_under_cnc():
    cnc = parse_config({"zerodha": {"product": "CNC"}})
    # buy 10 @ 2000: turnover 20,000; brokerage 0; STT 0.1% = 20; txn 0.594; SEBI 0.02; stamp 0.015% = 3;
    # GST 18% × (0 + 0.594 + 0.02) = 0.11052; total 23.72452
    close(charged("NSE:RELIANCE", D_APR1, BUY, 2000.0, 10, cnc), brokerage=0.0, tax=20.0, txn=0.594, regulatory=0.02, stamp=3.0,
          gst=0.11052, total=23.72452)
    # the sell pays STT too (0.1% both sides), no stamp: 20 + 0.594 + 0.02 + 0.11052 = 20.72452
    close(charged("NSE:RELIANCE", D_MAR31, SELL, 2000.0, 10, cnc), tax=20.0, stamp=0.0, total=20.72452)


def test_futures_stt_rises_on_2026_04_01():
    # sell 75 @ 24,000: turnover 18,00,000; brokerage min(540, 20) = 20; txn 0.00173% = 31.14;
    # SEBI 1.8; GST 18% × (20 + 31.14 + 1.8) = 9.5292
    # 2026-03-31: STT 0.02% = 360 → total 20 + 360 + 31.14 + 1.8 + 9.5292 = 422.4692
    close(charged("NFO:NIFTY26APRFUT", D_MAR31, SELL, 24000.0, 75), brokerage=20.0, tax=360.0, txn=31.14, regulatory=1.8,
          gst=9.5292, total=422.4692)
    # 2026-04-01: STT 0.05% = 900 → total 962.4692
    close(charged("NFO:NIFTY26APRFUT", D_APR1, SELL, 24000.0, 75), tax=900.0, total=962.4692)
    # before 2024-10-01: STT 0.0125% = 225, txn 0.00183% = 32.94, GST 18% × (20 + 32.94 + 1.8) = 9.8532
    close(charged("NFO:NIFTY24OCTFUT", D_OLD, SELL, 24000.0, 75), tax=225.0, txn=32.94, gst=9.8532,
          total=20 + 225 + 32.94 + 1.8 + 9.8532)
    # a buy: no STT, stamp 0.002% = 36 → 20 + 31.14 + 1.8 + 36 + 9.5292 = 98.4692 (either date)
    close(charged("NFO:NIFTY26APRFUT", D_APR1, BUY, 24000.0, 75), tax=0.0, stamp=36.0, total=98.4692)


def test_options_stt_rises_on_2026_04_01():
    # sell 75 @ 200 premium: turnover 15,000; brokerage flat 20; txn 0.03503% = 5.2545; SEBI 0.015;
    # GST 18% × (20 + 5.2545 + 0.015) = 4.54851
    # 2026-03-31: STT 0.1% = 15 → total 20 + 15 + 5.2545 + 0.015 + 4.54851 = 44.81801
    close(charged("NFO:NIFTY26APR24000CE", D_MAR31, SELL, 200.0, 75), brokerage=20.0, tax=15.0, txn=5.2545, regulatory=0.015,
          gst=4.54851, total=44.81801)
    # 2026-04-01: STT 0.15% = 22.5 → total 52.31801
    close(charged("NFO:NIFTY26APR24000PE", D_APR1, SELL, 200.0, 75), tax=22.5, total=52.31801)
    # before 2024-10-01: STT 0.0625% = 9.375; txn 0.0495% = 7.425; GST 18% × (20 + 7.425 + 0.015) = 4.9392
    close(charged("NFO:NIFTY24OCT24000CE", D_OLD, SELL, 200.0, 75), tax=9.375, txn=7.425, gst=4.9392,
          total=20 + 9.375 + 7.425 + 0.015 + 4.9392)
    # a buy: no STT, stamp 0.003% = 0.45 → 20 + 5.2545 + 0.015 + 0.45 + 4.54851 = 30.26801
    close(charged("NFO:NIFTY26APR24000CE", D_APR1, BUY, 200.0, 75), tax=0.0, stamp=0.45, total=30.26801)
    # BSE options: txn 0.0325% of 15,000 = 4.875
    close(charged("BFO:SENSEX26APR80000CE", D_APR1, SELL, 200.0, 75), txn=4.875)


def test_the_instrument_type_says_option_or_future():
    from sq.core.schemas import Instrument

    fut = Instrument("NFO:ODDNAMECE", "zerodha", 0.05, 75, {"instrument_type": "FUT"})
    assert charged("NFO:ODDNAMECE", D_APR1, SELL, 24000.0, 75, instrument=fut)["tax"] == pytest.approx(900.0)


def test_currency_futures_and_options():
    # USDINR futures buy 1000 @ 83.5: turnover 83,500; brokerage min(25.05, 20) = 20; no STT;
    # txn 0.00035% = 0.29225; SEBI 0.0835; stamp 0.0001% = 0.0835; GST 18% × (20 + 0.29225 + 0.0835) = 3.667635
    # total 20 + 0.29225 + 0.0835 + 0.0835 + 3.667635 = 24.126885
    close(charged("CDS:USDINR26APRFUT", D_APR1, BUY, 83.5, 1000), brokerage=20.0, tax=0.0, txn=0.29225, regulatory=0.0835,
          stamp=0.0835, gst=3.667635, total=24.126885)
    # USDINR option sell 1000 @ 0.25: turnover 250; brokerage 20; txn 0.0311% = 0.07775; SEBI 0.00025;
    # GST 18% × (20 + 0.07775 + 0.00025) = 3.61404; total 23.69204
    close(charged("CDS:USDINR26APR84CE", D_APR1, SELL, 0.25, 1000), brokerage=20.0, tax=0.0, txn=0.07775, total=23.69204)


def test_commodities_and_other_venues_have_no_table():
    assert registry.charges("MCX:CRUDEOIL26APRFUT") is None
    assert registry.charges("SIM:TEST") is None
    assert registry.charges("BINANCE:BTCUSDT") is None


def test_an_order_filled_in_parts_pays_the_brokerage_cap_once():
    rates = registry.charges("NSE:INFY").on(D_APR1)
    # buy 1000 @ 100 filled 600 + 400: 0.03% of 60,000 = 18, then 0.03% of 40,000 = 12 → only 2 left under the ₹20 cap
    total = costs.order_charges(rates, BUY, [(100.0, 600), (100.0, 400)])
    assert total.brokerage == pytest.approx(20.0)
    # options: the flat ₹20 once per executed order, however many fills
    opt = registry.charges("NFO:NIFTY26APR24000CE").on(D_APR1)
    assert costs.order_charges(opt, SELL, [(200.0, 25)] * 3).brokerage == pytest.approx(20.0)


def _kernel_fill(sf, rates, side, price, qty, paid, maker=False):
    from sq.core.engine import costs as KC
    from sq.core.engine import layout as L

    sf[0, L.SF_C_ON] = 1.0
    sf[0, L.SF_C_ON + 1:L.SF_C_GST + 1] = rates.row()
    return KC.fill_cost(sf, np.zeros(L.NGF), 0, side, price, qty, maker, paid)


@pytest.mark.parametrize("symbol,date,side,price,qty", [
    ("NSE:INFY", D_APR1, BUY, 500.0, 100), ("NSE:INFY", D_MAR31, SELL, 510.0, 1000),
    ("NFO:NIFTY26APRFUT", D_MAR31, SELL, 24000.0, 75), ("NFO:NIFTY26APRFUT", D_APR1, SELL, 24000.0, 75),
    ("NFO:NIFTY26APR24000CE", D_APR1, SELL, 200.0, 75), ("CDS:USDINR26APRFUT", D_APR1, BUY, 83.5, 1000),
])
def test_the_kernel_charges_what_the_reference_does(symbol, date, side, price, qty):
    from sq.core.engine import layout as L

    rates = registry.charges(symbol).on(date)
    sf = np.zeros((1, L.NSF))
    fee, brok = _kernel_fill(sf, rates, side, price, qty, 0.0)
    ref = costs.fill_charges(rates, side, price, qty)
    assert fee == pytest.approx(ref.total, abs=1e-9) and brok == pytest.approx(ref.brokerage, abs=1e-9)
    assert list(sf[0, L.SF_K_BROK:L.SF_K_GST + 1]) == pytest.approx([getattr(ref, k) for k in costs.COMPONENTS], abs=1e-9)
    # the second fill of the same order: the cap already paid (intraday/futures ₹20, options flat ₹20)
    fee2, brok2 = _kernel_fill(sf, rates, side, price, qty, 20.0)
    assert brok2 == 0.0 and fee2 == pytest.approx(ref.total - ref.brokerage - ref.brokerage * rates.gst, abs=1e-9)


def test_without_a_cost_model_the_kernel_keeps_the_maker_taker_bps():
    from sq.core.engine import costs as KC
    from sq.core.engine import layout as L

    sf, gf = np.zeros((1, L.NSF)), np.zeros(L.NGF)
    sf[0, L.SF_MAKER_BPS], sf[0, L.SF_TAKER_BPS] = 1.0, 5.0  # the symbol's (the fill model's or the account's)
    assert KC.fill_cost(sf, gf, 0, BUY, 100.0, 2.0, True, 0.0)[0] == pytest.approx(0.02)
    assert KC.fill_cost(sf, gf, 0, SELL, 100.0, 2.0, False, 0.0)[0] == pytest.approx(0.1)
    assert sf[0, L.SF_K_BROK] == pytest.approx(0.12) and sf[0, L.SF_K_TAX] == 0.0


def test_a_charges_file_replaces_the_table_and_a_bad_one_names_its_line(tmp_path):
    good = tmp_path / "c.csv"
    good.write_text(",".join(Z.HEADER) + "\n2020-01-01,equity_intraday,NSE,0.05,40,0,0,0.025,0.00297,0.0001,0.003,18\n")
    cfg = parse_config({"zerodha": {"charges_file": str(good)}})
    assert registry.charges("NSE:INFY", None, cfg).on(D_APR1).brokerage_cap == 40.0
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(Z.HEADER) + "\n2020-01-01,equity_swing,NSE,0,0,0,0,0,0,0,0,18\n")
    with pytest.raises(ConfigError, match="bad.csv:2: segment 'equity_swing'"):
        registry.charges("NSE:INFY", None, parse_config({"zerodha": {"charges_file": str(bad)}}))


def test_the_shipped_table_has_every_segment_on_both_dates():
    table = Z.load()
    for seg in Z.SEGMENTS:
        for ex in ("NSE", "BSE"):
            assert (seg, ex) in table
    sched = registry.charges("NFO:NIFTY26APRFUT")
    assert sched.utc_offset == dt.timedelta(hours=5, minutes=30)
    assert sched.on(D_MAR31).tax_sell == pytest.approx(0.0002) and sched.on(D_APR1).tax_sell == pytest.approx(0.0005)


# ---------------------------------------------------------------------------------------------- in the engine

SYM = "NSE:ABC"
A = costs.CostRates(tax_buy=0.001, brokerage_pct=0.0003, brokerage_cap=20.0, gst=0.18)
B = costs.CostRates(tax_buy=0.002, brokerage_pct=0.0003, brokerage_cap=20.0, gst=0.18)
SCHEDULE = costs.CostSchedule(((dt.date(2026, 1, 1), A), (dt.date(2026, 1, 27), B)), dt.timedelta(hours=5, minutes=30))


@pytest.fixture(scope="module")
def buyer(tmp_path_factory):
    from tests.support.marketdata import BUYER_STRATEGY

    p = tmp_path_factory.mktemp("costs") / "buyer.py"
    p.write_text(BUYER_STRATEGY)
    return str(p)


@pytest.fixture(scope="module")
def market():
    from sq.core import schemas as S
    from tests.support.marketdata import market_table, quoted_minutes

    inst = {SYM: S.Instrument(SYM, "zerodha", 0.05, 1.0)}
    rows = (quoted_minutes(SYM, "2026-01-23", "10:00", 4, bid=100.0, ask=100.1, seq0=1)
            + quoted_minutes(SYM, "2026-01-27", "10:00", 4, bid=100.0, ask=100.1, seq0=100))
    return market_table(rows, inst)


def _engine(buyer, limit=6.0):
    from sq.core import schemas as S
    from sq.core.config import Config
    from sq.core.engine import Engine, FillModelConfig

    e = Engine(buyer, {SYM: S.Instrument(SYM, "zerodha", 0.05, 1.0)}, {SYM: {"max_position": limit, "max_loss": 1e9}}, config=Config(),
               fill=FillModelConfig(order_latency_ns=5_000_000, maker_fee_bps=7.0, taker_fee_bps=7.0))
    e.set_costs(SYM, SCHEDULE)
    return e


def _fills(outs):
    from sq.core.journal import rows_from_batch

    return [(f["ts"], f["price"], f["qty"], f["fee"]) for out in outs for f in rows_from_batch(out.fills)]


def test_the_engine_charges_each_fill_by_its_local_date(buyer, market):
    """Buys of 1 @ 100.1 (notional 100.1): brokerage 0.03% = 0.03003, GST 18% of it = 0.0054054;
    tax 0.1% = 0.1001 on 23 Jan (rates A), 0.2% = 0.2002 from 27 Jan (rates B) — not the fill
    model's 7 bps (0.07007)."""
    e = _engine(buyer)
    fills = _fills([e.process(b) for b in market.to_batches()] + [e.finish()])
    before = [f for f in fills if f[0] < ist("2026-01-27")]
    after = [f for f in fills if f[0] >= ist("2026-01-27")]
    assert before and after, fills
    assert all(f[3] == pytest.approx(0.03003 + 0.0054054 + 0.1001) for f in before), fills
    assert all(f[3] == pytest.approx(0.03003 + 0.0054054 + 0.2002) for f in after)
    c = e.summary()["charges"]
    assert c["tax"] == pytest.approx(0.1001 * len(before) + 0.2002 * len(after))
    assert c["total"] == pytest.approx(sum(f[3] for f in fills)) == pytest.approx(e.summary()["pnl"]["fees"])
    assert c["by_symbol"][SYM]["total"] == pytest.approx(c["total"])


def ist(day: str) -> int:
    from tests.support.marketdata import ist_ns

    return ist_ns(day, "00:00")


def test_a_restored_engine_keeps_charging_the_same(buyer, market):
    """However the run is cut and resumed — from its own checkpoint, or from one written before
    the cost columns existed (trimmed here) — the fills and their fees are the uninterrupted run's."""
    from sq.core.engine import layout as L

    batches = market.to_batches(max_chunksize=5)
    whole = _engine(buyer)
    ref = _fills([whole.process(b) for b in batches] + [whole.finish()])
    for k in range(1, len(batches)):
        for old in (False, True):
            first = _engine(buyer)
            head = [first.process(b) for b in batches[:k]]
            state = first.snapshot_state()
            if old:
                state["sf"], state["of"] = state["sf"][:, :L.SF_C_ON], state["of"][:, :L.OF_BROK]
            second = _engine(buyer)
            second.restore_state(state)
            assert _fills(head + [second.process(b) for b in batches[k:]] + [second.finish()]) == ref, (k, old)
