"""`sq auth zerodha` against the local Kite server: TOTP login (good and wrong), checksum, the 0600
token cache and its expiry, status with masked key, the manual flow (paste and redirect catcher),
and expired tokens → exit 77."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import socket
import stat
import threading
import time

import pytest
import requests

from sq.runs.auth import AuthOptions
from sq.core.config import Secret, load_config
from sq.core.environment import Environment
from sq.core.exits import AuthError
from sq.venues.zerodha import auth
from sq.venues.zerodha.session import IST, Session, access_token, next_expiry, read_session, save_session, session_path


def secrets_of(fake) -> list[str]:
    return [fake.password, fake.totp_secret, fake.api_secret] + list(fake.valid_tokens)


def test_checksum_is_sha256_of_key_token_secret():
    assert auth.checksum("key", "rt", "sec") == hashlib.sha256(b"keyrtsec").hexdigest()


def test_totp_login_caches_token_0600(sq, kite_env):
    fake = kite_env
    r = sq(["auth", "zerodha", "--json"])
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)["zerodha"]
    assert info["state"] == "logged in" and info["method"] == "totp" and info["user"] == fake.user_id
    assert info["api_key"] != fake.api_key and info["api_key"].endswith("***")
    p = session_path()
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    s = read_session()
    assert s.access_token.reveal() in fake.valid_tokens
    expires = dt.datetime.fromisoformat(s.expires_at)
    assert expires == next_expiry(dt.datetime.fromisoformat(s.login_time)) and expires.astimezone(IST).hour == 6
    for secret in secrets_of(fake):
        assert secret not in r.stdout.decode() and secret not in r.stderr
    st = sq(["auth", "status", "--json"])
    z = json.loads(st.stdout)["zerodha"]
    assert z["state"] == "logged in" and z["user"] == fake.user_id and fake.api_key not in st.stdout.decode()
    assert ["POST", "/session/token"] in [list(x) for x in fake.requests]


def test_wrong_totp_is_refused_with_77(sq, kite_env, monkeypatch):
    monkeypatch.setenv("ZKITE_TOTP_SECRET", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    r = sq(["auth", "zerodha"])
    assert r.exit_code == 77
    assert "TOTP" in r.stderr and "GEZDGNBV" not in r.stderr
    assert read_session() is None


def test_wrong_password_and_bad_totp_seed(sq, kite_env, monkeypatch):
    monkeypatch.setenv("ZKITE_PWD", "not-the-password")
    r = sq(["auth", "zerodha"])
    assert r.exit_code == 77 and "not-the-password" not in r.stderr
    monkeypatch.setenv("ZKITE_PWD", kite_env.password)
    monkeypatch.setenv("ZKITE_TOTP_SECRET", "not base32 !!")
    r = sq(["auth", "zerodha"])
    assert r.exit_code == 78 and "base32" in r.stderr and "not base32" not in r.stderr


def test_wrong_api_secret_fails_the_checksum(sq, kite_env, monkeypatch):
    monkeypatch.setenv("ZKITE_API_SECRET", "wrong-secret-123456")
    r = sq(["auth", "zerodha"])
    assert r.exit_code == 77 and "run sq auth zerodha" in r.stderr and "wrong-secret" not in r.stderr


def test_missing_credentials_name_the_variables(sq, kite_env, monkeypatch):
    monkeypatch.delenv("ZKITE_TOTP_SECRET")
    r = sq(["auth", "zerodha"])
    assert r.exit_code == 78 and "ZKITE_TOTP_SECRET" in r.stderr and "--manual" in r.stderr


def test_expired_or_missing_token_is_77(kite_env):
    z = load_config().zerodha
    with pytest.raises(AuthError) as e:
        access_token(z)
    assert e.value.status == 77 and "run sq auth zerodha" in e.value.message
    past = dt.datetime.now(IST) - dt.timedelta(hours=1)
    save_session(Session(z.api_key, "XX0000", "x", Secret("tok"), past.isoformat(), past.isoformat()))
    with pytest.raises(AuthError) as e:
        access_token(z)
    assert "expired" in e.value.message and "run sq auth zerodha" in e.value.message


def test_sq_subscribe_path_with_expired_token_exits_77(sq, kite_env):
    from sq.core.symbols import parse_symbols
    from sq.venues.registry import SourceOptions, open_market_source

    with pytest.raises(AuthError):
        open_market_source(parse_symbols(["NSE:RELIANCE"]), SourceOptions(config=load_config(), env=Environment()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_manual_flow_redirect_catcher_when_not_a_terminal(kite_env, monkeypatch):
    fake = kite_env
    port = _free_port()
    monkeypatch.setenv("SQ_KITE_REDIRECT_PORT", str(port))
    monkeypatch.setenv("SQ_KITE_REDIRECT_TIMEOUT", "20")
    err = io.StringIO()
    env = Environment(stdin=io.BytesIO(b""), stdout=io.BytesIO(), stderr=err, stdin_isatty=False, stdout_isatty=False)
    out: dict = {}
    th = threading.Thread(target=lambda: out.update(auth.login(env, load_config(), AuthOptions(manual=True))))
    th.start()
    fake.request_tokens.add("manualrt123")
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            r = requests.get(f"http://127.0.0.1:{port}/?action=login&status=success&request_token=manualrt123", timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    th.join(15)
    assert r.status_code == 200
    assert out["state"] == "logged in" and out["method"] == "manual"
    assert f"/connect/login?v=3&api_key={fake.api_key}" in err.getvalue()


def test_manual_flow_paste_on_a_terminal(kite_env):
    fake = kite_env
    fake.request_tokens.add("pastedrt456")
    err = io.StringIO()
    env = Environment(stdin=io.BytesIO(b"http://127.0.0.1:9/callback?request_token=pastedrt456&status=success\n"),
                      stdout=io.BytesIO(), stderr=err, stdin_isatty=True, stdout_isatty=False)
    info = auth.login(env, load_config(), AuthOptions(manual=True))
    assert info["state"] == "logged in" and read_session().access_token.reveal() in fake.valid_tokens
    assert "paste" in err.getvalue()


def _manual_env(monkeypatch, timeout: str = "20") -> int:
    port = _free_port()
    monkeypatch.setenv("SQ_KITE_REDIRECT_PORT", str(port))
    monkeypatch.setenv("SQ_KITE_REDIRECT_TIMEOUT", timeout)
    return port


def test_request_token_option_logs_in_without_waiting(sq, kite_env, monkeypatch):
    fake = kite_env
    _manual_env(monkeypatch, timeout="600")
    fake.request_tokens.add("givenrt789")
    r = sq(["auth", "zerodha", "--request-token", "givenrt789", "--json"])
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)["zerodha"]
    assert info["state"] == "logged in" and info["method"] == "manual"
    assert read_session().access_token.reveal() in fake.valid_tokens and "givenrt789" not in fake.request_tokens  # exchanged
    assert "waiting" not in r.stderr  # nothing to wait for
    for secret in secrets_of(fake) + ["givenrt789"]:
        assert secret not in r.stdout.decode() and secret not in r.stderr


def test_request_token_option_takes_the_redirect_url(sq, kite_env):
    kite_env.request_tokens.add("urlrt42")
    r = sq(["auth", "zerodha", "--request-token", "http://127.0.0.1:5000/?action=login&status=success&request_token=urlrt42", "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["zerodha"]["state"] == "logged in"


def test_manual_without_a_terminal_says_how_long_and_reads_stdin(sq, kite_env, monkeypatch):
    fake = kite_env
    port = _manual_env(monkeypatch, timeout="45")
    fake.request_tokens.add("stdinrt321")
    line = f"http://127.0.0.1:{port}/?action=login&type=login&status=success&request_token=stdinrt321\n".encode()
    r = sq(["auth", "zerodha", "--manual", "--json"], stdin=line)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["zerodha"]["method"] == "manual"
    waiting = [ln for ln in r.stderr.splitlines() if "waiting" in ln]
    assert len(waiting) == 1 and "45 s" in waiting[0] and "stdin" in waiting[0] and "--request-token" in waiting[0]
    assert "stdinrt321" not in r.stderr
    assert read_session().access_token.reveal() in fake.valid_tokens


def test_manual_reads_a_bare_token_on_stdin(sq, kite_env, monkeypatch):
    _manual_env(monkeypatch)
    kite_env.request_tokens.add("barert555")
    r = sq(["auth", "zerodha", "--manual"], stdin=b"barert555\n")
    assert r.exit_code == 0, r.stderr


def test_a_refused_request_token_is_one_line_77(sq, kite_env, monkeypatch):
    _manual_env(monkeypatch)
    for args, stdin in ((["--request-token", "notissued000"], b""), (["--manual"], b"notissued111\n")):
        r = sq(["auth", "zerodha", *args], stdin=stdin)
        errors = [ln for ln in r.stderr.splitlines() if "refused" in ln]
        assert r.exit_code == 77 and len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
        assert "notissued" not in r.stderr and read_session() is None


def test_stdin_without_a_token_and_a_bad_option_value(sq, kite_env, monkeypatch):
    _manual_env(monkeypatch)
    r = sq(["auth", "zerodha", "--manual"], stdin=b"http://127.0.0.1:5000/?status=cancelled\n")
    assert r.exit_code == 77 and "no request_token" in r.stderr and "Traceback" not in r.stderr
    r = sq(["auth", "zerodha", "--request-token", "not a token!"])
    assert r.exit_code == 2 and "--request-token" in r.stderr and "not a token" not in r.stderr


def test_manual_times_out_with_the_wait_it_announced(sq, kite_env, monkeypatch):
    _manual_env(monkeypatch, timeout="0.3")
    r = sq(["auth", "zerodha", "--manual"], stdin=b"")  # stdin at EOF: only the redirect could come
    assert r.exit_code == 77 and "0.3 s" in r.stderr and "--request-token" in r.stderr and "Traceback" not in r.stderr


def test_request_token_is_refused_for_binance(sq):
    r = sq(["auth", "binance", "--request-token", "abc123"])
    assert r.exit_code == 2 and "Zerodha" in r.stderr and "Traceback" not in r.stderr
