"""The fake Kite REST API and web login on 127.0.0.1 (http.server, one thread per request).

Answers are the official mocks (fixtures/vectors/kite/*.json, instruments CSV) with only what a
request changes filled in (new order ids, the placed orders, quotes of the requested instruments
with prices and circuit limits around the SIM market); historical candles come from history.py.
Every API call checks `Authorization: token api_key:access_token` (TokenException 403
otherwise); `/session/token` checks the checksum; the web login (`/api/login`, `/api/twofa`,
`/connect/login`) checks the user id, password and the current TOTP and redirects with a request
token.
"""

from __future__ import annotations

import copy
import hashlib
import http.server
import json
import re
import secrets
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

import pyotp

from tests.support.fakes.kite import charges as fake_charges
from tests.support.fakes.kite import history

if TYPE_CHECKING:  # pragma: no cover
    from tests.support.fakes.kite import KiteFake


def _err(error_type: str, message: str) -> dict:
    return {"status": "error", "message": message, "data": None, "error_type": error_type}


class Handler(http.server.BaseHTTPRequestHandler):
    fake: "KiteFake"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without this, Nagle + delayed ACK add 40 ms

    def log_message(self, *args):
        pass

    def date_time_string(self, timestamp=None):  # the Date header, on the fake's (skewable) clock
        import time as _time

        return super().date_time_string(_time.time() + self.fake.clock_offset_s if timestamp is None else timestamp)

    # ---------------------------------------------------------------- io

    def _send(self, code: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj, extra: dict | None = None) -> None:
        self._send(code, json.dumps(obj).encode(), "application/json", extra)

    def _read_body(self) -> None:
        # read the whole body before any answer, errors included: an unread body left on a
        # keep-alive connection would be parsed as the next request
        n = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(n).decode() if n else ""

    def _form(self) -> dict[str, str]:
        raw = self._body
        if "json" in (self.headers.get("Content-Type") or ""):
            return json.loads(raw or "{}")
        return {k: v[-1] for k, v in parse_qs(raw).items()}

    def _query(self) -> dict[str, list[str]]:
        return parse_qs(urlparse(self.path).query)

    def _authorised(self) -> bool:
        h = self.headers.get("Authorization") or ""
        m = re.fullmatch(r"token ([^:]+):(.+)", h.strip())
        if not m or m.group(1) != self.fake.api_key or m.group(2) not in self.fake.valid_tokens:
            self._json(403, _err("TokenException", "Incorrect `api_key` or `access_token`."))
            return False
        return True

    def _limited(self) -> bool:
        if self.fake.rate_limit_exceeded():
            self.fake.throttled += 1
            self._json(429, _err("NetworkException", "Too many requests"))
            return True
        return False

    # ---------------------------------------------------------------- dispatch

    def do_GET(self):  # noqa: N802
        self._route("GET")

    def do_POST(self):  # noqa: N802
        self._route("POST")

    def do_PUT(self):  # noqa: N802
        self._route("PUT")

    def do_DELETE(self):  # noqa: N802
        self._route("DELETE")

    def _route(self, method: str) -> None:
        f = self.fake
        path = urlparse(self.path).path
        self._read_body()
        f.requests.append((method, path))
        if path == "/api/login" and method == "POST":
            return self._web_login()
        if path == "/api/twofa" and method == "POST":
            return self._web_twofa()
        if path == "/connect/login" and method == "GET":
            return self._connect_login()
        if path == "/connect/finish" and method == "GET":
            return self._connect_finish()
        if path == "/session/token" and method == "POST":
            return self._session_token()
        if self._limited() or not self._authorised():
            return
        if f.forced_error is not None:
            code, etype, msg = f.forced_error
            f.forced_error = None
            return self._json(code, _err(etype, msg))
        with f.lock:
            forced = f.forced.pop(0) if f.forced else None
        if forced is not None:
            code, etype, msg = forced
            f.throttled += code == 429
            return self._json(code, _err(etype, msg))
        if path == "/session/token" and method == "DELETE":
            f.valid_tokens.discard((self.headers.get("Authorization") or "").split(":", 1)[-1])
            return self._json(200, f.mock("session_logout"))
        if path == "/instruments" and method == "GET":
            return self._send(200, f.instruments_csv.encode(), "text/csv")
        m = re.fullmatch(r"/instruments/historical/(\d+)/([^/]+)", path)
        if method == "GET" and m:
            code, body = history.answer(f, int(m.group(1)), m.group(2), urlparse(self.path).query)
            return self._send(code, history.encode(body), "application/json")
        if method == "GET" and path == "/portfolio/positions":
            body = f.mock("positions")
            mine = f.net_positions()
            for part in ("net", "day"):
                body["data"][part] = (body["data"][part] if f.mock_positions else []) + copy.deepcopy(mine)
            return self._json(200, body)
        static = {"/user/profile": "profile", "/user/margins": "margins", "/user/margins/equity": "margins_equity",
                  "/user/margins/commodity": "margin_commodity",
                  "/portfolio/holdings": "holdings", "/quote/ltp": "ltp", "/quote/ohlc": "ohlc"}
        if method == "GET" and path in static:
            return self._json(200, f.mock(static[path]))
        if method == "GET" and path == "/orders":
            body = f.mock("orders")
            with f.lock:
                body["data"] = body["data"] + [copy.deepcopy(o) for o in f.orders.values()]
            return self._json(200, body)
        if method == "GET" and path == "/trades":
            body = f.mock("trades")
            with f.lock:
                body["data"] = body["data"] + [dict(t) for t in f.matching.trades]
            return self._json(200, body)
        if method == "GET" and path == "/quote":
            return self._quote()
        if method == "POST" and path == "/charges/orders":
            orders = json.loads(self._body or "[]")
            if not isinstance(orders, list):
                return self._json(400, _err("InputException", "Invalid JSON: a list of orders expected."))
            with f.lock:
                f.charge_requests.extend(copy.deepcopy(orders))
                body = fake_charges.answer(orders, f.charge_rates, time.time() + f.clock_offset_s)
            return self._json(200, body)
        if path == "/gtt/triggers" and method == "POST":
            return self._gtt_place()
        if path == "/gtt/triggers" and method == "GET":
            with f.lock:
                return self._json(200, {"status": "success", "data": [copy.deepcopy(g) for g in f.gtts.values()]})
        m = re.fullmatch(r"/gtt/triggers/(\d+)", path)
        if m and method == "PUT":
            return self._gtt_place(int(m.group(1)))
        if m and method in ("GET", "DELETE"):
            with f.lock:
                g = f.gtts.get(int(m.group(1)))
                if g is None:
                    return self._json(404, _err("TriggerException", "Trigger not found."))
                if method == "GET":
                    return self._json(200, {"status": "success", "data": copy.deepcopy(g)})
                if g["status"] != "active":
                    return self._json(400, _err("TriggerException", "Trigger is not active."))
                g["status"] = "deleted"
            return self._json(200, {"status": "success", "data": {"trigger_id": g["id"]}})
        m = re.fullmatch(r"/orders/(\d+)/trades", path)
        if method == "GET" and m:
            return self._json(200, f.mock("order_trades"))
        m = re.fullmatch(r"/orders/(\d+)", path)
        if method == "GET" and m:
            with f.lock:
                o = f.orders.get(m.group(1))
            if o is None:
                return self._json(200, f.mock("order_info"))
            return self._json(200, {"status": "success", "data": [copy.deepcopy(o)]})
        m = re.fullmatch(r"/orders/(regular|amo|co|iceberg|auction)", path)
        if method == "POST" and m:
            return self._place(m.group(1))
        m = re.fullmatch(r"/orders/(regular|amo|co|iceberg|auction)/(\d+)", path)
        if m and method == "PUT":
            return self._modify(m.group(2))
        if m and method == "DELETE":
            return self._cancel(m.group(2))
        self._json(404, _err("GeneralException", "Route not found"))

    # ---------------------------------------------------------------- login

    def _web_login(self) -> None:
        f, form = self.fake, self._form()
        if form.get("user_id") != f.user_id or form.get("password") != f.password:
            return self._json(400, _err("InputException", "Invalid `user_id` or `password`."))
        rid = secrets.token_hex(16)
        f.login_requests[rid] = form["user_id"]
        self._json(200, {"status": "success", "data": {"user_id": f.user_id, "request_id": rid, "twofa_type": "totp",
                                                       "twofa_types": ["totp"], "twofa_status": "active"}})

    def _web_twofa(self) -> None:
        f, form = self.fake, self._form()
        if f.login_requests.get(form.get("request_id", "")) != form.get("user_id"):
            return self._json(400, _err("InputException", "Invalid request. Please try again."))
        if not pyotp.TOTP(f.totp_secret).verify(form.get("twofa_value", ""), valid_window=1):
            return self._json(400, _err("TwoFAException", "Invalid TOTP"))
        enc = secrets.token_hex(16)
        f.enctokens.add(enc)
        self._json(200, {"status": "success", "data": {"profile": {}}}, {"Set-Cookie": f"enctoken={enc}; Path=/"})

    def _cookie(self, name: str) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == name:
                return v
        return None

    def _connect_login(self) -> None:
        f = self.fake
        q = self._query()
        if (q.get("api_key") or [""])[0] != f.api_key:
            return self._send(400, b"invalid api_key", "text/plain")
        if self._cookie("enctoken") not in f.enctokens:
            return self._send(200, b"<html>login form</html>", "text/html")
        self._send(302, b"", "text/html", {"Location": f"/connect/finish?api_key={f.api_key}&sess_id={secrets.token_hex(8)}"})

    def _connect_finish(self) -> None:
        f = self.fake
        if self._cookie("enctoken") not in f.enctokens:
            return self._send(200, b"<html>login form</html>", "text/html")
        rt = secrets.token_hex(16)
        f.request_tokens.add(rt)
        self._send(302, b"", "text/html", {"Location": f"{f.redirect_url}?action=login&type=login&status=success&request_token={rt}"})

    def _session_token(self) -> None:
        f, form = self.fake, self._form()
        rt = form.get("request_token", "")
        want = hashlib.sha256((f.api_key + rt + f.api_secret).encode()).hexdigest()
        if form.get("api_key") != f.api_key or rt not in f.request_tokens or form.get("checksum") != want:
            return self._json(403, _err("TokenException", "Token is invalid or has expired."))
        f.request_tokens.discard(rt)
        at = secrets.token_hex(16)
        f.valid_tokens.add(at)
        body = f.mock("generate_session")
        body["data"].update({"user_id": f.user_id, "api_key": f.api_key, "access_token": at, "public_token": secrets.token_hex(8),
                             "enctoken": "", "login_time": time.strftime("%Y-%m-%d %H:%M:%S")})
        self._json(200, body)

    # ---------------------------------------------------------------- market and orders

    def _quote(self) -> None:
        f = self.fake
        template = f.mock("quote")["data"]["NSE:INFY"]
        data = {}
        for key in self._query().get("i", []):
            token = f.token_of(key)
            if token is None:
                continue
            q = copy.deepcopy(template)
            q.update(f.market_quote(token))
            lo, hi = f.circuit(key.upper(), token)
            q["lower_circuit_limit"], q["upper_circuit_limit"] = lo, hi
            data[key] = q
        self._json(200, {"status": "success", "data": data})

    def _place(self, variety: str) -> None:
        f, form = self.fake, self._form()
        for k in ("exchange", "tradingsymbol", "transaction_type", "order_type", "quantity", "product"):
            if not form.get(k):
                return self._json(400, _err("InputException", f"Missing `{k}`"))
        key = f"{form['exchange']}:{form['tradingsymbol']}".upper()
        row = f.rows.get(key)
        if row is None:
            return self._json(400, _err("InputException", "Invalid `tradingsymbol`."))
        qty = int(form["quantity"])
        if qty % int(float(row["lot_size"])):
            return self._json(400, _err("InputException", "Quantity should be a multiple of lot size."))
        if form["order_type"] in ("MARKET", "SL-M") and float(form.get("market_protection") or 0) == 0:
            return self._json(400, _err("InputException", "Market orders need market protection."))
        if form["order_type"] in ("SL", "SL-M") and float(form.get("trigger_price") or 0) <= 0:
            return self._json(400, _err("InputException", "Trigger price is required for SL and SL-M orders."))
        if form["order_type"] == "SL" and float(form.get("price") or 0) <= 0:
            return self._json(400, _err("InputException", "Price is required for SL orders."))
        if f.reject_orders:
            etype, msg = f.reject_orders
            return self._json(400, _err(etype, msg))
        oid = f.next_order_id()
        tmpl = copy.deepcopy(f.mock("orders")["data"][0])
        tmpl.update({"order_id": oid, "exchange_order_id": None, "status": "OPEN", "variety": variety,
                     "exchange": form["exchange"], "tradingsymbol": form["tradingsymbol"], "instrument_token": int(row["instrument_token"]),
                     "order_type": form["order_type"], "transaction_type": form["transaction_type"],
                     "validity": form.get("validity", "DAY"), "product": form["product"], "quantity": qty,
                     "price": float(form.get("price") or 0), "trigger_price": float(form.get("trigger_price") or 0),
                     "filled_quantity": 0, "pending_quantity": qty, "cancelled_quantity": 0, "tag": form.get("tag"),
                     "order_timestamp": time.strftime("%Y-%m-%d %H:%M:%S"), "placed_by": f.user_id})
        with f.lock:
            f.orders[oid] = tmpl
            changed = f.matching.submit(tmpl)
            snaps = [copy.deepcopy(o) for o in changed] or [copy.deepcopy(tmpl)]
        for o in snaps:
            f.postback(o)
        body = f.mock("order_response")
        body["data"]["order_id"] = oid
        with f.lock:
            fault = f.order_faults.pop(0) if f.order_faults else None
        if fault == "drop":  # executed, but the answer never leaves: the connection just closes
            import socket

            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault == "timeout":  # executed; the answer comes after the client gave up
            time.sleep(f.order_fault_delay_s)
            try:
                self._json(200, body)
            except OSError:
                pass
            return
        self._json(200, body)

    def _gtt_place(self, modify: int | None = None) -> None:
        """POST /gtt/triggers: a single (one trigger, one order) or two-leg (lower, upper trigger;
        one order each) GTT of LIMIT orders, checked as Kite checks it. PUT /gtt/triggers/{id}
        (`modify`): the same parameters replace an active GTT's condition and orders, same id."""
        f, form = self.fake, self._form()
        if modify is not None:
            with f.lock:
                g = f.gtts.get(modify)
                if g is None:
                    return self._json(404, _err("TriggerException", "Trigger not found."))
                if g["status"] != "active":
                    return self._json(400, _err("TriggerException", "Trigger is not active."))
        try:
            kind = form["type"]
            cond, orders = json.loads(form["condition"]), json.loads(form["orders"])
        except (KeyError, ValueError):
            return self._json(400, _err("InputException", "Invalid `condition` or `orders`."))
        key = f"{cond.get('exchange')}:{cond.get('tradingsymbol')}".upper()
        row = f.rows.get(key)
        if row is None:
            return self._json(400, _err("InputException", "Invalid `tradingsymbol`."))
        triggers = [float(v) for v in cond.get("trigger_values") or []]
        want = {"single": 1, "two-leg": 2}.get(kind)
        if want is None or len(triggers) != want or len(orders) != want:
            return self._json(400, _err("InputException", "Invalid trigger type or trigger values."))
        if kind == "two-leg" and not triggers[0] < triggers[1]:
            return self._json(400, _err("InputException", "Lower trigger value must be less than the upper one."))
        for o in orders:
            if o.get("order_type") != "LIMIT" or float(o.get("price") or 0) <= 0 or int(o.get("quantity") or 0) <= 0:
                return self._json(400, _err("InputException", "GTT orders must be LIMIT orders with a price and quantity."))
        with f.lock:
            last = float(f.market_quote(int(row["instrument_token"])).get("last_price") or cond.get("last_price") or 0)
            if modify is not None:
                g = f.gtts[modify]
                if g["status"] != "active":
                    return self._json(400, _err("TriggerException", "Trigger is not active."))
                g.update(type=kind, updated_at=time.strftime("%Y-%m-%d %H:%M:%S"),
                         condition={"exchange": cond["exchange"], "tradingsymbol": cond["tradingsymbol"], "last_price": last,
                                    "trigger_values": triggers, "instrument_token": int(row["instrument_token"])},
                         orders=[dict(o, exchange=cond["exchange"], tradingsymbol=cond["tradingsymbol"], result=None) for o in orders])
                f.gtt_modifies.append(modify)
                return self._json(200, {"status": "success", "data": {"trigger_id": modify}})
            tid = f.next_gtt_id()
            now = time.strftime("%Y-%m-%d %H:%M:%S")
            f.gtts[tid] = {"id": tid, "user_id": f.user_id, "parent_trigger": None, "type": kind, "created_at": now, "updated_at": now,
                           "expires_at": now, "status": "active",
                           "condition": {"exchange": cond["exchange"], "tradingsymbol": cond["tradingsymbol"], "last_price": last,
                                         "trigger_values": triggers, "instrument_token": int(row["instrument_token"])},
                           "orders": [dict(o, exchange=cond["exchange"], tradingsymbol=cond["tradingsymbol"], result=None) for o in orders],
                           "meta": {}}
        body = f.mock("gtt_place_order")
        body["data"]["trigger_id"] = tid
        self._json(200, body)

    def _modify(self, oid: str) -> None:
        f, form = self.fake, self._form()
        with f.lock:
            o = f.orders.get(oid)
            if o is None or o["status"] not in ("OPEN", "TRIGGER PENDING"):
                return self._json(400, _err("OrderException", "Order cannot be modified as it is not open."))
            if "price" in form:
                o["price"] = float(form["price"])
            if "quantity" in form:
                o["quantity"] = o["pending_quantity"] = int(form["quantity"])
            if "trigger_price" in form:
                if o["status"] != "TRIGGER PENDING":
                    return self._json(400, _err("InputException", "Trigger price can be modified only for SL and SL-M orders."))
                o["trigger_price"] = float(form["trigger_price"])
            o["modified"] = True
            f.matching.modify(o)
            snap = copy.deepcopy(o)
        f.postback(snap)
        body = f.mock("order_modify")
        body["data"]["order_id"] = oid
        self._json(200, body)

    def _cancel(self, oid: str) -> None:
        f = self.fake
        if f.cancel_error is not None:
            code, etype, msg = f.cancel_error
            return self._json(code, _err(etype, msg))
        with f.lock:
            o = f.orders.get(oid)
            if o is None or o["status"] not in ("OPEN", "TRIGGER PENDING") or not f.matching.cancel(oid):
                return self._json(400, _err("OrderException", "Order cannot be cancelled as it is not open."))
            o.update({"status": "CANCELLED", "cancelled_quantity": o["pending_quantity"], "pending_quantity": 0})
            snap = copy.deepcopy(o)
        f.postback(snap)
        body = f.mock("order_cancel")
        body["data"]["order_id"] = oid
        self._json(200, body)


def serve(fake: "KiteFake") -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
    handler = type("KiteHandler", (Handler,), {"fake": fake})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="kite-fake-rest")
    th.start()
    return srv, th
