"""Alerts through apprise: a local HTTP sink takes the JSON-webhook alerts of a halted paper
replay (the loss limit, then the end-of-run summary, in that order) and no secret of the URL
shows anywhere — sink bodies, stdout, stderr, the journal; a slow, a failing and an unreachable
channel leave the run's orders and fills exactly those of a run without alerts; dedupe, rate
limit and a full queue never block the sender; URL masking."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sq.core.redact import mask_argv, mask_url, scrub
from sq.runs.alerts import Alerts
from tests.support.alertsink import AlertSink
from tests.support.process import ROOT, SQ_BIN, subprocess_env

DEMO = str(ROOT / "fixtures" / "sim-demo")
SECRETS = ("USERSECRET", "PASSSECRET", "PATHSECRET", "QUERYSECRET")


def secret_url(port: int) -> str:
    return f"json://USERSECRET:PASSSECRET@127.0.0.1:{port}/hook/PATHSECRET?token=QUERYSECRET"


def replay(tmp_path: Path, name: str, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    journal = tmp_path / name
    r = subprocess.run([SQ_BIN, "paper", "--strategy", "mm", "--from", DEMO, "--json", "--journal", str(journal), *extra],
                       capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    return r, journal


def trades(journal: Path) -> tuple:
    """The run's orders and fills as the journal compacted them."""
    return tuple(pq.read_table(journal / f"{k}.parquet").to_pylist() for k in ("orders", "fills"))


def test_a_halted_run_alerts_the_loss_limit_then_its_summary_and_no_secret_leaks(tmp_path):
    with AlertSink() as sink:
        r, journal = replay(tmp_path, "halted", "--param", "max_loss=0.000001", "--alert", secret_url(sink.port))
        assert sink.wait_for(lambda a: len(a) >= 2, 30), sink.alerts
    summary = json.loads(r.stdout)
    assert summary["halted"] == "max_loss"
    titles = [a["title"] for a in sink.alerts]
    assert len(titles) == 2 and "loss limit" in titles[0] and "summary" in titles[1], titles
    assert "max_loss" in sink.alerts[0]["message"] and sink.alerts[0]["type"] == "failure"
    assert summary["run_id"] in sink.alerts[1]["message"] and "PnL total" in sink.alerts[1]["message"]
    shown = [b.decode() for b in sink.bodies] + [r.stdout, r.stderr]
    shown += [p.read_text(errors="replace") for p in journal.rglob("*") if p.is_file() and p.suffix != ".parquet"]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text
    assert "json://***@127.0.0.1:" in (journal / "journal.log").read_text()  # the start record's argv, masked


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_slow_failing_and_unreachable_channels_change_no_order_or_fill(tmp_path):
    _, plain = replay(tmp_path, "plain")
    want = trades(plain)
    assert want[0] and want[1]
    with AlertSink(delay_s=1.0) as slow, AlertSink(status=500) as failing:
        urls = [slow.url("slow/PATHSECRET"), failing.url("fail/PATHSECRET"), f"json://127.0.0.1:{free_port()}/refused/PATHSECRET"]
        r, alerted = replay(tmp_path, "alerted", "--param", "max_loss=0.000001", *[a for u in urls for a in ("--alert", u)])
        _, halted = replay(tmp_path, "halted-plain", "--param", "max_loss=0.000001")
    assert trades(alerted) == trades(halted)
    # each failing channel reported once, masked; the run went on
    warnings = [line for line in r.stderr.splitlines() if "alert channel" in line]
    assert len(warnings) == 2, r.stderr
    assert all("PATHSECRET" not in w and "/***/***" in w for w in warnings)
    # and a run with alerts on, nothing halted, equals the plain one
    with AlertSink(delay_s=1.0) as slow:
        _, on = replay(tmp_path, "on", "--alert", slow.url())
    assert trades(on) == want


class Blocking:
    """A channel that hangs until released (a dead webhook)."""

    def __init__(self):
        self.release = threading.Event()
        self.got: list[str] = []

    def notify(self, title, body, notify_type=None):
        self.release.wait(30)
        self.got.append(title)
        return True


class Failing:
    def __init__(self):
        self.calls = 0

    def notify(self, title, body, notify_type=None):
        self.calls += 1
        raise ConnectionError("POST http://u:SECRETPW@example.com/x failed")


def test_dedupe_rate_limit_and_a_full_queue_never_block_the_sender():
    warned: list[str] = []
    now = [0.0]
    ch = Blocking()
    a = Alerts(["json://example.com/x"], warn=warned.append, min_interval_s=60.0, queue_size=4, channels=[ch], clock=lambda: now[0])
    assert a.send("feed_down", "down") and not a.send("feed_down", "down again")  # the same alert within a minute
    assert a.send("feed_back", "back")
    now[0] = 61.0
    assert a.send("feed_down", "down later")
    for i in range(50):  # a burst of distinct alerts while the channel hangs: queue full, dropped, never waits
        a.send("halt", f"h{i}", subject=str(i))
    assert a.counts.dropped > 0 and a.counts.suppressed >= 1
    assert a.send("summary", "end") or a.counts.dropped  # the summary is never deduplicated
    ch.release.set()
    a.close(30)
    assert ch.got[:3] == ["sq: feed down", "sq: feed back", "sq: feed down"]


def test_a_failing_channel_is_reported_once_masked():
    warned: list[str] = []
    ch = Failing()
    url = "json://u:SECRETPW@example.com/x"
    a = Alerts([url], warn=warned.append, min_interval_s=0.0, channels=[ch])
    for i in range(3):
        a.send("halt", "h", subject=str(i))
    a.close(30)
    assert ch.calls == 3 and a.counts.failed == 3
    assert len(warned) == 1 and "SECRETPW" not in warned[0] and "json://***@example.com/***" in warned[0]


def test_an_unknown_alert_url_is_a_usage_error(sq, tmp_path):
    r = sq(["paper", "--strategy", "mm", "--from", DEMO, "--alert", "nosuchscheme://TOKENSECRET/x", "--journal", str(tmp_path / "j")])
    assert r.exit_code == 2 and "--alert nosuchscheme://***/***" in r.stderr and "TOKENSECRET" not in r.stderr


@pytest.mark.parametrize("url, shown", [
    ("tgram://123456789:AAHsecret/-100123", "tgram://***/***"),
    ("discord://webhook_id/webhook_token", "discord://***/***"),
    ("slack://T000/B000/XXXXXXXX/#alerts", "slack://***/***/***/#***"),
    ("mailto://user:password@gmail.com?to=ops@example.com", "mailto://***@gmail.com?to=***"),
    ("json://127.0.0.1:8080/hook/abc?token=xyz", "json://127.0.0.1:8080/***/***?token=***"),
    ("not a url", "***"),
])
def test_mask_url(url, shown):
    assert mask_url(url) == shown


def test_mask_argv_and_scrub():
    assert mask_argv(["paper", "--alert", "tgram://TOK/1", "--alert=json://u:p@h.example/x"]) == \
        ["paper", "--alert", "tgram://***/***", "--alert=json://***@h.example/***"]
    assert scrub("error for TOKENX at host", ["tgram://TOKENX/1"]) == "error for *** at host"


def test_config_check_masks_alert_urls(sq, tmp_path, monkeypatch):
    cfg = tmp_path / "sq.toml"
    cfg.write_text('[monitoring]\nmetrics = "127.0.0.1:9108"\nalerts = ["tgram://BOTSECRET/42", "json://u:PWSECRET@hooks.example.com/h"]\n')
    r = sq(["--config", str(cfg), "config", "check", "--json"])
    assert r.exit_code == 0, r.stderr
    text = r.stdout.decode()
    assert "BOTSECRET" not in text and "PWSECRET" not in text and "tgram://***/***" in text and "json://***@hooks.example.com/***" in text
    r = sq(["--config", str(cfg), "config", "check"])
    assert "BOTSECRET" not in r.stdout.decode() + r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[monitoring]\nalert = ["x://y"]\n')
    r = sq(["--config", str(bad), "config", "check"])
    assert r.exit_code == 78 and "alerts" in r.stderr


class Recording:
    def __init__(self):
        self.got: list[tuple[str, str]] = []

    def notify(self, title, body, notify_type=None):
        self.got.append((title, body))
        return True


def test_live_transitions_alert_once_each_in_order():
    """The monitor's view of a live run: breaker open → closed, feed down → back, a loss halt —
    each transition one alert, in the order they happened; nothing while nothing changes."""
    import io

    from sq.core.circuit import CircuitBreaker
    from sq.core.environment import Environment
    from sq.runs.monitor import Monitor

    now = [0.0]
    env = Environment(stdout=io.BytesIO(), stderr=io.StringIO())
    mon = Monitor(env, mode="live", run="r1", strategy="mm", venue="binance", listen=None, textfile=None, urls=[], min_interval_s=0.0)
    ch = Recording()
    mon.alerts = Alerts(["json://example.com/x"], warn=env.warn, title=mon.name, min_interval_s=0.0, channels=[ch])

    class Run:
        halted_reason = ""
        feed_paused = False
        feed_down_since = None
        breaker = CircuitBreaker(failures=2, cooldown_s=1.0, clock=lambda: now[0])

    run = Run()
    mon.step(run)
    run.breaker.failure(); mon.step(run)
    run.breaker.failure(); mon.step(run); mon.step(run)
    now[0] = 2.0
    assert run.breaker.allow()  # half-open: a trial order
    run.breaker.success(); mon.step(run)
    run.feed_down_since = 1.0; mon.step(run)  # down within its grace: nothing yet
    run.feed_paused = True; mon.step(run)
    run.feed_paused, run.feed_down_since = False, None; mon.step(run)
    run.halted_reason = "daily_loss"; mon.step(run); mon.step(run)
    mon.close({"run_id": "r1", "stopped_by": "kill", "events": 10, "orders": 2, "fills": 1, "pnl": {"total": -1.0}})
    titles = [t for t, _ in ch.got]
    assert titles == [f"sq live mm binance: {k}" + (" (daily_loss)" if k == "loss limit" else "")
                      for k in ("breaker open", "breaker closed", "feed down", "feed back", "loss limit", "kill", "summary")]
    assert "halted by sq kill" in ch.got[5][1] and "r1" in ch.got[6][1]


def test_sq_kill_alerts_the_configs_urls(tmp_path):
    with AlertSink() as sink:
        cfg = tmp_path / "sq.toml"
        cfg.write_text(f'[monitoring]\nalerts = ["{sink.url("kill/PATHSECRET")}"]\n')
        os.chmod(cfg, 0o600)
        r = subprocess.run([SQ_BIN, "--config", str(cfg), "kill", "--json"], capture_output=True, text=True, env=subprocess_env(), timeout=120)
        assert sink.wait_for(lambda a: a, 10)
    assert r.returncode == 0, r.stderr
    assert [a["title"] for a in sink.alerts] == ["sq kill: kill"] and "run(s) halted" in sink.alerts[0]["message"]
    assert "PATHSECRET" not in r.stdout + r.stderr


def test_an_unexpected_exit_alerts_before_the_error_leaves(tmp_path, monkeypatch):
    import io

    from sq.core.environment import Environment
    from sq.runs import paper
    from sq.runs.monitor import MonitorOptions

    def broken(self, batch):
        raise RuntimeError("disk on fire at http://u:PWSECRET@example.com/x")

    monkeypatch.setattr(paper.PaperRun, "step", broken)
    err = io.StringIO()
    with AlertSink() as sink:
        opts = paper.PaperOptions(strategy="mm", inputs=[DEMO], journal=str(tmp_path / "j"), monitor=MonitorOptions(alerts=[sink.url("x")]))
        with pytest.raises(RuntimeError):
            paper.run_paper(Environment(stdout=io.BytesIO(), stderr=err), opts)
        assert sink.wait_for(lambda a: a, 10)
    assert [a["title"].split(": ", 1)[1] for a in sink.alerts] == ["exit"]
    assert "disk on fire" in sink.alerts[0]["message"] and "PWSECRET" not in sink.alerts[0]["message"]


def test_a_session_about_to_expire_alerts(monkeypatch):
    import datetime as dt
    import io

    from sq.core.environment import Environment
    from sq.runs import auth
    from sq.runs.monitor import Monitor

    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3)).isoformat(timespec="seconds")
    later = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=30)).isoformat(timespec="seconds")
    env = Environment(stdout=io.BytesIO(), stderr=io.StringIO())
    for expires, want in ((soon, 1), (later, 0)):
        monkeypatch.setattr(auth, "credential_status", lambda env, config=None, e=expires: {"zerodha": {"state": "logged in", "expires": e}})
        mon = Monitor(env, mode="live", run="r", strategy="mm", venue="zerodha", listen=None, textfile=None, urls=[], token_warn_hours=12)
        ch = Recording()
        mon.alerts = Alerts(["json://example.com/x"], warn=env.warn, title=mon.name, channels=[ch])
        mon.check_credentials(env, None, "zerodha")
        mon.alerts.close(10)
        assert len(ch.got) == want
        if want:
            assert "token expiry (zerodha)" in ch.got[0][0] and "sq auth zerodha" in ch.got[0][1]
