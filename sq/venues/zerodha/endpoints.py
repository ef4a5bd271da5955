"""Kite Connect endpoints, from the config (`SQ_KITE_ROOT_URL`, `SQ_KITE_WS_URL`, `SQ_KITE_LOGIN_URL`).

Tests and proxies point these at 127.0.0.1; nothing else in the adapter spells a Kite URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

KITE_VERSION = "3"


@dataclass(frozen=True)
class Endpoints:
    root: str  # REST root, e.g. https://api.kite.trade
    ws: str  # ticker, e.g. wss://ws.kite.trade
    login: str  # web login, e.g. https://kite.zerodha.com

    @classmethod
    def from_config(cls, zconf) -> "Endpoints":
        return cls(zconf.root_url.rstrip("/"), zconf.ws_url.rstrip("/"), zconf.login_url.rstrip("/"))

    def rest(self, path: str) -> str:
        return self.root + path

    def ticker_url(self, api_key: str, access_token: str) -> str:
        """The ticker URL with credentials in the query (as Kite wants); never log it."""
        return f"{self.ws}?{urlencode({'api_key': api_key, 'access_token': access_token})}"

    def connect_login_url(self, api_key: str) -> str:
        """The official login page the user opens (the manual flow's first step)."""
        return f"{self.login}/connect/login?{urlencode({'v': KITE_VERSION, 'api_key': api_key})}"

    @property
    def web_login(self) -> str:
        return self.login + "/api/login"

    @property
    def web_twofa(self) -> str:
        return self.login + "/api/twofa"


def headers(api_key: str | None = None, access_token: str | None = None) -> dict[str, str]:
    """Kite REST headers; the Authorization header only when both key and token are known."""
    h = {"X-Kite-Version": KITE_VERSION, "User-Agent": "sq"}
    if api_key and access_token:
        h["Authorization"] = f"token {api_key}:{access_token}"
    return h


def get_text(endpoints: "Endpoints", path: str, api_key: str | None, token: str | None, *, what: str, timeout: float = 30.0) -> str:
    """GET a Kite REST path (with its query) as text; Kite errors mapped to sq errors, a network
    failure to VenueUnavailable saying `cannot <what>`."""
    import urllib.error
    import urllib.request

    from sq.core.exits import VenueUnavailable
    from sq.venues.zerodha.errors import from_http_error

    req = urllib.request.Request(endpoints.rest(path), headers=headers(api_key, token))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        raise from_http_error(e.code, e.read()) from None
    except (urllib.error.URLError, OSError) as e:
        raise VenueUnavailable(f"zerodha: cannot {what} ({getattr(e, 'reason', e)})") from None
