"""Binance parser and local-book algorithm: published vectors, sync rules, malformed input."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from sq.venues.binance import parser
from sq.venues.binance.book_sync import APPLY, BUFFER, GAP, IGNORE, RETRY, SYNCED, SymbolSync
from sq.venues.binance.pipeline import MarketPipeline, PipeSymbol
from tests.support.fakes.binance.helpers import DictBook, messages, same_book
from tests.support.process import VECTORS

BINANCE_VECTORS = VECTORS / "binance"  # recorded Binance messages (fixtures/vectors/README.md)


def vec(name: str) -> bytes:
    return (BINANCE_VECTORS / name).read_bytes()


def rows(r):
    return list(zip(r.ts.tolist(), r.sym.tolist(), r.kind.tolist(), r.side.tolist(), r.price.tolist(), r.qty.tolist(), r.seq.tolist()))


SPOT = PipeSymbol("BINANCE:BTCUSDT", "BTCUSDT", "spot")
FUT = PipeSymbol("BINANCE-FUT:BTCUSDT", "BTCUSDT", "futures")
ETH = PipeSymbol("BINANCE:ETHUSDT", "ETHUSDT", "spot")


def test_futures_depth_vector_parses_to_expected_rows():
    frame = vec("ws_futures_usdt_depth_update.json")
    ev = json.loads(frame)
    sc = parser.scan([frame])
    assert sc.ints[0, parser.C_STATUS] == parser.ST_DEPTH
    assert (sc.ints[0, parser.C_E], sc.ints[0, parser.C_T], sc.ints[0, parser.C_U], sc.ints[0, parser.C_u], sc.ints[0, parser.C_pu]) == (
        1571889248277, 1571889248276, 390497796, 390497878, 390497794)
    assert sc.symbol(0) == b"BTCUSDT"
    want = [(1, float(p), float(q)) for p, q in ev["b"]] + [(-1, float(p), float(q)) for p, q in ev["a"]]
    got = list(zip(sc.side.tolist(), sc.px.tolist(), sc.qty.tolist()))
    assert got == want  # exact: the kernel's decimal conversion equals float(str)

    # through the pipeline: synced by a snapshot straddling the event (futures rule U ≤ L ≤ u)
    p = MarketPipeline([FUT])
    assert len(p.feed([frame], 5, "futures")) == 0 and p.wanted() == [0]
    snap = json.dumps({"lastUpdateId": 390497800, "E": 1571889248270, "T": 1571889248270, "bids": [["7403.00", "1.0"]], "asks": [["7406.00", "2.0"]]})
    out = rows(p.snapshot(0, snap, 7))
    assert [r[2] for r in out[:4]] == [3, 1, 1, 4]
    assert out[1][4:] == (7403.0, 1.0, 390497800)
    tail = out[4:]
    assert [(r[3], r[4], r[5]) for r in tail] == want
    assert all(r[6] == 390497878 and r[0] == 1571889248277 * 1_000_000 and r[2] == 1 for r in tail)


def test_spot_agg_trade_vector_is_a_trade_row():
    frame = vec("ws_spot_agg_trade.json")
    p = MarketPipeline([ETH])
    out = rows(p.feed([frame], 11, "spot"))
    assert out == [(1675759520848 * 1_000_000, 0, 2, 1, 1632.46, 0.34305, 226532)]  # ts = E; m=false: buyer aggressor
    assert p.counters["trades"] == 1 and p.counters["unknown_fields"] == 0


def test_spot_snapshot_vector_and_diffs_rebuild_the_expected_book():
    snap_body = vec("spot_market_depth.json")
    snap = json.loads(snap_body)
    L = snap["lastUpdateId"]
    # a reference dict book, independent of the pipeline
    ref = {(1, float(p)): float(q) for p, q in snap["bids"]} | {(-1, float(p)): float(q) for p, q in snap["asks"]}
    diffs = [
        # straddles L+1; removes the best bid, changes an ask, adds a level
        {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": L - 3, "u": L + 2, "b": [["60650.00000000", "0.00000000"], ["60649.00", "1.25"]], "a": [["60653.68000000", "0.5"]]},
        {"e": "depthUpdate", "E": 2, "s": "BTCUSDT", "U": L + 3, "u": L + 3, "b": [], "a": [["60650.01000000", "0.00000000"], ["60651.00", "3"]]},
        {"e": "depthUpdate", "E": 3, "s": "BTCUSDT", "U": L + 4, "u": L + 9, "b": [["60600.00", "0"]], "a": []},  # delete of an absent level is normal
    ]
    stale = {"e": "depthUpdate", "E": 0, "s": "BTCUSDT", "U": L - 10, "u": L - 5, "b": [["1.00", "9"]], "a": []}
    p = MarketPipeline([SPOT])
    frames = [json.dumps({"stream": "btcusdt@depth@100ms", "data": d}).encode() for d in [stale] + diffs[:1]]
    assert len(p.feed(frames, 1, "spot")) == 0  # buffered until the snapshot
    out = rows(p.snapshot(0, snap_body, 2))
    out += rows(p.feed([json.dumps({"stream": "btcusdt@depth@100ms", "data": d}).encode() for d in diffs[1:]], 3, "spot"))
    for d in diffs:
        for side, key in ((1, "b"), (-1, "a")):
            for px, q in d[key]:
                if float(q) == 0:
                    ref.pop((side, float(px)), None)
                else:
                    ref[(side, float(px))] = float(q)
    book = DictBook()
    for r in out:
        book.apply((r[0], "S", r[2], r[3], r[4], r[5], r[6]))
    assert same_book(book.books["S"], ref)
    assert [m[0][6] for m in messages([(r[0], "S", *r[2:]) for r in out])] == [L, L + 2, L + 3, L + 9]
    assert p.counters["gaps"] == 0 and p.syncs[0].last == L + 9


def test_spot_sync_rules():
    s = SymbolSync(futures=False)
    assert s.on_diff(100, 110, -1) == BUFFER
    s.push(100, 110, -1, "a")
    s.push(111, 120, -1, "b")
    assert s.on_snapshot(98) == (RETRY, [])  # L + 1 < first U: snapshot too old
    verdict, evs = s.on_snapshot(105)  # drops nothing (u=110 > 105), first straddles 106
    assert verdict == SYNCED and [e.payload for e in evs] == ["a", "b"] and s.last == 120
    assert s.on_diff(115, 120, -1) == IGNORE  # duplicate
    assert s.on_diff(121, 125, -1) == APPLY
    assert s.on_diff(127, 130, -1) == GAP and not s.synced and s.gaps == 1
    s.push(127, 130, -1, "c")
    verdict, evs = s.on_snapshot(140)  # everything buffered is older: dropped
    assert verdict == SYNCED and evs == [] and s.last == 140
    assert s.on_diff(142, 150, -1) == GAP  # first event after the snapshot must straddle L + 1


def test_futures_sync_rules():
    s = SymbolSync(futures=True)
    s.push(100, 110, 99, "a")
    s.push(111, 120, 110, "b")
    assert s.on_snapshot(99)[0] == RETRY  # L < first U
    verdict, evs = s.on_snapshot(110)  # u < L dropped; first must have U ≤ L ≤ u: (100, 110) applies
    assert verdict == SYNCED and [e.payload for e in evs] == ["a", "b"]
    assert s.on_diff(121, 130, 120) == APPLY
    assert s.on_diff(121, 130, 120) == IGNORE  # duplicate
    assert s.on_diff(135, 140, 133) == GAP  # pu ≠ previous u
    s2 = SymbolSync(futures=True)
    s2.push(100, 110, 99, "a")
    s2.push(115, 120, 112, "b")  # a hole inside the buffer
    verdict, evs = s2.on_snapshot(105)
    assert verdict == SYNCED and [e.payload for e in evs] == ["a"] and not s2.synced and s2.gaps == 1
    assert [e.payload for e in s2.buffer] == ["b"]


def test_malformed_unknown_fields_and_server_errors_are_counted_and_logged(caplog):
    p = MarketPipeline([SPOT])
    p.feed([json.dumps({"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 10, "u": 12, "b": [], "a": []}).encode()], 1)
    p.snapshot(0, json.dumps({"lastUpdateId": 11, "bids": [["1.0", "1"]], "asks": [["2.0", "1"]]}), 2)
    frames = [
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","b":[["1",',  # truncated
        b"not json at all",
        b'{"error":{"code":-1003,"msg":"too many"},"id":null}',
        b'{"result":null,"id":1}',
        json.dumps({"stream": "btcusdt@depth@100ms", "data": {"e": "depthUpdate", "E": 3, "s": "BTCUSDT", "U": 13, "u": 13,
                                                               "b": [["1.5", "2"]], "a": [], "zz": {"x": [1]}}}).encode(),
        json.dumps({"stream": "btcusdt@trade", "data": {"e": "trade", "E": 4, "s": "BTCUSDT", "t": 5, "p": "1.6", "q": "1",
                                                         "T": 4, "m": True, "newfield": 1}}).encode(),
        json.dumps({"stream": "btcusdt@trade", "data": {"e": "trade", "E": 4, "s": "BTCUSDT", "t": 6, "p": "oops", "q": "1", "T": 4, "m": True}}).encode(),
        json.dumps({"e": "depthUpdate", "E": 5, "s": "BTCUSDT", "U": 14, "u": 14, "b": [["1.5", "0.1234567890123456789"]], "a": []}).encode(),  # too long for the kernel: Python parses it
    ]
    with caplog.at_level(logging.INFO, logger="sq.binance"):
        out = rows(p.feed(frames, 3))
    c = p.counters
    assert c["malformed"] == 3 and c["server_errors"] == 1 and c["control"] == 1 and c["unknown_fields"] == 2
    # the good events still came through, in order
    assert [(r[2], r[4], r[6]) for r in out] == [(1, 1.5, 13), (2, 1.6, 13), (1, 1.5, 14)]
    assert out[2][5] == 0.1234567890123456789
    text = caplog.text
    assert "malformed" in text and "stream error" in text and "zz" in text and "newfield" in text


def test_unknown_symbol_frames_are_counted():
    p = MarketPipeline([SPOT])
    p.feed([json.dumps({"e": "depthUpdate", "E": 1, "s": "XRPUSDT", "U": 1, "u": 2, "b": [], "a": []}).encode()], 1)
    assert p.counters["unknown_symbols"] == 1 and p.wanted() == []


def test_book_ticker_is_a_top_of_book_view():
    p = MarketPipeline([SPOT], book="ticker")
    out = rows(p.feed([b'{"u":400900217,"s":"BTCUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}'], 9))
    assert [(r[2], r[3], r[5]) for r in out] == [(3, 0, 0.0), (1, 1, 31.21), (1, -1, 40.66), (4, 0, 0.0)]
    assert [r[4] for r in out[1:3]] == [25.3519, 25.3652] and np.isnan(out[0][4]) and np.isnan(out[3][4])
    assert {r[6] for r in out} == {400900217}


def test_kernel_matches_float_on_random_decimals():
    rng = np.random.default_rng(3)
    levels = [[f"{x:.{d}f}", f"{y:.{d}f}"] for x, y, d in zip(rng.uniform(0, 1e6, 500), rng.uniform(0, 1e3, 500), rng.integers(0, 9, 500))]
    frame = json.dumps({"e": "depthUpdate", "E": 1, "s": "X", "U": 1, "u": 1, "b": levels, "a": []}).encode()
    sc = parser.scan([frame])
    assert sc.px.tolist() == [float(a) for a, _ in levels] and sc.qty.tolist() == [float(b) for _, b in levels]


@pytest.mark.parametrize("frame", [b"", b"{", b'{"data":', b'{"e":"depthUpdate","U":1}', b"[1,2]", b'{"e":"depthUpdate","s":"BTCUSDT","U":1,"u":2,"b":[["1","2"]}'])
def test_kernel_never_crashes_on_garbage(frame):
    p = MarketPipeline([SPOT])
    p.feed([frame], 1)
    assert p.counters["frames"] == 1


def test_endpoints_overrides_testnet_and_stream_limits(monkeypatch):
    from sq.core.config import load_config
    from sq.venues.binance.endpoints import MAX_STREAMS_PER_CONNECTION, endpoints, stream_names

    for k in ("SQ_BINANCE_REST_URL", "SQ_BINANCE_WS_URL", "SQ_BINANCE_WS_API_URL", "SQ_BINANCE_FUTURES_REST_URL", "SQ_BINANCE_FUTURES_WS_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("SQ_HOME", "/nonexistent-sq-home")
    cfg = load_config(None, environ={"SQ_HOME": "/nonexistent-sq-home"})
    prod, test = endpoints(cfg.binance), endpoints(cfg.binance, testnet=True)
    assert prod.rest("spot") == "https://api.binance.com" and prod.ws("futures") == "wss://fstream.binance.com"
    assert test.rest("spot") == "https://testnet.binance.vision" and test.rest("futures") == "https://testnet.binancefuture.com"
    cfg2 = load_config(None, environ={"SQ_HOME": "/nonexistent-sq-home", "SQ_BINANCE_REST_URL": "http://127.0.0.1:9"})
    assert endpoints(cfg2.binance, testnet=True).rest("spot") == "http://127.0.0.1:9"  # an override always wins
    assert prod.url("futures", "depth") == "https://fapi.binance.com/fapi/v1/depth"
    assert prod.combined_stream_url("spot", stream_names("BTCUSDT", "full", "spot")) == \
        "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/btcusdt@trade"
    with pytest.raises(ValueError):
        prod.combined_stream_url("spot", ["x@trade"] * (MAX_STREAMS_PER_CONNECTION + 1))
