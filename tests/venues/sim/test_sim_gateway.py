"""The SIM order gateway: our orders share the FIFO book with the background flow."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from sq.core import schemas as S
from sq.core.exits import UsageError
from sq.venues.base import OrderRequest
from sq.venues.sim import SimVenue


@pytest.fixture
def venue():
    return SimVenue(["SIM:DEMO"], seed=9)


def run_for(venue, src_iter, batches: int = 3) -> pa.Table:
    out = []
    for _ in range(batches):
        out.append(next(src_iter))
    return pa.Table.from_batches(out)


def test_resting_limit_is_filled_by_flow_as_maker(venue):
    gw = venue.gateway()
    src = venue.market_source(batch_rows=2_000)
    it = src.batches()
    next(it)  # snapshot
    bid, _, ask, _ = venue.book("SIM:DEMO").top()
    st = gw.place(OrderRequest("SIM:DEMO", +1, 5.0, bid, client_order_id="b1"))
    assert st.status == "accepted" and st.leaves_qty == 5.0
    # it rests at the back of the queue at its price
    q = venue.book("SIM:DEMO").queue(+1, bid)
    assert q[-1] == (int(st.venue_order_id), 5.0)
    assert [o.client_order_id for o in gw.open_orders("SIM:DEMO")] == ["b1"]
    for _ in range(200):
        next(it)
        if st.status == "filled":
            break
    assert st.status == "filled" and st.filled_qty == 5.0
    fills = gw.fills("SIM:DEMO")
    assert fills and all(f.liquidity == "maker" and f.side == +1 and f.price == bid for f in fills)
    assert sum(f.qty for f in fills) == 5.0
    assert gw.open_orders() == []
    pos = {p.symbol: p for p in gw.positions()}["SIM:DEMO"]
    assert pos.qty == 5.0 and pos.avg_price == bid
    assert [f.trade_id for f in gw.new_fills()] == [f.trade_id for f in fills]
    assert gw.new_fills() == []


def test_our_order_appears_in_the_market_stream(venue):
    gw = venue.gateway()
    it = venue.market_source(batch_rows=500).batches()
    next(it)
    book = venue.book("SIM:DEMO")
    bid, _, ask, _ = book.top()
    px = round(bid - 0.50, 2)
    before = book.levels().get((1, px), (0.0, 0))
    gw.place(OrderRequest("SIM:DEMO", +1, 7.0, px, client_order_id="deep"))
    t = pa.Table.from_batches([next(it)]).drop_columns(["ts", "recv_ts"])
    rows = t.to_pylist()
    ours = [r for r in rows if r["kind"] == S.LEVEL and r["side"] == 1 and r["price"] == px and r["qty"] == before[0] + 7.0]
    assert ours and ours[0]["orders"] == before[1] + 1


def test_cancel_and_cancel_all(venue):
    gw = venue.gateway()
    bid, _, ask, _ = venue.book("SIM:DEMO").top()
    a = gw.place(OrderRequest("SIM:DEMO", +1, 1.0, round(bid - 1.0, 2), client_order_id="a"))
    b = gw.place(OrderRequest("SIM:DEMO", -1, 2.0, round(ask + 1.0, 2), client_order_id="b"))
    c = gw.place(OrderRequest("SIM:DEMO", -1, 3.0, round(ask + 2.0, 2), client_order_id="c"))
    assert gw.cancel("SIM:DEMO", "a").status == "canceled"
    assert all(o.client_order_id != "a" for o in gw.open_orders())
    again = gw.cancel("SIM:DEMO", "a")
    assert again.status == "canceled" and "rejected" in again.reason
    done = gw.cancel_all("SIM:DEMO")
    assert {o.client_order_id for o in done} == {"b", "c"} and all(o.status == "canceled" for o in done)
    assert gw.open_orders() == [] and b.leaves_qty == 0 and c.leaves_qty == 0
    assert venue.book("SIM:DEMO").queue(-1, round(ask + 2.0, 2)) == [x for x in venue.book("SIM:DEMO").queue(-1, round(ask + 2.0, 2)) if x[0] != int(c.venue_order_id)]
    with pytest.raises(UsageError):
        gw.cancel("SIM:DEMO", "nope")


def test_market_order_walks_the_book(venue):
    gw = venue.gateway()
    book = venue.book("SIM:DEMO")
    levels = sorted((px, q) for (side, px), (q, _) in book.levels().items() if side == -1)
    want = levels[0][1] + levels[1][1] + 1.0  # more than the two best ask levels
    st = gw.place(OrderRequest("SIM:DEMO", +1, want, order_type="market", client_order_id="m"))
    assert st.status == "filled" and st.filled_qty == want
    fills = gw.fills()
    assert all(f.liquidity == "taker" for f in fills)
    assert {f.price for f in fills} == {levels[0][0], levels[1][0], levels[2][0]}
    assert sum(f.qty for f in fills if f.price == levels[0][0]) == levels[0][1]
    assert math.isclose(sum(f.fee for f in fills), sum(f.price * f.qty for f in fills) * 0.0005)
    assert book.top()[2] == levels[2][0]


def test_ioc_leftover_cancelled_and_post_only_fok(venue):
    gw = venue.gateway()
    book = venue.book("SIM:DEMO")
    bid, bq, ask, aq = book.top()
    st = gw.place(OrderRequest("SIM:DEMO", +1, aq + 50.0, ask, time_in_force="ioc", client_order_id="i"))
    assert st.filled_qty == aq and st.status == "canceled" and st.leaves_qty == 0
    assert gw.open_orders() == []
    assert book.queue(+1, ask) == []  # nothing rested
    bid, bq, ask, aq = book.top()
    assert gw.place(OrderRequest("SIM:DEMO", +1, 1.0, ask, time_in_force="post_only")).status == "rejected"
    assert gw.place(OrderRequest("SIM:DEMO", +1, aq + 1e6, ask, time_in_force="fok")).status == "rejected"
    assert gw.place(OrderRequest("SIM:DEMO", +1, 1.0, ask + 0.001)).status == "rejected"  # off the grid
    assert gw.place(OrderRequest("SIM:DEMO", +1, 0.5, bid)).status == "rejected"  # not a lot multiple
    far = gw.place(OrderRequest("SIM:DEMO", -1, 1.0, round(bid - 10, 2), time_in_force="ioc"))
    assert far.status in ("filled", "canceled") and far.filled_qty == 1.0


def test_modify(venue):
    gw = venue.gateway()
    book = venue.book("SIM:DEMO")
    bid, _, ask, _ = book.top()
    px = round(bid - 0.2, 2)
    st = gw.place(OrderRequest("SIM:DEMO", +1, 10.0, px, client_order_id="x"))
    oid = int(st.venue_order_id)
    pos = [o for o, _ in book.queue(+1, px)].index(oid)
    gw.modify("SIM:DEMO", "x", qty=4.0)
    assert [o for o, _ in book.queue(+1, px)].index(oid) == pos  # priority kept
    assert book.queue(+1, px)[pos][1] == 4.0 and st.qty == 4.0
    new_px = round(bid - 0.3, 2)
    gw.modify("SIM:DEMO", "x", price=new_px)
    assert oid not in [o for o, _ in book.queue(+1, px)]
    assert book.queue(+1, new_px)[-1] == (oid, 4.0) and st.price == new_px
    # modify across the spread trades at once
    st2 = gw.modify("SIM:DEMO", "x", price=round(ask + 0.5, 2))
    assert st2.filled_qty > 0
