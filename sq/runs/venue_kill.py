"""The venue half of `sq kill`: cancel every open order directly at each venue with credentials.

A hung `sq live` (SIGSTOP, a deadlock, a wedged socket) cannot cancel its own orders, so `sq
kill` goes to the venue itself: with the account's credentials it lists what is open and cancels
it, optionally closes positions (`--flatten`), then asks again and reports what remains.

Cold start matters (a panic button; cron): the venue SDKs take over a second to import, so this
module speaks the few REST calls it needs with the standard library only (`urllib`, `hmac`):

* Binance spot: `GET /api/v3/openOrders` → `DELETE /api/v3/openOrders?symbol=S` per symbol;
  futures: `GET /fapi/v1/openOrders` → `DELETE /fapi/v1/allOpenOrders?symbol=S`; with `--symbol`
  the cancel-all is sent at once, without the listing first. `--flatten`: futures positions from
  `/fapi/v2/positionRisk`, closed with reduce-only MARKET orders no larger than the risk limits
  (`max_order_size` of the instrument, `risk.max_notional`) allow per order. Spot holds balances,
  not positions: nothing is sold.
* Zerodha: `GET /orders` → `DELETE /orders/{variety}/{order_id}` for each open one; `--flatten`:
  net positions from `/portfolio/positions`, closed with MARKET orders of the same product (with
  Kite's automatic `market_protection`, which Kite requires since April 2026); HTTP 429 is retried.

Signatures are HMAC-SHA256 (Binance) and `token api_key:access_token` headers (Kite); secrets only
ever go into a signature or a header, never into a message, result or exception text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

TIMEOUT_S = 5.0
FLATTEN_WAIT_S = 2.0  # how long `--flatten` waits for Kite to report the positions closed
KITE_OPEN = {"OPEN", "TRIGGER PENDING", "AMO REQ RECEIVED", "OPEN PENDING", "MODIFY PENDING", "VALIDATION PENDING", "PUT ORDER REQ RECEIVED"}


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
    """A venue answered with an error (HTTP status and the venue's code/message, never a secret)."""

    def __init__(self, status: int, code: Any, message: str):
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def _request(method: str, url: str, headers: dict[str, str], body: bytes | None = None, timeout: float = TIMEOUT_S) -> Any:
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
        raise VenueError(e.code, code, str(msg)[:200]) from None
    except (urllib.error.URLError, OSError) as e:
        host = urllib.parse.urlsplit(url).netloc
        raise VenueError(0, "unreachable", f"cannot reach {host}: {getattr(e, 'reason', e)}") from None
    return json.loads(raw) if raw else {}


# ----------------------------------------------------------------------------------------------
# Binance


class BinanceKill:
    """Cancel-all (and flatten) on one Binance account's spot and USD-M futures markets."""

    def __init__(self, api_key: str, api_secret: str, spot_url: str, futures_url: str, *, recv_window: int = 10000):
        self._key = api_key
        self._secret = api_secret.encode()
        self.urls = {"spot": spot_url.rstrip("/"), "futures": futures_url.rstrip("/")}
        self.recv_window = recv_window
        self.offset_ms = 0

    def _call(self, market: str, method: str, path: str, params: dict | None = None, *, retried: bool = False) -> Any:
        p = dict(params or {})
        p["timestamp"] = int(time.time() * 1000) + self.offset_ms
        p["recvWindow"] = self.recv_window
        query = urllib.parse.urlencode(p)
        sig = hmac.new(self._secret, query.encode(), hashlib.sha256).hexdigest()
        url = f"{self.urls[market]}{path}?{query}&signature={sig}"
        try:
            return _request(method, url, {"X-MBX-APIKEY": self._key})
        except VenueError as e:
            if e.code == -1021 and not retried:  # our clock is off: measure the server's and retry once
                base = "/api/v3/time" if market == "spot" else "/fapi/v1/time"
                t0 = time.time()
                server = _request("GET", self.urls[market] + base, {})["serverTime"]
                self.offset_ms = int(server - (t0 + time.time()) / 2 * 1000)
                return self._call(market, method, path, params, retried=True)
            raise

    def open_orders(self, market: str, symbol: str | None = None) -> list[dict]:
        path = "/api/v3/openOrders" if market == "spot" else "/fapi/v1/openOrders"
        return list(self._call(market, "GET", path, {"symbol": symbol} if symbol else None))

    def cancel_symbol(self, market: str, symbol: str) -> int:
        """Cancel every open order on one symbol; how many the venue said it canceled."""
        try:
            if market == "spot":
                return len(self._call(market, "DELETE", "/api/v3/openOrders", {"symbol": symbol}))
            self._call(market, "DELETE", "/fapi/v1/allOpenOrders", {"symbol": symbol})
            return -1  # futures answers "done" without a list
        except VenueError as e:
            if e.code == -2011:  # nothing open there
                return 0
            raise

    def positions(self) -> list[dict]:
        return [p for p in self._call("futures", "GET", "/fapi/v2/positionRisk") if float(p.get("positionAmt") or 0) != 0]

    def close_position(self, symbol: str, amount: float, max_qty: float | None) -> list[dict]:
        """Reduce-only MARKET orders closing `amount` (signed), each at most `max_qty`."""
        side = "SELL" if amount > 0 else "BUY"
        left = abs(amount)
        out = []
        while left > 1e-12:
            q = left if not max_qty else min(left, max_qty)
            doc = self._call("futures", "POST", "/fapi/v1/order", {"symbol": symbol, "side": side, "type": "MARKET",
                                                                   "quantity": _num(q), "reduceOnly": "true",
                                                                   "newClientOrderId": f"sq-flatten-{int(time.time() * 1000) % 10**9}-{len(out)}"})
            out.append({"symbol": symbol, "side": side, "qty": q, "status": doc.get("status", "")})
            left -= q
        return out


def _num(x: float) -> str:
    s = f"{x:.8f}".rstrip("0").rstrip(".")
    return s or "0"


def kill_binance(creds: tuple[str, str], urls: tuple[str, str], *, symbol: str | None, flatten: bool, max_qty: Any, t0: float) -> list[VenueResult]:
    """Cancel (and flatten) on both Binance markets; one result per market touched."""
    bk = BinanceKill(creds[0], creds[1], urls[0], urls[1])
    markets = ["spot", "futures"]
    want = None
    if symbol:
        ex, _, name = symbol.strip().upper().partition(":")
        markets = ["futures"] if ex == "BINANCE-FUT" else ["spot"]
        want = name
    out = []
    for market in markets:
        r = VenueResult("binance", market)
        start = time.perf_counter()
        try:
            if want:
                r.first_request_s = time.perf_counter() - t0
                n = bk.cancel_symbol(market, want)
                r.canceled += max(n, 0)
            else:
                symbols = sorted({o["symbol"] for o in bk.open_orders(market)})
                for s in symbols:
                    if r.first_request_s is None:
                        r.first_request_s = time.perf_counter() - t0
                    n = bk.cancel_symbol(market, s)
                    r.canceled += n if n >= 0 else 1
            if flatten and market == "futures":
                for p in bk.positions():
                    if want and p["symbol"] != want:
                        continue
                    canonical = "BINANCE-FUT:" + p["symbol"]
                    r.flattened += bk.close_position(p["symbol"], float(p["positionAmt"]), max_qty(canonical, float(p.get("markPrice") or 0)))
            r.remaining_orders = [{"symbol": ("BINANCE:" if market == "spot" else "BINANCE-FUT:") + o["symbol"],
                                   "client_order_id": o.get("clientOrderId", ""), "venue_order_id": str(o.get("orderId", "")),
                                   "status": o.get("status", "")} for o in bk.open_orders(market, want)]
            if flatten and market == "futures":
                r.remaining_positions = [{"symbol": "BINANCE-FUT:" + p["symbol"], "qty": float(p["positionAmt"])}
                                         for p in bk.positions() if not want or p["symbol"] == want]
        except VenueError as e:
            if market == "futures" and not want and e.status in (401, 403) and e.code in (-2015, -2014):
                continue  # a spot-only key: no futures account to clean up
            r.error = f"binance {market}: {e}"
        r.seconds = time.perf_counter() - start
        out.append(r)
    return out


# ----------------------------------------------------------------------------------------------
# Zerodha


def kill_zerodha(api_key: str, token: str, root: str, *, symbol: str | None, flatten: bool, max_qty: Any, t0: float) -> list[VenueResult]:
    """Cancel every open order (and close net positions) on one Kite account."""
    root = root.rstrip("/")
    headers = {"X-Kite-Version": "3", "Authorization": f"token {api_key}:{token}"}
    want = symbol.strip().upper() if symbol else None
    r = VenueResult("zerodha", "kite")
    start = time.perf_counter()

    def call(method: str, url: str, hdrs: dict, body: bytes | None = None) -> Any:
        # HTTP 429: Kite refused the request without acting on it; a panic button tries again
        for attempt in range(4):
            try:
                return _request(method, url, hdrs, body)
            except VenueError as e:
                if e.status != 429 or attempt == 3:
                    raise
                time.sleep(0.1 * 2 ** attempt)

    def open_orders() -> list[dict]:
        docs = call("GET", root + "/orders", headers).get("data") or []
        return [o for o in docs if str(o.get("status", "")).upper() in KITE_OPEN
                and (want is None or f"{o.get('exchange')}:{o.get('tradingsymbol')}".upper() == want)]

    try:
        for o in open_orders():
            if r.first_request_s is None:
                r.first_request_s = time.perf_counter() - t0
            try:
                call("DELETE", f"{root}/orders/{o.get('variety') or 'regular'}/{o['order_id']}", headers)
                r.canceled += 1
            except VenueError as e:
                if e.status not in (400, 404):  # already done: the listing below tells
                    raise
        def net_positions() -> list[tuple[str, float, dict]]:
            out = []
            for p in (call("GET", root + "/portfolio/positions", headers).get("data") or {}).get("net", []):
                sym = f"{p.get('exchange')}:{p.get('tradingsymbol')}".upper()
                qty = float(p.get("quantity") or 0)
                if qty and not (want and sym != want):
                    out.append((sym, qty, p))
            return out

        if flatten:
            for sym, qty, p in net_positions():
                left, cap = abs(qty), max_qty(sym, float(p.get("last_price") or 0))
                while left > 0:
                    q = left if not cap else min(left, max(1.0, math.floor(cap)))
                    body = urllib.parse.urlencode({"exchange": p["exchange"], "tradingsymbol": p["tradingsymbol"],
                                                   "transaction_type": "SELL" if qty > 0 else "BUY", "quantity": int(q),
                                                   "order_type": "MARKET", "product": p.get("product") or "MIS",
                                                   # since April 2026 Kite refuses MARKET orders without a
                                                   # non-zero market protection; -1 = Kite's automatic one
                                                   "market_protection": -1, "validity": "DAY", "tag": "sqflatten"}).encode()
                    doc = call("POST", root + "/orders/regular", {**headers, "Content-Type": "application/x-www-form-urlencoded"}, body)
                    r.flattened.append({"symbol": sym, "side": "SELL" if qty > 0 else "BUY", "qty": q,
                                        "order_id": str((doc.get("data") or {}).get("order_id", ""))})
                    left -= q
        r.remaining_orders = [{"symbol": f"{o.get('exchange')}:{o.get('tradingsymbol')}".upper(), "venue_order_id": str(o.get("order_id")),
                               "client_order_id": str(o.get("tag") or ""), "status": o.get("status")} for o in open_orders()]
        if flatten:  # MARKET orders reach the exchange in a moment: look again for up to FLATTEN_WAIT_S
            deadline = time.monotonic() + FLATTEN_WAIT_S
            left = net_positions()
            while left and r.flattened and time.monotonic() < deadline:
                time.sleep(0.1)
                left = net_positions()
            r.remaining_positions = [{"symbol": sym, "qty": qty} for sym, qty, _ in left]
    except VenueError as e:
        r.error = f"zerodha: {e}"
    r.seconds = time.perf_counter() - start
    return [r]


# ----------------------------------------------------------------------------------------------
# which venues have credentials


def credentialed_venues(config: Any, venue: str | None = None) -> dict[str, dict]:
    """Venues with usable credentials (`binance`: key + secret; `zerodha`: key + access token),
    each with what `cancel_everywhere` needs. No credentials anywhere → {} (paper only)."""
    out: dict[str, dict] = {}
    if venue in (None, "binance"):
        b = config.binance
        key, secret = b.api_key, b.api_secret.reveal() if b.api_secret else None
        if not (key and secret):
            from sq.venues.binance import credentials as C

            try:
                s = C.stored()
            except Exception:
                s = None
            if s is not None and s.api_secret:
                key, secret = s.api_key, s.api_secret.reveal()
        if key and secret:
            from sq.venues.binance.endpoints import endpoints

            ep = endpoints(b, b.testnet)
            out["binance"] = {"creds": (key, secret), "urls": (ep.rest("spot"), ep.rest("futures"))}
    if venue in (None, "zerodha"):
        z = config.zerodha
        if z.api_key:
            token = z.access_token.reveal() if z.access_token else None
            if token is None:
                from sq.venues.zerodha.session import read_session

                s = read_session()
                if s is not None and s.api_key == z.api_key and not s.expired():
                    token = s.access_token.reveal()
            if token:
                out["zerodha"] = {"api_key": z.api_key, "token": token, "root": z.root_url}
    return out


def order_cap(config: Any):
    """The largest order `--flatten` may send for a symbol at a price: the instrument's
    `max_order_size` and the account's `risk.max_notional` (None = no limit)."""

    def cap(symbol: str, price: float) -> float | None:
        caps = []
        inst = config.instrument(symbol)
        if inst is not None and inst.max_order_size:
            caps.append(float(inst.max_order_size))
        if config.risk.max_notional and price > 0:
            caps.append(float(config.risk.max_notional) / price)
        return min(caps) if caps else None

    return cap


def cancel_everywhere(config: Any, *, venue: str | None = None, symbol: str | None = None, flatten: bool = False,
                      t0: float | None = None) -> list[VenueResult]:
    """Cancel (and flatten) at every credentialed venue, venues in parallel; one result per market."""
    import threading

    t0 = time.perf_counter() if t0 is None else t0
    if symbol and venue is None:
        ex = symbol.strip().upper().split(":", 1)[0]
        venue = "sim" if ex == "SIM" else "binance" if ex.startswith("BINANCE") else "zerodha"
    if venue == "sim":
        return []
    targets = credentialed_venues(config, venue)
    cap = order_cap(config)
    results: dict[str, list[VenueResult]] = {}

    def run(name: str, t: dict) -> None:
        try:
            if name == "binance":
                results[name] = kill_binance(t["creds"], t["urls"], symbol=symbol, flatten=flatten, max_qty=cap, t0=t0)
            else:
                results[name] = kill_zerodha(t["api_key"], t["token"], t["root"], symbol=symbol, flatten=flatten, max_qty=cap, t0=t0)
        except Exception as e:  # never let one venue's surprise hide another's result
            results[name] = [VenueResult(name, "", error=f"{name}: {type(e).__name__}")]

    threads = [threading.Thread(target=run, args=(n, t), daemon=True) for n, t in targets.items()]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return [r for n in targets for r in results.get(n, [VenueResult(n, "", error=f"{n}: no answer within 60s")])]
