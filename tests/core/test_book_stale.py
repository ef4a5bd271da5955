"""Top-N venues (Zerodha shows 5 levels): exact inside the view, stale depth outside it."""

from __future__ import annotations

import math

from sq.core import book as B
from sq.core import schemas as S
from tests.support.bookstreams import make_batches, run_stream

SEC = 1_000_000_000


def view(ts, seq, bids, asks, sym=0):
    """One venue packet: clear + levels + snapshot_end, all one message."""
    ev = [(ts, sym, S.CLEAR, 0, 0.0, 0.0, seq)]
    ev += [(ts, sym, S.LEVEL, 1, p, q, seq) for p, q in bids]
    ev += [(ts, sym, S.LEVEL, -1, p, q, seq) for p, q in asks]
    ev.append((ts, sym, S.SNAPSHOT_END, 0, 0.0, 0.0, seq))
    return ev


ASKS = [(101.0, 1.0), (102.0, 2.0), (103.0, 3.0)]


def run(events, *, meta_view=3, **opts):
    schema, batches = make_batches(events, ["NSE:X"], [0.5], extra={"NSE:X": {"depth_view": meta_view}} if meta_view else None)
    rows, _ = run_stream(schema, batches, depth=3, stale=True, **opts)
    return rows


def test_level_leaving_the_view_uncrossed_becomes_stale_and_is_excluded_from_levels():
    ev = view(1 * SEC, 1, [(100.0, 5.0), (99.0, 6.0), (98.0, 7.0)], ASKS)
    ev += view(2 * SEC, 2, [(100.0, 5.0), (99.5, 4.0), (99.0, 6.0)], ASKS)  # 98 pushed out of view
    ev += view(3 * SEC, 3, [(100.0, 5.0), (99.5, 4.0), (98.5, 2.0)], ASKS)  # 99 vanished inside the view
    rows = run(ev)
    assert [r["bid_stale_count"] for r in rows] == [0, 1, 1]
    assert rows[1]["bid_stale_qty"] == 7.0 and rows[2]["bid_stale_qty"] == 7.0
    assert [rows[1][f"bid_px_{i}"] for i in range(3)] == [100.0, 99.5, 99.0]
    assert [rows[2][f"bid_px_{i}"] for i in range(3)] == [100.0, 99.5, 98.5]
    assert rows[2]["ask_stale_count"] == 0
    assert rows[1]["imbalance"] == (15.0 - 6.0) / (15.0 + 6.0)  # stale depth is not in the features


def test_stale_dropped_when_view_not_full_or_covers_it_again():
    ev = view(1 * SEC, 1, [(100.0, 5.0), (99.0, 6.0), (98.0, 7.0)], ASKS)
    ev += view(2 * SEC, 2, [(100.0, 5.0), (99.5, 4.0), (99.0, 6.0)], ASKS)
    ev += view(3 * SEC, 3, [(100.0, 5.0), (99.0, 6.0), (98.0, 8.0)], ASKS)  # the view reaches 98 again: live
    ev += view(4 * SEC, 4, [(100.0, 5.0), (99.5, 4.0), (99.0, 6.0)], ASKS)  # stale again (qty 8 last seen)
    ev += view(5 * SEC, 5, [(100.0, 5.0), (99.5, 4.0)], ASKS)  # fewer than 3 bids: the venue shows all
    rows = run(ev)
    assert [r["bid_stale_count"] for r in rows] == [0, 1, 0, 1, 0]
    assert rows[3]["bid_stale_qty"] == 8.0


def test_stale_dropped_when_the_price_crosses_it():
    ev = view(1 * SEC, 1, [(100.0, 5.0), (99.0, 6.0), (98.0, 7.0)], ASKS)
    ev += view(2 * SEC, 2, [(100.0, 5.0), (99.5, 4.0), (99.0, 6.0)], [(100.5, 1.0), (101.0, 1.0), (102.0, 2.0)])
    assert run(ev)[-1]["ask_stale_count"] == 1  # 103 left the view uncrossed
    # the market rallies through 103: the stale ask is dropped
    ev2 = ev + view(3 * SEC, 3, [(103.5, 1.0), (103.0, 1.0), (102.5, 1.0)], [(104.0, 1.0), (104.5, 1.0), (105.0, 1.0)])
    rows = run(ev2)
    assert rows[-1]["ask_stale_count"] == 0
    # a trade below a stale bid drops it
    ev3 = ev + [(3 * SEC, 0, S.TRADE, -1, 97.5, 1.0, 3)]
    rows = run(ev3)
    assert rows[-1]["bid_stale_count"] == 0 and rows[-1]["last_trade_px"] == 97.5


def test_stale_expires_after_max_age():
    ev = view(1 * SEC, 1, [(100.0, 5.0), (99.0, 6.0), (98.0, 7.0)], ASKS)
    ev += view(2 * SEC, 2, [(100.0, 5.0), (99.5, 4.0), (99.0, 6.0)], ASKS)
    ev += view(5 * SEC, 3, [(100.0, 5.0), (99.5, 4.0), (99.0, 6.0)], ASKS)  # last seen at 1s: 4s old
    ev += view(7 * SEC, 4, [(100.0, 5.0), (99.5, 4.0), (99.0, 6.0)], ASKS)  # 6s old
    rows = run(ev, stale_max_age_ns=5 * SEC, mode=B.MODE_EVERY)
    assert [r["bid_stale_count"] for r in rows] == [0, 1, 1, 0]
    rows = run(ev, stale_max_age_ns=5 * SEC)  # on change: the unchanged 5s view makes no row
    assert [(r["ts"] // SEC, r["bid_stale_count"]) for r in rows] == [(1, 0), (2, 1), (7, 0)]


def test_view_depth_flag_and_full_depth_default():
    ev = view(1 * SEC, 1, [(100.0, 5.0), (99.0, 6.0), (98.0, 7.0)], ASKS)
    ev += view(2 * SEC, 2, [(100.0, 5.0), (99.5, 4.0), (99.0, 6.0)], ASKS)
    assert run(ev, meta_view=0)[-1]["bid_stale_count"] == 0  # full depth: a snapshot replaces the book
    assert run(ev, meta_view=0, view_depth=3)[-1]["bid_stale_count"] == 1


def test_stale_columns_only_when_asked():
    ev = view(1 * SEC, 1, [(100.0, 5.0)], ASKS)
    schema, batches = make_batches(ev, ["NSE:X"], [0.5])
    rows, bs = run_stream(schema, batches, depth=3)
    assert "bid_stale_count" not in rows[0] and not any(n in bs.schema.names for n in S.BOOK_STALE)
    assert math.isnan(rows[0]["bid_px_1"])
