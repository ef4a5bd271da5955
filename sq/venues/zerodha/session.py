"""The cached Kite session: access token + user + expiry in a 0600 file (docs/streams.md).

Kite access tokens die at about 06:00 IST the next morning; we store that expiry and treat a token
past it as absent, so every command fails early with exit 77 and "run sq auth zerodha" instead of
sending a dead token. `ZKITE_ACCESS_TOKEN` (config `zerodha.access_token`) overrides the file,
and `zerodha.access_token_path` (the plan's `zerodha.cache.access_token_path`) moves it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

from sq.core import paths
from sq.core.config import Secret
from sq.venues.zerodha.errors import token_error

IST = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
EXPIRY_HOUR_IST = 6


def next_expiry(now: dt.datetime) -> dt.datetime:
    """The first 06:00 IST strictly after `now` (an aware datetime)."""
    local = now.astimezone(IST)
    cut = local.replace(hour=EXPIRY_HOUR_IST, minute=0, second=0, microsecond=0)
    if cut <= local:
        cut += dt.timedelta(days=1)
    return cut


@dataclass(frozen=True)
class Session:
    api_key: str
    user_id: str
    user_name: str
    access_token: Secret
    login_time: str  # ISO, IST
    expires_at: str  # ISO, IST

    def expired(self, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(dt.timezone.utc)
        return now >= dt.datetime.fromisoformat(self.expires_at)

    def to_json(self) -> str:
        d = asdict(self)
        d["access_token"] = self.access_token.reveal()
        return json.dumps(d, indent=1)


def session_path(environ: Mapping[str, str] | None = None, zconf=None) -> Path:
    """The session file: the config's `zerodha.access_token_path`, else `<config dir>/zerodha/session.json`."""
    if zconf is not None and getattr(zconf, "access_token_path", None):
        return Path(zconf.access_token_path)
    return paths.config_dir(environ) / "zerodha" / "session.json"


def save_session(s: Session, environ: Mapping[str, str] | None = None, zconf=None) -> Path:
    return paths.write_secret_file(session_path(environ, zconf), s.to_json())


def read_session(environ: Mapping[str, str] | None = None, zconf=None) -> Session | None:
    """The stored session, expired or not; None when there is none or it is unreadable."""
    p = session_path(environ, zconf)
    try:
        d = json.loads(p.read_text())
        d["access_token"] = Secret(d["access_token"])
        return Session(**d)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def access_token(zconf, environ: Mapping[str, str] | None = None, now: dt.datetime | None = None) -> tuple[str, str]:
    """(api_key, access_token) for REST and the ticker, or AuthError 77 telling the user to log in."""
    from sq.core.exits import ConfigError

    if not zconf.api_key:
        raise ConfigError("zerodha: no API key configured; set ZKITE_API_KEY (or zerodha.api_key in sq.toml)")
    if zconf.access_token:
        return zconf.api_key, zconf.access_token.reveal()
    s = read_session(environ, zconf)
    if s is None:
        raise token_error("not logged in")
    if s.api_key != zconf.api_key:
        raise token_error("the stored session belongs to another API key")
    if s.expired(now):
        raise token_error(f"access token expired at {s.expires_at}")
    return s.api_key, s.access_token.reveal()
