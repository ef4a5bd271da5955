"""The Kite ticker parser against the official vectors, the official client's own parser, and
hand-built packets for every layout and segment; fuzzed frames never crash it and are counted."""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import struct

import pytest

from sq.core import schemas as S
from sq.core.schemas import Instrument
from sq.venues.zerodha.ticker_parser import TickerParser, divisor, parse_text
from tests.support.fakes.kite import KITE_VECTORS
from tests.support.fakes.kite import packets

TV = KITE_VECTORS / "ticker_vectors"
INFY, TATA, TCS = 408065, 884737, 2953217
NIFTY, USDINR, BCD_TOKEN, NIFTYFUT = 256265, 412675, 1234 << 8 | 6, 13238786


def parser(tokens: dict[int, str] | None = None) -> TickerParser:
    tokens = tokens or {INFY: "NSE:INFY", TATA: "NSE:TATAMOTORS", TCS: "NSE:TCS", NIFTY: "NSE:NIFTY 50",
                        USDINR: "CDS:USDINR25DECFUT", BCD_TOKEN: "BCD:EURINR", NIFTYFUT: "NFO:NIFTY25DECFUT"}
    inst = {s: Instrument(s, "zerodha", 0.05, 1.0, {"depth_view": 5}) for s in tokens.values()}
    return TickerParser(tokens, inst)


def rows(batch) -> list[dict]:
    """Rows as dicts, timestamps as int nanoseconds (no pandas needed)."""
    import pyarrow as pa

    cols = [c.cast(pa.int64()) if pa.types.is_timestamp(c.type) else c for c in batch.columns]
    cols = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in cols]
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names).to_pylist()


def ist(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1e9)


def bare(packet: bytes) -> bytes:
    return packets.frame([packet])


def official(frame: bytes) -> list[dict]:
    """kiteconnect's own decoder (an independent reference implementation)."""
    from kiteconnect.ticker import KiteTicker

    kt = KiteTicker.__new__(KiteTicker)
    return kt._parse_binary(frame)


def check_against(tick: dict, out: list[dict]) -> None:
    """Our rows for one packet against a decoded tick dict (official JSON shape)."""
    t = [r for r in out if r["kind"] == S.TICK]
    assert len(t) == 1
    t = t[0]
    assert t["price"] == pytest.approx(tick["last_price"])
    if "last_quantity" in tick or "last_traded_quantity" in tick:
        assert t["qty"] == tick.get("last_quantity", tick.get("last_traded_quantity"))
        assert t["average_price"] == pytest.approx(tick.get("average_price", tick.get("average_traded_price")))
        assert t["volume"] == tick.get("volume", tick.get("volume_traded"))
        assert t["buy_quantity"] == tick.get("buy_quantity", tick.get("total_buy_quantity"))
        assert t["sell_quantity"] == tick.get("sell_quantity", tick.get("total_sell_quantity"))
    if "ohlc" in tick:
        for k in ("open", "high", "low", "close"):
            assert t[k] == pytest.approx(tick["ohlc"][k])
    if "depth" in tick:
        assert t["oi"] == tick["oi"] and t["oi_day_high"] == tick["oi_day_high"] and t["oi_day_low"] == tick["oi_day_low"]
        lv = [r for r in out if r["kind"] == S.LEVEL]
        want = [(1, d["price"], d["quantity"], d["orders"]) for d in tick["depth"]["buy"] if d["quantity"] or d["price"]]
        want += [(-1, d["price"], d["quantity"], d["orders"]) for d in tick["depth"]["sell"] if d["quantity"] or d["price"]]
        assert [(r["side"], pytest.approx(r["price"]), r["qty"], r["orders"]) for r in lv] == want
        kinds = [r["kind"] for r in out]
        assert kinds[0] == S.CLEAR and kinds[-2] == S.SNAPSHOT_END and kinds[-1] == S.TICK


def test_full_packet_matches_official_json():
    p = parser()
    pkt = base64.b64decode((KITE_VECTORS / "ticker_full.packet").read_text())
    assert pkt == (TV / "kiteconnect-mocks" / "ticker_full.packet.bin").read_bytes()
    out = rows(p.parse([bare(pkt)], 5))
    want = json.loads((KITE_VECTORS / "ticker_full.json").read_text())
    check_against(want, out)
    assert {r["ts"] for r in out} == {ist(want["timestamp"])}
    assert out[-1]["last_trade_time"] == ist(want["last_trade_time"]) and out[-1]["recv_ts"] == 5
    assert len(out) == 13 and {r["seq"] for r in out} == {1}
    assert all(r["symbol"] == "NSE:INFY" for r in out)


def test_quote_packet_matches_official_json():
    pkt = base64.b64decode((KITE_VECTORS / "ticker_quote.packet").read_text())
    out = rows(parser().parse([bare(pkt)], 77))
    want = json.loads((KITE_VECTORS / "ticker_quote.json").read_text())
    check_against(want, out)
    assert out[0]["oi"] is None and out[0]["last_trade_time"] is None
    assert out[0]["ts"] == 77  # no exchange time in quote mode: receive time


def test_ltp_vector_matches_official_json_value():
    fr = (TV / "kiteconnectjs" / "ltpMode_binary.packet").read_bytes()
    out = rows(parser().parse([fr], 1))
    assert len(out) == 1 and out[0]["kind"] == S.TICK and out[0]["price"] == pytest.approx(392.95)
    assert out[0]["qty"] == 0.0 and out[0]["volume"] is None
    want = json.loads((KITE_VECTORS / "ticker_ltp.json").read_text())
    assert rows(parser().parse([bare(packets.ltp(INFY, want["last_price"]))], 1))[0]["price"] == pytest.approx(want["last_price"])


@pytest.mark.parametrize("path", ["kiteconnectjs/quoteMode_binary.packet", "kiteconnectjs/fullMode_binary.packet",
                                  "kiteconnectjs/ltpMode_binary.packet", "cppkiteconnect/websocket_ticks.bin"])
def test_recorded_frames_match_the_official_parser(path):
    fr = (TV / path).read_bytes()
    ticks = official(fr)
    p = parser()
    out = rows(p.parse([fr], 1))
    assert p.stats.packets == len(ticks)
    for i, tick in enumerate(ticks):
        check_against(tick, [r for r in out if r["seq"] == i + 1])
        if "exchange_timestamp" in tick and tick["exchange_timestamp"]:
            mine = [r for r in out if r["seq"] == i + 1][0]["ts"]
            assert mine == int(tick["exchange_timestamp"].timestamp()) * 10**9  # naive local time, as kiteconnect gives it


def test_cpp_vector_expected_values():
    out = rows(parser().parse([(TV / "cppkiteconnect" / "websocket_ticks.bin").read_bytes()], 1))
    ticks = {r["symbol"]: r for r in out if r["kind"] == S.TICK}
    assert ticks["NSE:INFY"]["price"] == pytest.approx(1299.05)
    assert ticks["NSE:TCS"]["price"] == pytest.approx(3209.40)
    assert sorted({r["seq"] for r in out}) == [1, 2]


def test_index_packets_28_and_32():
    p = parser()
    q = packets.index_quote(NIFTY, 24012.35, 24100.5, 23950.0, 24000.0, 23990.1, 22.25)
    f = packets.index_full(NIFTY, 24012.35, 24100.5, 23950.0, 24000.0, 23990.1, -22.25, 1_700_000_000)
    assert len(q) == 28 and len(f) == 32
    b = p.parse([packets.frame([q, f])], 9)
    out = rows(b)
    assert [r["kind"] for r in out] == [S.TICK, S.TICK]
    a, c = out
    assert a["price"] == pytest.approx(24012.35) and a["high"] == pytest.approx(24100.5) and a["low"] == pytest.approx(23950.0)
    assert a["open"] == pytest.approx(24000.0) and a["close"] == pytest.approx(23990.1) and a["change"] == pytest.approx(22.25)
    assert c["change"] == pytest.approx(-22.25)
    assert [r["ts"] for r in out] == [9, 1_700_000_000 * 10**9]
    assert [r["seq"] for r in out] == [1, 2]
    assert official(packets.frame([f]))[0]["last_price"] == pytest.approx(24012.35)


@pytest.mark.parametrize("token,price", [(USDINR, 84.1234567), (BCD_TOKEN, 90.1234), (NIFTYFUT, 24101.3)])
def test_segment_divisors(token, price):
    assert divisor(token) == packets.divisor(token)
    bids = [(price - 0.01 * i, 10 + i, i + 1) for i in range(5)]
    asks = [(price + 0.01 * (i + 1), 20 + i, i + 2) for i in range(3)]
    pk = packets.full(token, price, 3, price, 1000, 55, 66, price, price, price, price, 1_700_000_000, 42, 50, 40, 1_700_000_001, bids, asks)
    out = rows(parser().parse([bare(pk)], 1))
    tick = out[-1]
    assert tick["price"] == pytest.approx(price, abs=1 / divisor(token))
    lv = [r for r in out if r["kind"] == S.LEVEL]
    assert len(lv) == 8  # empty depth entries are not levels
    assert [r["side"] for r in lv] == [1] * 5 + [-1] * 3
    assert lv[0]["price"] == pytest.approx(bids[0][0], abs=1 / divisor(token)) and lv[5]["orders"] == 2
    assert tick["oi"] == 42 and tick["oi_day_high"] == 50 and tick["oi_day_low"] == 40
    ref = official(bare(pk))[0]
    assert ref["last_price"] == pytest.approx(tick["price"])


def test_heartbeats_text_and_unknown_tokens():
    p = parser({INFY: "NSE:INFY"})
    assert p.parse([packets.HEARTBEAT, packets.HEARTBEAT], 1) is None
    assert p.parse([bare(packets.ltp(999_999, 1.0))], 1) is None
    st = p.stats
    assert st.heartbeats == 2 and st.unknown_tokens == 1 and st.packets == 0
    msg = parse_text(json.dumps({"type": "order", "data": {"order_id": "1"}}))
    assert msg.type == "order" and msg.data == {"order_id": "1"}
    assert parse_text('{"type": "error", "data": "bad"}').data == "bad"
    assert parse_text("not json") is None


def test_seq_is_one_per_packet_across_calls():
    p = parser({INFY: "NSE:INFY"})
    b1 = p.parse([packets.frame([packets.ltp(INFY, 1.0), packets.ltp(INFY, 2.0)])], 1)
    b2 = p.parse([packets.HEARTBEAT, packets.frame([packets.ltp(INFY, 3.0)])], 2)
    assert b1.column("seq").to_pylist() == [1, 2] and b2.column("seq").to_pylist() == [3]
    assert b1.schema.metadata[b"sq.stream"] == b"market"
    assert json.loads(b1.schema.metadata[b"sq.instruments"])["NSE:INFY"]["depth_view"] == 5


def test_fuzzed_frames_never_crash_and_are_counted():
    rng = random.Random(1234)
    p = parser({INFY: "NSE:INFY"})
    good = bare(packets.quote(INFY, 1.5, 1, 1.5, 10, 1, 1, 1, 1, 1, 1))
    frames = [b"", good[:-3], struct.pack(">HH", 1, 44) + b"\x00" * 10, struct.pack(">HH", 1, 13) + b"\x00" * 13,
              struct.pack(">H", 5) + good[2:]]
    frames += [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 400))) for _ in range(300)]
    for fr in frames:
        p.parse([fr], 1)  # must not raise
    st = p.stats
    assert st.bad_frames >= 3 and st.bad_packets >= 1
    # a good packet before the damage in the same frame survives
    mixed = good + struct.pack(">HH", 99, 0)
    mixed = struct.pack(">H", 2) + good[2:] + struct.pack(">H", 300)
    q = parser({INFY: "NSE:INFY"})
    b = q.parse([mixed], 1)
    assert b.num_rows == 1 and q.stats.bad_frames == 1


def every_layout(i: int) -> bytes:
    """One frame with every packet layout; prices and volumes move with i (volume grows: trades)."""
    t = 1_700_000_000 + i
    return packets.frame([
        packets.ltp(INFY, 1500 + i),
        packets.index_quote(NIFTY, 24000 + i, 24100, 23900, 24000, 23950, 50),
        packets.index_full(NIFTY, 24001 + i, 24100, 23900, 24000, 23950, 51, t),
        packets.quote(TATA, 700 + i, 5, 699.5, 1000 + 10 * i, 10, 20, 690, 710, 680, 695),
        packets.full(TCS, 3500 + i, 3, 3499.5, 5000 + 7 * i, 30, 40, 3490, 3510, 3480, 3495, t, 0, 0, 0, t,
                     [(3499.9 - k * 0.05, 10 + k, 1 + k) for k in range(5)], [(3500.1 + k * 0.05, 20 + k, 2) for k in range(3 + i % 3)]),
        packets.full(USDINR, 84.1 + i / 1000, 1, 84.1, 900 + i, 1, 1, 84, 84.2, 84, 84.1, t, 70, 80, 60, t,
                     [(84.0975, 5, 1)], [(84.1025, 6, 1)]),
    ])


def test_batches_are_valid_arrow_in_the_parser_schema_for_every_layout():
    p = parser()
    b = p.parse([every_layout(0), packets.HEARTBEAT, every_layout(1)], [1, 2, 3])
    b.validate(full=True)
    assert b.schema.equals(p.schema, check_metadata=True)
    out = rows(b)
    ticks = [r for r in out if r["kind"] == S.TICK]
    assert [r["volume"] is not None for r in ticks[:6]] == [False, False, False, True, True, True]
    assert [r["change"] for r in ticks[:3]] == [None, pytest.approx(50), pytest.approx(51)]
    assert all(r["volume"] is None and r["open"] is None and r["last_trade_time"] is None for r in out if r["kind"] != S.TICK)
    assert sum(r["kind"] == S.TRADE for r in out) == 3  # the second frame's quote and two full packets


def test_a_batch_a_consumer_keeps_is_never_overwritten():
    """Batches point into pooled buffers that the parser reuses once dropped: a kept batch must
    never see later frames (and the reuse must really happen, or this proves nothing)."""
    p = parser()
    kept = p.parse([every_layout(0)], 1)
    before = rows(kept)
    kept_addr = kept.column("price").buffers()[1].address
    seen, reused = set(), False
    for i in range(1, 40):
        b = p.parse([every_layout(i)], 1 + i)
        addr = b.column("price").buffers()[1].address
        assert addr != kept_addr
        reused |= addr in seen
        seen.add(addr)
    assert reused
    assert rows(kept) == before


def test_null_extras_hold_zeros_not_stale_values_from_a_reused_buffer():
    import numpy as np

    p = parser()
    for i in range(20):  # quote-only frames (tick rows everywhere) and mixed ones share the reused buffers
        fr = packets.frame([packets.quote(TATA, 700 + i, 5, 699.5, 1000 + 10 * i, 10, 20, 690, 710, 680, 695)] * 20) if i % 2 else every_layout(i)
        b = p.parse([fr], 1 + i)
        for name in ("volume", "open", "oi", "change", "last_trade_time"):
            col = b.column(name)
            raw = np.frombuffer(col.buffers()[1], dtype=np.int64 if name == "last_trade_time" else np.float64)[:len(col)]
            assert (raw[col.is_null().to_numpy(zero_copy_only=False)] == 0).all(), name


def test_rows_never_outgrow_the_room_the_parser_made():
    from sq.venues.zerodha.ticker_parser import row_bound
    import numpy as np

    rng = random.Random(99)
    good = [packets.full(TCS, 3500, 3, 3499.5, 5000 + k, 30, 40, 3490, 3510, 3480, 3495, 1, 0, 0, 0, 1, [(3499.9, 10, 1)] * 5, [(3500.1, 20, 2)] * 5)
            for k in range(30)]
    p = parser()
    for _ in range(200):
        fr = packets.frame(good[:rng.randrange(0, 30)] + [packets.ltp(INFY, 1.0)] * rng.randrange(0, 70))
        fr = fr[:rng.randrange(len(fr) // 2, len(fr) + 1)] if rng.random() < 0.3 else fr
        bound = row_bound(np.frombuffer(fr, np.uint8), np.zeros(1, np.int64), np.array([len(fr)], np.int64))
        b = p.parse([fr], 1)
        assert (0 if b is None else b.num_rows) <= bound
        if b is not None:
            b.validate(full=True)
    assert p.stats.packets > 0


def test_the_kernel_stops_at_the_end_of_its_room_instead_of_writing_past_it():
    """Were the room ever too small, the rows that do not fit are dropped and counted (a bad
    frame), never written past the buffer."""
    import numpy as np

    from sq.venues.zerodha.ticker_parser import parse_frames

    p = parser()
    layout, at = p._layout(1)  # room for 64 rows; the frame below gives 10 × 14
    fr = packets.frame([packets.full(TCS, 3500, 3, 3499.5, 5000 + k, 30, 40, 3490, 3510, 3480, 3495, 1, 0, 0, 0, 1,
                                     [(3499.9, 10, 1)] * 5, [(3500.1, 20, 2)] * 5) for k in range(10)])
    out = np.full(layout.size + 4096, 0xAB, np.uint8)
    n = parse_frames(np.frombuffer(fr, np.uint8), np.zeros(1, np.int64), np.array([len(fr)], np.int64), np.ones(1, np.int64),
                     p.keys, p.syms, p._tstate, p._stats, out, at, layout.header, layout.plan, np.empty(layout.cap, np.int16), p._nulls)
    assert 0 < n <= layout.cap and p.stats.bad_frames == 1
    assert (out[layout.size:] == 0xAB).all()
    assert layout.read(out).num_rows == n
