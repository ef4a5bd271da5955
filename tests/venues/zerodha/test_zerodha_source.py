"""The Kite ticker source against the local server (SIM-driven binary ticker): modes, limits,
raw capture → replay with identical rows, reconnect with re-subscription, order postbacks,
refused tokens and unknown symbols."""

from __future__ import annotations

import json
import threading
import time

import pyarrow as pa
import pytest

from sq.core import schemas as S
from sq.core.config import load_config
from sq.core.environment import Environment
from sq.core.exits import AuthError, UsageError
from sq.core.symbols import parse_symbols
from sq.venues.registry import SourceOptions, open_market_source
from tests.support.fakes.kite import packets
from tests.support.sourcetools import connected_through_outage


@pytest.fixture
def logged_in(kite_env, monkeypatch):
    monkeypatch.setenv("ZKITE_ACCESS_TOKEN", kite_env.issue_token())
    return kite_env


def opts(**kw) -> SourceOptions:
    kw.setdefault("duration_ns", 20_000_000_000)
    return SourceOptions(config=load_config(), env=Environment(), **kw)


def table(batches) -> pa.Table:
    return pa.Table.from_batches(batches)


def test_full_mode_gives_snapshots_and_ticks(logged_in):
    src = open_market_source(parse_symbols(["NSE:RELIANCE", "NSE:NIFTY 50", "CDS:USDINR25DECFUT"]), opts(mode="full", limit=200))
    assert src.instruments["NSE:RELIANCE"].extra["depth_view"] == 5 and src.instruments["NSE:RELIANCE"].tick_size == 0.05
    t = table(list(src.batches()))
    assert t.num_rows >= 200
    d = {c: t.column(c).to_pylist() for c in ("kind", "side", "price", "seq", "symbol")}
    kinds = d["kind"]
    assert S.CLEAR in kinds and S.SNAPSHOT_END in kinds and S.LEVEL in kinds and S.TICK in kinds
    syms = set(t.column("symbol").to_pylist())
    assert {"NSE:RELIANCE", "NSE:NIFTY 50", "CDS:USDINR25DECFUT"} <= syms
    # each message (seq) of RELIANCE: clear, ≤5 bids best first, ≤5 asks best first, snapshot_end, tick
    rel = [i for i, s in enumerate(t.column("symbol").to_pylist()) if s == "NSE:RELIANCE"]
    first = [i for i in rel if d["seq"][i] == d["seq"][rel[0]]]
    ks = [kinds[i] for i in first]
    assert ks[0] == S.CLEAR and ks[-2:] == [S.SNAPSHOT_END, S.TICK] and 1 <= ks.count(S.LEVEL) <= 10
    bids = [d["price"][i] for i in first if kinds[i] == S.LEVEL and d["side"][i] == 1]
    asks = [d["price"][i] for i in first if kinds[i] == S.LEVEL and d["side"][i] == -1]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    assert all(abs(p / 0.05 - round(p / 0.05)) < 1e-6 for p in bids + asks)
    usd = [d["price"][i] for i in range(len(kinds)) if d["symbol"][i] == "CDS:USDINR25DECFUT" and kinds[i] == S.TICK]
    assert usd and all(70 < p < 100 for p in usd)  # the 1e7 divisor
    seqs = [d["seq"][i] for i in range(len(kinds))]
    assert seqs == sorted(seqs)


@pytest.mark.parametrize("mode,kinds", [("ltp", {S.TICK}), ("quote", {S.TICK, S.TRADE})])
def test_ltp_and_quote_modes_send_mode_messages(logged_in, mode, kinds):
    """Ltp packets carry no volume: ticks only. Quote packets: ticks, and a derived trade before
    the tick of every packet whose day volume grew (by that much, at the packet's last price)."""
    src = open_market_source(parse_symbols(["NSE:INFY"]), opts(mode=mode, limit=100))
    rows = table(list(src.batches())).to_pylist()
    assert {r["kind"] for r in rows} == kinds
    assert {"a": "mode", "v": [mode, [408065]]} in logged_in.ticker.log
    assert {"a": "subscribe", "v": [408065]} in logged_in.ticker.log
    ticks = [r for r in rows if r["kind"] == S.TICK]
    for i, r in enumerate(rows):
        if r["kind"] == S.TRADE:
            tick, before = rows[i + 1], [t for t in ticks if t["seq"] < r["seq"]][-1]
            assert tick["kind"] == S.TICK and tick["seq"] == r["seq"]
            assert (r["qty"], r["price"], r["ts"]) == (tick["volume"] - before["volume"], tick["price"], tick["ts"])


def test_raw_capture_then_replay_gives_identical_rows(logged_in, tmp_path):
    raw = tmp_path / "cap.jsonl"
    live = table(list(open_market_source(parse_symbols(["NSE:RELIANCE", "NSE:INFY"]), opts(mode="full", limit=150, raw_path=str(raw))).batches()))
    recs = [json.loads(x) for x in raw.read_text().splitlines()]
    assert recs[0]["src"] == "rest" and recs[0]["stream"] == "/instruments" and recs[0]["kind"] == "text"
    assert recs[0]["data"].startswith("instrument_token,") and len(recs[0]["data"].splitlines()) == 3
    assert recs[1]["src"] == "rest" and recs[1]["stream"] == "/quote" and "upper_circuit_limit" in recs[1]["data"]
    assert all(r["venue"] == "zerodha" and r["src"] == "ws" for r in recs[2:])
    assert any(r["kind"] == "binary" for r in recs[1:])
    assert logged_in.api_key not in raw.read_text()  # the ticker URL is stored without credentials
    replay = table(list(open_market_source(parse_symbols(["NSE:RELIANCE", "NSE:INFY"]), opts(mode="full", replay_path=str(raw), limit=live.num_rows)).batches()))
    assert replay.num_rows == live.num_rows
    assert replay.equals(live)


def test_live_source_carries_todays_circuit_limits_in_its_metadata(logged_in):
    """The source asks /quote once when it opens: its instruments (and so a recording's metadata)
    carry the day's circuit limits, which backtest and paper enforce (docs/market-rules.md)."""
    logged_in.circuits["NSE:INFY"] = (1400.0, 1700.0)
    src = open_market_source(parse_symbols(["NSE:INFY", "NSE:RELIANCE"]), opts(mode="full", limit=10))
    infy = S.schema_instruments(src.schema)["NSE:INFY"]
    assert (infy.extra["lower_circuit_limit"], infy.extra["upper_circuit_limit"]) == (1400.0, 1700.0)
    assert 0 < src.instruments["NSE:RELIANCE"].extra["lower_circuit_limit"] < src.instruments["NSE:RELIANCE"].extra["upper_circuit_limit"]
    src.close()


def test_replay_needs_no_network_and_keeps_heartbeats(tmp_path):
    raw = tmp_path / "hand.jsonl"
    csv = "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,instrument_type,segment,exchange\n" \
          "408065,1594,INFY,INFOSYS,0.0,,0.0,0.05,1,EQ,NSE,NSE\n"
    import base64

    lines = [{"t": 1, "src": "rest", "venue": "zerodha", "stream": "/instruments", "kind": "text", "data": csv}]
    for i, fr in enumerate([packets.HEARTBEAT, packets.frame([packets.ltp(408065, 1500.5)]), packets.frame([packets.ltp(408065, 1501.0)])]):
        lines.append({"t": 10 + i, "src": "ws", "venue": "zerodha", "stream": "x", "kind": "binary", "data": base64.b64encode(fr).decode()})
    lines.append({"t": 20, "src": "ws", "venue": "zerodha", "stream": "x", "kind": "text", "data": '{"type":"error","data":"oops"}'})
    raw.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    src = open_market_source(parse_symbols(["NSE:INFY"]), SourceOptions(config=load_config(), env=Environment(), replay_path=str(raw)))
    t = table(list(src.batches()))
    assert t.column("price").to_pylist() == [1500.5, 1501.0] and t.column("recv_ts").cast(pa.int64()).to_pylist() == [11, 12]
    assert src.stats.heartbeats == 1 and src.text_errors == ["oops"]
    short = open_market_source(parse_symbols(["NSE:INFY"]), SourceOptions(config=load_config(), env=Environment(), replay_path=str(raw), duration_ns=1))
    assert table(list(short.batches())).column("price").to_pylist() == [1500.5]  # --for counts data time on replay
    with pytest.raises(UsageError):
        open_market_source(parse_symbols(["NSE:TCS"]), SourceOptions(config=load_config(), env=Environment(), replay_path=str(raw)))


def test_reconnects_and_resubscribes_after_a_drop(logged_in):
    fake = logged_in
    src = open_market_source(parse_symbols(["NSE:RELIANCE"]), opts(mode="full"))
    src.backoff_initial = 0.05
    got = []
    dropped = False
    for b in src.batches():
        got.append(b)
        if not dropped and len(got) >= 3:
            fake.ticker.drop_all()
            dropped = True
        if dropped and src.reconnects >= 1 and len(got) >= 8:
            src.close()
    assert src.reconnects >= 1 and fake.ticker.connections >= 2
    subs = [m for m in fake.ticker.log if m.get("a") == "subscribe"]
    assert len(subs) >= 2 and all(m["v"] == [738561] for m in subs)


def test_connected_only_from_the_first_message_not_while_the_server_hangs_up(logged_in):
    """During an outage the ticker accepts each handshake and closes it at once: the source never
    reports itself connected then (sq live would restart its feed-down grace on every attempt),
    and does again once messages flow."""
    fake = logged_in
    src = open_market_source(parse_symbols(["NSE:RELIANCE"]), opts(mode="full", duration_ns=30_000_000_000))
    src.backoff_initial, src.backoff_max = 0.02, 0.1
    samples, attempts, back = connected_through_outage(src, lambda s: fake.ticker.drop_all(outage_s=s),
                                                       lambda: fake.ticker.connections)
    assert attempts >= 3, "too few reconnect handshakes during the outage to test anything"
    assert not any(samples), f"connected during the outage in {sum(samples)} of {len(samples)} samples"
    assert back, "not connected again after the outage"


def test_order_postbacks_reach_the_gateway(logged_in):
    from sq.venues.base import OrderRequest
    from sq.venues.zerodha import open_gateway
    import datetime as dt

    from sq.venues.zerodha.session import IST

    fake = logged_in
    gw = open_gateway(load_config(), Environment(), clock=lambda: dt.datetime(2025, 11, 24, 10, 0, tzinfo=IST))
    src = open_market_source(parse_symbols(["NSE:RELIANCE"]), opts(mode="ltp"))
    gw.attach(src)
    seen = threading.Event()
    for b in src.batches():
        if not seen.is_set():
            st = gw.place(OrderRequest("NSE:RELIANCE", +1, 2, 1350.0, client_order_id="pb-1"))
            o = dict(fake.orders[st.venue_order_id], status="COMPLETE", filled_quantity=2, pending_quantity=0)
            fake.postback(o)
            seen.set()
        if gw.order_state("pb-1") is not None and gw.order_state("pb-1").status == "filled":
            src.close()
    assert gw.order_state("pb-1").status == "filled" and gw.order_state("pb-1").filled_qty == 2


def test_fuzzed_frames_on_the_wire_are_counted_not_fatal(logged_in):
    fake = logged_in
    src = open_market_source(parse_symbols(["NSE:RELIANCE"]), opts(mode="quote"))
    n = 0
    for b in src.batches():
        n += 1
        if n == 2:
            fake.ticker.broadcast(b"\x00\x05\x00\x2c\x01")
            fake.ticker.broadcast(b"")
            fake.ticker.broadcast("not json")
        if n >= 6:
            src.close()
    assert src.stats.bad_frames >= 2 and src.stats.bad_text >= 1 and n >= 6


def test_refused_token_is_77_and_unknown_symbol_is_2(kite_env, monkeypatch):
    monkeypatch.setenv("ZKITE_ACCESS_TOKEN", kite_env.issue_token())
    with pytest.raises(UsageError) as e:
        open_market_source(parse_symbols(["NSE:RELIANC"]), opts())
    assert e.value.status == 2 and "NSE:RELIANCE" in e.value.message
    src = open_market_source(parse_symbols(["NSE:RELIANCE"]), opts())
    kite_env.expire_tokens()  # revoked after the dump was fetched: the ticker handshake says 403
    with pytest.raises(AuthError) as e:
        list(src.batches())
    assert e.value.status == 77 and "run sq auth zerodha" in e.value.message


def test_duration_stops_the_stream(logged_in):
    t0 = time.monotonic()
    src = open_market_source(parse_symbols(["NSE:INFY"]), opts(mode="quote", duration_ns=600_000_000))
    list(src.batches())
    assert time.monotonic() - t0 < 5


def test_instruments_dump_is_cached_for_the_day(logged_in):
    fake = logged_in
    for _ in range(2):
        src = open_market_source(parse_symbols(["NSE:INFY"]), opts(mode="ltp", limit=1))
        list(src.batches())
    assert [p for m, p in fake.requests if p == "/instruments"] == ["/instruments"]


def test_revoked_token_on_the_dump_download_is_77(logged_in):
    logged_in.expire_tokens()
    with pytest.raises(AuthError) as e:
        open_market_source(parse_symbols(["NSE:INFY"]), opts())
    assert e.value.status == 77 and "run sq auth zerodha" in e.value.message


def test_full_mode_stream_feeds_the_book(logged_in):
    """`sq record NSE:RELIANCE | sq book` in-process: the top-5 views rebuild a sane book."""
    from sq.core.bookstream import BookStream

    src = open_market_source(parse_symbols(["NSE:RELIANCE", "NSE:NIFTY 50"]), opts(mode="full", limit=400))
    bs = BookStream(src.instruments, depth=5)
    out = [b for b in (bs.process(x) for x in src.batches()) if b is not None]
    book = pa.Table.from_batches(out)
    syms = book.column("symbol").cast(pa.string()).to_pylist()
    bid, ask = book.column("bid_px_0").to_pylist(), book.column("ask_px_0").to_pylist()
    rel = [(b, a) for s, b, a in zip(syms, bid, ask) if s == "NSE:RELIANCE"]
    assert rel and all(b < a for b, a in rel)
    c = bs.counts
    assert c["crossed"] == 0 and c["locked"] == 0 and c["bad_rows"] == 0 and c["backwards"] == 0


def test_silent_connection_trips_the_watchdog(logged_in):
    fake = logged_in
    src = open_market_source(parse_symbols(["NSE:INFY"]), opts(mode="ltp"))
    src.watchdog_s, src.backoff_initial = 0.3, 0.05
    n = 0
    for _ in src.batches():
        n += 1
        if n == 2:
            fake.paused = True  # no frames, not even heartbeats: a dead link
            threading.Timer(1.0, lambda: setattr(fake, "paused", False)).start()
        if src.reconnects >= 1 and n >= 4:
            src.close()
    assert src.reconnects >= 1


def test_unreachable_ticker_gives_up_with_69(logged_in, monkeypatch):
    import socket

    from sq.core.exits import VenueUnavailable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("SQ_KITE_WS_URL", f"ws://127.0.0.1:{port}")
    src = open_market_source(parse_symbols(["NSE:INFY"]), opts(mode="ltp"))
    src.backoff_initial, src.max_failures = 0.01, 2
    with pytest.raises(VenueUnavailable) as e:
        list(src.batches())
    assert e.value.status == 69 and "ticker unreachable" in e.value.message
