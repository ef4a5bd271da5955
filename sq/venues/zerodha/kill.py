"""`sq kill` at Zerodha: cancel every open order (and close net positions) on one Kite account.

A hung `sq live` cannot cancel its own orders, so `sq kill` goes to Kite itself:

* `GET /orders` → `DELETE /orders/{variety}/{order_id}` for each open one (SL / SL-M orders
  waiting for their trigger included), then `GET /gtt/triggers` → `DELETE /gtt/triggers/{id}` for
  each active GTT (a standing trigger would place an order after the kill);
* `--flatten`: net positions from `/portfolio/positions`, closed with MARKET orders of the same
  product (with Kite's automatic `market_protection`, which Kite requires since April 2026), no
  larger than `max_qty(symbol, price)` each; then it waits up to FLATTEN_WAIT_S for Kite to
  report them closed;
* HTTP 429 (Kite refused without acting) is retried.

The account is the one every other Zerodha command uses (`session.access_token`: the configured
token, else the stored unexpired `sq auth zerodha` session). Cold start matters (a panic button;
cron), so the calls are made with the standard library (`sq.venues.panic.request`), never
kiteconnect. The token goes into the `Authorization` header only, never a message or result.
"""

from __future__ import annotations

import math
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

from sq.core.config import Secret
from sq.core.exits import SqError
from sq.venues.panic import VenueError, VenueResult, request
from sq.venues.zerodha.session import access_token

FLATTEN_WAIT_S = 2.0  # how long `--flatten` waits for Kite to report the positions closed
KITE_OPEN = {"OPEN", "TRIGGER PENDING", "AMO REQ RECEIVED", "OPEN PENDING", "MODIFY PENDING", "VALIDATION PENDING", "PUT ORDER REQ RECEIVED"}
RATE_LIMIT_TRIES = 4


@dataclass(frozen=True)
class Account:
    """The Kite account `sq kill` cancels on: API key, access token (repr masked), REST root."""

    api_key: str
    access_token: Secret
    root_url: str


def account(config: Any) -> Account | None:
    """The account to cancel on, or None without an API key and a usable access token (the
    configured one, else the stored session of the same key, unexpired). No network."""
    try:
        api_key, token = access_token(config.zerodha)
    except SqError:
        return None
    return Account(api_key, Secret(token), config.zerodha.root_url.rstrip("/")) if token else None


class KiteKill:
    """The Kite REST calls `sq kill` makes, each retried on HTTP 429; `want` filters by symbol."""

    def __init__(self, acct: Account, want: str | None):
        self.root = acct.root_url
        self.headers = {"X-Kite-Version": "3", "Authorization": f"token {acct.api_key}:{acct.access_token.reveal()}"}
        self.want = want

    def call(self, method: str, path: str, body: bytes | None = None) -> Any:
        headers = self.headers if body is None else {**self.headers, "Content-Type": "application/x-www-form-urlencoded"}
        for attempt in range(RATE_LIMIT_TRIES):
            try:
                return request(method, self.root + path, headers, body)
            except VenueError as e:
                if e.status != 429 or attempt == RATE_LIMIT_TRIES - 1:
                    raise
                time.sleep(0.1 * 2 ** attempt)

    def open_orders(self) -> list[dict]:
        docs = self.call("GET", "/orders").get("data") or []
        return [o for o in docs if str(o.get("status", "")).upper() in KITE_OPEN
                and (self.want is None or symbol_of(o) == self.want)]

    def cancel(self, order: dict) -> bool:
        """Cancel one order; False when Kite says it is no longer open (the listing after tells)."""
        try:
            self.call("DELETE", f"/orders/{order.get('variety') or 'regular'}/{order['order_id']}")
            return True
        except VenueError as e:
            if e.status not in (400, 404):
                raise
            return False

    def active_gtts(self) -> list[dict]:
        """The active GTTs (standing triggers that would place orders later)."""
        docs = self.call("GET", "/gtt/triggers").get("data") or []
        return [g for g in docs if g.get("status") == "active" and (self.want is None or symbol_of(g.get("condition") or {}) == self.want)]

    def delete_gtt(self, gtt: dict) -> bool:
        try:
            self.call("DELETE", f"/gtt/triggers/{gtt['id']}")
            return True
        except VenueError as e:
            if e.status not in (400, 404):
                raise
            return False

    def net_positions(self) -> list[tuple[str, float, dict]]:
        """(symbol, signed quantity, Kite's row) of every non-zero net position."""
        out = []
        for p in (self.call("GET", "/portfolio/positions").get("data") or {}).get("net", []):
            name, qty = symbol_of(p), float(p.get("quantity") or 0)
            if qty and (self.want is None or name == self.want):
                out.append((name, qty, p))
        return out

    def close(self, name: str, qty: float, position: dict, cap: float | None) -> list[dict]:
        """MARKET orders of the position's product closing `qty` (signed), each at most `cap`."""
        side = "SELL" if qty > 0 else "BUY"
        left, out = abs(qty), []
        while left > 0:
            part = left if not cap else min(left, max(1.0, math.floor(cap)))
            body = urllib.parse.urlencode({"exchange": position["exchange"], "tradingsymbol": position["tradingsymbol"],
                                           "transaction_type": side, "quantity": int(part), "order_type": "MARKET",
                                           "product": position.get("product") or "MIS",
                                           # since April 2026 Kite refuses MARKET orders without a
                                           # non-zero market protection; -1 = Kite's automatic one
                                           "market_protection": -1, "validity": "DAY", "tag": "sqflatten"}).encode()
            doc = self.call("POST", "/orders/regular", body)
            out.append({"symbol": name, "side": side, "qty": part, "order_id": str((doc.get("data") or {}).get("order_id", ""))})
            left -= part
        return out


def symbol_of(row: dict) -> str:
    """`EXCHANGE:TRADINGSYMBOL` of a Kite order or position row."""
    return f"{row.get('exchange')}:{row.get('tradingsymbol')}".upper()


def kill(acct: Account, *, symbol: str | None, flatten: bool, max_qty: Callable[[str, float], float | None],
         t0: float) -> list[VenueResult]:
    """Cancel every open order (and with `flatten` close net positions) on the Kite account, or
    only those of `symbol`; one result. `t0` (perf_counter) times the first cancel request."""
    kite = KiteKill(acct, symbol.strip().upper() if symbol else None)
    result = VenueResult("zerodha", "kite")
    start = time.perf_counter()
    try:
        for order in kite.open_orders():
            if result.first_request_s is None:
                result.first_request_s = time.perf_counter() - t0
            result.canceled += kite.cancel(order)
        for gtt in kite.active_gtts():  # a GTT left standing would place an order after the kill
            result.canceled += kite.delete_gtt(gtt)
        if flatten:
            for name, qty, position in kite.net_positions():
                result.flattened += kite.close(name, qty, position, max_qty(name, float(position.get("last_price") or 0)))
        result.remaining_orders = [{"symbol": symbol_of(o), "venue_order_id": str(o.get("order_id")),
                                    "client_order_id": str(o.get("tag") or ""), "status": o.get("status")} for o in kite.open_orders()]
        result.remaining_orders += [{"symbol": symbol_of(g.get("condition") or {}), "venue_order_id": f"gtt:{g.get('id')}",
                                     "client_order_id": "", "status": "active"} for g in kite.active_gtts()]
        if flatten:  # MARKET orders reach the exchange in a moment: look again for up to FLATTEN_WAIT_S
            deadline = time.monotonic() + FLATTEN_WAIT_S
            left = kite.net_positions()
            while left and result.flattened and time.monotonic() < deadline:
                time.sleep(0.1)
                left = kite.net_positions()
            result.remaining_positions = [{"symbol": name, "qty": qty} for name, qty, _ in left]
    except VenueError as e:
        result.error = f"zerodha: {e}"
    result.seconds = time.perf_counter() - start
    return [result]
