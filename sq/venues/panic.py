"""What every venue's `kill` module shares: the result row, the venue error and a JSON-over-HTTP call.

`sq kill` is a panic button (and a cron job): it must start at once, even with the venue SDKs
installed, so each venue's `kill` module speaks the few REST calls it needs with the standard
library only. This module holds the parts they have in common:

* `VenueResult` — what `sq kill` did at one venue market (one row of the report's `venues`);
* `VenueError` — a venue answered with an error, or could not be reached;
* `request` — one HTTP request with `urllib`, its JSON answer decoded, every failure a `VenueError`.

Secrets only ever go into a venue module's signature or header; nothing here prints, keeps or
quotes headers, so no message, result or exception carries one.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

TIMEOUT_S = 5.0


@dataclass
class VenueResult:
    """What `sq kill` did at one venue account (one row of the report's `venues`)."""

    venue: str
    market: str
    canceled: int = 0
    flattened: list[dict] = field(default_factory=list)
    remaining_orders: list[dict] = field(default_factory=list)
    remaining_positions: list[dict] = field(default_factory=list)
    error: str = ""
    first_request_s: float | None = None  # seconds from start to the first cancel request sent
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error and not self.remaining_orders and not self.remaining_positions

    def to_json(self) -> dict[str, Any]:
        return {"venue": self.venue, "market": self.market, "ok": self.ok, "canceled": self.canceled, "flattened": self.flattened,
                "remaining_orders": self.remaining_orders, "remaining_positions": self.remaining_positions, "error": self.error,
                "first_request_s": None if self.first_request_s is None else round(self.first_request_s, 4),
                "seconds": round(self.seconds, 4)}


class VenueError(Exception):
    """A venue answered with an error (HTTP status and the venue's code/message, never a secret);
    status 0 with code "unreachable" when it could not be reached at all."""

    def __init__(self, status: int, code: Any, message: str):
        super().__init__(f"HTTP {status}" + (f" {code}" if code not in ("", None, 0) else "") + f": {message}")
        self.status, self.code, self.message = status, code, message


def request(method: str, url: str, headers: dict[str, str], body: bytes | None = None, timeout: float = TIMEOUT_S) -> Any:
    """Send one request and return its decoded JSON answer ({} when empty); `VenueError` otherwise.

    The error carries the venue's own code and message (Binance `code`/`msg`, Kite
    `error_type`/`message`) so callers can tell "nothing open" from a real failure.
    """
    req = urllib.request.Request(url, data=body, method=method, headers={"User-Agent": "sq-kill", **headers})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as e:
        raw = e.read() or b""
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {}
        code = doc.get("code", doc.get("error_type", "")) if isinstance(doc, dict) else ""
        msg = doc.get("msg", doc.get("message", "")) if isinstance(doc, dict) else ""
        raise VenueError(e.code, code, str(msg or e.reason or "")[:200]) from None  # no JSON (a proxy's or CDN's page): its reason
    except (urllib.error.URLError, OSError) as e:
        host = urllib.parse.urlsplit(url).netloc
        raise VenueError(0, "unreachable", f"cannot reach {host}: {getattr(e, 'reason', e)}") from None
    return json.loads(raw) if raw else {}
