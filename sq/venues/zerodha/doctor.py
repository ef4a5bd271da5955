"""What `sq doctor` asks Zerodha before the open: is the Kite REST API reachable, how far this
machine's clock is from Kite's, is the stored access token accepted, and when does it expire.

Kite has no time endpoint; its answers carry an HTTP `Date` header (one-second resolution), so
the clock check can only see offsets of a few seconds: over 2 s is a warning (session timing,
square-off and market-hours checks run on this clock), over 30 s a failure. Kite access tokens
expire at 06:00 IST the next morning: a token that expires within `warn_hours` is a warning, an
expired or refused one a failure (fix: `sq auth zerodha`).

Standard library only (like `kill`); the token goes into the Authorization header only.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

from sq.core.exits import SqError
from sq.venues.base import FAIL, OK, WARN, Check
from sq.venues.zerodha import PREFIXES
from sq.venues.zerodha.session import read_session

CLOCK_WARN_S = 2.0
CLOCK_FAIL_S = 30.0
WARN_HOURS = 12.0  # a token that expires within this many hours is a warning
TIMEOUT_S = 5.0
FIX_CLOCK = "sync this machine's clock (timedatectl set-ntp true, or chronyc makestep)"
FIX_LOGIN = "sq auth zerodha"


def _get(url: str, headers: dict[str, str]) -> tuple[int, str | None, float]:
    """(HTTP status, its Date header, the request's midpoint as epoch seconds); OSError when unreachable."""
    req = urllib.request.Request(url, headers={"User-Agent": "sq-doctor", **headers})
    sent = time.time()
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            resp.read()
            status, date = resp.status, resp.headers.get("Date")
    except urllib.error.HTTPError as e:
        e.read()
        status, date = e.code, e.headers.get("Date") if e.headers else None
    return status, date, (sent + time.time()) / 2


def expiry_check(expires_at: str, now: dt.datetime, warn_hours: float = WARN_HOURS) -> Check:
    """The verdict on the stored session's expiry (ISO time with offset)."""
    left_h = (dt.datetime.fromisoformat(expires_at) - now).total_seconds() / 3600
    if left_h <= 0:
        return Check("zerodha token expiry", FAIL, f"the access token expired at {expires_at}", FIX_LOGIN)
    if left_h <= warn_hours:
        return Check("zerodha token expiry", WARN, f"the access token expires at {expires_at} (in {left_h:.1f} h)",
                     "sq auth zerodha after it expires (Kite tokens end at 06:00 IST)")
    return Check("zerodha token expiry", OK, f"expires at {expires_at} (in {left_h:.1f} h)")


def checks(config: Any, env: Any = None, *, now: dt.datetime | None = None) -> list[Check]:
    """The REST API, the clock, the token's validity and its expiry."""
    z = config.zerodha
    if not z.api_key and not any(i.symbol.upper().split(":", 1)[0] in PREFIXES for i in config.instruments):
        return [Check("zerodha", OK, "no Kite API key and no Zerodha instruments configured: not checked")]
    now = now or dt.datetime.now(dt.timezone.utc)
    root = z.root_url.rstrip("/")
    host = urlparse(root).netloc
    token, session = None, None
    if z.api_key:
        if z.access_token:
            token = z.access_token.reveal()
        else:
            try:
                session = read_session(None, z)
            except SqError:
                session = None
            if session is not None and session.api_key == z.api_key:
                token = session.access_token.reveal()
    headers = {"X-Kite-Version": "3"}
    if token:
        headers["Authorization"] = f"token {z.api_key}:{token}"
    out: list[Check] = []
    try:
        status, date, mid = _get(root + "/user/profile", headers)
    except OSError as e:
        reason = getattr(e, "reason", e)
        return [Check("zerodha API", FAIL, f"{host}: cannot connect ({reason})", f"check the network/firewall/proxy to {host}")]
    out.append(Check("zerodha API", OK, f"{host} answered (HTTP {status})"))
    if date:
        offset = mid - email.utils.parsedate_to_datetime(date).timestamp()
        verdict = FAIL if abs(offset) > CLOCK_FAIL_S else WARN if abs(offset) > CLOCK_WARN_S else OK
        side = "ahead of" if offset > 0 else "behind"
        out.append(Check("zerodha clock", verdict, f"this machine is {abs(offset):.0f} s {side} Kite's clock (1 s resolution)",
                         "" if verdict == OK else FIX_CLOCK))
    if not z.api_key:
        out.append(Check("zerodha token", FAIL, "Zerodha instruments are configured but no Kite API key is", "set ZKITE_API_KEY, then sq auth zerodha"))
        return out
    if not token:
        out.append(Check("zerodha token", FAIL, "no access token for this API key (not logged in, or another key's session)", FIX_LOGIN))
        return out
    if status == 200:
        out.append(Check("zerodha token", OK, "Kite accepted the access token"))
    elif status in (401, 403):
        out.append(Check("zerodha token", FAIL, f"Kite refused the access token (HTTP {status})", FIX_LOGIN))
    else:
        out.append(Check("zerodha token", WARN, f"Kite answered HTTP {status} to the token check", "try again; if it persists, sq auth zerodha"))
    if session is not None:
        out.append(expiry_check(session.expires_at, now))
    return out
