"""The SIM market stream: replayed into a plain-Python dict book it equals the matcher's book;
every message leaves the book uncrossed; the book is deep; trades happen inside the book;
seqs and timestamps behave; output is byte-identical per seed; close() stops promptly."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sq.core import schemas as S
from sq.venues.sim import SimVenue, sim_instrument


def collect(venue, **kw) -> pa.Table:
    src = venue.market_source(**kw)
    return pa.Table.from_batches(list(src.batches()), schema=src.schema)


def replay(table: pa.Table):
    """Replay message by message into dict books; yield per-message checks."""
    cols = {n: table.column(n).to_pylist() for n in ("symbol", "kind", "side", "price", "qty", "orders", "seq")}
    books: dict[str, dict[int, dict[float, float]]] = {}
    stats = {"messages": 0, "crossed": 0, "trades": 0, "trades_outside": 0, "depth_samples": [], "sweeps": 0}
    n = table.num_rows
    i = 0
    while i < n:
        sym, seq = cols["symbol"][i], cols["seq"][i]
        j = i
        while j < n and cols["symbol"][j] == sym and cols["seq"][j] == seq:
            j += 1
        book = books.setdefault(sym, {1: {}, -1: {}})
        before = {1: dict(book[1]), -1: dict(book[-1])}
        for k in range(i, j):
            kind, side, px, q = cols["kind"][k], cols["side"][k], cols["price"][k], cols["qty"][k]
            if kind == S.CLEAR:
                book[1].clear()
                book[-1].clear()
            elif kind == S.LEVEL:
                if q == 0:
                    book[side].pop(px, None)
                else:
                    book[side][px] = q
            elif kind == S.TRADE:
                stats["trades"] += 1
                opposite = before[-side]
                if px not in opposite or opposite[px] < q - 1e-9:
                    stats["trades_outside"] += 1
        traded_at = {cols["price"][k] for k in range(i, j) if cols["kind"][k] == S.TRADE}
        if len(traded_at) >= 3:
            stats["sweeps"] += 1
        if book[1] and book[-1] and max(book[1]) >= min(book[-1]):
            stats["crossed"] += 1
        stats["messages"] += 1
        if stats["messages"] % 50 == 0:
            spread = round(min(book[-1]) - max(book[1]), 6) if book[1] and book[-1] else -1.0
            stats["depth_samples"].append((len(book[1]), len(book[-1]), spread))
        i = j
    return books, stats


@pytest.fixture(scope="module")
def demo_table():
    # a duration in simulated time: the matcher stops exactly where the stream ends
    venue = SimVenue(["SIM:DEMO"], seed=3)
    table = collect(venue, duration_ns=90_000_000_000)
    return venue, table, replay(table)


def test_replayed_stream_equals_matcher_book(demo_table):
    venue, table, (books, stats) = demo_table
    expect = venue.book("SIM:DEMO").levels()
    got = {(side, px): q for side in (1, -1) for px, q in books["SIM:DEMO"][side].items()}
    assert got == {k: v[0] for k, v in expect.items()}
    assert stats["crossed"] == 0
    assert stats["trades"] > 1000
    assert stats["trades_outside"] == 0


def test_book_is_deep_and_spread_moves(demo_table):
    _, table, (_, stats) = demo_table
    depths = np.array(stats["depth_samples"])
    assert np.median(depths[:, 0]) >= 10 and np.median(depths[:, 1]) >= 10
    # the spread widens and narrows: mostly tight, sometimes several ticks
    spreads = depths[:, 2]
    assert len(set(spreads.tolist())) >= 3
    assert np.median(spreads) <= 0.03 and spreads.max() >= 0.04
    # occasional sweeps through three or more levels in one message
    assert 0 < stats["sweeps"] < stats["messages"] / 100


def test_quiet_and_busy_regimes(demo_table):
    _, table, _ = demo_table
    ts = S.int64_view(table.column("ts"))
    seconds = (ts - ts[0]) // 1_000_000_000
    per_second = np.bincount(seconds)[:-1]
    assert per_second.min() >= 1_000  # even the quiet regime is busy enough for a live view
    assert per_second.max() > 3 * np.median(per_second)  # and bursts are much busier


def test_stream_shape_seq_and_time(demo_table):
    _, table, _ = demo_table
    assert table.schema.metadata[b"sq.stream"] == b"market"
    inst = S.schema_instruments(table.schema)["SIM:DEMO"]
    assert (inst.tick_size, inst.lot_size, inst.venue) == (0.01, 1.0, "sim")
    kinds = table.column("kind").to_numpy()
    assert kinds[0] == S.CLEAR and S.SNAPSHOT_END in kinds[:2000]
    seq = table.column("seq").to_numpy()
    assert np.all(np.diff(seq) >= 0)
    ts = S.int64_view(table.column("ts"))
    recv = S.int64_view(table.column("recv_ts"))
    assert np.all(np.diff(ts) >= 0)
    assert np.all((recv - ts >= 100_000) & (recv - ts <= 300_000))
    # prices are on the tick grid; level qty >= 0; orders present on level rows only
    px = table.column("price").to_numpy()
    lv = kinds == S.LEVEL
    assert np.allclose(np.round(px[lv] / 0.01), px[lv] / 0.01)
    orders = table.column("orders")
    assert orders.null_count == int((~lv).sum())
    # heavy-tailed trade sizes
    tq = table.column("qty").to_numpy()[kinds == S.TRADE]
    assert tq.max() > 20 * np.median(tq)
    assert table.num_rows > 100_000


def test_limit_ends_at_a_message_boundary():
    t = collect(SimVenue(["SIM:DEMO"], seed=4), limit=30_000)
    assert 30_000 <= t.num_rows < 30_000 + 2_000
    seq = t.column("seq").to_numpy()
    more = collect(SimVenue(["SIM:DEMO"], seed=4), limit=40_000)
    # the row after the cut starts a new message
    assert more.column("seq").to_numpy()[t.num_rows] != seq[-1]


def test_several_symbols_interleave_by_time():
    venue = SimVenue(["SIM:DEMO", "SIM:FOO"], seed=5)
    table = collect(venue, limit=100_000)
    sym = table.column("symbol").cast(pa.string()).to_numpy(zero_copy_only=False)
    seq = table.column("seq").to_numpy()
    ts = S.int64_view(table.column("ts"))
    assert set(sym) == {"SIM:DEMO", "SIM:FOO"}
    assert np.all(np.diff(ts) >= 0)
    for s in ("SIM:DEMO", "SIM:FOO"):
        m = sym == s
        sq_ = seq[m]
        assert np.all(np.diff(sq_) >= 0)
        # a message's rows are contiguous: each seq appears in one run
        keys = list(zip(sym.tolist(), seq.tolist()))
    runs = [k for k, prev in zip(keys, [None] + keys[:-1]) if k != prev]
    assert len(runs) == len(set(runs))
    # each symbol's stream is independent of the other symbols served
    alone = collect(SimVenue(["SIM:FOO"], seed=5), limit=20_000)
    foo = table.filter(pa.compute.equal(table.column("symbol").cast(pa.string()), "SIM:FOO")).slice(0, 15_000)
    assert foo.drop_columns(["symbol", "recv_ts"]).equals(alone.slice(0, 15_000).drop_columns(["symbol", "recv_ts"]))


def ipc_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    with ipc.new_stream(buf, table.schema) as w:
        w.write_table(table)
    return buf.getvalue()


def test_deterministic_per_seed():
    a = ipc_bytes(collect(SimVenue(["SIM:DEMO"], seed=11), limit=50_000))
    b = ipc_bytes(collect(SimVenue(["SIM:DEMO"], seed=11), limit=50_000))
    c = ipc_bytes(collect(SimVenue(["SIM:DEMO"], seed=12), limit=50_000))
    assert a == b
    assert a != c


def test_instrument_defaults_are_deterministic():
    assert sim_instrument("SIM:DEMO").tick_size == 0.01
    assert sim_instrument("demo").extra["start_price"] == 100.0
    assert sim_instrument("FOO") == sim_instrument("SIM:foo")
    i = sim_instrument("FOO", tick_size=0.5, price=250.0, lot_size=10)
    assert (i.tick_size, i.extra["start_price"], i.lot_size) == (0.5, 250.0, 10.0)
    venue = SimVenue(["SIM:BAR"], seed=1, instruments={"SIM:BAR": i.__class__("SIM:BAR", "sim", 0.5, 10.0, {"start_price": 250.0})})
    t = collect(venue, limit=5_000)
    px = t.column("price").to_numpy()[t.column("kind").to_numpy() == S.LEVEL]
    assert np.allclose(px % 0.5, 0) and 150 < np.median(px) < 350
    assert np.all(t.column("qty").to_numpy() % 10 == 0)


def test_close_stops_real_time_iteration_promptly():
    venue = SimVenue(["SIM:DEMO"], seed=1, clock="real")
    src = venue.market_source()
    rows = 0
    threading.Timer(1.0, src.close).start()
    t0 = time.monotonic()
    for b in src.batches():
        rows += b.num_rows
    elapsed = time.monotonic() - t0
    assert elapsed < 1.5
    assert rows > 500  # a busy-enough symbol in real time


def test_real_time_duration_and_small_batches():
    venue = SimVenue(["SIM:DEMO"], seed=2, clock="real")
    batches = list(venue.market_source(duration_ns=1_000_000_000).batches())
    rows = sum(b.num_rows for b in batches)
    assert rows >= 1000
    assert np.median([b.num_rows for b in batches[1:]]) < 20
    ts = S.int64_view(batches[-1].column("ts"))
    assert abs(ts[-1] - time.time_ns()) < 2e9


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**40), st.sampled_from(["DEMO", "FOO", "X1", "BTC"]))
def test_any_seed_is_reproducible_and_uncrossed(seed, name):
    a = collect(SimVenue([f"SIM:{name}"], seed=seed), limit=4_000)
    b = collect(SimVenue([f"SIM:{name}"], seed=seed), limit=4_000)
    assert ipc_bytes(a) == ipc_bytes(b)
    _, stats = replay(a)
    assert stats["crossed"] == 0 and stats["trades_outside"] == 0


def test_source_says_no_message_spans_two_batches():
    """The schema says sq.whole_messages = 1, and it holds: no (symbol, seq) in two batches."""
    src = SimVenue(["SIM:DEMO", "SIM:FOO"], seed=3).market_source(limit=30_000, batch_rows=1_000)
    assert src.schema.metadata[S.META_WHOLE_MESSAGES] == b"1"
    seen = set()
    batches = list(src.batches())
    assert len(batches) > 5
    for b in batches:
        keys = set(zip(b.column("symbol").indices.to_pylist(), b.column("seq").to_pylist()))
        assert not keys & seen
        seen |= keys
