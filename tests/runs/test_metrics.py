"""Prometheus metrics of a run: a live paper run on SIM:DEMO scraped over HTTP while it trades and
parsed with prometheus_client's own parser; the textfile of a replay (written at the end, its
counts those of the run's summary); a record run's metrics; bad addresses are usage errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.support.process import ROOT, SQ_BIN, subprocess_env

DEMO = str(ROOT / "fixtures" / "sim-demo")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def families(text: str) -> dict[str, list]:
    """metric family name → its samples, through prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def value(fams: dict, family: str, sample: str | None = None, **labels) -> float:
    rows = [s for s in fams[family] if s.name == (sample or family) and all(s.labels.get(k) == v for k, v in labels.items())]
    assert rows, (family, sample, labels)
    return sum(s.value for s in rows)


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()
    except OSError:
        return None


def test_a_paper_run_scraped_over_http_while_it_trades(tmp_path):
    port = free_port()
    p = subprocess.Popen([SQ_BIN, "paper", "--strategy", "mm", "SIM:DEMO", "--metrics", f"127.0.0.1:{port}",
                          "--param", "max_order_size=0.5", "--journal", str(tmp_path / "j")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env(), text=True)
    fams = None
    try:
        end = time.monotonic() + 180
        while time.monotonic() < end and p.poll() is None:
            text = scrape(port)
            if text and "sq_market_events_total" in text:
                got = families(text)
                if value(got, "sq_market_events", "sq_market_events_total") > 0 and got.get("sq_order_rejections") \
                        and got["sq_order_rejections"] and value(got, "sq_journal_write_seconds", "sq_journal_write_seconds_count") > 0:
                    fams = got
                    break
            time.sleep(0.2)
        assert fams is not None, f"no metrics with events, rejections and journal writes: {p.poll()} {p.stderr.read() if p.poll() is not None else ''}"
    finally:
        p.terminate()
        out, err = p.communicate(timeout=120)
    # the run's labels on every series, Prometheus types, counters named *_total
    ev = [s for s in fams["sq_market_events"] if s.name == "sq_market_events_total"][0]
    assert ev.labels["mode"] == "paper" and ev.labels["strategy"] == "mm" and ev.labels["venue"] == "sim" and ev.labels["run"]
    assert value(fams, "sq_market_messages", "sq_market_messages_total") > 0
    # every order of clip 1 is above max_order_size 0.5: rejected, by reason
    assert value(fams, "sq_order_rejections", "sq_order_rejections_total", reason="order_too_large") > 0
    assert value(fams, "sq_orders", "sq_orders_total") == 0
    assert value(fams, "sq_position", symbol="SIM:DEMO") == 0
    assert {s.labels["component"] for s in fams["sq_pnl"]} == {"realized", "unrealized", "fees", "net"}
    assert value(fams, "sq_feed_up") == 1 and value(fams, "sq_feed_lag_seconds") > -60
    assert value(fams, "sq_halted") == 0
    assert "sq_tick_to_order_seconds" in fams and "sq_run_start_time_seconds" in fams
    # the endpoint goes with the run
    assert p.returncode == 143, err
    assert scrape(port) is None


def test_metrics_file_of_a_replay_matches_its_summary(tmp_path):
    prom = tmp_path / "textfile" / "sq.prom"
    prom.parent.mkdir()
    r = subprocess.run([SQ_BIN, "paper", "--strategy", "mm", "--from", DEMO, "--metrics-file", str(prom), "--json",
                        "--journal", str(tmp_path / "j")], capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    fams = families(prom.read_text())
    assert value(fams, "sq_market_events", "sq_market_events_total") == summary["events"] > 0
    by_kind = {s.labels["kind"]: s.value for s in fams["sq_market_events_by_kind"] if s.name.endswith("_total")}
    assert sum(by_kind.values()) == summary["events"] and by_kind["level"] > 0 and by_kind["trade"] > 0
    assert value(fams, "sq_orders", "sq_orders_total") == summary["orders"] > 0
    assert value(fams, "sq_fills", "sq_fills_total") == summary["fills"]
    for sym, qty in summary["position"].items():
        assert value(fams, "sq_position", symbol=sym) == pytest.approx(qty)
    net = sum(s.value for s in fams["sq_pnl"] if s.labels["component"] == "net")
    assert net == pytest.approx(summary["pnl"]["total"], abs=0.01)  # the summary rounds money to the tick × lot
    writes = value(fams, "sq_journal_write_seconds", "sq_journal_write_seconds_count")
    assert summary["journal_fsyncs"] <= writes <= summary["journal_fsyncs"] + 1  # + the seal's, after the summary
    assert "sq_tick_to_order_seconds" in fams
    assert not list(prom.parent.glob("*.tmp*"))  # written atomically


def test_record_metrics_file(tmp_path):
    prom = tmp_path / "rec.prom"
    r = subprocess.run([SQ_BIN, "record", "SIM:DEMO", "--out", str(tmp_path / "data"), "--limit", "3000", "--metrics-file", str(prom), "--no-pass-through"],
                       capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    fams = families(prom.read_text())
    assert value(fams, "sq_record_events", "sq_record_events_total", symbol="SIM:DEMO") >= 3000
    assert value(fams, "sq_record_files_sealed", "sq_record_files_sealed_total") >= 1
    assert value(fams, "sq_record_written_bytes", "sq_record_written_bytes_total") > 0
    assert [s.labels["mode"] for s in fams["sq_record_events"]] == ["record"]


def test_a_bad_metrics_address_is_a_usage_error(sq, tmp_path):
    r = sq(["paper", "--strategy", "mm", "--from", DEMO, "--metrics", "localhost:http", "--journal", str(tmp_path / "a")])
    assert r.exit_code == 2 and "--metrics" in r.stderr and "HOST:PORT" in r.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = sq(["paper", "--strategy", "mm", "--from", DEMO, "--metrics", f"127.0.0.1:{port}", "--journal", str(tmp_path / "b")])
    assert r.exit_code == 2 and "cannot listen" in r.stderr, r.stderr


def test_without_the_flags_prometheus_and_apprise_are_not_imported(tmp_path):
    code = ("import sys, io; from sq.core.environment import Environment; from sq.runs.paper import PaperOptions, run_paper; "
            f"run_paper(Environment(stdout=io.BytesIO(), stderr=io.StringIO()), PaperOptions(strategy='mm', inputs=[{DEMO!r}], journal={str(tmp_path / 'j')!r})); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prometheus_client', 'apprise')))")
    r = subprocess.run([sys.executable, "-c", code],
                       capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_a_live_run_metrics_and_alerts_through_a_feed_outage(binance_fake, tmp_path):
    """`sq live` on the local Binance fake with a metrics file and an alert sink: the feed drops
    past its grace and comes back (two alerts, in order, then the summary at the end); the
    metrics carry the tick→order histogram, the breaker, the feed and the venue's weight use."""
    import os
    import signal

    from tests.support.alertsink import AlertSink
    from tests.support.livetools import registered

    fake = binance_fake()
    cfg = tmp_path / "live.toml"
    cfg.write_text('trading_mode = "live"\n[risk]\nmax_order_rate = 20\n[live]\nfeed_grace_s = 0.5\n')
    os.chmod(cfg, 0o600)
    prom = tmp_path / "live.prom"
    with AlertSink() as sink:
        p = subprocess.Popen([SQ_BIN, "live", "--strategy", "mm", "BINANCE:BTCUSDT", "--param", "clip=0.01", "--param", "threshold=0.1",
                              "--journal", str(tmp_path / "j"), "--config", str(cfg), "--confirm-live", "--json", "--for", "120s",
                              "--metrics-file", str(prom), "--alert", sink.url("live/SECRETPATH")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
        try:
            registered(p)
            end = time.monotonic() + 60
            while time.monotonic() < end and not [o for o in fake.exchange.orders.values() if o.status == "NEW"]:
                time.sleep(0.05)
            fake.kick(outage_s=3.0)
            assert sink.wait_for(lambda a: any("feed back" in x["title"] for x in a), 90), (sink.alerts, p.poll())
        finally:
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=120)
        assert sink.wait_for(lambda a: any("summary" in x["title"] for x in a), 30)
    assert p.returncode == 143, err
    titles = [a["title"] for a in sink.alerts]
    assert [t.split(": ", 1)[1] for t in titles] == ["feed down", "feed back", "summary"], titles
    assert all("SECRETPATH" not in t for t in [out, err] + [b.decode() for b in sink.bodies])
    fams = families(prom.read_text())
    assert value(fams, "sq_tick_to_order_seconds", "sq_tick_to_order_seconds_count") == json.loads(out)["tick_to_order_us"]["n"] > 0
    assert value(fams, "sq_breaker_state", state="closed") == 1 and value(fams, "sq_breaker_state", state="open") == 0
    assert value(fams, "sq_feed_pauses", "sq_feed_pauses_total") == 1
    assert 0 < value(fams, "sq_venue_rate_limit_used", limit="weight_1m") < 1
    assert value(fams, "sq_venue_orders_sent", "sq_venue_orders_sent_total") > 0
    assert value(fams, "sq_feed_events", "sq_feed_events_total", kind="reconnects") >= 1  # the outage's reconnect
    assert value(fams, "sq_book_resyncs", "sq_book_resyncs_total") >= 0 and value(fams, "sq_book_gaps", "sq_book_gaps_total") >= 0
    assert [s.labels["mode"] for s in fams["sq_market_events"]] == ["live"]
