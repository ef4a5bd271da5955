"""Book kernel against an independent plain-dict reference book on random market streams.

The reference (`RefBook`) keeps `{tick: qty}` dicts per symbol and side and recomputes
everything from scratch at every complete message; the kernel must emit exactly the same rows:
several symbols interleaved, tick sizes 0.0001…1, snapshots mid-stream, sides emptied and
refilled, jumps of thousands of ticks, multi-event messages, messages split across batches.
"""

from __future__ import annotations

import math
import random
from collections import deque

import numpy as np
import pyarrow as pa

from tests.marketdata import pydict
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sq.core import book as B
from sq.core import features as F
from sq.core import schemas as S
from sq.core.bookstream import BookStream

TICKS = [0.0001, 0.0005, 0.001, 0.01, 0.05, 0.25, 0.5, 1.0]
DEPTH = 3
VWAP_WIN = 5_000_000_000
HALFLIFE = 10.0


# ----------------------------------------------------------------------------------------------
# helpers shared by the book tests


def make_batches(events, symbols, ticks, *, split=None, extra=None):
    """events: (ts, sym_index, kind, side, price, qty, seq) → market batches (optionally split)."""
    inst = {s: S.Instrument(s, "sim", t, 1.0, dict(extra.get(s, {})) if extra else {}) for s, t in zip(symbols, ticks) if t}
    schema = S.market_schema(inst)
    d = S.symbol_dictionary(symbols)
    a = list(zip(*events)) if events else [[]] * 7
    ts = np.array(a[0], dtype=np.int64)
    batch = S.market_batch(schema, d, ts, ts, np.array(a[1], dtype=np.int32), np.array(a[2], dtype=np.uint8),
                           np.array(a[3], dtype=np.int8), np.array(a[4], dtype=np.float64),
                           np.array(a[5], dtype=np.float64), np.array(a[6], dtype=np.int64))
    if not split:
        return schema, [batch]
    out, pos = [], 0
    for cut in sorted(set(split)) + [batch.num_rows]:
        if cut > pos:
            out.append(batch.slice(pos, cut - pos))
            pos = cut
    return schema, out


def run_stream(schema, batches, **opts):
    """Run batches through a BookStream; rows as dicts (NaN kept as NaN)."""
    bs = BookStream(S.schema_instruments(schema), warn=lambda m: None, **opts)
    tables = []
    for b in batches:
        out = bs.process(b)
        if out is not None:
            tables.append(out)
    out = bs.finish()
    if out is not None:
        tables.append(out)
    rows = []
    for t in tables:
        cols = {name: (t.column(name).cast(pa.string()).to_pylist() if name == "symbol" else
                       S.int64_view(t.column(name)).tolist() if name == "ts" else
                       t.column(name).to_numpy(zero_copy_only=False).tolist())
                for name in t.schema.names}
        rows += [dict(zip(cols, vals)) for vals in zip(*cols.values())]
    return rows, bs


class RefBook:
    """Plain-Python reference: dict levels by integer tick, features recomputed from scratch."""

    def __init__(self, symbols, ticks, depth, vwap_win, halflife):
        self.depth, self.vwap_win = depth, vwap_win
        self.alpha = 1.0 - 0.5 ** (1.0 / halflife)
        self.inv = {s: round(1 / t) for s, t in zip(symbols, ticks)}
        self.st = {s: dict(bids={}, asks={}, snap=False, last=math.nan, agg=math.nan, trades=deque(),
                           prev_mid=math.nan, var=math.nan, nret=0) for s in symbols}
        self.locked = self.crossed = 0

    def event(self, sym, kind, side, price, qty, ts):
        b = self.st[sym]
        if kind == S.LEVEL:
            book = b["bids"] if side > 0 else b["asks"]
            t = round(price * self.inv[sym])
            if qty == 0:
                book.pop(t, None)
            else:
                book[t] = qty
        elif kind == S.TRADE:
            if side > 0 and b["asks"]:
                b["agg"] = qty / b["asks"][min(b["asks"])]
            elif side < 0 and b["bids"]:
                b["agg"] = qty / b["bids"][max(b["bids"])]
            else:
                b["agg"] = math.nan
            b["last"] = price
            b["trades"].append((ts, price, qty))
        elif kind == S.TICK:
            b["last"] = price
        elif kind == S.CLEAR:
            b["bids"].clear()
            b["asks"].clear()
            b["snap"] = True
        elif kind == S.SNAPSHOT_END:
            b["snap"] = False

    def end(self, sym, ts, seq):
        """The row a complete message yields (None inside a snapshot)."""
        b = self.st[sym]
        if b["snap"]:
            return None
        inv, n = self.inv[sym], self.depth
        bids = sorted(b["bids"].items(), reverse=True)[:n]
        asks = sorted(b["asks"].items())[:n]
        if bids and asks and bids[0][0] >= asks[0][0]:
            if bids[0][0] == asks[0][0]:
                self.locked += 1
            else:
                self.crossed += 1
        row = {"ts": ts, "symbol": sym, "seq": seq}
        for name, lv in (("bid", bids), ("ask", asks)):
            for i in range(n):
                row[f"{name}_px_{i}"] = lv[i][0] / inv if i < len(lv) else math.nan
                row[f"{name}_qty_{i}"] = lv[i][1] if i < len(lv) else math.nan
        nan = math.nan
        if bids and asks:
            (bt, bq), (at, aq) = bids[0], asks[0]
            mid = (bt + at) / inv / 2
            row.update(mid=mid, spread=(at - bt) / inv, microprice=(bt / inv * aq + at / inv * bq) / (bq + aq))
        else:
            mid = nan
            row.update(mid=nan, spread=nan, microprice=nan)
        sb, sa = sum(q for _, q in bids), sum(q for _, q in asks)
        row["imbalance"] = (sb - sa) / (sb + sa) if bids or asks else nan
        row["last_trade_px"] = b["last"]
        row["agg_trade_ratio"] = b["agg"]
        while b["trades"] and b["trades"][0][0] <= ts - self.vwap_win:
            b["trades"].popleft()
        q = sum(t[2] for t in b["trades"])
        row["vwap"] = sum(t[1] * t[2] for t in b["trades"]) / q if q > 0 else nan
        if mid == mid and mid > 0:
            if b["prev_mid"] == b["prev_mid"] and mid != b["prev_mid"]:
                r = math.log(mid / b["prev_mid"])
                b["var"] = r * r if b["nret"] == 0 else b["var"] + self.alpha * (r * r - b["var"])
                b["nret"] += 1
            b["prev_mid"] = mid
        else:
            b["prev_mid"] = nan
        row["volatility"] = math.sqrt(b["var"]) if b["nret"] else nan
        return row


def reference_rows(events, symbols, ticks, depth=DEPTH):
    ref = RefBook(symbols, ticks, depth, VWAP_WIN, HALFLIFE)
    rows, pend = [], None
    for ts, si, kind, side, price, qty, seq in events:
        if pend is not None and (pend[0], pend[1]) != (si, seq):
            r = ref.end(symbols[pend[0]], pend[2], pend[1])
            if r is not None:
                rows.append(r)
        ref.event(symbols[si], kind, side, price, qty, ts)
        pend = (si, seq, ts)
    if pend is not None:
        r = ref.end(symbols[pend[0]], pend[2], pend[1])
        if r is not None:
            rows.append(r)
    return rows, ref


def random_stream(seed, n_symbols, n_messages, tick_idx):
    """A random multi-symbol market stream exercising every kind and the awkward cases."""
    rng = random.Random(seed)
    symbols = [f"SIM:S{i}" for i in range(n_symbols)]
    ticks = [TICKS[(tick_idx + 3 * i) % len(TICKS)] for i in range(n_symbols)]
    inv = [round(1 / t) for t in ticks]
    centre = [rng.randint(60_000, 5_000_000) for _ in symbols]
    live = [{1: set(), -1: set()} for _ in symbols]
    seqs = [0] * n_symbols
    ts = 1_000_000_000
    events = []
    for _ in range(n_messages):
        si = rng.randrange(n_symbols)
        seqs[si] += rng.randint(1, 3)
        seq = seqs[si]
        ts += rng.choice([0, 1, 1000, 400_000_000, 3_000_000_000])
        roll = rng.random()
        px = lambda t: t / inv[si]  # noqa: E731
        if roll < 0.04:  # a jump of thousands of ticks
            centre[si] = max(50_000, centre[si] + rng.choice([-1, 1]) * rng.randint(1000, 30000))
        if roll < 0.10:  # a snapshot, complete in this message or spread over several
            events.append((ts, si, S.CLEAR, 0, 0.0, 0.0, seq))
            live[si] = {1: set(), -1: set()}
            for _ in range(rng.randint(0, 6)):
                side = rng.choice([1, -1])
                t = centre[si] - side * rng.randint(1, 20)
                events.append((ts, si, S.LEVEL, side, px(t), float(rng.randint(1, 50)), seq))
                live[si][side].add(t)
            if rng.random() < 0.7:
                events.append((ts, si, S.SNAPSHOT_END, 0, 0.0, 0.0, seq))
            continue
        if roll < 0.13:
            events.append((ts, si, S.SNAPSHOT_END, 0, 0.0, 0.0, seq))
            continue
        if roll < 0.17:  # empty one side completely in one message
            side = rng.choice([1, -1])
            for t in sorted(live[si][side]):
                events.append((ts, si, S.LEVEL, side, px(t), 0.0, seq))
            live[si][side] = set()
            if not live[si][side] and rng.random() < 0.5:
                continue
        for _ in range(rng.choice([1, 1, 1, 2, 3, 5])):
            r = rng.random()
            if r < 0.15:
                side = rng.choice([1, -1, 0])
                events.append((ts, si, S.TRADE, side, px(centre[si] + rng.randint(-3, 3)), float(rng.randint(1, 20)), seq))
            elif r < 0.18:
                events.append((ts, si, S.TICK, 0, px(centre[si]), 1.0, seq))
            elif r < 0.45 and (live[si][1] or live[si][-1]):
                side = 1 if live[si][1] and (not live[si][-1] or rng.random() < 0.5) else -1
                t = rng.choice(sorted(live[si][side]))
                events.append((ts, si, S.LEVEL, side, px(t), 0.0, seq))
                live[si][side].discard(t)
            else:
                side = rng.choice([1, -1])
                t = centre[si] - side * rng.randint(0, 25)
                if rng.random() < 0.05:
                    t = centre[si] - side * rng.randint(1000, 8000)  # far away, then the centre may move
                if rng.random() < 0.05:
                    events.append((ts, si, S.LEVEL, side, px(t + 999_999), 0.0, seq))  # delete of a price never held
                events.append((ts, si, S.LEVEL, side, px(t), float(rng.randint(1, 100)), seq))
                live[si][side].add(t)
        centre[si] += rng.randint(-3, 3)
    return events, symbols, ticks


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
    """MODE_NONE (the engine's mode: no rows) skips unchanged feature upkeep; the state must match."""
    events, symbols, ticks = random_stream(seed, n_symbols, n_messages, tick_idx)
    states = []
    for mode in (B.MODE_EVERY, B.MODE_NONE):
        schema, batches = make_batches(events, symbols, ticks)
        _, bs = run_stream(schema, batches, mode=mode, **OPTS)
        states.append(bs.state)
    a, b = states
    cols = [B.I_NB, B.I_NA, B.I_BB, B.I_BA, B.I_NVOL, B.I_VW_LEN, B.I_INSNAP]
    assert (a.ist[:, cols] == b.ist[:, cols]).all()
    np.testing.assert_allclose(a.fst, b.fst, rtol=1e-12, equal_nan=True)
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


def test_output_buffers_are_reused_only_once_no_batch_refers_to_them():
    ev = [(i, 0, S.LEVEL, 1 if i % 2 else -1, 10.0 + (0.01 if i % 2 else 0.03) + 0.01 * (i % 5), float(i + 1), i) for i in range(40)]
    schema, batches = make_batches(ev, ["SIM:A"], [0.01], split=list(range(5, 40, 5)))
    ref = BookStream(S.schema_instruments(schema), depth=2)
    want = pa.Table.from_batches([o for o in map(ref.process, batches) if o is not None and o.num_rows]).combine_chunks()
    bs = BookStream(S.schema_instruments(schema), depth=2)
    held = [bs.process(b) for b in batches[:3]]  # batches still referenced: three distinct buffer sets
    assert len(bs._spare) == 3
    rest = []
    for b in batches[3:]:
        out = bs.process(b)
        rest.append(pydict(out))  # copied out, then dropped: its set is free for the next batch
        del out
    assert len(bs._spare) == 4  # the held three plus one reused for every later batch
    got = pydict(pa.Table.from_batches(held))
    for k in got:
        got[k] += [v for r in rest for v in r[k]]
    def norm(d):  # NaN-safe comparison
        return {k: [None if isinstance(v, float) and v != v else v for v in vals] for k, vals in d.items()}

    assert norm(got) == norm(pydict(want))
