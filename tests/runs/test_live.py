"""`sq live` against the local Binance fake: start-up refusals, the circuit breaker, sends that time
out or lose their connection (resolved by client id, never doubled), a 429/418 storm, and kill -9
at random moments followed by --resume and reconcile (zero differences, no duplicate orders), with
every artifact checked for the test secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.process import SQ_BIN, subprocess_env
from tests.support.livetools import kill9_then_resume, registered


def _cfg(tmp_path, mode="live", rate=20, perms=0o600, live: str = "") -> Path:
    """A config file; `live` is the body of its [live] table."""
    cfg = tmp_path / "live.toml"
    cfg.write_text(f'trading_mode = "{mode}"\n[risk]\nmax_order_rate = {rate}\n' + (f"[live]\n{live}\n" if live else ""))
    os.chmod(cfg, perms)
    return cfg


LIVE = ["live", "--strategy", "mm", "BINANCE:BTCUSDT", "--param", "clip=0.01", "--param", "threshold=0.1"]


# ---------------------------------------------------------------------------------------------- refusals


def test_refuses_without_live_mode(sq, tmp_path):
    r = sq(LIVE + ["--config", str(_cfg(tmp_path, mode="paper")), "--confirm-live"])
    assert r.exit_code == 78 and 'trading_mode = "live"' in r.stderr


def test_refuses_without_confirmation(sq, tmp_path, monkeypatch):
    r = sq(LIVE + ["--config", str(_cfg(tmp_path))])
    assert r.exit_code == 2 and "--confirm-live" in r.stderr and "SQ_CONFIRM_LIVE" in r.stderr
    monkeypatch.setenv("SQ_CONFIRM_LIVE", "0")
    assert sq(LIVE + ["--config", str(_cfg(tmp_path))]).exit_code == 2


def test_refuses_with_a_readable_secret_file(sq, tmp_path, isolated_home, monkeypatch):
    from sq.core import paths

    p = paths.write_secret_file(paths.config_dir() / "binance.json", json.dumps({"api_key": "k" * 20, "api_secret": "topsecretvalue123"}))
    assert oct(p.stat().st_mode)[-3:] == "600"
    os.chmod(p, 0o644)
    r = sq(LIVE + ["--config", str(_cfg(tmp_path)), "--confirm-live"])
    assert r.exit_code == 77 and "chmod 600" in r.stderr and "topsecretvalue123" not in r.stderr
    os.chmod(p, 0o600)
    cfg = tmp_path / "secret.toml"
    cfg.write_text('trading_mode = "live"\n[binance]\napi_key = "abc"\napi_secret = "topsecretvalue123"\n')
    os.chmod(cfg, 0o640)
    monkeypatch.setenv("SQ_CONFIRM_LIVE", "1")
    r = sq(LIVE + ["--config", str(cfg)])
    assert r.exit_code == 77 and "topsecretvalue123" not in r.stderr


def test_refuses_without_credentials_before_any_connection(sq, tmp_path, monkeypatch):
    """No Binance key anywhere: 77 naming how to provide one, and the venue never hears from us."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    for var in ("SQ_BINANCE_REST_URL", "SQ_BINANCE_FUTURES_REST_URL"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{port}")
    for var in ("SQ_BINANCE_WS_URL", "SQ_BINANCE_WS_API_URL", "SQ_BINANCE_FUTURES_WS_URL"):
        monkeypatch.setenv(var, f"ws://127.0.0.1:{port}")
    try:
        r = sq(LIVE + ["--config", str(_cfg(tmp_path)), "--confirm-live"])
        assert r.exit_code == 77 and "no Binance API key" in r.stderr and "sq auth binance" in r.stderr
        with pytest.raises(socket.timeout):
            listener.accept()  # nothing connected: the run stopped before opening the market or the gateway
    finally:
        listener.close()


def test_a_venue_sdk_missing_at_run_time_is_exit_78_naming_the_package(binance_fake, tmp_path):
    """A broken install (python-binance gone; it is imported only when the gateway opens): one
    line naming the package and how to install it, exit 78 — never an internal error."""
    import sys

    binance_fake()
    code = "import sys\nsys.modules['binance'] = None  # import binance now fails\nfrom sq.cli import main\nmain(sys.argv[1:])\n"
    r = subprocess.run([sys.executable, "-c", code, *LIVE, "--config", str(_cfg(tmp_path)), "--confirm-live", "--for", "5s"],
                       capture_output=True, text=True, env=subprocess_env(), timeout=120)
    errors = [line for line in r.stderr.splitlines() if line.startswith("sq: error:")]
    assert r.returncode == 78, r.stderr
    assert len(errors) == 1 and "python-binance" in errors[0] and "pip install python-binance" in errors[0], r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr


def test_second_live_process_on_the_same_symbol_exits_75(sq, tmp_path):
    from sq.core import runtime

    with runtime.try_lock("live-BINANCE_BTCUSDT"):
        r = sq(LIVE + ["--config", str(_cfg(tmp_path)), "--confirm-live"])
    assert r.exit_code == 75 and "already running" in r.stderr


def test_circuit_breaker_closed_open_half_open():
    from sq.core.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker

    now = [0.0]
    b = CircuitBreaker(failures=3, cooldown_s=5.0, clock=lambda: now[0])
    for _ in range(2):
        b.failure()
    assert b.state == CLOSED and b.allow()
    b.failure()
    assert b.state == OPEN and not b.allow()
    now[0] = 5.0
    assert b.allow() and b.state == HALF_OPEN
    b.failure()  # the trial failed: open again for a full cooldown
    assert b.state == OPEN and not b.allow()
    now[0] = 10.0
    assert b.allow()
    b.success()
    assert b.state == CLOSED and b.trips == 2


# ---------------------------------------------------------------------------------------------- uncertain sends


def _orders(timeout=1.0):
    """The gateway a live run opens (registry.open_account), with its order timeout."""
    from sq.core.config import load_config
    from sq.venues import registry

    return registry.open_account("binance", load_config(), None, symbols=["BINANCE:BTCUSDT"], order_timeout_s=timeout, push=True)


def _req(fake, cid, side=1):
    from sq.venues.base import OrderRequest

    bid, ask = fake.market().best()
    return OrderRequest("BINANCE:BTCUSDT", side, 0.01, round(bid - 2, 2), client_order_id=cid)


@pytest.mark.parametrize("fault", ["timeout", "drop"])
def test_send_that_timed_out_or_dropped_is_resolved_by_client_id_not_doubled(binance_fake, fault):
    fake = binance_fake()
    fake.order_fault_delay_s = 2.0
    orders = _orders(timeout=0.7)
    fake.order_faults = [fault]
    st, fills = orders.place_idempotent(_req(fake, "sqtest0001-1"))
    assert st.status == "accepted" and st.client_order_id == "sqtest0001-1" and st.venue_order_id
    same = [o for o in fake.exchange.orders.values() if o.client_id == "sqtest0001-1"]
    assert len(same) == 1  # executed once, found by its client id, never sent again
    assert [r for r in fake.requests if r[0] == "POST"] == [("POST", "/api/v3/order", 200)]
    orders.close()


def test_429_storm_then_418_ban(binance_fake):
    fake = binance_fake()
    orders = _orders()
    orders.rest.sync_time()
    fake.forced = [(429, 0), (429, 0), (429, 0)]  # Retry-After 0: honoured at once, no ban
    st, _ = orders.place_idempotent(_req(fake, "sqtest0002-1"))
    assert st.status == "accepted" and sum(1 for o in fake.exchange.orders.values() if o.client_id == "sqtest0002-1") == 1
    fake.forced = [(418, 30)]
    from sq.core.exits import SqError

    with pytest.raises(SqError) as e:
        orders.place_idempotent(_req(fake, "sqtest0002-2"))
    assert e.value.status == 75 and "ban" in e.value.message
    assert not any(o.client_id == "sqtest0002-2" for o in fake.exchange.orders.values())


# ---------------------------------------------------------------------------------------------- crashes


def _live(tmp_path, journal, *extra, resume=False):
    cfg = _cfg(tmp_path)
    head = ["live", "--resume", str(journal)] if resume else LIVE + ["--journal", str(journal)]
    args = [SQ_BIN, *head, "--config", str(cfg), "--confirm-live", "--json", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())


def _crash_cycles(fake, tmp_path, n, seed):
    journal = tmp_path / "run"
    outputs, out = kill9_then_resume(lambda for_, resume: _live(tmp_path, journal, "--for", for_, resume=resume), n, seed)
    summary = json.loads(out)
    r = subprocess.run([SQ_BIN, "reconcile", "--journal", str(journal), "--json"], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    outputs.append(r.stdout + r.stderr)
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["differences"] == 0, r.stdout
    cids = [o.client_id for o in fake.exchange.orders.values()]
    assert len(cids) == len(set(cids)), "an order was doubled"
    assert not [o for o in fake.exchange.orders.values() if o.status in ("NEW", "PARTIALLY_FILLED")]
    from sq.core import journal as J
    from sq.runs.reconcile import view_of

    view = view_of(J.load(journal))
    assert view.sealed and set(cids) <= set(view.orders)  # every venue order is in the journal
    venue_trades = {str(t["id"]) for t in fake.exchange.trades}
    assert {k[1] for k in view.fills} == venue_trades
    return journal, outputs, summary


def _no_secrets(fake, paths_, texts):
    secrets = [fake.account.api_secret, fake.account.api_key]
    for text in texts:
        for s in secrets:
            assert s not in text
    for base in paths_:
        for p in Path(base).rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                for s in secrets:
                    assert s.encode() not in data, f"secret found in {p}"


def test_kill9_at_random_moments_then_resume_reconciles_clean(binance_fake, tmp_path, isolated_home):
    fake = binance_fake()
    journal, outputs, summary = _crash_cycles(fake, tmp_path, 5, seed=11)
    assert summary["mode"] == "live" and summary["breaker"] == "closed"
    _no_secrets(fake, [journal, isolated_home, Path(os.environ["SQ_HOME"])], outputs)
    audits = [r for r in __import__("sq.core.journal", fromlist=["load"]).load(journal).records if r.kind == "audit"]
    assert audits  # every resume left an audit record of what it adopted
    from sq.core import analytics as A
    from sq.core import journal as J

    fills = J.table_of(J.load(journal), "fills")  # the resumed run's metrics count every process's fills
    col = {k: fills.column(k).to_numpy(zero_copy_only=False) for k in ("side", "price", "qty", "fee")}
    codes = {s: i for i, s in enumerate(sorted(set(fills.column("symbol").cast("string").to_pylist())))}
    want = A._trades(fills.column("ts").cast("int64").to_numpy(), [codes[s] for s in fills.column("symbol").cast("string").to_pylist()],
                     col["side"], col["price"], col["qty"], col["fee"])["round_trips"]
    assert summary["metrics"]["round_trips"] == want
    assert all(oct(p.stat().st_mode)[-3:] == "600" for p in [journal / "journal.log"])


@pytest.mark.slow
def test_kill9_fifty_times(binance_fake, tmp_path, isolated_home):
    fake = binance_fake()
    journal, outputs, _ = _crash_cycles(fake, tmp_path, 50, seed=5)
    _no_secrets(fake, [journal, isolated_home, Path(os.environ["SQ_HOME"])], outputs)


# ---------------------------------------------------------------------------------------------- pushed updates, config, earlier runs


def _records(journal):
    from sq.core import journal as J

    return J.load(journal).records


def test_fills_arrive_over_the_user_stream_not_by_polling(binance_fake, tmp_path):
    """With the safety-net sweep pushed out to 10 minutes, every fill the venue made while the run
    traded is journaled before the halt: they can only have come over the user-data stream."""
    fake = binance_fake()
    cfg = _cfg(tmp_path, live="sweep_interval_s = 600")
    journal = tmp_path / "push"
    r = subprocess.run([SQ_BIN, *LIVE, "--param", "clip=0.05", "--journal", str(journal), "--config", str(cfg), "--confirm-live",
                        "--json", "--for", "6s"], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    from sq.core.analytics import KEYS as METRICS  # the live engine's summary is the engine's: docs/metrics.md

    assert tuple(summary["metrics"]) == METRICS and summary["sharpe"] == summary["metrics"]["sharpe"]
    assert summary["metrics"]["fill_ratio"] == summary["fill_ratio"] and summary["metrics"]["periods_per_year"] == 365
    recs = _records(journal)
    assert recs[-1].kind == "end" and recs[-1].data["summary"]["metrics"] == summary["metrics"]
    halt = next(i for i, rec in enumerate(recs) if rec.kind == "halt")
    pushed_fills = [rec for rec in recs[:halt] if rec.kind == "fill"]
    assert summary["order_updates_pushed"] > 0 and summary["sweeps"] == 0
    assert pushed_fills, "no fill journaled while the run traded"
    # tick→order, and the same less the journal's write + fdatasync that made each order durable
    full, work = summary["tick_to_order_us"], summary["tick_to_order_work_us"]
    assert full["n"] == work["n"] > 0 and 0 < work["p50"] < full["p50"] and work["p99"] <= full["p99"]
    assert {str(t["id"]) for t in fake.exchange.trades} >= {rec.data["trade_id"] for rec in pushed_fills}
    doc = json.loads(subprocess.run([SQ_BIN, "reconcile", "--journal", str(journal), "--json"], capture_output=True, text=True,
                                    env=subprocess_env(), timeout=60).stdout)
    assert doc["differences"] == 0


def test_breaker_settings_come_from_the_live_table_and_flags_override(sq, tmp_path):
    from sq.core.config import load_config
    from sq.runs.live import LiveOptions, safety_of

    cfg = tmp_path / "b.toml"
    cfg.write_text('trading_mode = "live"\n[live]\nbreaker_failures = 3\nbreaker_cooldown = 2.5\norder_timeout_s = 1.5\n')
    env = type("E", (), {"config_path": str(cfg), "environ": {}})()
    config = load_config(env)
    s = safety_of(LiveOptions(), config)
    assert (s.breaker_failures, s.breaker_cooldown_s, s.order_timeout_s) == (3, 2.5, 1.5)
    s = safety_of(LiveOptions(breaker_failures=7), config)
    assert s.breaker_failures == 7 and s.breaker_cooldown_s == 2.5
    bad = tmp_path / "bad.toml"
    bad.write_text('trading_mode = "live"\n[live]\nbreaker_failures = 0\n')
    r = sq(LIVE + ["--config", str(bad), "--confirm-live"])
    assert r.exit_code == 78 and "live.breaker_failures" in r.stderr and "≥ 1" in r.stderr
    bad.write_text('trading_mode = "live"\n[live]\nbreaker_fails = 2\n')
    r = sq(LIVE + ["--config", str(bad), "--confirm-live"])
    assert r.exit_code == 78 and "breaker_failures" in r.stderr  # the typo named, the right key suggested
    r = sq(LIVE + ["--config", str(_cfg(tmp_path)), "--confirm-live", "--breaker-failures", "0"])
    assert r.exit_code == 2 and "--breaker-failures" in r.stderr


def test_a_new_run_reconciles_earlier_crashed_runs_before_its_first_order(binance_fake, tmp_path, isolated_home):
    """A run killed with orders working leaves them at the venue; the next (new, not resumed) run
    on the same symbol cancels them and adopts the venue's truth into the dead run's journal
    before it sends anything, so a cron `sq reconcile` over every recent run is clean."""
    from sq.core import paths

    fake = binance_fake()
    runs = paths.data_dir() / "runs"
    first = runs / "first"
    p = _live(tmp_path, first, "--for", "60s")
    registered(p)
    deadline = time.time() + 30
    left: set = set()
    while time.time() < deadline and not left:  # freeze it; kill it only with an order working
        time.sleep(0.1)
        fake.paused = True  # no market flow from here on: what the dead run leaves stays working
        p.send_signal(signal.SIGSTOP)
        time.sleep(0.05)
        left = {o.client_id for o in fake.exchange.orders.values() if o.status in ("NEW", "PARTIALLY_FILLED")}
        if not left:
            fake.paused = False
            p.send_signal(signal.SIGCONT)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=30)
    assert left, "the run never had an order working"
    second = runs / "second"
    p = _live(tmp_path, second, "--for", "5s")
    deadline = time.time() + 60
    while time.time() < deadline and not any(r.kind == "audit" and "start of run" in str(r.data.get("by")) for r in _records(first)):
        time.sleep(0.05)
    fake.paused = False  # the earlier run is reconciled: let the market (and the new run) trade
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    start = next(r for r in _records(second) if r.kind == "audit")
    earlier = start.data["venue_before_first_order"]["earlier_runs"]
    assert [e["journal"] for e in earlier] == [str(first)] and earlier[0]["canceled"] == len(left), earlier
    first_sent = next(i for i, r in enumerate(_records(second)) if r.kind == "order")
    assert first_sent > 0  # the audit (with the cancels) precedes the first order
    assert not any(o.client_id in left and o.status in ("NEW", "PARTIALLY_FILLED") for o in fake.exchange.orders.values())
    assert any(r.kind == "audit" and "start of run" in str(r.data.get("by")) for r in _records(first))
    r = subprocess.run([SQ_BIN, "reconcile", "--json"], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["differences"] == 0 and len(doc["runs"]) == 2, r.stdout


def test_positions_carry_over_runs_and_reconcile_checks_only_the_latest_run(binance_fake, tmp_path, isolated_home):
    """Two live runs one after the other on a futures symbol: the second starts from the account
    position the first left (seeded and journaled before its first order), and `sq reconcile` over
    both compares the account's position with the latest run only — no false difference for
    the first run, whose fills are inside the second run's start position."""
    from sq.core import paths

    fake = binance_fake()
    runs = paths.data_dir() / "runs"
    args = ["live", "--strategy", "lt", "BINANCE-FUT:BTCUSDT", "--param", "clip=0.01", "--param", "threshold=0.05",
            "--config", str(_cfg(tmp_path)), "--confirm-live", "--json", "--for", "4s"]
    for name in ("day1", "day2"):
        r = subprocess.run([SQ_BIN, *args, "--journal", str(runs / name)], capture_output=True, text=True, env=subprocess_env(), timeout=120)
        assert r.returncode == 0, r.stderr
    account = fake.exchange.positions["BTCUSDT"]["amt"]
    from sq.runs.reconcile import view_of
    from sq.core import journal as J

    day1, day2 = view_of(J.load(runs / "day1")), view_of(J.load(runs / "day2"))
    assert day1.positions(), "the first run never traded: nothing carried over"
    assert day2.start_positions.get("BINANCE-FUT:BTCUSDT") == pytest.approx(day1.positions()["BINANCE-FUT:BTCUSDT"])
    assert day2.account_positions()["BINANCE-FUT:BTCUSDT"] == pytest.approx(account)
    r = subprocess.run([SQ_BIN, "reconcile", "--json"], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["differences"] == 0 and len(doc["runs"]) == 2, r.stdout
    # the older run alone (as a cron job pointed at yesterday would) is not held to today's position
    r = subprocess.run([SQ_BIN, "reconcile", "--journal", str(runs / "day1"), "--json"], capture_output=True, text=True,
                       env=subprocess_env(), timeout=60)
    assert r.returncode == 0, r.stdout


def test_live_dashboard_on_a_terminal(sq, binance_fake, tmp_path):
    """On a terminal `sq live` draws its dashboard (positions, working orders, the order stream and
    the breaker) and still stops cleanly at --for."""
    binance_fake()
    r = sq(LIVE + ["--config", str(_cfg(tmp_path)), "--confirm-live", "--journal", str(tmp_path / "dash"), "--for", "3s"],
           stdout_isatty=True, width=160)
    assert r.exit_code == 0, r.stderr
    text = r.stdout.decode()
    assert "sq live mm on binance" in text and "BINANCE:BTCUSDT" in text and "working orders" in text
    assert "order stream up" in text and "breaker closed" in text


def test_a_backlog_is_worked_off_in_one_step_per_run_of_market_batches():
    """When market data queued up behind a slow send, the loop merges consecutive batches into one
    engine step (it trades on the newest book), keeps order updates in arrival order between
    them, and journals the lot with one write."""
    import pyarrow as pa

    from sq.runs import live
    calls: list = []
    writes: list = []

    class Journal:
        def write_step(self, recs):
            writes.append(list(recs))

    run = object.__new__(live.LiveRun)
    run.held, run.conflated, run.view, run.journal = None, 0, None, Journal()
    run.step = lambda batch: (calls.append(("step", batch.column("x").to_pylist())), run.write([("pnl", {"n": batch.num_rows})]))
    run.on_update = lambda cid, st, fills: (calls.append(("update", cid)), run.write([("order", {"cid": cid})]))
    b = lambda *xs: pa.record_batch({"x": pa.array(xs, pa.int64())})  # noqa: E731
    items = [(live.MARKET, b(1)), (live.MARKET, b(2, 3)), (live.UPDATE, "sq1-1", None, []), (live.MARKET, b(4)), (live.MARKET, b()), (live.MARKET, b(5))]
    assert run.work(items) is True
    assert calls == [("step", [1, 2, 3]), ("update", "sq1-1"), ("step", [4, 5])]
    assert run.conflated == 2 and len(writes) == 1 and len(writes[0]) == 3 and run.held is None
    assert run.work([(live.ENDED, None)]) is False


def test_user_stream_outage_falls_back_to_checking_the_venue(binance_fake, tmp_path):
    """The user-data stream drops and stays down for 2 s while orders rest and fill: the run notices
    and checks its orders at the venue (the fallback interval, and once more when the stream is
    back) although the regular check interval is 10 minutes — `sweeps` is 0 without that — and no
    fill the venue made before the halt is missing from the journal before the halt."""
    fake = binance_fake()
    cfg = _cfg(tmp_path, live="sweep_interval_s = 600\nsweep_fallback_s = 0.3")
    journal = tmp_path / "outage"
    p = subprocess.Popen([SQ_BIN, *LIVE, "--param", "clip=0.05", "--journal", str(journal), "--config", str(cfg), "--confirm-live",
                          "--json", "--for", "8s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    registered(p)
    time.sleep(2.0)
    fake.kick_user_streams(outage_s=2.0)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    summary = json.loads(out)
    assert summary["sweeps"] >= 1 and summary["order_updates_pushed"] > 0
    recs = _records(journal)
    halt = next(i for i, r in enumerate(recs) if r.kind == "halt")
    halt_ms = recs[halt].data["ts"] // 1_000_000
    before = {r.data["trade_id"] for r in recs[:halt] if r.kind == "fill"}
    ours = {o.order_id for o in fake.exchange.orders.values() if o.client_id.startswith(recs[0].data["client_prefix"])}
    venue = {str(t["id"]) for t in fake.exchange.trades if t["orderId"] in ours and t["time"] < halt_ms - 500}
    assert venue and venue <= before, sorted(venue - before)


def _status_of(pid: int, *, until, timeout: float):
    """This run as `sq status` sees it, polled until `until(run)` (the last one seen otherwise)."""
    from sq.core.environment import Environment
    from sq.runs.status import collect

    end, run = time.monotonic() + timeout, None
    while True:
        run = next((r for r in collect(Environment())["runs"] if r.pid == pid), run)
        if (run is not None and until(run)) or time.monotonic() > end:
            assert run is not None, "the run is not in sq status"
            return run
        time.sleep(0.05)


def test_market_data_outage_cancels_the_quotes_until_the_feed_is_back(binance_fake, tmp_path):
    """The market-data connection drops and stays down for 5 s: after the grace period the run
    cancels its working orders at the venue (they would rest on a book it cannot see) and sends
    nothing new; when the feed is back it quotes again. Both moments are journaled."""
    fake = binance_fake()
    journal = tmp_path / "feed"
    p = subprocess.Popen([SQ_BIN, *LIVE, "--journal", str(journal), "--config", str(_cfg(tmp_path, live="feed_grace_s = 0.5")),
                          "--confirm-live", "--json", "--for", "120s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=subprocess_env())
    registered(p)
    deadline = time.time() + 30
    while time.time() < deadline and not [o for o in fake.exchange.orders.values() if o.status == "NEW"]:
        time.sleep(0.05)
    _status_of(p.pid, until=lambda r: True, timeout=0)  # (its imports done before the clock below starts)
    fake.kick(outage_s=5.0)
    time.sleep(1.6)  # grace (0.5 s) and the cancels are well over; the outage lasts over 3 s more
    # `sq status` (reading the run's heartbeat, rewritten about once a second) calls it unhealthy
    # (a heartbeat written inside the grace says "down"; the next, once the quotes are canceled, "paused")
    assert _status_of(p.pid, until=lambda r: r.health == "market data down" and r.feed == "paused", timeout=2.4).feed == "paused"
    during = [o.client_id for o in fake.exchange.orders.values() if o.status in ("NEW", "PARTIALLY_FILLED")]
    placed_during = len(fake.exchange.orders)
    time.sleep(0.8)
    assert len(fake.exchange.orders) == placed_during  # nothing new sent while the feed is down
    deadline = time.time() + 60  # the source reconnects with backoff after the outage, then the book resyncs
    while time.time() < deadline and len(fake.exchange.orders) == placed_during and p.poll() is None:
        time.sleep(0.05)
    back = _status_of(p.pid, until=lambda r: r.healthy, timeout=30)
    p.send_signal(signal.SIGTERM)  # a clean halt once it quotes again (or the wait ran out)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 143, err  # SIGTERM's status, after the clean halt
    assert during == [], during
    assert back.health == "ok" and back.feed == "up" and back.breaker == "closed", back
    summary = json.loads(out)
    assert summary["feed_pauses"] == 1 and "market data down" in err
    events = [r.data.get("event") for r in _records(journal) if r.kind == "audit" and r.data.get("by") == "sq live (market data)"]
    assert events == ["feed down: working orders canceled, no new orders", "feed back: trading again"]
    assert len(fake.exchange.orders) > placed_during  # it quoted again once the feed was back


def test_an_unexpected_error_cancels_the_runs_orders_before_exiting(binance_fake, tmp_path, monkeypatch):
    """A bug mid-run (here: the engine step raises once orders are working) must not leave orders
    at the venue: the run cancels everything of its own there, journals why, exits 70 with a
    one-line hint to resume, and `--resume` then continues and reconciles clean."""
    import io

    from sq.runs import live
    from sq.core.environment import Environment
    from sq.core.exits import SqError

    fake = binance_fake()
    real_step = live.LiveRun.step

    def step(self, batch):
        if any(o.status == "NEW" for o in fake.exchange.orders.values()):
            raise RuntimeError("boom")
        return real_step(self, batch)

    monkeypatch.setattr(live.LiveRun, "step", step)
    cfg = _cfg(tmp_path)
    journal = tmp_path / "bug"
    env = Environment(stdout=io.BytesIO(), stderr=io.StringIO(), stdout_isatty=False, stderr_isatty=False, config_path=str(cfg))
    opts = live.LiveOptions(strategy="mm", symbols=["BINANCE:BTCUSDT"], confirm=True, journal=str(journal),
                         params=["clip=0.01", "threshold=0.1"], duration="30s", json=True)
    with pytest.raises(SqError) as e:
        live.run_live(env, opts)
    assert e.value.status == 70 and "RuntimeError" in e.value.message and f"--resume {journal}" in e.value.message
    assert "\n" not in e.value.message
    assert not [o for o in fake.exchange.orders.values() if o.status in ("NEW", "PARTIALLY_FILLED")]
    halt = [r.data for r in _records(journal) if r.kind == "halt" and r.data.get("by") == "error"]
    assert halt and halt[0]["canceled_at_venue"] >= 1 and halt[0]["reason"] == "error: RuntimeError"
    monkeypatch.setattr(live.LiveRun, "step", real_step)
    p = _live(tmp_path, journal, "--for", "1s", resume=True)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    r = subprocess.run([SQ_BIN, "reconcile", "--journal", str(journal), "--json"], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["differences"] == 0, r.stdout


def _text_summary(summary: dict) -> str:
    """The line `sq live` prints on stderr for this summary (without --json)."""
    import io

    from sq.commands.live import render_summary
    from sq.core.environment import Environment

    err = io.StringIO()
    render_summary(Environment(stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=err, stdout_isatty=True), summary, False)
    return err.getvalue()


def test_todays_losses_of_earlier_runs_count_against_the_daily_limit(binance_fake, tmp_path, isolated_home):
    """`risk.max_daily_loss` is per day, not per process: after an earlier live run on the venue
    lost more than the limit today, a new run sends no order at all (and says why in its start
    audit); with the earlier loss under the limit it trades."""
    from sq.core import journal as J
    from sq.core import paths

    fake = binance_fake()
    earlier = paths.data_dir() / "runs" / "earlier"
    j = J.Journal.create(earlier, {"run_id": "earlier-run", "mode": "live", "venue": "binance", "strategy": "mm",
                                   "symbols": ["BINANCE:BTCUSDT"], "client_prefix": "sqearlier-", "ts": time.time_ns()})
    j.write_step([("pnl", {"ts": time.time_ns(), "symbol": "BINANCE:BTCUSDT", "position": 0.0, "avg_price": 0.0, "realized": -1500.0,
                           "unrealized": 0.0, "total": -1500.0, "volume": 1.0})])
    j.seal({"ts": time.time_ns(), "reason": "end"})
    cfg = tmp_path / "daily.toml"
    cfg.write_text('trading_mode = "live"\n[risk]\nmax_daily_loss = 1000\n')
    os.chmod(cfg, 0o600)

    def run(name):
        r = subprocess.run([SQ_BIN, *LIVE, "--journal", str(tmp_path / name), "--config", str(cfg), "--confirm-live", "--json",
                            "--for", "3s"], capture_output=True, text=True, env=subprocess_env(), timeout=120)
        assert r.returncode == 0, r.stderr
        audit = next(rec for rec in _records(tmp_path / name) if rec.kind == "audit").data["venue_before_first_order"]
        return json.loads(r.stdout), audit["daily_loss"]

    summary, carried = run("after-loss")
    assert carried["pnl_today_of_other_runs"] == -1500.0 and carried["runs"] == [{"run_id": "earlier-run", "pnl": -1500.0}]
    assert summary["orders_sent"] == 0 and not [o for o in fake.exchange.orders.values() if o.client_id.startswith("sq")]
    # the run that traded nothing says why: its one-line summary names the refusals with their counts
    assert summary["rejections"] and summary["params"]["BINANCE:BTCUSDT"]["clip"] > 0 and summary["started"].endswith("Z")
    line = _text_summary(summary)
    top, n = max(summary["rejections"].items(), key=lambda kv: kv[1])
    assert f"rejected: {n:,} {top}" in line and "stopped by" in line
    cfg.write_text('trading_mode = "live"\n[risk]\nmax_daily_loss = 2000\n')
    summary, carried = run("under-limit")
    assert summary["orders_sent"] > 0


def test_a_user_strategy_file_trades_live_and_hears_its_fills(binance_fake, tmp_path):
    """The SDK end to end at a venue: a strategy file (not a built-in) quotes at the Binance fake,
    its `on_fill` handler sees the fills the venue pushes, and the run reconciles clean."""
    binance_fake()
    strat = tmp_path / "follower.py"
    strat.write_text(
        "from sq.strategy import BUY, SELL, Strategy\n"
        "strategy = Strategy('follower', 'joins the touch; counts its fills', state=1)\n"
        "SIZE = strategy.param('size', 0.05, above=0.0)\n"
        "@strategy.on_book\n"
        "def on_book(ctx, s):\n"
        "    if ctx.has_bid(s) and ctx.has_ask(s):\n"
        "        ctx.quote(s, BUY, ctx.bid(s), ctx.param(s, SIZE))\n"
        "        ctx.quote(s, SELL, ctx.ask(s), ctx.param(s, SIZE))\n"
        "@strategy.on_fill\n"
        "def on_fill(ctx, s, side, price, qty):\n"
        "    ctx.state(s)[0] += qty\n"
    )
    cfg = _cfg(tmp_path)
    journal = tmp_path / "user"
    r = subprocess.run([SQ_BIN, "live", "--strategy", str(strat), "BINANCE:BTCUSDT", "--journal", str(journal), "--config", str(cfg),
                        "--confirm-live", "--json", "--for", "6s"], capture_output=True, text=True, env=subprocess_env(), timeout=180)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["strategy"] == "follower" and summary["orders_sent"] > 0
    from sq.core import journal as J

    loaded = J.load(journal)
    assert loaded.sealed and loaded.start["strategy"] == str(strat.resolve())
    fills = [rec for rec in loaded.records if rec.kind == "fill"]
    assert fills, "the fake filled none of the quotes"
    reconciled = subprocess.run([SQ_BIN, "reconcile", "--journal", str(journal), "--json"], capture_output=True, text=True,
                                     env=subprocess_env(), timeout=60)
    assert json.loads(reconciled.stdout)["differences"] == 0


def test_a_strategys_stop_orders_are_refused_live_not_sent_as_limits(binance_fake, tmp_path, isolated_home):
    """An event strategy's stop and take-profit (here `lt`'s) are simulated in backtest and
    paper only: live journals them `rejected`, naming why, and never sends them — neither as a
    conditional order nor as a plain limit at the trigger price."""
    fake = binance_fake()
    args = ["live", "--strategy", "lt", "BINANCE-FUT:BTCUSDT", "--param", "clip=0.01", "--param", "threshold=0.05",
            "--param", "stop=50", "--param", "take=50", "--config", str(_cfg(tmp_path)), "--confirm-live", "--json",
            "--for", "4s", "--journal", str(tmp_path / "j")]
    r = subprocess.run([SQ_BIN, *args], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    recs = _records(tmp_path / "j")
    new = [x.data for x in recs if x.kind == "order" and x.data.get("event") == "new"]
    protective = [d for d in new if d.get("reason") in ("stop-market", "take-profit-market")]
    assert protective, "lt never held a position: nothing to protect"
    refused = {x.data["client_order_id"]: x.data for x in recs if x.kind == "order" and x.data.get("event") == "rejected"}
    for d in protective:
        assert "not sent live" in str(refused[d["client_order_id"]].get("reason")), refused
    assert not fake.exchange.algos
    sent = {o.client_id for o in fake.exchange.orders.values()}
    assert not sent & {d["client_order_id"] for d in protective}
