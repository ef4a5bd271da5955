"""The Binance market source against the local fake: book correctness under injected faults.

The fake's SIM engine moves the book; the fake keeps its true book as of every update id. After
every message the source emits, a plain dict book built from the rows must equal the truth at
that message's seq — across gaps (dropped and reordered events), duplicates, malformed frames,
server error frames, disconnects and stalls — and every injected loss must be detected.
"""

from __future__ import annotations

import json

import pytest

from tests.support.fakes.binance.helpers import DictBook, messages, open_source, rows_of, same_book
from tests.support.fakes.binance import Faults
from tests.support.sourcetools import connected_through_outage

SYMS = ["BINANCE:BTCUSDT", "BINANCE-FUT:BTCUSDT"]
MARKET = {"BINANCE:BTCUSDT": "spot", "BINANCE-FUT:BTCUSDT": "futures"}


def run_and_check(fake, src):
    """Consume the source; check the dict book against the fake's truth after every message."""
    book = DictBook()
    checked = 0
    max_seq: dict[str, int] = {}
    all_rows = []
    for batch in src.batches():
        rs = rows_of(batch)
        all_rows += rs
        for msg in messages(rs):
            for r in msg:
                book.apply(r)
            sym, seq = msg[0][1], msg[0][6]
            if sym not in book.synced or sym in book.in_snapshot:
                continue
            truth = fake.market("BTCUSDT", MARKET[sym]).book_at.get(seq)
            assert truth is not None, f"{sym}: no truth recorded for seq {seq}"
            assert same_book(book.books[sym], truth), f"{sym}: local book differs from the fake's at seq {seq}"
            checked += 1
            max_seq[sym] = max(max_seq.get(sym, 0), seq)
    return checked, max_seq, all_rows


def unsynced_intervals(src, market):
    """Update-id ranges [local id + 1, L] the source spent resyncing after each detected gap."""
    code = next(i for i, s in enumerate(src.symbols) if s.market == market)
    out, open_at = [], None
    for ev in src.pipeline.sync_log:
        if ev[1] != code:
            continue
        if ev[0] == "gap" and open_at is None:
            open_at = ev[2] + 1
        elif ev[0] == "snapshot" and open_at is not None:
            out.append((open_at, ev[2]))
            open_at = None
    return out


def test_gaps_are_all_detected_and_every_resync_matches_the_true_book(binance_fake):
    fake = binance_fake(faults=Faults(drop_every=23, reorder_every=37, dup_every=11))
    src = open_source(SYMS, duration_ns=3_000_000_000)
    checked, max_seq, _ = run_and_check(fake, src)
    c = src.counters
    f = fake.faults
    total = 0
    for market, sym in (("spot", "BINANCE:BTCUSDT"), ("futures", "BINANCE-FUT:BTCUSDT")):
        first_sync = next(ev[2] for ev in src.pipeline.sync_log if ev[0] == "snapshot" and src.symbols[ev[1]].market == market)
        # losses after the first sync that the client could see (a later event reached it)
        losses = [(U, u) for mk, _, U, u in f.dropped + f.reordered if mk == market and first_sync < U and u < max_seq[sym]]
        intervals = unsynced_intervals(src, market)
        # every loss was detected: it lies inside a resync interval opened by a detected gap
        missed = [x for x in losses if not any(lo <= x[0] and x[1] <= hi for lo, hi in intervals)]
        assert not missed, f"{sym}: losses not detected: {missed}"
        # and every detected gap had a real loss behind it
        empty = [iv for iv in intervals if not any(iv[0] <= U and u <= iv[1] for U, u in losses)]
        assert not empty, f"{sym}: gaps without a loss: {empty}"
        total += len(losses)
    assert total >= 6, "the run was too short to inject faults"
    assert c["gaps"] >= len(unsynced_intervals(src, "spot")) + len(unsynced_intervals(src, "futures"))
    assert c["snapshots"] == len([e for e in src.pipeline.sync_log if e[0] == "snapshot"])
    assert checked > 100 and c["duplicates"] > 0


def test_malformed_frames_server_errors_and_unknown_fields_do_not_stop_the_stream(binance_fake):
    fake = binance_fake(faults=Faults(malformed_every=50, stream_error_every=70, unknown_field=True))
    src = open_source(["BINANCE:BTCUSDT"], duration_ns=2_000_000_000)
    checked, _, _ = run_and_check(fake, src)
    c = src.counters
    assert c["malformed"] >= 3 and c["server_errors"] >= 2 and c["unknown_fields"] >= 10
    assert c["gaps"] == 0 and checked > 50


def test_disconnects_and_stalls_reconnect_and_resync(binance_fake):
    fake = binance_fake(faults=Faults(disconnect_after=400, stall_after=150, stall_s=1.0))
    src = open_source(["BINANCE:BTCUSDT"], duration_ns=4_000_000_000, stall_s=0.4)
    checked, _, rows = run_and_check(fake, src)
    c = src.counters
    assert c["reconnects"] >= 2 and c["connections"] >= 3 and c["stalls"] >= 1
    assert c["snapshots"] >= 3  # a fresh book after every reconnect
    assert checked > 50
    clears = [r for r in rows if r[2] == 3]
    assert len(clears) == c["snapshots"]


def test_connections_are_reopened_before_their_maximum_age(binance_fake):
    fake = binance_fake()
    src = open_source(["BINANCE:BTCUSDT"], duration_ns=2_500_000_000, max_age_s=0.8)
    checked, _, _ = run_and_check(fake, src)
    c = src.counters
    assert c["reconnects"] >= 2 and c["snapshots"] >= 3 and c["gaps"] == 0 and checked > 20


def test_rest_snapshot_errors_are_counted_and_the_stream_goes_on(binance_fake, caplog):
    fake = binance_fake()
    src = open_source(["BINANCE:BTCUSDT"], duration_ns=2_000_000_000)
    fake.forced = [(429, 0), (429, 0)]  # the next REST calls (the depth snapshots) are rate limited
    checked, _, _ = run_and_check(fake, src)
    c = src.counters
    assert c["server_errors"] >= 2 and c["snapshots"] >= 1 and checked > 20
    assert "rate limited" in caplog.text


def test_limit_stops_on_a_message_boundary(binance_fake):
    fake = binance_fake()
    src = open_source(["BINANCE:BTCUSDT"], limit=300)
    meta = src.schema.metadata
    assert meta[b"sq.stream"] == b"market"
    inst = json.loads(meta[b"sq.instruments"])["BINANCE:BTCUSDT"]
    assert (inst["tick_size"], inst["lot_size"], inst["venue"], inst["min_notional"], inst["market"]) == (0.01, 0.001, "binance", 5.0, "spot")
    rows = [r for b in src.batches() for r in rows_of(b)]
    assert len(rows) >= 300
    msgs = messages(rows)
    assert sum(len(m) for m in msgs[:-1]) < 300


def test_raw_capture_replays_to_the_same_rows_without_network(binance_fake, tmp_path):
    fake = binance_fake(faults=Faults(drop_every=17))
    raw = tmp_path / "cap.jsonl"
    src = open_source(SYMS, duration_ns=1_500_000_000, raw_path=str(raw))
    live = [r for b in src.batches() for r in rows_of(b)]
    recs = [json.loads(line) for line in raw.read_text().splitlines()]
    assert {r["src"] for r in recs} == {"ws", "rest"}
    assert any("exchangeInfo" in r["stream"] for r in recs) and any("/depth?" in r["stream"] for r in recs)
    assert all(set(r) >= {"t", "src", "venue", "stream", "kind", "data"} for r in recs)
    fake.stop()  # no network from here on
    rep = open_source(SYMS, replay_path=str(raw))
    replayed = [r for b in rep.batches() for r in rows_of(b)]
    strip = lambda rs: [(r[1], r[2], r[3], None if r[4] != r[4] else r[4], r[5], r[6]) for r in rs]  # noqa: E731  NaN-safe
    assert strip(replayed) == strip(live)
    assert rep.counters["gaps"] == src.counters["gaps"] > 0


def test_unknown_symbol_is_a_usage_error_with_suggestions(binance_fake):
    from sq.core.exits import UsageError

    fake = binance_fake()
    with pytest.raises(UsageError) as e:
        open_source(["BINANCE:BTCUSTD"])
    assert e.value.status == 2 and "BINANCE:BTCUSTD" in e.value.message and "BINANCE:BTCUSDT" in e.value.message
    with pytest.raises(UsageError) as e:
        open_source(["BINANCE-FUT:ETHUSDX"])
    assert "BINANCE-FUT:ETHUSDT" in e.value.message
    open_source(["BINANCE:BTCUSDT"]).close()
    # exchangeInfo is fetched once per market and day, then read from the cache
    assert sum(1 for _, p, _ in fake.requests if p.endswith("/exchangeInfo")) == 2


def test_recorded_stream_feeds_sq_book(binance_fake, tmp_path):
    """The source's batches written as an sq market file are read by `sq book`, whose final top of
    book equals the dict book's (the stream is consumable end to end)."""
    import io

    import pyarrow.parquet as pq

    from tests.support.marketdata import pylist

    from sq.cli import app
    from sq.core.environment import Environment
    from sq.core.streams import StreamWriter
    from tests.support.fakes.binance.helpers import top

    fake = binance_fake(faults=Faults(drop_every=19))
    src = open_source(["BINANCE:BTCUSDT"], duration_ns=1_500_000_000)
    market = tmp_path / "m.parquet"
    env = Environment(stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=io.StringIO(), stdin_isatty=False, stdout_isatty=False)
    book = DictBook()
    with StreamWriter(env, src.schema, output=str(market), fmt="parquet") as w:
        for b in src.batches():
            w.write(b)
            for r in rows_of(b):
                book.apply(r)
    assert src.counters["gaps"] > 0 and fake.faults.dropped
    out = tmp_path / "b.parquet"
    code = app(args=["book", str(market), "--depth", "5", "-o", str(out)], prog_name="sq", obj=env, standalone_mode=False)
    assert not code, env.stderr.getvalue()
    last = pylist(pq.read_table(out))[-1]
    bid, ask = top(book.books["BINANCE:BTCUSDT"])
    assert (last["bid_px_0"], last["ask_px_0"]) == (bid, ask)


def test_unreachable_stream_endpoint_is_exit_69(binance_fake, monkeypatch):
    from sq.core.exits import VenueUnavailable

    binance_fake()
    monkeypatch.setenv("SQ_BINANCE_WS_URL", "ws://127.0.0.1:9")  # nothing listens there
    src = open_source(["BINANCE:BTCUSDT"], duration_ns=5_000_000_000, connect_attempts=3)
    with pytest.raises(VenueUnavailable) as e:
        list(src.batches())
    assert e.value.status == 69 and "127.0.0.1:9" in e.value.message


def test_connected_only_while_data_flows_not_while_the_server_accepts_and_hangs_up(binance_fake):
    """During an outage the fake accepts each reconnect's handshake and closes it at once: the
    source must never report itself connected then (a live run would restart its feed-down
    grace period on every attempt), and must again once frames flow after the outage."""
    fake = binance_fake()
    src = open_source(["BINANCE:BTCUSDT"], duration_ns=20_000_000_000)
    samples, attempts, back = connected_through_outage(src, lambda s: fake.kick(outage_s=s), lambda: src.counters["connections"])
    assert attempts >= 3, "the outage saw too few reconnect handshakes to test anything"
    assert not any(samples), f"connected during the outage in {sum(samples)} of {len(samples)} samples"
    assert back, "not connected again after the outage"
