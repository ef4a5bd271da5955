"""Book kernel against an independent plain-dict reference book on random market streams.

The reference (`RefBook` in tests/support/bookstreams.py) keeps `{tick: qty}` dicts per symbol
and side and recomputes everything from scratch at every complete message; the kernel must emit
exactly the same rows: several symbols interleaved, tick sizes 0.0001…1, snapshots mid-stream,
sides emptied and refilled, jumps of thousands of ticks, multi-event messages, messages split
across batches.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sq.core import book as B
from sq.core import bookstream
from sq.core import features as F
from sq.core import schemas as S
from sq.core.bookstream import BookStream
from tests.support.bookstreams import DEPTH, HALFLIFE, TICKS, VWAP_WIN, make_batches, random_stream, reference_rows, run_stream
from tests.support.marketdata import pydict


def assert_rows_equal(got, want):
    assert len(got) == len(want), (len(got), len(want))
    for k, (g, w) in enumerate(zip(got, want)):
        for key, wv in w.items():
            gv = g[key]
            if key in ("ts", "symbol", "seq") or "_px_" in key or "_qty_" in key or key == "last_trade_px":
                same = gv == wv or (gv != gv and wv != wv)
            else:
                same = (gv != gv and wv != wv) or (gv == gv and wv == wv and math.isclose(gv, wv, rel_tol=1e-9, abs_tol=1e-12))
            assert same, f"row {k} {key}: kernel {gv!r} != reference {wv!r}\nkernel {g}\nreference {w}"


OPTS = dict(depth=DEPTH, vwap_window_ns=VWAP_WIN, vol_halflife=HALFLIFE)


# ----------------------------------------------------------------------------------------------
# properties


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), n_symbols=st.integers(1, 4), n_messages=st.integers(1, 250),
       tick_idx=st.integers(0, len(TICKS) - 1), cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_every_message_matches_reference(seed, n_symbols, n_messages, tick_idx, cuts):
    events, symbols, ticks = random_stream(seed, n_symbols, n_messages, tick_idx)
    schema, batches = make_batches(events, symbols, ticks, split=[c for c in cuts if c < len(events)])
    got, bs = run_stream(schema, batches, mode=B.MODE_EVERY, every=1, **OPTS)
    want, ref = reference_rows(events, symbols, ticks)
    assert_rows_equal(got, want)
    assert (bs.counts["locked"], bs.counts["crossed"]) == (ref.locked, ref.crossed)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), n_symbols=st.integers(1, 3), n_messages=st.integers(1, 200),
       tick_idx=st.integers(0, len(TICKS) - 1))
def test_default_mode_emits_exactly_the_changes(seed, n_symbols, n_messages, tick_idx):
    """Default mode = the every-message rows minus those identical to the symbol's previous row."""
    events, symbols, ticks = random_stream(seed, n_symbols, n_messages, tick_idx)
    schema, batches = make_batches(events, symbols, ticks)
    every, _ = run_stream(schema, batches, mode=B.MODE_EVERY, every=1, **OPTS)
    schema, batches = make_batches(events, symbols, ticks)
    changed, _ = run_stream(schema, batches, **OPTS)
    last, want = {}, []
    for row in every:
        body = {k: v for k, v in row.items() if k not in ("ts", "seq")}
        prev = last.get(row["symbol"])
        if prev is None or any(not (a == b or (a != a and b != b)) for a, b in zip(prev.values(), body.values())):
            want.append(row)
        last[row["symbol"]] = body
    assert [(r["symbol"], r["seq"]) for r in changed] == [(r["symbol"], r["seq"]) for r in want]
    assert_rows_equal(changed, want)


def test_one_symbol_jumping_far_grows_and_recentres_without_collisions():
    """Levels 256·k and thousands of ticks apart coexist; a walk over 10⁶ ticks stays exact."""
    events, seq = [], 0
    for k in range(40):  # prices 256 ticks apart (the reference's `mod 256` collision) on both sides
        seq += 1
        events.append((seq, 0, S.LEVEL, 1, (100_000 - 256 * k) / 100, 1.0 + k, seq))
        events.append((seq, 0, S.LEVEL, -1, (100_001 + 256 * k) / 100, 1.0 + k, seq))
    mid = 100_000
    rng = random.Random(5)
    for _ in range(3000):
        seq += 1
        mid += rng.randint(-400, 420)
        side = rng.choice([1, -1])
        events.append((seq, 0, S.LEVEL, side, (mid - side * rng.randint(1, 5)) / 100, float(rng.randint(1, 9)), seq))
    schema, batches = make_batches(events, ["SIM:X"], [0.01], split=[1000, 1001, 4000])
    got, bs = run_stream(schema, batches, mode=B.MODE_EVERY, every=1, **OPTS)
    want, _ = reference_rows(events, ["SIM:X"], [0.01])
    assert_rows_equal(got, want)
    assert bs.state.ist[0, B.I_W] > B.INITIAL_WINDOW  # it had to grow to hold the far levels


def test_rows_never_inside_a_snapshot_and_messages_span_batches():
    ev = [
        (1, 0, S.CLEAR, 0, 0.0, 0.0, 1),
        (1, 0, S.LEVEL, 1, 10.0, 1.0, 1),
        (2, 0, S.LEVEL, -1, 10.5, 2.0, 2),  # still inside the snapshot: no row
        (3, 0, S.SNAPSHOT_END, 0, 0.0, 0.0, 3),
        (4, 0, S.LEVEL, 1, 10.1, 3.0, 4),
        (4, 0, S.LEVEL, 1, 10.2, 4.0, 4),  # same message, next batch
    ]
    schema, batches = make_batches(ev, ["SIM:A"], [0.1], split=[5])
    rows, _ = run_stream(schema, batches, depth=2)
    assert [r["seq"] for r in rows] == [3, 4]
    assert rows[1]["bid_px_0"] == 10.2 and rows[1]["bid_px_1"] == 10.1 and rows[1]["bid_qty_0"] == 4.0


def test_locked_and_crossed_counted_not_repaired():
    ev = [
        (1, 0, S.LEVEL, 1, 10.0, 1.0, 1),
        (1, 0, S.LEVEL, -1, 10.0, 1.0, 1),  # locked after message 1
        (2, 0, S.LEVEL, -1, 9.9, 1.0, 2),  # crossed after message 2
        (3, 0, S.LEVEL, -1, 9.9, 0.0, 3),
        (3, 0, S.LEVEL, -1, 10.0, 0.0, 3),
        (3, 0, S.LEVEL, -1, 10.2, 1.0, 3),
    ]
    schema, batches = make_batches(ev, ["SIM:A"], [0.1])
    rows, bs = run_stream(schema, batches, depth=2)
    assert (bs.counts["locked"], bs.counts["crossed"]) == (1, 1)
    assert rows[1]["bid_px_0"] == 10.0 and rows[1]["ask_px_0"] == 9.9  # shown as received
    assert rows[1]["spread"] == pytest.approx(-0.1)
    assert any("crossed" in w for w in bs.warnings())


def test_interval_and_every_modes():
    ev = [(i * 100_000_000, 0, S.LEVEL, 1, 10.0 + (i % 3) / 10, float(i + 1), i) for i in range(30)]
    schema, batches = make_batches(ev, ["SIM:A"], [0.1])
    rows, _ = run_stream(schema, batches, mode=B.MODE_INTERVAL, interval_ns=1_000_000_000)
    ts = [r["ts"] for r in rows]
    assert ts == list(range(0, 30 * 100_000_000, 1_000_000_000))
    schema, batches = make_batches(ev, ["SIM:A"], [0.1])
    rows, _ = run_stream(schema, batches, mode=B.MODE_EVERY, every=7)
    assert [r["seq"] for r in rows] == [6, 13, 20, 27]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), n_symbols=st.integers(1, 3), n_messages=st.integers(1, 200),
       tick_idx=st.integers(0, len(TICKS) - 1))
@example(seed=3, n_symbols=3, n_messages=85, tick_idx=0)  # trades inside a snapshot while other symbols' messages end
def test_engine_mode_without_rows_keeps_the_same_state(seed, n_symbols, n_messages, tick_idx):
    """MODE_NONE (the engine's mode: no rows) skips unchanged feature upkeep; the state must match.

    All but the per-message trade range (F_MSG_TMIN/TMAX): that is scratch for stale depth,
    which only a top-N view keeps, so without one MODE_NONE's call-free trade path leaves it."""
    events, symbols, ticks = random_stream(seed, n_symbols, n_messages, tick_idx)
    states = []
    for mode in (B.MODE_EVERY, B.MODE_NONE):
        schema, batches = make_batches(events, symbols, ticks)
        _, bs = run_stream(schema, batches, mode=mode, **OPTS)
        states.append(bs.state)
    a, b = states
    cols = [B.I_NB, B.I_NA, B.I_BB, B.I_BA, B.I_NVOL, B.I_VW_LEN, B.I_INSNAP]
    assert (a.ist[:, cols] == b.ist[:, cols]).all()
    kept = [c for c in range(F.NF) if c not in (F.F_MSG_TMIN, F.F_MSG_TMAX)]
    np.testing.assert_allclose(a.fst[:, kept], b.fst[:, kept], rtol=1e-12, equal_nan=True)
    assert (a.g[[B.G_LOCKED, B.G_CROSSED, B.G_MESSAGES]] == b.g[[B.G_LOCKED, B.G_CROSSED, B.G_MESSAGES]]).all()


@pytest.mark.parametrize("split", [None, [3], [4]])
def test_trade_in_a_message_interrupted_by_a_grow_or_a_batch_end_still_gets_feature_upkeep(split):
    """A trade early in a message, then a level far enough away to grow the window (the kernel
    returns to Python mid-message) or a batch boundary: the engine mode (no rows, upkeep only when
    something moved) must still fold the message end like the row modes do."""
    far = 10.0 + 0.01 * 3 * B.INITIAL_WINDOW
    ev = [
        (1, 0, S.LEVEL, 1, 10.0, 1.0, 1),
        (1, 0, S.LEVEL, -1, 10.02, 1.0, 1),
        (2, 0, S.TRADE, 1, 10.02, 0.5, 2),
        (2, 0, S.LEVEL, -1, far, 1.0, 2),
        (3, 1, S.LEVEL, 1, 5.0, 2.0, 1),  # the next message is another symbol's (and the last)
    ]
    states = []
    for mode in (B.MODE_EVERY, B.MODE_NONE):
        schema, batches = make_batches(ev, ["SIM:A", "SIM:B"], [0.01, 0.01], split=split)
        _, bs = run_stream(schema, batches, mode=mode)
        states.append(bs.state)
    a, b = states
    np.testing.assert_allclose(a.fst, b.fst, rtol=1e-12, equal_nan=True)
    assert b.fst[0, F.F_MSG_TMIN] == np.inf  # the trade range was reset at the message end


def test_level_price_out_of_tick_range_is_a_data_error_naming_the_row():
    from sq.core.exits import DataError

    ev = [(1, 0, S.LEVEL, 1, 10.0, 1.0, 1), (2, 0, S.TRADE, 1, 1e300, 1.0, 2), (3, 0, S.LEVEL, -1, 1e300, 1.0, 3)]
    schema, batches = make_batches(ev, ["SIM:A"], [0.01])
    with pytest.raises(DataError, match=r"row 2 \(SIM:A\): price 1e\+300 is out of range for tick size 0.01"):
        run_stream(schema, batches)
    ev = [(1, 0, S.LEVEL, 1, 10.0, 1.0, 1), (2, 0, S.LEVEL, -1, 10.01, 1.0, 2)]
    schema, batches = make_batches(ev, ["SIM:A"], [0.01])
    rows, _ = run_stream(schema, batches)
    assert rows[-1]["bid_px_0"] == 10.0 and rows[-1]["ask_px_0"] == 10.01


@pytest.mark.parametrize("path", ["message", "sets"])
def test_output_buffers_are_reused_only_once_no_batch_refers_to_them(path, monkeypatch):
    """Small batches are written into pooled IPC message buffers, big ones into pooled column
    sets: either way a buffer is written again only once no batch points into it."""
    if path == "sets":
        monkeypatch.setattr(bookstream, "MESSAGE_ROWS", 0)  # the column sets of big batches, on small ones
    ev = [(i, 0, S.LEVEL, 1 if i % 2 else -1, 10.0 + (0.01 if i % 2 else 0.03) + 0.01 * (i % 5), float(i + 1), i) for i in range(40)]
    schema, batches = make_batches(ev, ["SIM:A"], [0.01], split=list(range(5, 40, 5)))
    ref = BookStream(S.schema_instruments(schema), depth=2)
    want = pa.Table.from_batches([o for o in map(ref.process, batches) if o is not None and o.num_rows]).combine_chunks()
    bs = BookStream(S.schema_instruments(schema), depth=2)

    def pooled():
        return len(bs._pool._bufs) if path == "message" else len(bs._spare)

    held = [bs.process(b) for b in batches[:3]]  # batches still referenced: three distinct buffers
    assert pooled() == 3
    rest = []
    for b in batches[3:]:
        out = bs.process(b)
        rest.append(pydict(out))  # copied out, then dropped: its buffer is free for the next batch
        del out
    assert pooled() == 4  # the held three plus one reused for every later batch
    got = pydict(pa.Table.from_batches(held))
    for k in got:
        got[k] += [v for r in rest for v in r[k]]

    def norm(d):  # NaN-safe comparison
        return {k: [None if isinstance(v, float) and v != v else v for v in vals] for k, vals in d.items()}

    assert norm(got) == norm(pydict(want))


def test_small_batches_are_read_in_one_call_and_match_the_general_path(monkeypatch):
    """Batches of up to SMALL_ROWS rows (a live pipe's) are read through one Arrow C export
    (`sq.core.smallbatch`) once their symbol dictionary is known, and give the rows the
    general path gives; a new but equal dictionary stays on the small path, a new symbol
    goes through the general path once."""
    events, symbols, ticks = random_stream(7, 3, 300, 3)
    schema, whole = make_batches(events, symbols, ticks)
    ones = [whole[0].slice(i, 1) for i in range(whole[0].num_rows)]
    general = []
    original = bookstream.market_arrays
    monkeypatch.setattr(bookstream, "market_arrays", lambda *a: general.append(a[0].num_rows) or original(*a))
    got, bs = run_stream(schema, ones, **OPTS)
    assert general == [1]  # the first batch only: it teaches the reader the symbol dictionary
    monkeypatch.setattr(bookstream, "market_arrays", original)
    want, _ = run_stream(schema, whole, **OPTS)
    assert_rows_equal(got, want)
    # the same dictionary as a new object: still the small path
    fresh = pa.RecordBatch.from_arrays([pa.DictionaryArray.from_arrays(c.indices, pa.array(c.dictionary.to_pylist()))
                                        if pa.types.is_dictionary(c.type) else c for c in ones[5].columns], schema=ones[5].schema)
    general.clear()
    monkeypatch.setattr(bookstream, "market_arrays", lambda *a: general.append(a[0].num_rows) or original(*a))
    bs.process(fresh)
    assert general == []
    # a batch whose dictionary adds a symbol: the general path, which learns it
    wider = pa.RecordBatch.from_arrays([pa.DictionaryArray.from_arrays(c.indices, pa.array(c.dictionary.to_pylist() + ["SIM:NEW"]))
                                        if pa.types.is_dictionary(c.type) else c for c in ones[6].columns], schema=ones[6].schema)
    bs.process(wider)
    bs.process(wider)
    assert general == [1]


def test_sq_book_cuts_big_batches_into_pieces_without_changing_the_rows(monkeypatch):
    """build_book hands the kernel batches in PIECE_ROWS pieces (messages span the cuts): the rows
    are those of the whole batches, and the writer gets one batch per piece that has rows."""
    import io

    from sq.core import bookstream
    from sq.core.environment import Environment
    from sq.core.streams import StreamSource

    events, symbols, ticks = random_stream(11, 3, 400, 3)
    schema, batches = make_batches(events, symbols, ticks)
    want, _ = run_stream(schema, batches, depth=DEPTH)

    class Sink:
        def __init__(self):
            self.batches = []

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, b):
            self.batches.append(b)

    monkeypatch.setattr(bookstream, "PIECE_ROWS", 7)
    assert [b.num_rows for b in bookstream.pieces(batches[0], 7)][-2:] == [7, batches[0].num_rows % 7 or 7]
    sink = Sink()
    env = Environment(stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=io.StringIO(), stdin_isatty=False, stdout_isatty=False)
    source = StreamSource("market", schema, S.schema_instruments(schema), iter(batches))
    bookstream.build_book(env, source, lambda s: sink, depth=DEPTH)
    assert len(sink.batches) > 10
    table = pa.Table.from_batches(sink.batches)
    got = [dict(zip(table.schema.names, vals)) for vals in zip(*[
        (table.column(n).cast(pa.string()).to_pylist() if n == "symbol" else S.int64_view(table.column(n)).tolist() if n == "ts"
         else table.column(n).to_numpy(zero_copy_only=False).tolist()) for n in table.schema.names])]
    assert_rows_equal(got, want)


def test_complete_batches_emit_their_last_message_at_once():
    """process(batch, complete=True) completes the batch's last message with the batch (a live pipe
    whose batches end at message ends); the rows are the same, only sooner."""
    events, symbols, ticks = random_stream(5, 2, 120, 3)
    cuts = [i for i in range(1, len(events)) if (events[i][1], events[i][6]) != (events[i - 1][1], events[i - 1][6])][::7]
    schema, batches = make_batches(events, symbols, ticks, split=cuts)
    want, _ = run_stream(schema, batches, **OPTS)
    lagging = BookStream(S.schema_instruments(schema), **OPTS)
    at_once = BookStream(S.schema_instruments(schema), **OPTS)
    got, ahead, behind, sooner = [], 0, 0, 0
    for b in batches:
        late = lagging.process(b)
        now = at_once.process(b, complete=True)
        ahead += now.num_rows if now is not None else 0
        behind += late.num_rows if late is not None else 0
        assert ahead >= behind
        sooner += ahead > behind
        if now is not None:
            got.append(now)
    assert at_once.finish() is None  # nothing left pending at the end
    assert sooner >= len(batches) // 2, (sooner, len(batches))
    table = pa.Table.from_batches(got)
    rows = [dict(zip(table.schema.names, vals)) for vals in zip(*[
        (table.column(n).cast(pa.string()).to_pylist() if n == "symbol" else S.int64_view(table.column(n)).tolist() if n == "ts"
         else table.column(n).to_numpy(zero_copy_only=False).tolist()) for n in table.schema.names])]
    assert_rows_equal(rows, want)



@pytest.mark.parametrize("split", [None, [700], [1, 333, 1200]])
def test_engine_mode_trades_past_the_vwap_ring_and_through_evictions_match_the_row_modes(split):
    """Features without rows take trades call-free in the tight loop and run message-end upkeep
    in place; the row modes take the slow path. Over more trades than the VWAP ring's first
    capacity (so it grows mid-batch), trades that age out of the window between level updates
    and at trades, mid changes, and batch cuts: the states match, and the VWAP is the window's
    own Σpq/Σq."""
    win = 2_000_000_000
    n_trades = 3 * B.INITIAL_VWAP_CAP
    ev, seq, ts, mid = [], 0, 1_000_000_000, 1000
    rng = random.Random(7)
    for k in range(n_trades):
        seq += 1
        ts += 1_500_000_000 if k % 300 == 299 else rng.choice([200_000, 1_000_000, 3_000_000])  # pauses: most of the window ages out
        if k % 3 == 0:
            mid += rng.choice([-1, 1])
        ev.append((ts, 0, S.LEVEL, 1, (mid - 1) / 100, float(rng.randint(1, 9)), seq))
        ev.append((ts, 0, S.LEVEL, -1, (mid + 1) / 100, float(rng.randint(1, 9)), seq))
        seq += 1
        ts += 1_000
        side = rng.choice([1, -1, 0]) if k < n_trades - 1 else 1  # the last one's ratio is checked
        px = (mid + 1) / 100 if side > 0 else (mid - 1) / 100
        ev.append((ts, 0, S.TRADE, side, px, float(rng.randint(1, 5)), seq))
    states = []
    for mode in (B.MODE_EVERY, B.MODE_NONE):
        schema, batches = make_batches(ev, ["SIM:A"], [0.01], split=split)
        _, bs = run_stream(schema, batches, mode=mode, depth=1, vwap_window_ns=win)
        states.append(bs.state)
    a, b = states
    assert b.vw_ts.shape[1] > B.INITIAL_VWAP_CAP  # the ring grew under the call-free path
    cols = [B.I_NB, B.I_NA, B.I_BB, B.I_BA, B.I_NVOL, B.I_VW_LEN, B.I_VW_HEAD, B.I_MIDKEY]
    assert (a.ist[:, cols] == b.ist[:, cols]).all()
    kept = [c for c in range(F.NF) if c not in (F.F_MSG_TMIN, F.F_MSG_TMAX)]
    np.testing.assert_allclose(a.fst[:, kept], b.fst[:, kept], rtol=1e-12, equal_nan=True)
    last = ev[-1][0]
    window = [(p, q) for t, _, k, _, p, q, _ in ev if k == S.TRADE and t > last - win]
    assert b.ist[0, B.I_VW_LEN] == len(window)
    want = sum(p * q for p, q in window) / sum(q for _, q in window)
    assert F.vwap_value(b.fst, 0, int(b.ist[0, B.I_VW_LEN])) == pytest.approx(want, rel=1e-12)
    assert b.fst[0, F.F_AGG] > 0 and a.fst[0, F.F_AGG] == b.fst[0, F.F_AGG]  # the last trade's ratio, by both paths
