"""The burst kernel behind `MarketPipeline.feed`: same rows however a stream is cut, gaps mid-burst."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from sq.core.schemas import LEVEL
from sq.venues.binance.book_sync import APPLY, SymbolSync
from sq.venues.binance.pipeline import MarketPipeline, PipeSymbol

BTC, ETH = "BTCUSDT", "ETHUSDT"


def rows(r):
    """Rows as tuples (NaN prices of clear / snapshot-end rows as None, so rows compare equal)."""
    price = [None if x != x else x for x in r.price.tolist()]
    return list(zip(r.ts.tolist(), r.recv.tolist(), r.sym.tolist(), r.kind.tolist(), r.side.tolist(), price, r.qty.tolist(), r.seq.tolist()))


def symbols(market):
    return [PipeSymbol(f"X:{BTC}", BTC, market), PipeSymbol(f"X:{ETH}", ETH, market)]


def depth(s, U, u, pu, E, b, a, market, wrap=True, **extra):
    ev = {"e": "depthUpdate", "E": E, "s": s, "U": U, "u": u}
    if market == "futures":
        ev |= {"T": E - 1, "pu": pu}
    ev |= {"b": b, "a": a} | extra
    return json.dumps({"stream": s.lower() + "@depth@100ms", "data": ev} if wrap else ev, separators=(",", ":")).encode()


def stream(seed, market, n=600, odd=True, gaps=True):
    """Depth diffs of two symbols with duplicates (and gaps); with `odd`, also trades, unknown
    symbols and fields, decimals too long for the kernel and garbage. Ids continue from 100
    (BTCUSDT) and 500 (ETHUSDT)."""
    rng = random.Random(seed)
    last = {BTC: 100, ETH: 500}
    out = []
    for i in range(n):
        s = rng.choice((BTC, BTC, ETH))
        E = 1_700_000_000_000 + i
        x = rng.random() if odd else 1.0
        if x < 0.04:
            out.append(json.dumps({"stream": "t", "data": {"e": "trade", "E": E, "s": s, "t": i, "p": "1.5", "q": "2", "T": E, "m": True}}).encode())
            continue
        if x < 0.05:
            out.append(rng.choice([b"garbage", b'{"result":null,"id":3}', depth("XRPUSDT", 1, 2, 0, E, [["1", "1"]], [], market)]))
            continue
        lv = [[f"{rng.randint(100, 999) / 100:.2f}", f"{rng.random() * (rng.random() > .3):.8f}"] for _ in range(rng.randint(0, 6))]
        k = rng.randint(1, 4)
        U, u, pu = last[s] + 1, last[s] + k, last[s]
        y = rng.random()
        if y < 0.03:
            U, u = last[s] - 2, last[s]  # a duplicate
        elif y < 0.05 and gaps:
            U += 3
            u += 3
            pu += 2  # events lost: a gap
        extra = {}
        if odd and rng.random() < 0.02:
            extra["zz"] = [1, {"a": "b"}]
        if odd and rng.random() < 0.02:
            lv = [["1.5", "0.1234567890123456789"]]
        out.append(depth(s, U, u, pu, E, lv[: len(lv) // 2], lv[len(lv) // 2:], market, wrap=rng.random() < 0.7, **extra))
        last[s] = max(last[s], u)
    return out


def snapshot_for(p, code, market):
    """A snapshot whose lastUpdateId bridges the symbol's first buffered event."""
    U = p.syncs[code].buffer[0].U
    return json.dumps({"lastUpdateId": U if market == "futures" else U - 1, "bids": [["1.00", "1"]], "asks": [["9.99", "1"]]})


def run(frames, cuts, market, recv_per_frame=True, p=None, book="depth"):
    """Feed `frames` cut at `cuts`, answering the snapshot requests after each burst.

    Returns the rows and the positions where snapshots were answered."""
    p = p or MarketPipeline(symbols(market), book=book)
    out, points = [], []
    bounds = [0] + sorted(set(cuts)) + [len(frames)]
    for lo, hi in zip(bounds, bounds[1:]):
        if hi <= lo:
            continue
        recv = np.arange(1000 + lo, 1000 + hi, dtype=np.int64) if recv_per_frame else 7
        out += rows(p.feed(frames[lo:hi], recv, market))
        for code in p.wanted():
            points.append(hi)
            out += rows(p.snapshot(code, snapshot_for(p, code, market), 1000 + hi))
    return out, points, p


def synced(market):
    """A pipeline whose two books are synced at ids 100 (BTCUSDT) and 500 (ETHUSDT)."""
    p = MarketPipeline(symbols(market))
    for code, s in enumerate((BTC, ETH)):
        last = (100, 500)[code]
        p.feed([depth(s, last - 1 if market == "futures" else last, last, last - 2, 1, [], [], market)], 0, market)
        p.snapshot(code, json.dumps({"lastUpdateId": last - 1, "bids": [], "asks": []}), 0)
    assert p.wanted() == [] and (p.syncs[0].last, p.syncs[1].last) == (100, 500)
    return p


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_bursts_cut_anywhere_give_the_rows_of_frame_by_frame_feeding(market):
    frames = stream(7, market)
    ref, points, pref = run(frames, range(1, len(frames)), market)  # frame by frame
    c = pref.counters
    assert c["gaps"] > 0 and c["duplicates"] > 0 and c["malformed"] > 0 and c["unknown_fields"] > 0
    assert c["unknown_symbols"] > 0 and c["trades"] > 0 and len(ref) > 500
    rng = random.Random(1)
    for k in (0, 5, 40, 200):
        # snapshots are answered between bursts: cut where the reference answered them, elsewhere at random
        got, _, p = run(frames, set(rng.sample(range(1, len(frames)), k)) | set(points), market)
        assert got == ref
        assert p.counters == pref.counters and list(p.sync_log) == list(pref.sync_log)


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_one_burst_equals_frame_by_frame_on_a_synced_book(market):
    frames = stream(3, market, gaps=False)
    one, _, p1 = run(frames, [], market, recv_per_frame=False, p=synced(market))
    each, _, p2 = run(frames, range(1, len(frames)), market, recv_per_frame=False, p=synced(market))
    assert one == each and len(one) > 500 and p1.counters == p2.counters and p1.counters["duplicates"] > 0


@pytest.mark.parametrize("book", ["ticker", "none"])
def test_without_a_depth_book_diffs_make_no_rows_and_trades_keep_their_order(book):
    frames = stream(9, "spot")
    ref, points, pref = run(frames, range(1, len(frames)), "spot", book=book)
    got, _, p = run(frames, set(random.Random(2).sample(range(1, len(frames)), 30)), "spot", book=book)
    assert points == [] and got == ref and p.counters == pref.counters
    assert {r[3] for r in got} == {2} and len(got) == p.counters["trades"] > 10  # trade rows only
    assert p.counters["depth_frames"] > 400 and p.counters["unknown_fields"] > 0


def oracle(frames, market):
    """Level rows by the documented rules straight from json + SymbolSync (no kernel, no pipeline)."""
    syncs = []
    for last in (100, 500):
        s = SymbolSync(market == "futures")
        s.synced, s.last = True, last
        syncs.append(s)
    out = []
    for i, f in enumerate(frames):
        ev = json.loads(f)
        ev = ev.get("data", ev)
        code = (BTC, ETH).index(ev["s"])
        if syncs[code].on_diff(ev["U"], ev["u"], ev.get("pu", -1)) == APPLY:
            for side, key in ((1, "b"), (-1, "a")):
                out += [(ev["E"] * 1_000_000, 1000 + i, code, LEVEL, side, float(px), float(q), ev["u"]) for px, q in ev[key]]
    return out


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_one_burst_with_gaps_and_duplicates_matches_an_independent_oracle(market):
    frames = stream(11, market, odd=False)
    p = synced(market)
    got = rows(p.feed(frames, np.arange(1000, 1000 + len(frames)), market))
    assert got == oracle(frames, market) and len(got) > 100
    assert p.counters["gaps"] == 2 and p.counters["duplicates"] > 0 and p.wanted() == [0, 1]


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_gap_in_the_middle_of_a_burst(market):
    """Rows before the gap come out; the gap frame and everything after it for that symbol are
    buffered; the other symbol goes on; a snapshot bridges the buffered events."""
    p = MarketPipeline(symbols(market))
    for code, s in enumerate((BTC, ETH)):
        p.feed([depth(s, 11 if market == "spot" else 10, 12, 9, 1, [], [], market)], 0, market)
        p.snapshot(code, json.dumps({"lastUpdateId": 10, "bids": [["1.00", "1"]], "asks": [["2.00", "1"]]}), 0)
    frames = [
        depth(BTC, 13, 14, 12, 5, [["1.01", "1"]], [], market),
        depth(ETH, 13, 13, 12, 6, [], [["2.01", "3"]], market),
        depth(BTC, 17, 18, 16, 7, [["1.02", "2"]], [["1.99", "0"]], market),  # 15-16 lost
        depth(ETH, 14, 15, 13, 8, [["1.00", "0"]], [], market),
        depth(BTC, 19, 20, 18, 9, [], [["2.05", "4"]], market),
    ]
    out = rows(p.feed(frames, np.array([101, 102, 103, 104, 105]), market))
    assert [(r[2], r[5], r[7], r[1]) for r in out] == [(0, 1.01, 14, 101), (1, 2.01, 13, 102), (1, 1.00, 15, 104)]
    assert p.wanted() == [0] and p.counters["gaps"] == 1
    assert list(p.sync_log)[-1] == ("gap", 0, 14, 17, 18)
    assert [(e.U, e.u) for e in p.syncs[0].buffer] == [(17, 18), (19, 20)]
    snap = rows(p.snapshot(0, json.dumps({"lastUpdateId": 17, "bids": [], "asks": []}), 200))
    tail = [(r[4], r[5], r[6], r[7], r[0], r[1]) for r in snap[2:]]  # after clear + snapshot_end
    assert tail == [(1, 1.02, 2.0, 18, 7_000_000, 103), (-1, 1.99, 0.0, 18, 7_000_000, 103), (-1, 2.05, 4.0, 20, 9_000_000, 105)]
    assert p.wanted() == [] and p.syncs[0].last == 20


def test_one_receive_time_for_the_burst_or_one_per_frame():
    frames = stream(5, "spot", n=50, gaps=False)
    a, _, _ = run(frames, [], "spot", recv_per_frame=False, p=synced("spot"))
    b, _, _ = run(frames, [], "spot", p=synced("spot"))
    assert {r[1] for r in a} == {7} and [r[1] for r in b] == sorted(r[1] for r in b) and len({r[1] for r in b}) > 20
    p = MarketPipeline(symbols("spot"))
    with pytest.raises(ValueError):
        p.feed(frames[:3], np.arange(2), "spot")


def test_text_frames_and_empty_bursts():
    frames = stream(5, "spot", n=60)
    a, _, _ = run(frames, [10, 20], "spot")
    b, _, _ = run([f.decode() for f in frames], [10, 20], "spot")
    assert a == b and len(a) > 50 and len(MarketPipeline(symbols("spot")).feed([], 0)) == 0


def test_rows_handed_out_stay_as_they_were_after_later_bursts():
    frames = stream(4, "spot", n=400, gaps=False)
    p = synced("spot")
    kept = [(r, rows(r)) for r in (p.feed(frames[i:i + 16], i, "spot") for i in range(0, len(frames), 16))]
    assert sum(len(r) for r, _ in kept) > 500
    assert all(rows(r) == was for r, was in kept)


def test_duplicate_book_tickers_are_counted_wherever_the_burst_ends():
    p = MarketPipeline(symbols("spot"), book="ticker")
    t = [json.dumps({"u": u, "s": BTC, "b": "1.5", "B": "1", "a": "1.6", "A": "2"}).encode() for u in (5, 5, 6, 4)]
    assert len(p.feed(t[:2], 1)) == 4 and p.counters["duplicates"] == 1  # the duplicate ends the burst
    assert len(p.feed(t[2:], 2)) == 4 and p.counters["duplicates"] == 2
    assert p.counters["tickers"] == 2
