"""`sq kill` at Binance: cancel every open order (and close futures positions) on one account.

A hung `sq live` cannot cancel its own orders, so `sq kill` goes to the venue itself:

* spot: `GET /api/v3/openOrders` → `DELETE /api/v3/openOrders?symbol=S` per symbol;
* USD-M futures: `GET /fapi/v1/openOrders` and `/fapi/v1/openAlgoOrders` (conditional orders:
  stops, take-profits, trailing stops) → `DELETE /fapi/v1/allOpenOrders?symbol=S` and
  `/fapi/v1/algoOpenOrders?symbol=S`;
  with `--symbol` the cancel-all is sent at once, without the listing first;
* `--flatten`: futures positions from `/fapi/v2/positionRisk`, closed with reduce-only MARKET
  orders no larger than `max_qty(symbol, price)` each. Spot holds balances, not positions:
  nothing is sold.

Each market is cleaned on its own: one that fails never stops the other. A key without futures
permission (-2015/-2014) has no futures account to clean, so that market is skipped; a futures
API that cannot be reached at all (geo-restricted, or a firewall that lets only the spot hosts
through) is a result row naming the reason — its orders could not be checked, so the kill is not
clean (exit 1).

Then it asks again and reports what is left. The account is the one every other Binance command
uses (`credentials.resolve`: the config/environment, else what `sq auth binance` stored —
an HMAC secret or an Ed25519 key file, on the testnets when stored so), signed by the same
`Signer`. Cold start matters (a panic button; cron), so the REST calls are made with the
standard library (`sq.venues.panic.request`), never python-binance; pycryptodome is imported only
for an Ed25519 key. Secrets go into a signature or a header only, never into a message or result.
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

from sq.core.exits import AuthError
from sq.venues.binance import credentials
from sq.venues.binance.endpoints import FUTURES, SPOT, Endpoints, endpoints
from sq.venues.binance.signing import Signer
from sq.venues.panic import VenueError, VenueResult, request

RECV_WINDOW_MS = 10000
CLOCK_SKEW = -1021  # timestamp outside recvWindow: our clock is off
NOTHING_OPEN = -2011  # cancel-all on a symbol with no open order
NO_FUTURES_ACCOUNT = (-2015, -2014)  # a key without futures permission (401/403)
PREFIX = {SPOT: "BINANCE:", FUTURES: "BINANCE-FUT:"}


@dataclass(frozen=True)
class Account:
    """The Binance account `sq kill` cancels on: its credentials (repr masked) and endpoints."""

    credentials: credentials.Credentials
    endpoints: Endpoints


def account(config: Any) -> Account | None:
    """The account to cancel on, or None when no Binance credentials are configured or stored.

    No network: only the config, the environment and the `sq auth binance` file are read.
    """
    try:
        creds = credentials.resolve(config)
    except AuthError:
        return None
    return Account(creds, endpoints(config.binance, creds.testnet or config.binance.testnet))


class BinanceKill:
    """Cancel-all (and flatten) on one Binance account's spot and USD-M futures markets."""

    def __init__(self, acct: Account, *, recv_window: int = RECV_WINDOW_MS):
        creds = acct.credentials
        # AuthError here (a missing or unreadable Ed25519 key file) names the file, not the key
        self._signer = Signer(creds.api_secret.reveal() if creds.api_secret else None, creds.ed25519_key_file)
        self._key = creds.api_key
        self.endpoints = acct.endpoints
        self.recv_window = recv_window
        self.offset_ms = 0

    def _call(self, market: str, method: str, name: str, params: dict | None = None, *, retried: bool = False) -> Any:
        signed = dict(params or {})
        signed["timestamp"] = int(time.time() * 1000) + self.offset_ms
        signed["recvWindow"] = self.recv_window
        query = urllib.parse.urlencode(signed)
        signature = urllib.parse.urlencode({"signature": self._signer.sign(query)})  # base64 (Ed25519) needs quoting
        url = f"{self.endpoints.url(market, name)}?{query}&{signature}"
        try:
            return request(method, url, {"X-MBX-APIKEY": self._key})
        except VenueError as e:
            if e.code == CLOCK_SKEW and not retried:  # measure the server's clock and retry once
                sent = time.time()
                server = request("GET", self.endpoints.url(market, "time"), {})["serverTime"]
                self.offset_ms = int(server - (sent + time.time()) / 2 * 1000)
                return self._call(market, method, name, params, retried=True)
            raise

    def open_orders(self, market: str, symbol: str | None = None) -> list[dict]:
        """Open orders; on futures also the conditional (stop, take-profit, trailing) orders of the
        Algo Service, which /fapi/v1/openOrders does not list."""
        params = {"symbol": symbol} if symbol else None
        out = list(self._call(market, "GET", "open_orders", params))
        if market == FUTURES:
            algos = self._call(market, "GET", "open_algo_orders", params)
            out += list(algos.get("orders", []) if isinstance(algos, dict) else algos)
        return out

    def cancel_symbol(self, market: str, symbol: str) -> int:
        """Cancel every open order on one symbol; how many the venue said it canceled (-1: futures
        answers "done" without a list)."""
        try:
            if market == SPOT:
                return len(self._call(market, "DELETE", "open_orders", {"symbol": symbol}))
            self._call(market, "DELETE", "all_open_orders", {"symbol": symbol})
            self._call(market, "DELETE", "algo_open_orders", {"symbol": symbol})  # the conditional orders too
            return -1
        except VenueError as e:
            if e.code == NOTHING_OPEN:
                return 0
            raise

    def positions(self) -> list[dict]:
        return [p for p in self._call(FUTURES, "GET", "position_risk") if float(p.get("positionAmt") or 0) != 0]

    def close_position(self, symbol: str, amount: float, max_qty: float | None) -> list[dict]:
        """Reduce-only MARKET orders closing `amount` (signed), each at most `max_qty`."""
        side = "SELL" if amount > 0 else "BUY"
        left = abs(amount)
        out = []
        while left > 1e-12:
            qty = left if not max_qty else min(left, max_qty)
            doc = self._call(FUTURES, "POST", "order", {"symbol": symbol, "side": side, "type": "MARKET",
                                                        "quantity": decimal_text(qty), "reduceOnly": "true",
                                                        "newClientOrderId": f"sq-flatten-{int(time.time() * 1000) % 10**9}-{len(out)}"})
            out.append({"symbol": symbol, "side": side, "qty": qty, "status": doc.get("status", "")})
            left -= qty
        return out


def decimal_text(x: float) -> str:
    """A quantity as Binance accepts it: plain decimal, at most 8 places, no trailing zeros."""
    text = f"{x:.8f}".rstrip("0").rstrip(".")
    return text or "0"


def kill(acct: Account, *, symbol: str | None, flatten: bool, max_qty: Callable[[str, float], float | None],
         t0: float) -> list[VenueResult]:
    """Cancel (and with `flatten` close futures positions) on both Binance markets, or only the
    market of `symbol`; one result per market touched. `t0` (perf_counter) times the first cancel."""
    markets = [SPOT, FUTURES]
    want = None
    if symbol:
        exchange, _, want = symbol.strip().upper().partition(":")
        markets = [FUTURES] if exchange == "BINANCE-FUT" else [SPOT]
    try:
        venue = BinanceKill(acct)
    except AuthError as e:
        return [VenueResult("binance", market, error=f"binance {market}: {e.message}") for market in markets]
    out = []
    for market in markets:
        result = VenueResult("binance", market)
        start = time.perf_counter()
        try:
            kill_market(venue, market, want, flatten, max_qty, t0, result)
        except VenueError as e:
            if market == FUTURES and not want and e.status in (401, 403) and e.code in NO_FUTURES_ACCOUNT:
                continue  # a spot-only key: no futures account to clean up
            result.error = f"binance {market}: {reason(e)}"
        result.seconds = time.perf_counter() - start
        out.append(result)
    return out


def reason(e: VenueError) -> str:
    """Why a market could not be cleaned, for the result row: "unreachable (…)" when no answer
    came at all, else the HTTP status and the venue's code and message."""
    if e.status == 0:
        return f"unreachable ({e.message}); its open orders could not be checked"
    return str(e)


def kill_market(venue: BinanceKill, market: str, want: str | None, flatten: bool, max_qty: Callable[[str, float], float | None],
                t0: float, result: VenueResult) -> None:
    """Cancel on one market (only `want` when given), flatten its futures positions, then fill in
    what is left; `result` is filled in as it goes, so a VenueError part-way keeps what was done."""
    if want:
        result.first_request_s = time.perf_counter() - t0
        result.canceled += max(venue.cancel_symbol(market, want), 0)
    else:
        for name in sorted({o["symbol"] for o in venue.open_orders(market)}):
            if result.first_request_s is None:
                result.first_request_s = time.perf_counter() - t0
            n = venue.cancel_symbol(market, name)
            result.canceled += n if n >= 0 else 1
    if flatten and market == FUTURES:
        for p in venue.positions():
            if want and p["symbol"] != want:
                continue
            cap = max_qty(PREFIX[FUTURES] + p["symbol"], float(p.get("markPrice") or 0))
            result.flattened += venue.close_position(p["symbol"], float(p["positionAmt"]), cap)
    result.remaining_orders = [{"symbol": PREFIX[market] + o["symbol"], "client_order_id": o.get("clientOrderId") or o.get("clientAlgoId", ""),
                                "venue_order_id": str(o.get("orderId") or o.get("algoId", "")), "status": o.get("status") or o.get("algoStatus", "")}
                               for o in venue.open_orders(market, want)]
    if flatten and market == FUTURES:
        result.remaining_positions = [{"symbol": PREFIX[FUTURES] + p["symbol"], "qty": float(p["positionAmt"])}
                                      for p in venue.positions() if not want or p["symbol"] == want]
