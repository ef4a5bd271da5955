"""Plain public REST GETs (depth snapshots, exchangeInfo, server time) with the standard library.

The market-data path needs only unsigned GETs, so it does not pull in an HTTP client; the
signed trading calls go through python-binance in `gateway.py`. Errors come back as values
(status, headers, body), never as exceptions carrying URLs with secrets — public URLs only here.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from sq.core.exits import VenueUnavailable

USER_AGENT = "sq/0.1 (+binance adapter)"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def get(url: str, params: dict | None = None, timeout: float = 10.0) -> Reply:
    """GET `url?params`; HTTP errors are replies, connection failures raise VenueUnavailable (69)."""
    full = url + ("?" + urllib.parse.urlencode(params) if params else "")
    req = urllib.request.Request(full, headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, {k.lower(): v for k, v in (e.headers or {}).items()}, e.read() or b"")
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise VenueUnavailable(f"binance: cannot reach {urllib.parse.urlsplit(url).netloc}: {reason}") from None
