"""`sq doctor`: the checks before the open, against the local Binance and Kite fakes.

A skewed venue clock, an expiring or refused token, a credential file others can read, a crashed
run's registry entry, a closed market and a filling disk each give the right verdict and fix; a
machine with no venue configured asks no network at all."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from sq.core import runtime
from sq.runs import doctor
from sq.venues.base import FAIL, OK, WARN
from sq.venues.binance.doctor import clock_check
from sq.venues.zerodha.doctor import expiry_check

GIB = 1 << 30


def run(sq, *args) -> tuple[int, dict, str]:
    r = sq(["doctor", "--json", *args])
    return r.exit_code, json.loads(r.stdout), r.stderr


def by_name(doc: dict) -> dict[str, dict]:
    return {c["check"]: c for c in doc["checks"]}


def test_nothing_configured_checks_this_machine_only(sq):
    code, doc, err = run(sq)
    checks = by_name(doc)
    assert code == 0 and doc["ok"], doc
    assert checks["config"]["status"] == OK and checks["numba cache"]["status"] in (OK, WARN)
    assert "not checked" in checks["binance"]["detail"] and "not checked" in checks["zerodha"]["detail"]
    assert any(c.startswith("disk") for c in checks) and "doctor:" in err


def test_verdicts_and_their_thresholds():
    assert clock_check("c", 120).status == OK
    assert clock_check("c", -400).status == WARN and "behind" in clock_check("c", -400).detail
    bad = clock_check("c", 1500)
    assert bad.status == FAIL and "1500 ms ahead" in bad.detail and "clock" in bad.fix
    now = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.timezone.utc)
    assert expiry_check("2026-12-08T06:00:00+05:30", now).status == OK
    assert expiry_check("2026-12-07T10:00:00+05:30", now).status == WARN  # 1.5 h left
    assert expiry_check("2026-12-07T06:00:00+05:30", now).status == FAIL
    assert doctor.disk_check("d", doctor.Path("/x"), 50 * GIB, 0).status == OK
    assert doctor.disk_check("d", doctor.Path("/x"), 1 * GIB, 0).status == WARN
    assert doctor.disk_check("d", doctor.Path("/x"), 100 << 20, 0).status == FAIL
    fills = doctor.disk_check("d", doctor.Path("/x"), 50 * GIB, 40 * GIB)  # full in 1.25 days at the recent rate
    assert fills.status == WARN and "full in 1.2 days" in fills.detail
    assert doctor.disk_check("d", doctor.Path("/x"), 50 * GIB, 200 * GIB).status == FAIL


def test_binance_against_the_fake(sq, binance_fake):
    fake = binance_fake()
    code, doc, err = run(sq)
    checks = by_name(doc)
    assert code == 0, doc
    for name in ("binance spot API", "binance spot clock", "binance futures API", "binance futures clock", "binance key"):
        assert checks[name]["status"] == OK, checks[name]
    assert "accepted" in checks["binance key"]["detail"]
    assert fake.account.api_secret not in json.dumps(doc) + err


def test_binance_clock_ahead_fails_and_a_refused_key_fails(sq, binance_fake, monkeypatch):
    fake = binance_fake(clock_offset_ms=-3000)  # the venue's clock 3 s behind: this machine is 3 s ahead
    code, doc, _ = run(sq)
    clock = by_name(doc)["binance spot clock"]
    assert code == 1 and not doc["ok"]
    assert clock["status"] == FAIL and "ahead of Binance's clock" in clock["detail"] and clock["fix"]
    monkeypatch.setenv("BINANCE_API_SECRET", "not-the-secret-" + "9" * 20)
    fake.clock_offset_ms = 0
    code, doc, err = run(sq)
    key = by_name(doc)["binance key"]
    assert code == 1 and key["status"] == FAIL and "sq auth binance" in key["fix"]
    assert "not-the-secret" not in json.dumps(doc) + err


def test_zerodha_skewed_clock_and_expiring_token(sq, kite_env):
    from sq.core.config import Secret
    from sq.venues.zerodha.session import IST, Session, save_session

    fake = kite_env
    now = dt.datetime.now(dt.timezone.utc)
    token = fake.issue_token()
    save_session(Session(fake.api_key, fake.user_id, "Test User", Secret(token), now.astimezone(IST).isoformat(),
                         (now + dt.timedelta(hours=1)).astimezone(IST).isoformat(timespec="seconds")))
    fake.clock_offset_s = 10.0  # Kite's clock 10 s ahead: this machine is behind
    code, doc, err = run(sq)
    checks = by_name(doc)
    assert code == 0 and doc["ok"], doc  # warnings only
    assert checks["zerodha API"]["status"] == OK and checks["zerodha token"]["status"] == OK
    assert checks["zerodha clock"]["status"] == WARN and "behind Kite's clock" in checks["zerodha clock"]["detail"]
    assert checks["zerodha token expiry"]["status"] == WARN and "in 1.0 h" in checks["zerodha token expiry"]["detail"]
    assert token not in json.dumps(doc) + err and fake.api_secret not in json.dumps(doc) + err


def test_zerodha_refused_token_and_a_readable_credential_file(sq, kite_env):
    from sq.core.config import Secret
    from sq.venues.zerodha.session import IST, Session, save_session, session_path

    fake = kite_env
    now = dt.datetime.now(dt.timezone.utc)
    save_session(Session(fake.api_key, fake.user_id, "Test User", Secret("never-issued-token-123"), now.astimezone(IST).isoformat(),
                         (now + dt.timedelta(hours=20)).astimezone(IST).isoformat(timespec="seconds")))
    path = session_path()
    os.chmod(path, 0o644)
    code, doc, err = run(sq)
    checks = [c for c in doc["checks"]]
    token = by_name(doc)["zerodha token"]
    assert code == 1 and token["status"] == FAIL and token["fix"] == "sq auth zerodha"
    files = [c for c in checks if c["check"] == "credential file" and str(path) in c["detail"]]
    assert files and files[0]["status"] == FAIL and files[0]["fix"] == f"chmod 600 {path}"
    assert "never-issued-token-123" not in json.dumps(doc) + err


def test_a_crashed_runs_registry_entry_is_a_warning(sq):
    d = runtime.procs_dir()
    d.mkdir(parents=True, exist_ok=True)
    dead = runtime.ProcEntry(pid=2 ** 22 + 12345, strategy="mm", venue="sim", symbols=["SIM:DEMO"], mode="paper", journal="/tmp/x")
    (d / f"{dead.pid}.json").write_text(json.dumps(dead.to_json()))
    code, doc, _ = run(sq)
    reg = by_name(doc)["registry"]
    assert code == 0 and reg["status"] == WARN and "1 entry" in reg["detail"] and "--resume" in reg["fix"]


@pytest.mark.parametrize("day,status,words", [
    ("2026-12-07", OK, "open today (2026-12-07)"),  # a Monday
    ("2026-12-05", WARN, "weekend"),
    ("2026-01-26", WARN, "holiday"),  # Republic Day
    ("2027-03-02", WARN, "does not cover 2027"),
])
def test_whether_the_configured_market_trades_today(tmp_path, day, status, words):
    from sq.core.config import load_config
    from sq.core.environment import Environment

    cfg = tmp_path / "sq.toml"
    cfg.write_text('[[instruments]]\nsymbol = "NSE:INFY"\n[[instruments]]\nsymbol = "NSE:RELIANCE"\n')
    config = load_config(Environment(), environ={**os.environ, "SQ_CONFIG": str(cfg)})
    now = dt.datetime.fromisoformat(day + "T04:00:00+00:00")
    found = doctor.markets_today(config, now)
    assert len(found) == 1  # one line per market, not per instrument
    assert found[0].status == status and words in found[0].detail, found[0]
