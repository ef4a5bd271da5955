"""`sq auth zerodha`: get a Kite access token and cache it (0600) until 06:00 IST next morning.

Two ways to get the request token, then one exchange (`POST /session/token` with
checksum = sha256(api_key + request_token + api_secret)):

* automatic (default when ZKITE_USER_ID, ZKITE_PWD and ZKITE_TOTP_SECRET are configured): the Kite
  web login — POST /api/login (user id, password) → request_id; POST /api/twofa with the current
  TOTP; GET the connect login URL in the same cookie session and read `request_token` from the
  redirect. Opt-in; it breaks when Kite changes its web login (then use --manual).
* `--manual` (recommended by Zerodha): print the login URL; on a terminal read the redirect URL or
  request token pasted by the user, otherwise wait up to $SQ_KITE_REDIRECT_TIMEOUT seconds (300;
  said on stderr) for whichever comes first: the browser's redirect, caught once on
  http://127.0.0.1:$SQ_KITE_REDIRECT_PORT/ (default 5000; register it as the app's redirect URL),
  or a line on stdin holding the request token or the redirect URL.
* `--request-token TOKEN` (or the redirect URL): exchange that token at once, no waiting.

Nothing prompts when stdin is not a terminal. Secrets (password, TOTP seed, API secret, tokens) never
reach output, logs or exception messages; summaries show masked values.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import os
import threading
from typing import Any, Mapping
from urllib.parse import parse_qs, urljoin, urlparse

from sq.core.config import Secret
from sq.core.exits import AuthError, ConfigError, UsageError, VenueUnavailable
from sq.venues.zerodha.endpoints import Endpoints, headers
from sq.venues.zerodha.errors import from_kite_error
from sq.venues.zerodha.session import IST, Session, access_token, next_expiry, read_session, save_session, session_path

REDIRECT_PORT_ENV = "SQ_KITE_REDIRECT_PORT"
REDIRECT_TIMEOUT_ENV = "SQ_KITE_REDIRECT_TIMEOUT"
HTTP_TIMEOUT = 20.0
MAX_REDIRECTS = 10


def checksum(api_key: str, request_token: str, api_secret: str) -> str:
    """Kite's session checksum: hex sha256 of api_key + request_token + api_secret."""
    return hashlib.sha256((api_key + request_token + api_secret).encode()).hexdigest()


def _requests():
    import requests

    return requests


def _json(resp) -> dict:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    return body if isinstance(body, dict) else {}


def _fail(resp, what: str) -> AuthError:
    body = _json(resp)
    msg = str(body.get("message") or f"HTTP {resp.status_code}")
    return AuthError(f"zerodha: {what} failed ({msg}); check ZKITE_USER_ID/ZKITE_PWD/ZKITE_TOTP_SECRET or use sq auth zerodha --manual")


def totp_now(secret: Secret) -> str:
    import binascii

    import pyotp

    try:
        return pyotp.TOTP(secret.reveal().replace(" ", "").upper()).now()
    except (binascii.Error, ValueError, TypeError):
        raise ConfigError("zerodha: ZKITE_TOTP_SECRET is not a valid base32 TOTP secret") from None


def automatic_request_token(ep: Endpoints, api_key: str, user_id: str, password: Secret, totp_secret: Secret) -> str:
    """The request token from the Kite web login (user id + password + TOTP)."""
    requests = _requests()
    s = requests.Session()
    s.headers.update({"X-Kite-Version": "3", "User-Agent": "sq"})
    try:
        r = s.post(ep.web_login, data={"user_id": user_id, "password": password.reveal()}, timeout=HTTP_TIMEOUT)
        body = _json(r)
        if r.status_code != 200 or body.get("status") != "success":
            raise _fail(r, "login (user id / password)")
        request_id = body.get("data", {}).get("request_id")
        if not request_id:
            raise AuthError("zerodha: login answered without a request_id; the Kite web login may have changed — use sq auth zerodha --manual")
        r = s.post(ep.web_twofa, data={"user_id": user_id, "request_id": request_id, "twofa_value": totp_now(totp_secret),
                                       "twofa_type": "totp", "skip_totp": "true"}, timeout=HTTP_TIMEOUT)
        body = _json(r)
        if r.status_code != 200 or body.get("status") != "success":
            raise _fail(r, "two-factor (TOTP) step")
        url = ep.connect_login_url(api_key)
        for _ in range(MAX_REDIRECTS):
            r = s.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
            loc = r.headers.get("Location")
            if loc:
                token = _token_from(loc)
                if token:
                    return token
                url = urljoin(url, loc)
                if urlparse(url).netloc != urlparse(ep.login).netloc:
                    break  # left Kite without a token
                continue
            break
    except requests.exceptions.RequestException as e:
        raise VenueUnavailable(f"zerodha: cannot reach the Kite login ({type(e).__name__})") from None
    raise AuthError("zerodha: the Kite login did not redirect with a request_token (is the app's redirect URL set? "
                    "the web login may have changed) — use sq auth zerodha --manual")


def _token_from(text: str) -> str | None:
    """A request token from a redirect URL, a query string, or the bare token."""
    text = text.strip()
    if not text:
        return None
    q = parse_qs(urlparse(text).query) if ("?" in text or "://" in text) else parse_qs(text) if "=" in text else {}
    if q:
        return (q.get("request_token") or [None])[0]
    return text if text.isalnum() else None


class _Catcher(http.server.BaseHTTPRequestHandler):
    """Answers the browser's redirect once and hands the request token to the waiting login."""

    token: str | None = None
    got = threading.Event()

    def do_GET(self):  # noqa: N802 (http.server API)
        tok = _token_from(self.path)
        body = (b"sq: logged in, you can close this tab." if tok else b"sq: no request_token in this URL.")
        self.send_response(200 if tok else 400)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if tok:
            type(self).token = tok
            type(self).got.set()

    def log_message(self, *args):  # keep tokens out of stderr
        pass


def catch_redirect(port: int, timeout: float, stdin: Any = None) -> str:
    """Serve one redirect on 127.0.0.1:port and return its request token; with `stdin` (not a
    terminal), a line read from it (the token or the redirect URL) is taken too, whichever comes
    first. AuthError on timeout, or when stdin's line holds no token; an empty stdin (EOF) leaves
    the redirect to wait for."""
    handler = type("Catcher", (_Catcher,), {"token": None, "got": threading.Event()})
    got: dict[str, Any] = {}
    try:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e:
        if stdin is None:
            raise AuthError(f"zerodha: cannot listen on 127.0.0.1:{port} for the login redirect ({e.strerror}); set {REDIRECT_PORT_ENV}") from None
        srv = None  # stdin may still bring the token

    def read_stdin() -> None:
        try:
            line = stdin.readline()
        except (OSError, ValueError):
            return
        text = line.decode(errors="replace") if isinstance(line, bytes) else str(line or "")
        if text.strip():
            got["stdin"] = _token_from(text)
            handler.got.set()

    if srv is not None:
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    if stdin is not None:
        threading.Thread(target=read_stdin, daemon=True).start()  # a blocked read dies with the process
    try:
        if not handler.got.wait(timeout):
            where = f"no login redirect reached 127.0.0.1:{port}" if srv is not None else f"127.0.0.1:{port} was not free"
            raise AuthError(f"zerodha: no request token within {timeout:g} s ({where}{', nothing on stdin' if stdin is not None else ''}); "
                            f"run sq auth zerodha --manual again, or pass --request-token")
        if handler.token:
            return handler.token
        if not got.get("stdin"):
            raise AuthError("zerodha: no request_token in the line read from stdin (give the token or the redirect URL with request_token=…)")
        return got["stdin"]
    finally:
        if srv is not None:
            srv.shutdown()
            srv.server_close()


def manual_request_token(env, ep: Endpoints, api_key: str, environ: Mapping[str, str]) -> str:
    """The request token of the official redirect flow: pasted on a terminal; otherwise the
    browser's redirect to 127.0.0.1 or a line on stdin, for at most $SQ_KITE_REDIRECT_TIMEOUT s."""
    port = int(environ.get(REDIRECT_PORT_ENV) or 5000)
    timeout = float(environ.get(REDIRECT_TIMEOUT_ENV) or 300)
    print(f"sq: open this URL and log in:\n  {ep.connect_login_url(api_key)}", file=env.stderr, flush=True)
    if env.stdin_isatty:
        print("sq: paste the URL you were redirected to (or the request_token): ", end="", file=env.stderr, flush=True)
        line = env.stdin.readline()
        tok = _token_from(line.decode() if isinstance(line, bytes) else line)
        if not tok:
            raise AuthError("zerodha: no request_token in what was pasted")
        return tok
    print(f"sq: waiting up to {timeout:g} s ({REDIRECT_TIMEOUT_ENV}) for the redirect on http://127.0.0.1:{port}/ (the app's "
          f"redirect URL), or the request_token or redirect URL as a line on stdin (or pass --request-token TOKEN)",
          file=env.stderr, flush=True)
    return catch_redirect(port, timeout, env.stdin)


def given_request_token(text: str) -> str:
    """`--request-token`: the token itself or the redirect URL holding it; a usage error otherwise."""
    tok = _token_from(text or "")
    if not tok:
        raise UsageError("--request-token: expected the request_token (letters and digits) or the redirect URL with request_token=…")
    return tok


def exchange_token(ep: Endpoints, api_key: str, request_token: str, api_secret: Secret, now: dt.datetime | None = None) -> Session:
    """POST /session/token → a Session expiring at the next 06:00 IST."""
    requests = _requests()
    data = {"api_key": api_key, "request_token": request_token, "checksum": checksum(api_key, request_token, api_secret.reveal())}
    try:
        r = requests.post(ep.rest("/session/token"), data=data, headers=headers(), timeout=HTTP_TIMEOUT)
    except requests.exceptions.RequestException as e:
        raise VenueUnavailable(f"zerodha: cannot reach Kite ({type(e).__name__})") from None
    body = _json(r)
    if r.status_code != 200 or body.get("status") != "success":
        etype, msg = str(body.get("error_type") or "GeneralException"), str(body.get("message") or f"HTTP {r.status_code}")
        if etype == "TokenException":
            raise AuthError(f"zerodha: Kite refused the request token ({msg}); check ZKITE_API_SECRET, then run sq auth zerodha again")
        raise AuthError(f"zerodha: token exchange failed: {from_kite_error(etype, msg, r.status_code).message}")
    d = body.get("data") or {}
    if not d.get("access_token"):
        raise AuthError("zerodha: token exchange answered without an access_token")
    now = now or dt.datetime.now(dt.timezone.utc)
    return Session(api_key=api_key, user_id=str(d.get("user_id", "")), user_name=str(d.get("user_name", "")),
                   access_token=Secret(d["access_token"]), login_time=now.astimezone(IST).isoformat(timespec="seconds"),
                   expires_at=next_expiry(now).isoformat(timespec="seconds"))


def _require(zconf, *names: str) -> None:
    env_names = {"api_key": "ZKITE_API_KEY", "api_secret": "ZKITE_API_SECRET", "user_id": "ZKITE_USER_ID",
                 "password": "ZKITE_PWD", "totp_secret": "ZKITE_TOTP_SECRET"}
    missing = [env_names[n] for n in names if not getattr(zconf, n)]
    if missing:
        raise ConfigError(f"zerodha: missing {', '.join(missing)} (environment, .env or the [zerodha] table of sq.toml)")


def require_credentials(config) -> None:
    """An API key and an unexpired access token (config or the `sq auth zerodha` session), else
    78 / 77 naming the fix; no network: `sq live` calls this before it opens any connection."""
    access_token(config.zerodha)


def login(env, config, options) -> dict[str, Any]:
    """Log in (automatic TOTP or --manual), cache the session 0600, return a masked summary."""
    environ = os.environ
    z = config.zerodha
    ep = Endpoints.from_config(z)
    _require(z, "api_key", "api_secret")
    auto_ready = bool(z.user_id and z.password and z.totp_secret)
    if getattr(options, "request_token", None):
        token, method = given_request_token(options.request_token), "manual"
    elif options.manual:
        token, method = manual_request_token(env, ep, z.api_key, environ), "manual"
    elif auto_ready:
        token, method = automatic_request_token(ep, z.api_key, z.user_id, z.password, z.totp_secret), "totp"
    else:
        missing = [n for n, v in (("ZKITE_USER_ID", z.user_id), ("ZKITE_PWD", z.password), ("ZKITE_TOTP_SECRET", z.totp_secret)) if not v]
        raise ConfigError(f"zerodha: automatic login needs {', '.join(missing)}; set them or use sq auth zerodha --manual")
    s = exchange_token(ep, z.api_key, token, z.api_secret)
    path = save_session(s, environ, z)
    return {"state": "logged in", "method": method, "user": s.user_id, "user_name": s.user_name,
            "expires": s.expires_at, "api_key": Secret(z.api_key).masked(), "token_file": str(path)}


def status(env, config) -> dict[str, Any]:
    """What is stored: user, expiry, masked key; no network."""
    z = config.zerodha
    s = read_session(os.environ, z)
    if s is None:
        out = {"state": "not logged in" if z.api_key else "not configured"}
    else:
        out = {"state": "expired" if s.expired() else "logged in", "user": s.user_id, "expires": s.expires_at,
               "token_file": str(session_path(os.environ, z))}
        if z.api_key and s.api_key != z.api_key:
            out["state"] = "other api key"
    if z.api_key:
        out["api_key"] = Secret(z.api_key).masked()
    if out["state"] != "logged in" and z.api_key:
        out["hint"] = "run sq auth zerodha"
    return out
