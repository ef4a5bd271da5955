"""Trades derived from the Kite ticker's day volume, end to end: real `sq` processes against the
local Kite fake (tests/support/fakes/kite) on 127.0.0.1.

* a scripted full-mode feed (the fake's SIM market paused, exact packets played on its socket):
  `sq subscribe` gives the trades computed by hand below; `sq record` then `sq backtest` fills
  mm's resting bid on a derived trade (nothing else could fill it: the book never moves); `sq
  paper --strategy lt` follows a derived trade with an order;
* the fake's SIM-driven market (its volume grows as the SIM flow trades): every trade row of `sq
  record` is the volume increase of its packet at the packet's last price, and together they add
  up to the day volume traded while recording.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sq.core import schemas as S
from tests.support.fakes.kite.script import State, full_frames, start_time
from tests.support.marketdata import pylist
from tests.support.process import SQ_BIN

INFY = 408065
BIDS = [(1569.95, 40, 2), (1569.90, 100, 3)]
ASKS = [(1570.05, 40, 1), (1570.10, 80, 2)]

# a buyer lifts 30 at the ask; a seller hits 25 at the bid (over several trades: the last one
# was 10); nothing; then 4 at 1570.00, inside the previous touch 1569.95 / 1570.05: an uptick
TAPE = [State(0, 1570.00, 5, 100_000, BIDS, ASKS),
        State(1, 1570.05, 30, 100_030, BIDS, [(1570.05, 10, 1), (1570.10, 80, 2)]),
        State(2, 1569.95, 10, 100_055, [(1569.95, 15, 1), (1569.90, 100, 3)], [(1570.05, 10, 1), (1570.10, 80, 2)]),
        State(3, 1569.95, 10, 100_055, [(1569.95, 15, 1), (1569.90, 100, 3)], [(1570.05, 10, 1), (1570.10, 80, 2)]),
        State(4, 1570.00, 4, 100_059, [(1569.95, 15, 1), (1569.90, 100, 3)], [(1570.05, 10, 1), (1570.10, 80, 2)])]
TAPE_TRADES = [(1, +1, 1570.05, 30.0), (2, -1, 1569.95, 25.0), (4, +1, 1570.00, 4.0)]  # (second, side, price, qty)
TAPE_ROWS = 7 + 8 + 8 + 7 + 8  # clear, 4 levels, snapshot_end, tick a packet; + 1 with a trade

# mm joins the bid (fair 1570.00 sits a tick above 1569.95) behind 40; a seller then takes 100 at
# 1569.95 while the book shows the same levels: only the derived trade can fill the bid
RESTING = [State(0, 1570.00, 5, 100_000, BIDS, ASKS), State(1, 1569.95, 100, 100_100, BIDS, ASKS), State(2, 1569.95, 100, 100_100, BIDS, ASKS)]
RESTING_ROWS = 7 + 8 + 7


@pytest.fixture
def scripted(kite_env, monkeypatch):
    """The Kite fake with a session and its SIM market paused (only played packets go out)."""
    monkeypatch.setenv("ZKITE_ACCESS_TOKEN", kite_env.issue_token())
    kite_env.paused = True
    return kite_env


def start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([SQ_BIN, *args], cwd=cwd, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def anytime(tmp_path) -> str:
    """A config without the NSE session and the MIS square-off: the scripted packets carry today's
    wall-clock exchange times, so at night or on a weekend the engine would reject every order, and
    these tests are about trades and fills, not the session (docs/market-rules.md has its own)."""
    path = tmp_path / "anytime.toml"
    path.write_text("[risk]\nenforce_trading_hours = false\n\n[zerodha]\nsquare_off = false\n")
    return str(path)


def play_to(fake, proc: subprocess.Popen, states: list[State], until=None) -> tuple[int, str, str]:
    """Play the states to `proc` once it subscribed INFY, then (when `until` is given) wait for
    `until()` and stop it with SIGTERM; the script's start, the process's stdout and stderr."""
    t0 = start_time()
    try:
        fake.ticker.play(full_frames(INFY, states, t0), INFY)
        if until is not None:
            deadline = time.monotonic() + 120
            while not until() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return t0, out, err


def trade_rows(table: pa.Table) -> list[dict]:
    return [r for r in pylist(table) if r["kind"] == S.TRADE]


def test_subscribe_gives_the_trades_of_a_scripted_feed(scripted, tmp_path):
    p = start("subscribe", "NSE:INFY", "--mode", "full", "--limit", str(TAPE_ROWS), "--for", "60s", "-o", "out.parquet", cwd=tmp_path)
    t0, _, err = play_to(scripted, p, TAPE)
    assert p.returncode == 0, err
    t = pq.read_table(tmp_path / "out.parquet")
    assert t.num_rows == TAPE_ROWS
    got = [((r["ts"] // 10**9) - t0, r["side"], pytest.approx(r["price"]), r["qty"]) for r in trade_rows(t)]
    assert got == TAPE_TRADES
    assert S.schema_instruments(t.schema)["NSE:INFY"].extra["trades"] == "derived"
    kinds = t.column("kind").to_pylist()
    seqs = t.column("seq").to_pylist()
    for i, k in enumerate(kinds):  # each trade opens its packet's rows: the clear of the same message follows
        if k == S.TRADE:
            assert kinds[i + 1] == S.CLEAR and seqs[i + 1] == seqs[i] and (i == 0 or seqs[i - 1] != seqs[i])


def test_backtest_of_a_recording_fills_a_resting_order_on_a_derived_trade(scripted, tmp_path):
    p = start("record", "NSE:INFY", "--out", "data", "--limit", str(RESTING_ROWS), "--for", "60s", "--format", "none", cwd=tmp_path)
    _, _, err = play_to(scripted, p, RESTING)
    assert p.returncode == 0, err
    r = subprocess.run([SQ_BIN, "backtest", "--strategy", "mm", "data", "--json", "--journal", "bt", "--config", anytime(tmp_path)],
                       cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["fills"] == 1
    fills = pylist(pq.read_table(tmp_path / "bt" / "fills.parquet"))
    assert [(f["side"], f["price"], f["qty"], f["liquidity"]) for f in fills] == [(1, pytest.approx(1569.95), 1.0, "maker")]


def test_paper_lt_follows_a_derived_trade(scripted, tmp_path):
    p = start("paper", "--strategy", "lt", "NSE:INFY", "--for", "120s", "--json", "--param", "threshold=0.5", "--journal", "run",
              "--config", anytime(tmp_path), cwd=tmp_path)
    log = tmp_path / "run" / "journal.log"
    _, out, err = play_to(scripted, p, TAPE, until=lambda: log.exists() and '"k":"order"' in log.read_text())
    assert p.returncode == 143, err  # stopped by play_to's SIGTERM, after its clean shutdown
    assert json.loads(out)["orders"] >= 1
    orders = pylist(pq.read_table(tmp_path / "run" / "orders.parquet"))
    new = [(o["side"], pytest.approx(o["price"])) for o in orders if o["event"] == "new"]
    # 30 bought at the ask against 40 offered (0.75 ≥ 0.5): follow the buyer at the ask
    assert new and new[0] == (1, 1570.05)


def test_recorded_trades_are_the_volume_increases_of_the_sim_market(kite_env, monkeypatch, tmp_path):
    monkeypatch.setenv("ZKITE_ACCESS_TOKEN", kite_env.issue_token())
    r = subprocess.run([SQ_BIN, "record", "NSE:RELIANCE", "NSE:INFY", "--out", "data", "--limit", "2000", "--format", "none"], cwd=tmp_path,
                       env=dict(os.environ), capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    t = pa.concat_tables([pq.read_table(f) for f in sorted((tmp_path / "data").rglob("*.parquet"))])
    rows = sorted(pylist(t), key=lambda x: (x["seq"], x["kind"] != S.TRADE))
    checked = 0
    for sym in ("NSE:RELIANCE", "NSE:INFY"):
        mine = [x for x in rows if x["symbol"] == sym]
        ticks = [x for x in mine if x["kind"] == S.TICK]
        trades = {x["seq"]: x for x in mine if x["kind"] == S.TRADE}
        assert trades, f"{sym}: no trade in {len(ticks)} packets of a trading market"
        for prev, cur in zip(ticks, ticks[1:]):
            grew = cur["volume"] - prev["volume"]
            if grew > 0:
                tr = trades.pop(cur["seq"])
                assert (tr["qty"], tr["price"]) == (grew, cur["price"])
                assert prev["ts"] <= tr["ts"] <= cur["ts"] and tr["side"] in (-1, 0, 1)
                checked += 1
        assert not trades  # no trade without a volume increase
        assert sum(x["qty"] for x in mine if x["kind"] == S.TRADE) == ticks[-1]["volume"] - ticks[0]["volume"]
    assert checked >= 10


def test_bars_of_a_recording_take_the_derived_trades(scripted, tmp_path):
    """`sq bars` over a recorded Zerodha stream: volume and trade counts from the derived trades,
    the first trade's price opening its bar (the first packet's tick does not), no warning."""
    p = start("record", "NSE:INFY", "--out", "data", "--limit", str(TAPE_ROWS), "--for", "60s", "--format", "none", cwd=tmp_path)
    _, _, err = play_to(scripted, p, TAPE)
    assert p.returncode == 0, err
    r = subprocess.run([SQ_BIN, "bars", "1m", "data", "-o", "bars.parquet"], cwd=tmp_path, env=dict(os.environ),
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    bars = [b for b in pylist(pq.read_table(tmp_path / "bars.parquet")) if b["trades"] is not None]
    assert sum(b["volume"] for b in bars) == 30 + 25 + 4 and sum(b["trades"] for b in bars) == 3
    assert bars[0]["open"] == pytest.approx(1570.05) and min(b["low"] for b in bars) == pytest.approx(1569.95)
