"""Trades derived from the Kite ticker's day volume (docs/streams.md, "Zerodha: derived trades"),
checked against sequences of the recorded vectors in fixtures/vectors/kite, each expected trade
computed by hand from the packets' decoded values (the vectors' README and the official client):

* INFY quote (ticker_quote.packet: last 1573.15, volume 1175986, no depth) then INFY full
  (ticker_full.packet: last 1573.7, volume 1192471, last trade time = exchange time 10:41:27
  IST, best bid 1573.40, best ask 1573.70) — one trade of 1192471 − 1175986 = 16485 at 1573.70;
* the cppkiteconnect frame (INFY last 1299.05, bid 1299.00, ask 1299.05; TCS last 3209.40, bid
  3209.70, ask 3209.95 at 15:10:55 / 15:10:54 IST) followed by the same frame with each day
  volume grown by its last traded quantity (INFY 2, TCS 148) and one second later;
* kiteconnectjs quote then full of TATAMOTORS (both volume 22261032): no trade.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import struct

import pyarrow as pa
import pytest

from sq.core import schemas as S
from sq.core.schemas import Instrument
from sq.venues.zerodha.ticker_parser import TickerParser
from tests.support.fakes.kite import KITE_VECTORS
from tests.support.fakes.kite import packets

TV = KITE_VECTORS / "ticker_vectors"
INFY, TATA, TCS = 408065, 884737, 2953217
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
SEC = 10**9


def parser() -> TickerParser:
    tokens = {INFY: "NSE:INFY", TATA: "NSE:TATAMOTORS", TCS: "NSE:TCS"}
    return TickerParser(tokens, {s: Instrument(s, "zerodha", 0.05, 1.0, {"depth_view": 5}) for s in tokens.values()})


def ist(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=IST).timestamp()) * SEC


def rows(batch) -> list[dict]:
    if batch is None:
        return []
    cols = [c.cast(pa.int64()) if pa.types.is_timestamp(c.type) else c for c in batch.columns]
    cols = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in cols]
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names).to_pylist()


def trades(batch) -> list[tuple]:
    """(symbol, side, price, qty, ts) of the batch's trade rows."""
    return [(r["symbol"], r["side"], pytest.approx(r["price"]), r["qty"], r["ts"]) for r in rows(batch) if r["kind"] == S.TRADE]


def quote_packet() -> bytes:
    return base64.b64decode((KITE_VECTORS / "ticker_quote.packet").read_text())


def full_packet() -> bytes:
    return base64.b64decode((KITE_VECTORS / "ticker_full.packet").read_text())


def patched(packet: bytes, *, last: float | None = None, volume: int | None = None, ltt: int | None = None,
            ts: int | None = None) -> bytes:
    """A recorded quote/full packet with some fields rewritten (big-endian offsets of the Kite
    layout: last price 4, volume 16, last trade time 44, exchange time 60; NSE prices × 100)."""
    b = bytearray(packet)
    if last is not None:
        struct.pack_into(">i", b, 4, round(last * 100))
    if volume is not None:
        struct.pack_into(">I", b, 16, volume)
    if ltt is not None:
        struct.pack_into(">I", b, 44, ltt)
    if ts is not None:
        struct.pack_into(">I", b, 60, ts)
    return bytes(b)


def field(packet: bytes, offset: int) -> int:
    return struct.unpack_from(">I", packet, offset)[0]


def bare(*pkts: bytes) -> bytes:
    return packets.frame(list(pkts))


def test_quote_then_full_of_infy_gives_one_trade_before_the_book():
    want = json.loads((KITE_VECTORS / "ticker_full.json").read_text())
    q, f = quote_packet(), full_packet()
    assert field(q, 16) == 1175986 and field(f, 16) == 1192471
    p = parser()
    assert p.parse([bare(q)], ist("2021-07-05T10:41:20")) is not None
    assert trades(p.parse([bare(q)], ist("2021-07-05T10:41:20"))) == []  # same volume: nothing traded
    b = p.parse([bare(f)], ist("2021-07-05T10:41:28"))
    out = rows(b)
    ltt = ist(want["last_trade_time"].replace(" ", "T"))
    # the quote packet has no depth: the tick test decides (1573.70 > 1573.15, an uptick → buyer)
    assert trades(b) == [("NSE:INFY", 1, 1573.7, 16485.0, ltt)]
    assert [r["kind"] for r in out][:2] == [S.TRADE, S.CLEAR] and out[-1]["kind"] == S.TICK
    assert len({r["seq"] for r in out}) == 1
    t = out[0]
    assert t["orders"] is None and t["volume"] is None and t["last_trade_time"] is None and t["recv_ts"] == ist("2021-07-05T10:41:28")


def test_full_then_quote_is_a_volume_reset_and_the_next_packet_trades_from_it():
    p = parser()
    day = ist("2021-07-05T10:41:30")
    assert trades(p.parse([bare(full_packet())], day)) == []  # the first packet: no previous volume
    assert trades(p.parse([bare(quote_packet())], day + SEC)) == []  # volume down: reset, nothing
    # from the quote's 1175986 up to 1192471 again; the quote had no depth: tick test, an uptick
    assert trades(p.parse([bare(full_packet())], day + 2 * SEC)) == [("NSE:INFY", 1, 1573.7, 16485.0, ist("2021-07-05T10:41:27"))]


def test_recorded_frame_then_grown_volumes_take_the_aggressor_from_the_previous_touch():
    f0 = (TV / "cppkiteconnect" / "websocket_ticks.bin").read_bytes()
    infy, tcs = f0[4:188], f0[190:374]
    assert field(infy, 0) == INFY and field(tcs, 0) == TCS
    assert (field(infy, 16), field(infy, 8), field(tcs, 16), field(tcs, 8)) == (6065675, 2, 2261635, 148)
    t_infy, t_tcs = ist("2021-02-08T15:10:55") // SEC, ist("2021-02-08T15:10:54") // SEC
    assert (field(infy, 44), field(infy, 60), field(tcs, 44), field(tcs, 60)) == (t_infy, t_infy, t_tcs, t_tcs)
    f1 = bare(patched(infy, volume=6065675 + 2, ltt=t_infy + 1, ts=t_infy + 1),
              patched(tcs, volume=2261635 + 148, ltt=t_tcs + 1, ts=t_tcs + 1))
    p = parser()
    assert trades(p.parse([f0], 1)) == []
    # INFY 1299.05 ≥ the previous ask 1299.05 → buyer; TCS 3209.40 ≤ the previous bid 3209.70 → seller
    assert trades(p.parse([f1], 2)) == [("NSE:INFY", 1, 1299.05, 2.0, (t_infy + 1) * SEC),
                                        ("NSE:TCS", -1, 3209.4, 148.0, (t_tcs + 1) * SEC)]


def test_between_the_touch_the_tick_test_decides_and_a_zero_tick_keeps_the_last_direction():
    f = full_packet()
    t0 = field(f, 60)
    p = parser()
    p.parse([bare(f)], 1)  # bid 1573.40, ask 1573.70, last 1573.70
    mid = patched(f, last=1573.55, volume=1192471 + 3, ltt=t0 + 1, ts=t0 + 1)  # inside the touch, a downtick
    same = patched(f, last=1573.55, volume=1192471 + 10, ltt=t0 + 2, ts=t0 + 2)  # inside again, unchanged price
    assert trades(p.parse([bare(mid)], 2)) == [("NSE:INFY", -1, 1573.55, 3.0, (t0 + 1) * SEC)]
    assert trades(p.parse([bare(same)], 3)) == [("NSE:INFY", -1, 1573.55, 7.0, (t0 + 2) * SEC)]


def test_no_touch_and_no_price_change_is_side_zero():
    q = quote_packet()
    p = parser()
    t = ist("2021-07-05T10:41:00")
    p.parse([bare(q)], t)
    assert trades(p.parse([bare(patched(q, volume=1175986 + 1))], t + SEC)) == [("NSE:INFY", 0, 1573.15, 1.0, t + SEC)]


def test_the_trade_time_stays_between_the_previous_packet_and_this_one():
    f = full_packet()
    t0 = field(f, 60)
    p = parser()
    p.parse([bare(f)], 1)
    early = patched(f, volume=1192471 + 5, ltt=t0 - 30, ts=t0 + 1)  # a last trade time before the previous packet
    assert trades(p.parse([bare(early)], 2))[0][4] == t0 * SEC
    late = patched(f, volume=1192471 + 9, ltt=t0 + 60, ts=t0 + 2)  # after this packet's own time
    assert trades(p.parse([bare(late)], 3))[0][4] == (t0 + 2) * SEC


def test_an_equal_volume_gives_no_trade_and_a_one_sided_touch_still_decides():
    """TATAMOTORS quote then full at the same volume 22261032: nothing traded. The full packet
    (a post-close snapshot) shows one bid, 5617 at 392.95, and no ask: 2 more traded at 392.95
    hit that bid."""
    q = (TV / "kiteconnectjs" / "quoteMode_binary.packet").read_bytes()
    f = (TV / "kiteconnectjs" / "fullMode_binary.packet").read_bytes()
    assert field(q[4:], 16) == field(f[4:], 16) == 22261032
    p = parser()
    b1 = p.parse([q], ist("2022-06-16T11:18:40"))
    b2 = p.parse([f], ist("2022-06-16T11:18:49"))
    assert trades(b1) == [] and trades(b2) == [] and rows(b2)[0]["kind"] == S.CLEAR
    ts = field(f[4:], 60)
    more = patched(f[4:], volume=22261032 + 2, ts=ts + 1)  # last trade time 10:27:44 IST: before the previous packet
    assert trades(p.parse([bare(more)], 1)) == [("NSE:TATAMOTORS", -1, 392.95, 2.0, ts * SEC)]


def test_a_new_ist_day_resets_and_ltp_packets_do_not_count():
    q, f = quote_packet(), full_packet()
    p = parser()
    p.parse([bare(q)], ist("2021-07-04T15:29:00"))  # the day before (IST): no trade across days
    assert trades(p.parse([bare(f)], 5)) == []
    p = parser()
    p.parse([bare(q)], ist("2021-07-05T02:00:00"))  # 2021-07-04 20:30 UTC, the same IST day as the full packet
    ltp = packets.ltp(INFY, 1600.0)  # no volume: it neither trades nor moves the tick test's reference
    assert trades(p.parse([bare(ltp)], ist("2021-07-05T10:41:25"))) == []
    assert trades(p.parse([bare(f)], 5)) == [("NSE:INFY", 1, 1573.7, 16485.0, ist("2021-07-05T10:41:27"))]


def test_state_is_per_instrument_and_survives_batches_and_chunks():
    import numpy as np

    q, f = quote_packet(), full_packet()
    tq = (TV / "kiteconnectjs" / "quoteMode_binary.packet").read_bytes()
    frames = [bare(q), tq, bare(f)]  # TATA's packet between INFY's two
    recv = [ist("2021-07-05T10:41:20")] * 3
    whole = parser().parse(frames, recv)
    assert trades(whole) == [("NSE:INFY", 1, 1573.7, 16485.0, ist("2021-07-05T10:41:27"))]
    lens = np.array([len(x) for x in frames], dtype=np.int64)
    fend = np.cumsum(lens)
    buf = np.frombuffer(b"".join(frames), dtype=np.uint8)
    chunked = list(parser().parse_chunks(buf, fend - lens, fend, np.array(recv, dtype=np.int64), max_rows=1))
    assert len(chunked) == 3 and pa.Table.from_batches(chunked).equals(pa.Table.from_batches([whole]))


def test_streams_mark_their_trades_as_derived():
    p = parser()
    meta = json.loads(p.schema.metadata[b"sq.instruments"])
    assert all(v["trades"] == "derived" and v["depth_view"] == 5 for v in meta.values())
    assert p.instruments["NSE:INFY"].extra["trades"] == "derived"
    assert [f.name for f in p.schema][: len(S.MARKET_FIELDS)] == [f.name for f in S.MARKET_FIELDS]


def test_the_rule_and_the_mark_are_documented():
    from sq.venues.zerodha.ticker_parser import TRADES_DERIVED, TRADES_EXTRA
    from tests.support.process import ROOT

    doc = (ROOT / "docs" / "streams.md").read_text()
    section = doc.split("### Zerodha: derived trades", 1)[1].split("\n## ", 1)[0]
    assert f'"{TRADES_EXTRA}": "{TRADES_DERIVED}"' in section
    for words in ("volume increase", "last traded price", "best ask", "best bid", "tick test", "last trade time", "IST day"):
        assert words in section, words
