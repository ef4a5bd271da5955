"""sq.core.formatting: prices to the instrument's tick, counts, imbalance, kind/side names — and
`--format table` text rows, which use them."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sq.core import formatting as F
from sq.core import schemas as S
from sq.core.streams import render_text_rows
from tests.support.marketdata import market_rows


@pytest.mark.parametrize("tick,decimals", [(0.05, 2), (0.01, 2), (0.1, 1), (0.5, 1), (0.25, 2), (1.0, 0), (10.0, 0), (1e-8, 8),
                                           (0.0001, 4), (0.1 + 0.2 - 0.25, 2), (None, None), (0.0, None), (float("nan"), None)])
def test_tick_decimals(tick, decimals):
    assert F.tick_decimals(tick) == decimals


def test_prices_keep_the_tick_decimals():
    assert F.format_price(99.4, 2) == "99.40"
    assert F.format_price(99.425, 2, F.MID_EXTRA) == "99.425"
    assert F.format_price(0.00012345, 8) == "0.00012345"
    assert F.format_price(99.4, None) == "99.4"  # unknown tick: 6 significant digits
    assert F.format_price(float("nan"), 2) == F.UNKNOWN and F.format_price(None, 2, missing="") == ""
    prices = F.PriceFormats({"NSE:X": S.Instrument("NSE:X", "zerodha", 0.05)})
    assert prices.price("NSE:X", 99.4) == "99.40" and prices.price("OTHER", 99.4) == "99.4"


def test_counts_imbalance_and_names():
    assert F.format_count(1234567) == "1,234,567" and F.format_count(1234.6) == "1,235"
    assert F.format_imbalance(0.123456) == "0.123" and F.format_imbalance(-1.0) == "-1.000"
    assert [F.kind_name(k) for k in (S.LEVEL, S.TRADE, S.CLEAR, S.SNAPSHOT_END, S.TICK)] == ["level", "trade", "clear", "snapshot_end", "tick"]
    assert F.side_name(1, S.LEVEL) == "bid" and F.side_name(-1, S.LEVEL) == "ask"
    assert F.side_name(1, S.TRADE) == "buy" and F.side_name(-1) == "sell" and F.side_name(0, S.CLEAR) == ""


def test_table_rows_show_names_and_prices_to_the_tick():
    rows = [(1_000, "NSE:X", S.CLEAR, 0, 0.0, 0.0, 1), (1_000, "NSE:X", S.LEVEL, 1, 99.4, 10.0, 1),
            (1_000, "NSE:X", S.LEVEL, -1, 99.45, 12.0, 1), (2_000, "NSE:X", S.TRADE, -1, 99.4, 3.0, 2)]
    batch = market_rows(rows, ["NSE:X"], tick=0.05)
    lines = render_text_rows(batch, header=True).splitlines()
    cells = [line.split() for line in lines]
    kind, side, price = (cells[0].index(c) for c in ("kind", "side", "price"))
    assert [c[kind] for c in cells[1:]] == ["clear", "level", "level", "trade"]
    assert [c[side] for c in cells[2:]] == ["bid", "ask", "sell"]  # (the clear row's side is blank)
    assert [c[price] for c in cells[2:]] == ["99.40", "99.45", "99.40"]


def test_table_rows_of_a_book_stream():
    schema = S.book_schema(1, {"NSE:X": S.Instrument("NSE:X", "zerodha", 0.05)})
    cols = {f.name: [None] for f in schema}
    cols.update(ts=[1_000], symbol=["NSE:X"], seq=[1], bid_px_0=[99.4], ask_px_0=[99.45], bid_qty_0=[10.0], ask_qty_0=[12.0],
                mid=[99.425], spread=[0.05], microprice=[99.42272727], imbalance=[-0.0909090909])
    arrays = [pa.array(cols[f.name], type=pa.int64()).cast(f.type) if f.name == "ts" else
              pa.array(cols[f.name]).dictionary_encode().cast(f.type) if f.name == "symbol" else pa.array(cols[f.name], type=f.type)
              for f in schema]
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    text = render_text_rows(batch.select(["symbol", "bid_px_0", "ask_px_0", "mid", "spread", "microprice", "imbalance"]), header=True,
                            instruments=S.schema_instruments(schema))
    assert text.split("\n")[1].split() == ["NSE:X", "99.40", "99.45", "99.425", "0.05", "99.4227", "-0.091"]
