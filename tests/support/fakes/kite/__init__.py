"""A local Kite Connect server for tests: REST (official mocks), historical candles derived from the
official mocks (history.py), web login with TOTP, and a binary ticker driven by the SIM matching
engine, or by a script of exact packets (script.py, `TickerServer.play`) — all on 127.0.0.1.

`kite_fake` is a running `KiteFake`; `kite_env` also points sq at it (SQ_KITE_*_URL, ZKITE_*
credentials, an isolated SQ_HOME and working directory) and returns the fake; `kite_open_hours`
pins the market-hours check of in-process gateways. tests/conftest.py registers these fixtures for
every test.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from pathlib import Path

import pytest

from tests.support.fakes.kite import charges as fake_charges
from tests.support.process import VECTORS

KITE_VECTORS = VECTORS / "kite"  # the official Kite Connect mocks (fixtures/vectors/README.md)

# instruments the tests trade, added to the official dump sample (same columns)
EXTRA_ROWS = [
    "738561,2885,RELIANCE,RELIANCE INDUSTRIES,0.0,,0.0,0.05,1,EQ,NSE,NSE",
    "408065,1594,INFY,INFOSYS,0.0,,0.0,0.05,1,EQ,NSE,NSE",
    "884737,3456,TATAMOTORS,TATA MOTORS,0.0,,0.0,0.05,1,EQ,NSE,NSE",
    "256265,1001,NIFTY 50,NIFTY 50,0.0,,0.0,0.0,0,EQ,INDICES,NSE",
    "13238786,51714,NIFTY25DECFUT,NIFTY,0.0,2025-12-30,0.0,0.1,75,FUT,NFO-FUT,NFO",
    "412675,1612,USDINR25DECFUT,USDINR,0.0,2025-12-29,0.0,0.0025,1,FUT,CDS-FUT,CDS",
    *[  # futures of several expiries for continuous names (NFO:NIFTY-FUT …; RELIANCE lists two, the rest three)
        "15360258,60001,NIFTY26DECFUT,NIFTY,0.0,2026-12-29,0.0,0.1,65,FUT,NFO-FUT,NFO",
        "15360514,60002,NIFTY27JANFUT,NIFTY,0.0,2027-01-25,0.0,0.1,65,FUT,NFO-FUT,NFO",
        "15360770,60003,NIFTY27FEBFUT,NIFTY,0.0,2027-02-23,0.0,0.1,65,FUT,NFO-FUT,NFO",
        "15367938,60031,NIFTY26DEC24000CE,NIFTY,0.0,2026-12-29,24000.0,0.05,65,CE,NFO-OPT,NFO",  # not a future
        "15362818,60011,BANKNIFTY26DECFUT,BANKNIFTY,0.0,2026-12-29,0.0,0.2,30,FUT,NFO-FUT,NFO",
        "15363074,60012,BANKNIFTY27JANFUT,BANKNIFTY,0.0,2027-01-25,0.0,0.2,30,FUT,NFO-FUT,NFO",
        "15363330,60013,BANKNIFTY27FEBFUT,BANKNIFTY,0.0,2027-02-23,0.0,0.2,30,FUT,NFO-FUT,NFO",
        "15365378,60021,RELIANCE26DECFUT,RELIANCE,0.0,2026-12-29,0.0,0.1,500,FUT,NFO-FUT,NFO",
        "15365634,60022,RELIANCE27JANFUT,RELIANCE,0.0,2027-01-25,0.0,0.1,500,FUT,NFO-FUT,NFO",
        "1126663,4401,CRUDEOIL26DECFUT,CRUDEOIL,0.0,2026-12-17,0.0,1.0,100,FUT,MCX-FUT,MCX",
        "1126919,4402,CRUDEOIL27JANFUT,CRUDEOIL,0.0,2027-01-19,0.0,1.0,100,FUT,MCX-FUT,MCX",
        "1127175,4403,CRUDEOIL27FEBFUT,CRUDEOIL,0.0,2027-02-18,0.0,1.0,100,FUT,MCX-FUT,MCX",
    ],
]
START_PRICES = {738561: 1400.0, 408065: 1570.0, 884737: 420.0, 256265: 24000.0, 13238786: 24100.0, 412675: 84.5,
                15360258: 26100.0, 15360514: 26180.0}


class KiteFake:
    api_key = "kitetestkey"
    api_secret = "kite-test-secret-0123"
    user_id = "XX0000"
    password = "fake-password-9"
    totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    redirect_url = "http://127.0.0.1:9/callback"
    clock_offset_s = 0.0  # the fake's clock against this machine's (its answers' Date header)

    def __init__(self, *, seed: int = 7, interval: float = 0.05):
        from tests.support.fakes.kite.market import SimMarket

        self.lock = threading.RLock()
        base = (KITE_VECTORS / "instruments_all.csv").read_text()
        self.instruments_csv = base.rstrip("\n") + "\n" + "\n".join(EXTRA_ROWS) + "\n"
        import csv
        import io

        self.rows = {f"{r['exchange']}:{r['tradingsymbol']}".upper(): r for r in csv.DictReader(io.StringIO(self.instruments_csv))}
        specs = {}
        for r in self.rows.values():
            t = int(r["instrument_token"])
            if t in START_PRICES:
                tick = float(r["tick_size"]) or 0.05
                specs[t] = (f"{r['exchange']}:{r['tradingsymbol']}", tick, max(float(r["lot_size"]), 1.0), START_PRICES[t])
        self.market = SimMarket(specs, seed=seed, start_ns=time.time_ns())
        from tests.support.fakes.kite.matching import FakeMatching

        self.matching = FakeMatching(self)
        self.valid_tokens: set[str] = set()
        self.request_tokens: set[str] = set()
        self.enctokens: set[str] = set()
        self.login_requests: dict[str, str] = {}
        self.orders: dict[str, dict] = {}
        self.gtts: dict[int, dict] = {}  # GTT triggers by id (POST /gtt/triggers)
        self._gtt_ids = 100_000
        self.gtt_modifies: list[int] = []  # ids of the GTTs modified (PUT /gtt/triggers/{id}), in order
        self.requests: list[tuple[str, str]] = []
        self.circuits: dict[str, tuple[float, float]] = {}
        self.forced_error: tuple[int, str, str] | None = None  # next API call answers this error
        self.reject_orders: tuple[str, str] | None = None  # (error_type, message) for every placement
        self.rate_limit: float | None = None  # requests per second before 429
        # fault injection (tests of uncertain sends, storms, refusals), in the style of the Binance fake:
        # `forced` — (http status, error_type, message) answered by the next API calls, in order (a 429
        # storm is [(429, "NetworkException", "Too many requests")] * n); `order_faults` — faults of
        # order placements, taken in order: "timeout" executes the order, then answers only after
        # `order_fault_delay_s` (the client has given up), "drop" executes it and closes the connection
        # without an answer; `cancel_error` — every cancel is refused with this (status, type, message)
        self.forced: list[tuple[int, str, str]] = []
        self.order_faults: list[str] = []
        self.order_fault_delay_s = 3.0
        self.cancel_error: tuple[int, str, str] | None = None
        self.throttled = 0  # 429 answers sent (rate limit or forced)
        # historical candles (history.py): weekdays without candles, Kite's 3 requests/s on that
        # endpoint (None: unlimited), and every request it received, in arrival order
        self.holidays: set = set()
        self.historical_rate: float | None = 3.0
        self.historical: list[dict] = []
        # /portfolio/positions: the official mock's rows (an account with history elsewhere) when True,
        # always followed by the net positions of the trades made at this fake
        self.mock_positions = True
        # POST /charges/orders (charges.py): the fake's own rate table (a test skews one) and the
        # orders it was asked about
        self.charge_rates = fake_charges.default_rates()
        self.charge_requests: list[dict] = []
        self.paused = False
        self._ids = itertools.count(250101000000001)
        self._window: list[float] = []
        self.interval = interval
        self.http = None
        self.ticker = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> "KiteFake":
        from tests.support.fakes.kite.rest import serve
        from tests.support.fakes.kite.ticker import TickerServer

        self.http, _ = serve(self)
        self.ticker = TickerServer(self, self.interval)
        self.ticker.start()
        return self

    def stop(self) -> None:
        if self.ticker is not None:
            self.ticker.stop()
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.ticker.port}"

    def environ(self) -> dict[str, str]:
        """Environment variables that point sq at this fake with its credentials."""
        return {"SQ_KITE_ROOT_URL": self.root, "SQ_KITE_WS_URL": self.ws, "SQ_KITE_LOGIN_URL": self.root,
                "ZKITE_API_KEY": self.api_key, "ZKITE_API_SECRET": self.api_secret, "ZKITE_USER_ID": self.user_id,
                "ZKITE_PWD": self.password, "ZKITE_TOTP_SECRET": self.totp_secret}

    # ---------------------------------------------------------------- state helpers

    def mock(self, name: str) -> dict:
        return json.loads((KITE_VECTORS / f"{name}.json").read_text())

    def issue_token(self) -> str:
        import secrets

        tok = secrets.token_hex(16)
        self.valid_tokens.add(tok)
        return tok

    def expire_tokens(self) -> None:
        self.valid_tokens.clear()

    def next_gtt_id(self) -> int:
        self._gtt_ids += 1
        return self._gtt_ids

    def check_gtts(self) -> list[dict]:
        """Fire the active GTTs whose instrument's last price crossed a trigger (single: the trigger,
        from either side of the price it was placed at; two-leg: at or below the lower → its first
        order, at or above the upper → its second); each places its LIMIT order. Caller holds the lock."""
        changed = []
        for g in self.gtts.values():
            if g["status"] != "active":
                continue
            cond = g["condition"]
            token = cond["instrument_token"]
            if token not in self.market.books:
                continue
            last = float(self.market.quote_entry(token)["last_price"])
            trig = cond["trigger_values"]
            if g["type"] == "single":
                leg = 0 if (last >= trig[0] if cond["last_price"] < trig[0] else last <= trig[0]) else None
            else:
                leg = 0 if last <= trig[0] else 1 if last >= trig[1] else None
            if leg is None:
                continue
            o = g["orders"][leg]
            oid = self.next_order_id()
            tmpl = copy.deepcopy(self.mock("orders")["data"][0])
            tmpl.update({"order_id": oid, "exchange_order_id": None, "status": "OPEN", "variety": "regular", "exchange": o["exchange"],
                         "tradingsymbol": o["tradingsymbol"], "instrument_token": token, "order_type": "LIMIT",
                         "transaction_type": o["transaction_type"], "validity": "DAY", "product": o["product"],
                         "quantity": int(o["quantity"]), "price": float(o["price"]), "trigger_price": 0.0, "filled_quantity": 0,
                         "pending_quantity": int(o["quantity"]), "cancelled_quantity": 0, "tag": None,
                         "order_timestamp": time.strftime("%Y-%m-%d %H:%M:%S"), "placed_by": self.user_id})
            self.orders[oid] = tmpl
            o["result"] = {"order_result": {"order_id": oid, "status": "success"}, "triggered_at": last}
            g["status"] = "triggered"
            changed += self.matching.submit(tmpl) or [tmpl]
        return changed

    def next_order_id(self) -> str:
        return str(next(self._ids))

    def token_of(self, key: str) -> int | None:
        r = self.rows.get(key.upper())
        return int(r["instrument_token"]) if r else None

    def market_quote(self, token: int) -> dict:
        with self.lock:
            return self.market.quote_entry(token) if token in self.market.books else {"instrument_token": token}

    def circuit(self, key: str, token: int) -> tuple[float, float]:
        if key in self.circuits:
            return self.circuits[key]
        p = START_PRICES.get(token, 100.0)
        return round(p * 0.8, 2), round(p * 1.2, 2)

    def rate_limit_exceeded(self) -> bool:
        if self.rate_limit is None:
            return False
        now = time.monotonic()
        with self.lock:
            self._window = [t for t in self._window if now - t < 1.0] + [now]
            return len(self._window) > self.rate_limit

    def placed(self, tag: str | None = None) -> list[dict]:
        """Orders placed at this fake (optionally only those with this tag), in placement order."""
        with self.lock:
            return [dict(o) for o in self.orders.values() if tag is None or o.get("tag") == tag]

    def open_orders(self) -> list[dict]:
        with self.lock:
            return [dict(o) for o in self.orders.values() if o["status"] in ("OPEN", "TRIGGER PENDING")]

    def net_positions(self) -> list[dict]:
        """Kite-shaped net positions of the trades made at this fake, one per (instrument, product)."""
        template = self.mock("positions")["data"]["net"][0]
        acc: dict[tuple, dict] = {}
        with self.lock:
            trades = [dict(t) for t in self.matching.trades]
        for t in trades:
            key = (t["exchange"], t["tradingsymbol"], t["product"])
            a = acc.setdefault(key, {"token": t["instrument_token"], "bq": 0, "bv": 0.0, "sq": 0, "sv": 0.0})
            if t["transaction_type"] == "BUY":
                a["bq"] += int(t["quantity"])
                a["bv"] += float(t["quantity"]) * float(t["average_price"])
            else:
                a["sq"] += int(t["quantity"])
                a["sv"] += float(t["quantity"]) * float(t["average_price"])
        out = []
        for (ex, ts, product), a in acc.items():
            qty = a["bq"] - a["sq"]
            last = float(self.market_quote(a["token"]).get("last_price") or 0.0)
            avg = (a["bv"] / a["bq"] if qty > 0 else a["sv"] / a["sq"] if qty < 0 else 0.0)
            realised = (a["sv"] / a["sq"] - a["bv"] / a["bq"]) * min(a["bq"], a["sq"]) if a["bq"] and a["sq"] else 0.0
            p = dict(template)
            p.update({"tradingsymbol": ts, "exchange": ex, "instrument_token": a["token"], "product": product, "quantity": qty,
                      "overnight_quantity": 0, "multiplier": 1, "average_price": round(avg, 4), "close_price": 0,
                      "last_price": last, "value": round(a["sv"] - a["bv"], 4), "buy_quantity": a["bq"], "sell_quantity": a["sq"],
                      "buy_price": round(a["bv"] / a["bq"], 4) if a["bq"] else 0, "sell_price": round(a["sv"] / a["sq"], 4) if a["sq"] else 0,
                      "buy_value": round(a["bv"], 4), "sell_value": round(a["sv"], 4), "day_buy_quantity": a["bq"],
                      "day_sell_quantity": a["sq"], "day_buy_value": round(a["bv"], 4), "day_sell_value": round(a["sv"], 4),
                      "realised": round(realised, 4), "unrealised": round(qty * (last - avg), 4) if qty else 0,
                      "pnl": round(a["sv"] - a["bv"] + qty * last, 4), "m2m": round(a["sv"] - a["bv"] + qty * last, 4)})
            out.append(p)
        return out

    def postback(self, order: dict) -> None:
        if self.ticker is not None:
            self.ticker.broadcast(json.dumps({"type": "order", "data": order}))


OPEN_HOURS_DIR = Path(__file__).resolve().parent / "openhours"


def open_hours_env(environ: dict[str, str]) -> dict[str, str]:
    """`environ` for an `sq` subprocess whose Zerodha market-hours check runs at a fixed Monday
    10:00 IST (openhours/sitecustomize.py), so live tests pass at any wall-clock time."""
    env = dict(environ)
    env["PYTHONPATH"] = str(OPEN_HOURS_DIR) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["SQ_TEST_KITE_OPEN_HOURS"] = "1"
    return env


@pytest.fixture
def kite_open_hours(monkeypatch):
    """The same fixed market time for gateways opened inside the test process."""
    import datetime as dt

    from sq.venues.zerodha import market_rules

    from sq.runs import order

    real = market_rules.hours_violation
    now = dt.datetime(2025, 11, 24, 10, 0, tzinfo=market_rules.IST)
    monkeypatch.setattr(market_rules, "hours_violation", lambda _now, exchange, variety="regular": real(now, exchange, variety))
    monkeypatch.setattr(order, "market_time_ns", lambda: int(now.timestamp()) * 1_000_000_000)  # `sq order`'s pre-trade check


@pytest.fixture
def kite_fake():
    fake = KiteFake().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def kite_env(kite_fake, tmp_path, monkeypatch):
    for k, v in kite_fake.environ().items():
        monkeypatch.setenv(k, v)
    for k in ("ZKITE_ACCESS_TOKEN", "SQ_CONFIG", "SQ_DOTENV"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("SQ_HOME", str(tmp_path / "sqhome"))
    monkeypatch.chdir(tmp_path)
    return kite_fake
